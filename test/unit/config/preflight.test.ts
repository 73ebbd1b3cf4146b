import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load.js';
import { preflight, programOf } from '../../../src/config/preflight.js';

const dir = mkdtempSync(join(tmpdir(), 'hafc-preflight-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string, mode = 0o644): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

const hook = file('hook.sh', '#!/bin/sh\nexit 0\n', 0o755);
const notExecutable = file('plain.sh', '#!/bin/sh\nexit 0\n', 0o644);
const creds = file('zk.secret', 'hafc:s3cret\n', 0o600);
const token = file('control.token', 'abc123\n', 0o600);
const binDir = join(dir, 'bin');
mkdirSync(binDir);
file('bin/app-ctl', '#!/bin/sh\n', 0o755);
/** A PATH with app-ctl and the system's programs (true, sh). */
const PATH = `${binDir}:/usr/bin:/bin`;

function config(patch: Record<string, unknown> = {}) {
  const doc: Record<string, unknown> = {
    cluster: 'ns1',
    node: { id: 'nn1', port: 8020 },
    zookeeper: { connect: 'zk1:2181', auth: { credentialsFile: creds } },
    service: { agent: 'shell', toActive: [hook, 'promote'], toStandby: 'app-ctl demote', check: 'exit 0' },
    fencing: { methods: [{ shell: [hook] }] },
    control: { tokenFile: token },
    ...patch,
  };
  return parseConfig(stringify(doc), 'x.yaml', { hostname: 'h' });
}

const service = (s: Record<string, unknown>) => ({
  service: { agent: 'shell', toActive: [hook], toStandby: [hook], check: [hook], ...s },
});

describe('preflight', () => {
  it('finds nothing wrong when every file and program is there', async () => {
    expect(await preflight(config(), { path: PATH })).toEqual([]);
  });

  it('reports a missing or malformed zookeeper.auth.credentialsFile without showing its content', async () => {
    const missing = join(dir, 'none.secret');
    expect(
      await preflight(config({ zookeeper: { connect: 'zk1:2181', auth: { credentialsFile: missing } } }), {
        path: PATH,
      }),
    ).toEqual([
      `zookeeper.auth.credentialsFile: "${missing}" does not exist; it must hold "user:password" on its first line`,
    ]);
    const bad = file('bad.secret', 'justapassword\n');
    expect(
      await preflight(config({ zookeeper: { connect: 'zk1:2181', auth: { credentialsFile: bad } } }), {
        path: PATH,
      }),
    ).toEqual([
      `zookeeper.auth.credentialsFile: "${bad}" must hold "user:password" on its first line (got 13 characters without that form)`,
    ]);
    expect(
      await preflight(config({ zookeeper: { connect: 'zk1:2181', auth: { credentialsFile: dir } } }), {
        path: PATH,
      }),
    ).toEqual([
      `zookeeper.auth.credentialsFile: "${dir}" is a directory, not a file; it must hold "user:password" on its first line`,
    ]);
  });

  it('reports a missing or empty control.tokenFile', async () => {
    const missing = join(dir, 'none.token');
    expect(await preflight(config({ control: { tokenFile: missing } }), { path: PATH })).toEqual([
      `control.tokenFile: "${missing}" does not exist; it must hold the bearer token`,
    ]);
    const empty = file('empty.token', '\n');
    expect(await preflight(config({ control: { tokenFile: empty } }), { path: PATH })).toEqual([
      `control.tokenFile: "${empty}" is empty; it must hold the bearer token`,
    ]);
  });

  it('reports hook programs that are missing, not executable, directories or not on PATH', async () => {
    const missing = join(dir, 'no-such-hook');
    const cfg = config(
      service({
        toActive: [missing, 'promote'],
        toStandby: [notExecutable],
        state: [dir],
        check: ['app-ctl-typo', 'check'],
      }),
    );
    expect(await preflight(cfg, { path: PATH })).toEqual([
      `service.toActive: program "${missing}" does not exist (argv[0] of ["${missing}","promote"])`,
      `service.toStandby: program "${notExecutable}" is not executable by this user (uid ${process.getuid?.()}) (argv[0] of ["${notExecutable}"])`,
      `service.state: program "${dir}" is a directory, not a file (argv[0] of ["${dir}"])`,
      `service.check: program "app-ctl-typo" is not found on PATH "${PATH}" (argv[0] of ["app-ctl-typo","check"]); give its absolute path or install it`,
    ]);
  });

  it('checks the first word of a string command when it is a plain path or name', async () => {
    const cfg = config(
      service({
        toActive: '/opt/none/promote --now',
        toStandby: 'app-ctl-typo demote',
        state: 'exec app-ctl-typo role',
        check: 'FOO=1 "$HOME/check"',
      }),
    );
    expect(await preflight(cfg, { path: PATH })).toEqual([
      'service.toActive: program "/opt/none/promote" does not exist (first word of "/opt/none/promote --now")',
      `service.toStandby: program "app-ctl-typo" is not found on PATH "${PATH}" (first word of "app-ctl-typo demote"); give its absolute path or install it`,
    ]);
  });

  it('checks health.check commands, fencing commands, ssh and its identity file', async () => {
    const cfg = config({
      health: { check: { command: ['no-such-probe'] } },
      fencing: { methods: [{ shell: 'relative/fence.sh' }, { ssh: { identityFile: join(dir, 'id_none') } }] },
    });
    expect(await preflight(cfg, { path: binDir })).toEqual([
      `health.check.command: program "no-such-probe" is not found on PATH "${binDir}" (argv[0] of ["no-such-probe"]); give its absolute path or install it`,
      'fencing.methods[0].shell: program "relative/fence.sh" does not exist (first word of "relative/fence.sh"); use an absolute path, the agent runs from "/" under systemd',
      `fencing.methods[1].ssh: program "ssh" is not found on PATH "${binDir}" (ssh fencing runs it); give its absolute path or install it`,
      `fencing.methods[1].ssh.identityFile: "${join(dir, 'id_none')}" does not exist`,
    ]);
  });

  it('escapes control characters in what it reports', async () => {
    const cfg = config(service({ toActive: [join(dir, 'evil\u001b[2J')] }));
    const [problem] = await preflight(cfg, { path: PATH });
    expect(problem).toContain('evil\\u001b[2J');
  });
});

describe('programOf', () => {
  it('is argv[0], or the first word of a simple shell command', () => {
    expect(programOf(['/bin/x', 'y'])).toBe('/bin/x');
    expect(programOf('  pg_ctl promote')).toBe('pg_ctl');
    expect(programOf('/usr/bin/curl -fsS http://x/ >/dev/null')).toBe('/usr/bin/curl');
    expect(programOf('systemctl;echo')).toBe('systemctl');
    for (const skipped of ['exit 0', 'if true; then :; fi', 'A=1 b', '"$X" y', '$(x)', '~/bin/x', 'x*']) {
      expect(programOf(skipped), skipped).toBeUndefined();
    }
  });
});
