/** Read-modify-write of the control znode for operator actions (compare-and-set, retried). */
import { FORMAT_VERSION, type ControlRecord } from '../election/records.js';
import type { ElectionStore } from '../election/store.js';
import { OpsError } from './errors.js';

export async function readControlOrFail(
  verb: string,
  store: ElectionStore,
): Promise<{ record: ControlRecord | null; version: number | null }> {
  const v = await store.readControl();
  if ('error' in v) {
    throw new OpsError(
      'failed',
      `${verb}: the control znode is unreadable (${v.error}); the agents ignore it. Fix or delete it ` +
        '(zkCli.sh) and try again',
    );
  }
  return v;
}

/**
 * Applies `change` to the current control record and writes it back with compare-and-set.
 * `change` returns null to write nothing. Retries when another writer got there first.
 */
export async function updateControl(
  verb: string,
  store: ElectionStore,
  cluster: string,
  change: (current: ControlRecord | null) => ControlRecord | null,
): Promise<ControlRecord | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const cur = await readControlOrFail(verb, store);
    const next = change(cur.record);
    if (next === null) return null;
    const rec: ControlRecord = {
      ...next,
      formatVersion: FORMAT_VERSION,
      kind: 'control',
      cluster,
      updatedAt: new Date().toISOString(),
    };
    if (await store.writeControl(rec, cur.version)) return rec;
  }
  throw new OpsError('failed', `${verb}: the control znode kept changing under us; try again`);
}

export function emptyControl(cluster: string): ControlRecord {
  return { formatVersion: FORMAT_VERSION, kind: 'control', cluster, updatedAt: new Date().toISOString() };
}
