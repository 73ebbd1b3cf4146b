import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { postmasterGone } from '../../../agents/pg/postmaster.js';
import { waitFor } from '../../../harness/wait.js';

const dirs: string[] = [];
const kids: ChildProcess[] = [];

function dataDir(pidLine: string | null): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-pmgone-'));
  dirs.push(d);
  if (pidLine !== null)
    fs.writeFileSync(path.join(d, 'postmaster.pid'), `${pidLine}\n/var/lib/pg\n1700000000\n5432\n`);
  return d;
}

afterEach(() => {
  for (const k of kids.splice(0)) k.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('postmasterGone', () => {
  it('is true for a pid that is a zombie (exited, its parent never reaps it)', async () => {
    // The inner sleep exits at once; its parent then execs a long sleep that never waits for it.
    const sh = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    kids.push(sh);
    const pid = await new Promise<number>((resolve) =>
      sh.stdout!.once('data', (b: Buffer) => resolve(Number(String(b).trim()))),
    );
    await waitFor(
      `pid ${pid} to be a zombie`,
      () => /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'latin1')),
      {
        timeoutMs: 5000,
      },
    );
    expect(postmasterGone(dataDir(String(pid)))).toBe(true);
  });

  it('is true for a pid no process has', () => {
    const sh = spawn('true');
    return new Promise<void>((resolve) =>
      sh.on('exit', () => {
        expect(postmasterGone(dataDir(String(sh.pid)))).toBe(true);
        resolve();
      }),
    );
  });

  it('is false for a live process, a missing file and a garbage pid (pg_ctl decides then)', () => {
    expect(postmasterGone(dataDir(String(process.pid)))).toBe(false);
    expect(postmasterGone(dataDir(null))).toBe(false);
    expect(postmasterGone(dataDir('not-a-pid'))).toBe(false);
    expect(postmasterGone(dataDir('0'))).toBe(false);
  });
});
