/**
 * The harness's registry of the processes tests start (ZooKeeper and Hadoop JVMs, Redis and
 * PostgreSQL servers): one file per pid in a temp dir, so the global setup can kill what a killed
 * run left behind, and an exit hook that kills this process's children when it goes.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface RegistryEntry {
  pid: number;
  /** The node process that spawned it; an entry whose owner is dead is an orphan. */
  ownerPid: number;
  /** HAFC_TEST_RUN_ID of the vitest run that spawned it, when run under the global setup. */
  runId: string | undefined;
  /** A string unique to this process's command line (its zoo.cfg path): guards against pid reuse. */
  marker: string;
  cmd: string;
  startedAt: string;
}

export function registryDir(): string {
  return path.join(os.tmpdir(), 'hafc-test-procs');
}

function registryFile(pid: number): string {
  return path.join(registryDir(), String(pid));
}

/** Records a process we started (or a daemon we own), so a later run can find and kill it. */
export function register(pid: number, marker: string, cmd: string): void {
  const entry: RegistryEntry = {
    pid,
    ownerPid: process.pid,
    runId: process.env.HAFC_TEST_RUN_ID,
    marker,
    cmd,
    startedAt: new Date().toISOString(),
  };
  fs.mkdirSync(registryDir(), { recursive: true });
  fs.writeFileSync(registryFile(pid), JSON.stringify(entry, null, 2));
}

export function unregister(pid: number): void {
  fs.rmSync(registryFile(pid), { force: true });
}

export function readRegistry(): RegistryEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(registryDir());
  } catch {
    return [];
  }
  const entries: RegistryEntry[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const parsed = JSON.parse(fs.readFileSync(path.join(registryDir(), name), 'utf8')) as RegistryEntry;
      if (typeof parsed.pid === 'number' && typeof parsed.marker === 'string') entries.push(parsed);
    } catch {
      // Half-written (we were killed mid-write) or removed concurrently: nothing it could name.
    }
  }
  return entries;
}

/** Is `pid` alive (not a zombie) and, when `marker` is given, still the process we started? */
export function pidAlive(pid: number, marker?: string): boolean {
  try {
    // A zombie has an empty cmdline; a recycled pid has someone else's.
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.length === 0) return false;
    return marker === undefined || cmdline.includes(marker);
  } catch {
    if (fs.existsSync('/proc/self')) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

export function entryAlive(entry: RegistryEntry): boolean {
  return pidAlive(entry.pid, entry.marker);
}

/** SIGKILL a registered process if it is still the one we started; returns whether it was alive. */
export function killEntry(entry: RegistryEntry): boolean {
  if (!entryAlive(entry)) return false;
  try {
    process.kill(entry.pid, 'SIGKILL');
  } catch {
    // Exited between the check and the kill.
  }
  return true;
}

const liveChildren = new Map<number, ChildProcess>();
let exitHookInstalled = false;

function killAllChildren(): void {
  for (const pid of liveChildren.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function currentPpid(): number | undefined {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllChildren);
  if (typeof process.send === 'function') {
    // A forked vitest worker outlives a SIGKILLed runner (observed: it keeps running tests as an
    // orphan), and its JVMs with it. Losing the IPC channel or the parent means nobody will ever
    // read this worker's results, so its servers go now.
    process.on('disconnect', killAllChildren);
    const parent = currentPpid();
    const timer = setInterval(() => {
      if (currentPpid() !== parent) {
        clearInterval(timer);
        killAllChildren();
      }
    }, 1000);
    timer.unref();
  }
}

/**
 * A child we spawned: registered under `marker` (a string unique to its command line, so a
 * recycled pid never matches), SIGKILLed if this process exits or its test runner goes away,
 * and unregistered when it exits.
 */
export function trackChild(child: ChildProcess, marker: string, cmd: string): void {
  const pid = child.pid;
  if (pid === undefined) return;
  installExitHook();
  liveChildren.set(pid, child);
  register(pid, marker, cmd);
  child.once('exit', () => {
    liveChildren.delete(pid);
    unregister(pid);
  });
}

/** Pids spawned by this process that have not exited yet (according to their 'exit' event). */
export function livePids(): number[] {
  return [...liveChildren.keys()];
}
