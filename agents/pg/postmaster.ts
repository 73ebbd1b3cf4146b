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
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'latin1');
  } catch {
    return false;
  }
  const pid = parsePid(text.split('\n', 1)[0] ?? '');
  if (pid === undefined) return false;
  return !procState(pid).alive;
}
