/**
 * Maintenance mode through the control znode. While paused, agents keep monitoring and reporting
 * but take no automatic action (no promotion, no demotion on health, no fencing, no reconcile).
 * An active whose ZooKeeper lease runs out still demotes: after a resume a peer could otherwise
 * be promoted beside it.
 */
import type { ElectionStore } from '../election/store.js';
import { emptyControl, updateControl } from './control.js';

export interface PauseResult {
  cluster: string;
  paused: boolean;
  changed: boolean;
  message: string;
}

export async function setPaused(
  store: ElectionStore,
  cluster: string,
  pause: boolean,
  opts: { by: string; reason?: string },
): Promise<PauseResult> {
  const verb = pause ? 'pause' : 'resume';
  let already = 'unchanged';
  const written = await updateControl(verb, store, cluster, (cur) => {
    const base = cur ?? emptyControl(cluster);
    if (pause && base.paused) {
      const p = base.paused;
      already = `already paused by ${p.by} since ${p.at}${p.reason ? ` (${p.reason})` : ''}`;
      return null;
    }
    if (!pause && !base.paused) {
      already = 'not paused';
      return null;
    }
    const next = { ...base };
    if (pause) {
      next.paused = {
        by: opts.by,
        at: new Date().toISOString(),
        ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
      };
    } else delete next.paused;
    return next;
  });
  if (written) {
    // The history is a record, not the switch: losing the entry must not fail the action.
    await store
      .appendHistory({
        at: new Date().toISOString(),
        event: pause ? 'paused' : 'resumed',
        cause: pause ? 'operator paused the cluster' : 'operator resumed the cluster',
        by: opts.by,
        ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
      })
      .catch(() => undefined);
  }
  const message = written
    ? pause
      ? `cluster ${cluster} paused: agents take no automatic action until hafc resume`
      : `cluster ${cluster} resumed: automatic failover is on`
    : `cluster ${cluster}: ${already}`;
  return { cluster, paused: pause, changed: written !== null, message };
}
