/**
 * Whom to fence before promoting (CONTRACT: fence before promote), as a pure decision.
 *
 * The breadcrumb names the last activation: it is fenced unless it stood down cleanly (`demoted`)
 * or is provably ours - the same id, host and port AND one of our own sessions (a second agent
 * with our id elsewhere is not us). A missing breadcrumb means someone removed it: then the last
 * holder this agent saw is fenced, since it may have become active after its breadcrumb vanished.
 * An unreadable breadcrumb leaves nobody to name: no promotion.
 */
import type { Logger } from '../log.js';
import type { FenceTarget } from '../service/agent.js';
import type { BreadcrumbRecord, NodeIdentity } from './records.js';
import type { BreadcrumbView } from './store.js';

/** The previous holder of the lock as this agent saw it (a candidate for fencing). */
export interface SeenHolder {
  owner: string;
  epoch: bigint;
  identity?: { id: string; host: string; port: number };
}

export interface FencePlanInput {
  breadcrumb: BreadcrumbView;
  node: NodeIdentity;
  /** The session we compete with now. */
  sessionId: string;
  /** Sessions this agent had before (and gave up). */
  pastSessions: ReadonlySet<string>;
  seenHolder: SeenHolder | null;
  log: Logger;
}

export function fencePlan(i: FencePlanInput): { targets: FenceTarget[] } | { error: string } {
  const bc = i.breadcrumb;
  if (bc && 'error' in bc) return { error: `cannot tell which node to fence: ${bc.error}` };
  const targets: FenceTarget[] = [];
  if (bc) {
    const r = bc.record;
    if (!r.demoted && !isProvablyOurs(r, i)) {
      targets.push({
        id: r.id,
        host: r.host,
        port: r.port,
        address: `${r.host}:${r.port}`,
        epoch: BigInt(r.epoch),
        ...(r.controlPort !== undefined ? { controlPort: r.controlPort } : {}),
      });
    }
    return { targets };
  }
  const h = i.seenHolder;
  if (h && h.owner !== i.sessionId && !i.pastSessions.has(h.owner)) {
    if (h.identity) {
      i.log.warn(
        'no breadcrumb, but another node held the lock since this agent started: fencing it in case it became active',
        {
          target: h.identity.id,
          epoch: h.epoch.toString(),
        },
      );
      targets.push({ ...h.identity, address: `${h.identity.host}:${h.identity.port}`, epoch: h.epoch });
    } else {
      i.log.warn('no breadcrumb, and the last lock holder left no readable record: nothing to fence it by', {
        owner: h.owner,
      });
    }
  }
  return { targets };
}

function isProvablyOurs(r: BreadcrumbRecord, i: FencePlanInput): boolean {
  const n = i.node;
  if (r.id !== n.id || r.host !== n.host || r.port !== n.port || r.session === undefined) return false;
  return r.session === i.sessionId || i.pastSessions.has(r.session);
}
