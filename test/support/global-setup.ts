/**
 * vitest globalSetup: the check behind "no ZooKeeper JVM survives a test run".
 *
 * Several engineers (and CI) may run tests on the same machine at once and share the registry
 * directory, so only processes provably ours or provably orphaned are touched: an entry belongs to
 * this run by run id or by its spawning node process descending from this one; it is an orphan
 * when its spawning node process is gone.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  entryAlive,
  killEntry,
  pidAlive,
  readRegistry,
  unregister,
  type RegistryEntry,
} from '../../harness/zk-ensemble.js';

function parentPid(pid: number): number | undefined {
  try {
    // The comm field may contain spaces and parentheses; ppid is the 2nd field after the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; hops++) {
    if (p === ancestor) return true;
    p = parentPid(p);
  }
  return false;
}

function describeEntry(e: RegistryEntry): string {
  return `pid ${e.pid} (spawned by node pid ${e.ownerPid} at ${e.startedAt}): ${e.cmd}`;
}

export default function setup(): () => void {
  const runId = `${process.pid}-${Date.now()}`;
  // Inherited by the test workers spawned after this, so their registry entries carry it.
  process.env.HAFC_TEST_RUN_ID = runId;

  for (const entry of readRegistry()) {
    if (!entryAlive(entry)) {
      unregister(entry.pid);
    } else if (!pidAlive(entry.ownerPid)) {
      console.warn(
        `[hafc test setup] killing leftover ZooKeeper from an aborted run: ${describeEntry(entry)}`,
      );
      killEntry(entry);
      unregister(entry.pid);
    }
  }

  // Ensemble and PostgreSQL temp dirs are named hafc-zk-<spawning pid>-... and hafc-pg-<pid>-...;
  // a killed run never deleted its own.
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = /^hafc-(?:zk|pg)-(\d+)-/.exec(name);
    if (m && !pidAlive(Number(m[1])) && process.env.HAFC_KEEP_ZK_DIRS !== '1') {
      fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    }
  }

  return function teardown(): void {
    const survivors: RegistryEntry[] = [];
    for (const entry of readRegistry()) {
      const ours =
        entry.runId === runId || !pidAlive(entry.ownerPid) || descendsFrom(entry.ownerPid, process.pid);
      if (!ours) continue;
      if (killEntry(entry)) survivors.push(entry);
      unregister(entry.pid);
    }
    if (survivors.length > 0) {
      throw new Error(
        `${survivors.length} ZooKeeper process(es) outlived the test run (now killed); a test or ` +
          `harness path does not stop its ensemble:\n${survivors.map((e) => '  ' + describeEntry(e)).join('\n')}`,
      );
    }
  };
}
