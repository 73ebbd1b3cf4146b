/** The session an agent leaves for its next run (src/zk/session-file.ts), on a real temp dir. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processStart, runtimeDir, SessionFile } from '../../../src/zk/session-file.js';

const ident = { cluster: 'c1', node: 'nn1', connect: '127.0.0.1:2181' };
const dirs: string[] = [];
function dir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-sf-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const PW = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

/** Rewrites the file as if another process (pid) had written it. */
function writtenBy(f: SessionFile, pid: number, pidStart: string | null): void {
  const rec = JSON.parse(fs.readFileSync(f.file, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(f.file, JSON.stringify({ ...rec, pid, pidStart }), { mode: 0o600 });
}

async function deadPid(): Promise<number> {
  const p = spawn('true');
  await new Promise((r) => p.on('exit', r));
  return p.pid!;
}

describe('SessionFile', () => {
  it('saves 0600 and a later run (the writer dead) resumes it once; the claim removes the file', async () => {
    const f = new SessionFile(dir(), ident);
    expect(f.save('0100000000000abc', PW)).toBeNull();
    expect(fs.statSync(f.file).mode & 0o777).toBe(0o600);
    writtenBy(f, await deadPid(), '1');
    const got = f.load();
    expect(got.why).toBe('resumable');
    expect(got.resume?.sessionId).toBe('0100000000000abc');
    expect(got.resume?.password.equals(PW)).toBe(true);
    // Claimed: a second process started at the same time finds nothing to resume.
    expect(f.load().resume).toBeNull();
    expect(fs.readdirSync(path.dirname(f.file))).toEqual([]);
  });

  it('refuses while the writer still runs, and leaves the file to it', async () => {
    const f = new SessionFile(dir(), ident);
    f.save('0100000000000abc', PW);
    const child = spawn('sleep', ['30']);
    try {
      await new Promise((r) => child.on('spawn', r));
      writtenBy(f, child.pid!, processStart(child.pid!));
      const got = f.load();
      expect(got.resume).toBeNull();
      expect(got.why).toBe(`the agent that wrote it (pid ${child.pid}) is still running`);
      expect(fs.existsSync(f.file)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a reused pid (another start time) does not count as the writer', async () => {
    const f = new SessionFile(dir(), ident);
    f.save('0100000000000abc', PW);
    writtenBy(f, 1, 'not-init-s-start-time');
    expect(f.load().why).toBe('resumable');
  });

  it('refuses a file readable by others, another cluster/node/ensemble, and garbage', async () => {
    const d = dir();
    const f = new SessionFile(d, ident);
    f.save('0100000000000abc', PW);
    writtenBy(f, await deadPid(), null);
    fs.chmodSync(f.file, 0o644);
    expect(f.load().why).toMatch(/is readable by others \(mode 644\)$/);
    fs.chmodSync(f.file, 0o600);
    // Another ensemble (a changed zookeeper.connect) cannot resume it: refused, and used up.
    expect(new SessionFile(d, { ...ident, connect: 'zk9:2181' }).load().why).toBe(
      'the session file is for another cluster, node or ZooKeeper ensemble',
    );
    expect(f.load().why).toBe('no session file');
    fs.writeFileSync(f.file, '{"formatVersion":1,"sessionId":"xyz"}', { mode: 0o600 });
    expect(f.load().why).toMatch(/is not a session file of this hafc$/);
  });

  it('forget removes the file only while it names that session', () => {
    const f = new SessionFile(dir(), ident);
    f.save('0100000000000abc', PW);
    f.forget('0100000000000def');
    expect(fs.existsSync(f.file)).toBe(true);
    f.forget('0100000000000abc');
    expect(fs.existsSync(f.file)).toBe(false);
  });

  it('runtimeDir: HAFC_RUNTIME_DIR, else the first of RUNTIME_DIRECTORY, else off', () => {
    expect(runtimeDir({ HAFC_RUNTIME_DIR: '/a', RUNTIME_DIRECTORY: '/b' })).toBe('/a');
    expect(runtimeDir({ RUNTIME_DIRECTORY: '/run/hafc:/run/other' })).toBe('/run/hafc');
    expect(runtimeDir({})).toBeNull();
  });
});
