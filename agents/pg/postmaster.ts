/**
 * Whether the postmaster a data directory's postmaster.pid names has provably exited: no such
 * process, or a zombie. pg_ctl counts a zombie as running (kill(pid, 0) succeeds on it), and a
 * postmaster that was daemonized by pg_ctl is reaped by PID 1; in a container whose PID 1 does
 * not reap (no init), a crashed postmaster stays a zombie, and every stop of it waited out both
 * pg_ctl stop deadlines (~0.8 s of a failover, measured) for a server that was already gone.
 * Only a definite "gone" is returned; anything unclear (no file, a garbage pid, a live process)
 * leaves the answer to pg_ctl.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parsePid, procState } from '../../src/health/pid-watch.js';

export function postmasterGone(dataDir: string): boolean {
  const text = readLock(path.join(dataDir, 'postmaster.pid'));
  if (text === null) return false;
  const pid = parsePid(text.split('\n', 1)[0] ?? '');
  if (pid === undefined) return false;
  return !procState(pid).alive;
}

export interface ZombieLocks {
  /** The lock files removed (none when there was nothing to do, or it was not safe). */
  removed: string[];
  /** Why a zombie's lock files were left in place. */
  kept?: string;
}

/**
 * Removes the lock files a ZOMBIE postmaster left: its data directory's postmaster.pid and its
 * socket's .s.PGSQL.<port>.lock. PostgreSQL clears a lock whose pid has no process by itself,
 * but a zombie passes its kill(pid, 0) test, so every postgres started on the directory (pg_ctl
 * start, pg_rewind's single-user crash recovery) refuses with "lock file already exists" until
 * something reaps the zombie, which in a container without an init is never (measured: a rejoin
 * after a crash failed twice and re-cloned twice, ~1.2 s of commits blocked on the new primary).
 *
 * postmaster.pid is also how PostgreSQL finds backends of a dead postmaster still attached to its
 * shared memory (they may still write the directory); removing the file removes that check, so
 * it is done here first: the shared memory segment the file names must be gone or have no
 * process attached. Anything unclear (no zombie, no segment line, no /proc/sysvipc/shm) leaves
 * the files to PostgreSQL.
 */
export function clearZombieLocks(dataDir: string, shmTable = '/proc/sysvipc/shm'): ZombieLocks {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const text = readLock(pidFile);
  if (text === null) return { removed: [] };
  const lines = text.split('\n');
  const pid = parsePid(lines[0] ?? '');
  if (pid === undefined) return { removed: [] };
  const st = procState(pid);
  if (st.alive || !st.zombie) return { removed: [] };
  // A zombie under that pid that is not a postgres is not the postmaster that wrote the file (a
  // pid reused, or a pid from another namespace): nothing is known about the postmaster then.
  if (st.comm !== 'postgres' && st.comm !== 'postmaster') {
    return { removed: [], kept: `pid ${pid} is a zombie ${JSON.stringify(st.comm)}, not a postgres` };
  }
  const shm = /^\s*(\d+)\s+(\d+)\s*$/.exec(lines[6] ?? '');
  if (!shm)
    return {
      removed: [],
      kept: `postmaster.pid names no shared memory segment: ${JSON.stringify(lines[6] ?? '')}`,
    };
  const attached = attachedCount(shmTable, Number(shm[2]));
  if (attached === null) return { removed: [], kept: `${shmTable} cannot be read or parsed` };
  if (attached > 0) {
    return {
      removed: [],
      kept: `${attached} process(es) still attached to shared memory segment ${shm[2]} of postmaster ${pid}`,
    };
  }
  const removed: string[] = [];
  const socketDir = lines[4]?.trim() ?? '';
  const port = lines[3]?.trim() ?? '';
  if (socketDir.startsWith('/') && /^[0-9]{1,5}$/.test(port)) {
    const socketLock = path.join(socketDir, `.s.PGSQL.${port}.lock`);
    const owner = readLock(socketLock);
    if (owner !== null && parsePid(owner.split('\n', 1)[0] ?? '') === pid) {
      fs.rmSync(socketLock, { force: true });
      removed.push(socketLock);
    }
  }
  fs.rmSync(pidFile, { force: true });
  removed.push(pidFile);
  return { removed };
}

function readLock(file: string): string | null {
  try {
    // A lock file is a few hundred bytes; anything larger is not one of PostgreSQL's.
    const text = fs.readFileSync(file, 'latin1');
    return text.length > 4096 ? null : text;
  } catch {
    return null;
  }
}

/** nattch of the SysV segment `shmid`; 0 when it is gone; null when the table cannot be read. */
function attachedCount(shmTable: string, shmid: number): number | null {
  let table: string;
  try {
    table = fs.readFileSync(shmTable, 'latin1');
  } catch {
    return null;
  }
  const rows = table.split('\n');
  const head = (rows[0] ?? '').trim().split(/\s+/);
  const idCol = head.indexOf('shmid');
  const nCol = head.indexOf('nattch');
  if (idCol < 0 || nCol < 0) return null;
  for (const row of rows.slice(1)) {
    const f = row.trim().split(/\s+/);
    if (Number(f[idCol]) === shmid) {
      const n = Number(f[nCol]);
      return Number.isInteger(n) ? n : null;
    }
  }
  return 0;
}
