/**
 * Installation as an operator does it: `npm pack`, then `npm install -g` of the tarball into a
 * temporary prefix, then the installed `hafc` run for real. The tarball must carry
 * node-zookeeper-client WITH hafc's patch (bundled: no install script has to run), no dev
 * dependencies, and a unit that passes `systemd-analyze verify` against the installed binary.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../harness/demo-service-proc.js';
import { VERSION } from '../../src/version.js';

const run = promisify(execFile);
const ROOT = repoRoot();

/** Runs a command; resolves with its exit code and output (never rejects on a non-zero exit). */
async function sh(cmd: string, args: string[], opts: { cwd?: string; timeout?: number } = {}) {
  try {
    const r = await run(cmd, args, { cwd: opts.cwd, timeout: opts.timeout ?? 120_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? e.message,
    };
  }
}

const CONFIG = () =>
  [
    'cluster: inst',
    'node: { id: a, host: 127.0.0.1, port: 1 }',
    // Never reached: the tests stop before any connection.
    'zookeeper: { connect: "127.0.0.1:1", sessionTimeoutMs: 10000 }',
    'health: { check: { command: ["/bin/true"] } }',
    'service: { agent: shell, toActive: ["/bin/true"], toStandby: ["/bin/true"] }',
    'fencing: { methods: [ { shell: "true" } ] }',
    'log: { format: json }',
  ].join('\n');

describe('npm pack | npm install -g', () => {
  let dir: string;
  let prefix: string;
  let pkgDir: string;
  let hafc: string;
  let config: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-install-'));
    prefix = path.join(dir, 'prefix');
    const pack = await sh('npm', ['pack', '--pack-destination', dir], { cwd: ROOT, timeout: 180_000 });
    expect(pack.code, pack.stderr).toBe(0);
    const tarball = path.join(dir, pack.stdout.trim().split('\n').at(-1)!);
    expect(fs.existsSync(tarball), `npm pack said ${pack.stdout}`).toBe(true);
    // The local cache when it has everything, the registry otherwise (CI).
    const install = await sh(
      'npm',
      ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
      { cwd: dir, timeout: 180_000 },
    );
    expect(install.code, install.stderr).toBe(0);
    pkgDir = path.join(prefix, 'lib/node_modules/hafc');
    hafc = path.join(prefix, 'bin/hafc');
    config = path.join(dir, 'a.yaml');
    fs.writeFileSync(config, CONFIG());
  }, 400_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('puts a working hafc on the PATH of the prefix', async () => {
    const v = await sh(hafc, ['--version']);
    expect(v).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const check = await sh(hafc, ['check-config', config]);
    expect(check.code, check.stderr + check.stdout).toBe(0);
  });

  it('with the patched node-zookeeper-client and no dev dependencies', () => {
    const lib = path.join(pkgDir, 'node_modules/node-zookeeper-client/lib/ConnectionManager.js');
    expect(fs.readFileSync(lib, 'utf8')).toContain('hafc patch');
    const installed = fs.readdirSync(path.join(pkgDir, 'node_modules'));
    expect(installed).toContain('commander');
    for (const dev of ['vitest', 'typescript', 'patch-package', 'eslint', 'prettier', '@types'])
      expect(installed).not.toContain(dev);
    // Nothing is left for an install script to do (npm may refuse to run them at all).
    const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    for (const s of ['preinstall', 'install', 'postinstall']) expect(manifest.scripts[s]).toBeUndefined();
  });

  it('the shipped unit passes systemd-analyze verify against the installed binary', async () => {
    const unitDir = path.join(dir, 'units');
    fs.mkdirSync(unitDir);
    const unit = fs
      .readFileSync(path.join(pkgDir, 'systemd/hafc@.service'), 'utf8')
      .replace(/^ExecStart=hafc /m, `ExecStart=${hafc} `);
    expect(unit).toContain(`ExecStart=${hafc} agent -c /etc/hafc/%i.yaml`);
    fs.writeFileSync(path.join(unitDir, 'hafc@.service'), unit);
    const ok = await sh('systemd-analyze', ['verify', path.join(unitDir, 'hafc@.service')], { cwd: unitDir });
    expect(ok, 'systemd-analyze verify').toEqual({ code: 0, stdout: '', stderr: '' });
    // The verify is real: the same unit naming a binary that is not there fails it.
    fs.writeFileSync(path.join(unitDir, 'hafc@.service'), unit.replace(hafc, path.join(dir, 'nope')));
    const bad = await sh('systemd-analyze', ['verify', path.join(unitDir, 'hafc@.service')], {
      cwd: unitDir,
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/is not executable/);
  });

  it('an install whose node-zookeeper-client lost the patch refuses to run the agent (exit 2), saying why', async () => {
    const patchFile = path.join(pkgDir, 'patches/node-zookeeper-client+1.1.3.patch');
    const unpatch = await sh('patch', ['-R', '-p1', '-d', pkgDir, '-i', patchFile]);
    expect(unpatch.code, unpatch.stderr + unpatch.stdout).toBe(0);
    const agent = await sh(hafc, ['agent', '-c', config], { timeout: 30_000 });
    expect(agent.code).toBe(2);
    expect(agent.stderr).toMatch(/node-zookeeper-client at \S+ is not patched: its crash fixes are missing/);
    expect(agent.stderr).not.toMatch(/hafc agent starting/);
  });
});
