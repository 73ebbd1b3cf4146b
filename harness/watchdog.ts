/**
 * A net under every process a test (or the benchmark/demo) spawns: a tiny shell that only reads
 * its stdin. EOF means the process holding the other end - us - is gone, even by SIGKILL, and the
 * watchdog then kills `pid`, after checking that `pid` still runs a command line containing
 * `marker`, so a recycled pid is never hit. End it early with `wd.stdin.end()` after a clean exit
 * (it then finds no matching process and just exits).
 */
import { spawn, type ChildProcess } from 'node:child_process';

export function startWatchdog(pid: number, marker: string, name: string): ChildProcess | undefined {
  const script =
    'read -r _ignored; ' +
    'if tr "\\0" " " < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; then kill -9 "$1"; fi';
  try {
    const wd = spawn('/bin/sh', ['-c', script, name, String(pid), marker], {
      stdio: ['pipe', 'ignore', 'ignore'],
      // Own process group: a Ctrl-C aimed at the test run must not kill the watchdog first.
      detached: true,
    });
    wd.on('error', () => {});
    wd.stdin?.on('error', () => {});
    // Neither the watchdog nor its pipe may keep this process alive.
    wd.unref();
    (wd.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return wd;
  } catch {
    return undefined;
  }
}
