import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clearZombieLocks, postmasterGone } from '../../../agents/pg/postmaster.js';
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

/**
 * A real zombie: the inner shell waits until its parent has exec'd the long sleep (a shell could
 * still reap it before that), names itself (its comm, as a postmaster's is `postgres`) and exits;
 * the sleep never reaps it.
 */
async function zombie(name = 'postgres'): Promise<number> {
  const inner = `while [ "$(cat /proc/$PPID/comm)" != sleep ]; do sleep 0.01; done; printf %s ${name} > /proc/self/comm`;
  const sh = spawn('sh', ['-c', 'sh -c "$0" & echo $!; exec sleep 30', inner], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  kids.push(sh);
  const pid = await new Promise<number>((resolve) =>
    sh.stdout!.once('data', (b: Buffer) => resolve(Number(String(b).trim()))),
  );
  await waitFor(
    `pid ${pid} to be a zombie named ${name}`,
    () => fs.readFileSync(`/proc/${pid}/stat`, 'latin1').startsWith(`${pid} (${name}) Z `),
    { timeoutMs: 5000 },
  );
  return pid;
}

describe('postmasterGone', () => {
  it('is true for a pid that is a zombie (exited, its parent never reaps it)', async () => {
    expect(postmasterGone(dataDir(String(await zombie())))).toBe(true);
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

describe('clearZombieLocks', () => {
  const SHM_HEAD =
    '       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n';
  const shmRow = (shmid: number, nattch: number): string =>
    `  10011263 ${String(shmid).padStart(10)}   600                    56 14693 14694 ${String(nattch).padStart(6)}   101   104   101   104 1796173578 1796173578 1796173566                  4096                     0\n`;

  /** A data directory and socket directory laid out as PostgreSQL 15 leaves them. */
  function cluster(pid: number, opts: { shmLine?: string; socketPid?: number; shm: string | null }) {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-zlocks-'));
    dirs.push(d);
    const data = path.join(d, 'data');
    fs.mkdirSync(data);
    const lines = [
      String(pid),
      data,
      '1700000000',
      '5433',
      d,
      '127.0.0.1',
      opts.shmLine ?? '  5433001    589825',
      'ready   ',
    ];
    fs.writeFileSync(path.join(data, 'postmaster.pid'), lines.join('\n') + '\n');
    const socketLock = path.join(d, '.s.PGSQL.5433.lock');
    fs.writeFileSync(socketLock, `${opts.socketPid ?? pid}\n${data}\n1700000000\n5433\n${d}\n`);
    const shmTable = path.join(d, 'shm');
    if (opts.shm !== null) fs.writeFileSync(shmTable, opts.shm);
    return { data, socketLock, pidFile: path.join(data, 'postmaster.pid'), shmTable };
  }

  it("removes a zombie's postmaster.pid and socket lock when no process is attached to its segment", async () => {
    const c = cluster(await zombie(), { shm: SHM_HEAD + shmRow(589825, 0) + shmRow(42, 3) });
    expect(clearZombieLocks(c.data, c.shmTable)).toEqual({ removed: [c.socketLock, c.pidFile] });
    expect(fs.existsSync(c.pidFile)).toBe(false);
    expect(fs.existsSync(c.socketLock)).toBe(false);
  });

  it('removes them when the segment is gone, and leaves a socket lock another pid holds', async () => {
    const c = cluster(await zombie(), { shm: SHM_HEAD + shmRow(42, 3), socketPid: process.pid });
    expect(clearZombieLocks(c.data, c.shmTable)).toEqual({ removed: [c.pidFile] });
    expect(fs.existsSync(c.socketLock)).toBe(true);
  });

  it('keeps everything while a process (an orphaned backend) is still attached to the segment', async () => {
    const pid = await zombie();
    const c = cluster(pid, { shm: SHM_HEAD + shmRow(589825, 2) });
    expect(clearZombieLocks(c.data, c.shmTable)).toEqual({
      removed: [],
      kept: `2 process(es) still attached to shared memory segment 589825 of postmaster ${pid}`,
    });
    expect(fs.existsSync(c.pidFile)).toBe(true);
    expect(fs.existsSync(c.socketLock)).toBe(true);
  });

  it('keeps everything when the zombie under that pid is not a postgres (a reused pid)', async () => {
    const pid = await zombie('sleep');
    const c = cluster(pid, { shm: SHM_HEAD });
    expect(clearZombieLocks(c.data, c.shmTable)).toEqual({
      removed: [],
      kept: `pid ${pid} is a zombie "sleep", not a postgres`,
    });
    expect(fs.existsSync(c.pidFile)).toBe(true);
  });

  it('keeps everything when the segment cannot be checked', async () => {
    const pid = await zombie();
    const unreadable = cluster(pid, { shm: null });
    expect(clearZombieLocks(unreadable.data, unreadable.shmTable).kept).toMatch(/cannot be read/);
    const noSegment = cluster(pid, { shm: SHM_HEAD, shmLine: '' });
    expect(clearZombieLocks(noSegment.data, noSegment.shmTable).kept).toMatch(
      /names no shared memory segment/,
    );
    const badTable = cluster(pid, { shm: 'garbage\n1 2 3\n' });
    expect(clearZombieLocks(badTable.data, badTable.shmTable).kept).toMatch(/cannot be read/);
    for (const c of [unreadable, noSegment, badTable]) expect(fs.existsSync(c.pidFile)).toBe(true);
  });

  it('leaves a live postmaster, a pid with no process (PostgreSQL clears that itself) and a missing file alone', async () => {
    const live = cluster(process.pid, { shm: SHM_HEAD });
    expect(clearZombieLocks(live.data, live.shmTable)).toEqual({ removed: [] });
    expect(fs.existsSync(live.pidFile)).toBe(true);
    const sh = spawn('true');
    await new Promise((r) => sh.on('exit', r));
    const gone = cluster(sh.pid!, { shm: SHM_HEAD });
    expect(clearZombieLocks(gone.data, gone.shmTable)).toEqual({ removed: [] });
    expect(fs.existsSync(gone.pidFile)).toBe(true);
    expect(clearZombieLocks(path.join(live.data, 'nowhere'), live.shmTable)).toEqual({ removed: [] });
  });
});
