import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const main = join(repo, 'dist/src/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: repo, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

const hafc = (...args: string[]) => run(process.execPath, [main, ...args]);
const scratch = mkdtempSync(join(tmpdir(), 'hafc-check-config-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('hafc check-config (built binary)', () => {
  beforeAll(() => {
    // `npm test` builds before running vitest; the binary under test is the built one.
    expect(existsSync(main), `${main} is missing: run npm run build first`).toBe(true);
  });

  it('prints ok and a summary for a valid file whose hooks and files exist here, exit 0', async () => {
    const hook = join(scratch, 'hook.sh');
    writeFileSync(hook, '#!/bin/sh\nexit 0\n');
    chmodSync(hook, 0o755);
    const token = join(scratch, 'control.token');
    writeFileSync(token, 'secret\n');
    const file = join(scratch, 'ok.yaml');
    writeFileSync(
      file,
      [
        'cluster: app',
        'node: { id: app1, host: 10.0.0.1, port: 8080 }',
        'zookeeper: { connect: "zk1:2181" }',
        `service: { agent: shell, toActive: [${hook}, promote], toStandby: "${hook} demote", check: "exit 0" }`,
        `fencing: { methods: [{ shell: [${hook}] }] }`,
        `control: { tokenFile: ${token} }`,
        '',
      ].join('\n'),
    );
    const r = await hafc('check-config', file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        `${file}: ok`,
        'cluster app, node app1 at 10.0.0.1:8080 (priority 0), service agent shell (to-standby hookTimeoutMs 5000 ms),',
        'zookeeper zk1:2181 under /hafc (session 10000 ms, on connection loss demote), health check agent, fencing shell;',
        'detection 3000 ms (every 1000 ms x fall 3), lease budget 4000 ms (session 10000 - margin 1000 - to-standby 5000),',
        'less the ZooKeeper relay allowance at runtime (tickTime/2 + slack: 1250 ms for the default tickTime 2000), and with the session timeout the servers negotiate in place of 10000;',
        'worst-case failover 48000 ms (detection + session + 1 x fencing 30000 + to-active 5000).',
        '',
      ].join('\n'),
    );
  });

  it('checks the shell example without its host (--no-preflight), exit 0', async () => {
    const r = await hafc('check-config', '--no-preflight', 'config/shell.yaml');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'config/shell.yaml: ok',
        'cluster app, node app1 at app1.example.com:8080 (priority 100), service agent shell (to-standby hookTimeoutMs 5000 ms),',
        'zookeeper zk1.example.com:2181,zk2.example.com:2181,zk3.example.com:2181 under /hafc (session 10000 ms, on connection loss demote), health check agent, fencing shell;',
        'detection 3000 ms (every 1000 ms x fall 3), lease budget 4000 ms (session 10000 - margin 1000 - to-standby 5000),',
        'less the ZooKeeper relay allowance at runtime (tickTime/2 + slack: 1250 ms for the default tickTime 2000), and with the session timeout the servers negotiate in place of 10000;',
        'worst-case failover 48000 ms (detection + session + 1 x fencing 30000 + to-active 5000).',
        '',
      ].join('\n'),
    );
  });

  it('accepts the http example (--no-preflight)', async () => {
    const r = await hafc('check-config', '--no-preflight', 'config/http.yaml');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^config\/http\.yaml: ok\n/);
    expect(r.stdout).toContain('lease budget 5800 ms (session 12000 - margin 1200 - to-standby 5000),');
  });

  it('reports the hooks and files the agent would not find on this host, exit 2', async () => {
    const r = await hafc('check-config', 'config/shell.yaml');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const src = 'config config/shell.yaml';
    expect(r.stderr.split('\n')).toEqual(
      expect.arrayContaining([
        `${src}: service.toActive: program "/usr/local/bin/app-ctl" does not exist (argv[0] of ["/usr/local/bin/app-ctl","promote"])`,
        `${src}: service.toStandby: program "/usr/local/bin/app-ctl" does not exist (argv[0] of ["/usr/local/bin/app-ctl","demote"])`,
        `${src}: fencing.methods[0].shell: program "/usr/local/bin/fence-app.sh" does not exist (first word of "/usr/local/bin/fence-app.sh")`,
      ]),
    );
    const http = await hafc('check-config', 'config/http.yaml');
    expect(http.code).toBe(2);
    expect(http.stderr).toBe(
      'config config/http.yaml: control.tokenFile: "/etc/hafc/control.token" does not exist; it must hold the bearer token\n',
    );
  });

  it('refuses graceful fencing with the shell agent, exit 2', async () => {
    const file = join(scratch, 'graceful.yaml');
    writeFileSync(
      file,
      'cluster: a\nnode: { id: n, port: 1 }\nzookeeper: { connect: "zk:2181" }\n' +
        'service: { agent: shell, toActive: "true", toStandby: "true", check: "true" }\n' +
        'fencing: { methods: [graceful, { shell: "true" }] }\n',
    );
    const r = await hafc('check-config', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `config ${file}: fencing.methods[0]: graceful needs a service agent that can ask the old active to demote, and the shell agent cannot; remove it and fence with shell, ssh or http\n`,
    );
  });

  it('prints every problem to stderr, exit 2', async () => {
    const r = await hafc('check-config', 'test/unit/config/fixtures/invalid.yaml');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const src = 'config test/unit/config/fixtures/invalid.yaml';
    expect(r.stderr).toBe(
      [
        `${src}: cluster: must match [a-z0-9][a-z0-9_-]{0,62} (lower-case letters, digits, "_" and "-"; at most 63 characters), got "NS1"`,
        `${src}: unknown key "zookeeper.sesionTimeoutMs" (did you mean "zookeeper.sessionTimeoutMs"?)`,
        `${src}: health.fall: must be an integer from 1 to 100, got "three"`,
        '',
      ].join('\n'),
    );
  });

  it('reports a YAML syntax error with its line and column, exit 2', async () => {
    // Written at run time: a broken .yaml file in the tree would break `prettier --check .`.
    const file = join(scratch, 'broken.yaml');
    writeFileSync(file, 'cluster: ns1\nnode: { id: nn1, port: 8020\nzookeeper: { connect: "zk1:2181" }\n');
    const r = await hafc('check-config', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `config ${file}: line 3, column 1: invalid YAML: Flow map in block collection must be sufficiently indented and end with a }\n`,
    );
  });

  it('refuses a FIFO as the file at once, exit 2', async () => {
    const fifo = join(scratch, 'config.fifo');
    await run('mkfifo', [fifo]);
    const r = await hafc('check-config', fifo);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `config ${fifo}: is a FIFO (named pipe), not a regular file; give the path of a YAML file\n`,
    );
  });

  it('reports an unreadable file, exit 2', async () => {
    const r = await hafc('check-config', 'no/such.yaml');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "config no/such.yaml: cannot read the file: ENOENT: no such file or directory, open 'no/such.yaml'\n",
    );
  });

  it('is a usage error without a file, exit 2', async () => {
    const r = await hafc('check-config');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing required argument 'file'");
  });
});
