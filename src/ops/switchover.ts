/**
 * A graceful switchover asked for by an operator (`hafc failover`, `POST /switchover`): check who
 * can take over and why not, write the request into the control znode, and optionally wait for
 * its outcome. The agents carry it out (election/switchover.ts): the active demotes while it
 * holds the lock, marks its breadcrumb demoted and lets go; the target takes the lock unfenced.
 */
import { randomBytes } from 'node:crypto';
import type { ControlRecord, SwitchoverOutcome, SwitchoverRequest } from '../election/records.js';
import type { ElectionStore } from '../election/store.js';
import { expired, pickTarget, switchoverCandidates, type CandidateVerdict } from '../election/switchover.js';
import { emptyControl, readControlOrFail, updateControl } from './control.js';
import { OpsError } from './errors.js';

export interface SwitchoverPlan {
  cluster: string;
  from: string;
  /** The active's epoch (the lock's czxid), as a decimal string. */
  epoch: string;
  to: string | null;
  candidates: CandidateVerdict[];
  /** Why there is no target (to === null), one line. */
  problem?: string;
}

/** Candidate by candidate, for an operator: "b  priority 5  eligible". */
export function explainCandidates(candidates: readonly CandidateVerdict[]): string[] {
  if (candidates.length === 0) return ['  (no other live member: start another agent first)'];
  return candidates.map(
    (c) =>
      `  ${c.id}  priority ${c.priority}  ${c.eligible ? 'eligible' : `not eligible: ${c.why.join('; ')}`}`,
  );
}

/** Who would take over, or why nobody can; throws only when there is nothing to switch over. */
export async function planSwitchover(
  store: ElectionStore,
  cluster: string,
  to?: string,
): Promise<SwitchoverPlan> {
  const control = await readControlOrFail('failover', store);
  const holder = await store.lockHolder();
  if (!holder) {
    throw new OpsError(
      'no-eligible-target',
      'failover: no node holds the lock, so there is no active to hand over from (the election will pick one)',
    );
  }
  if (!holder.record) {
    throw new OpsError(
      'failed',
      `failover: the lock's record is unreadable (${holder.recordError ?? 'no data'})`,
    );
  }
  const from = holder.record.id;
  const { members } = await store.listMembers();
  const candidates = switchoverCandidates(members, from);
  const plan: SwitchoverPlan = { cluster, from, epoch: holder.epoch.toString(), to: null, candidates };
  const paused = control.record?.paused;
  const pending = control.record?.switchover;
  if (paused) {
    plan.problem = `the cluster is paused (by ${paused.by} since ${paused.at}${paused.reason ? `: ${paused.reason}` : ''}); hafc resume first`;
  } else if (pending && !expired(pending, Date.now())) {
    plan.problem = `switchover ${pending.id} (${pending.from} -> ${pending.to}, by ${pending.by}) is pending until ${pending.expiresAt}`;
  } else if (to !== undefined) {
    const v = candidates.find((c) => c.id === to);
    if (to === from) plan.problem = `${to} is already the active node`;
    else if (!v)
      plan.problem = `${to} is not a live member of cluster ${cluster} (its agent is not connected)`;
    else if (!v.eligible) plan.problem = `${to} is not eligible: ${v.why.join('; ')}`;
    else plan.to = to;
  } else {
    const t = pickTarget(candidates);
    if (t) plan.to = t.id;
    else plan.problem = 'no member is eligible to take over';
  }
  return plan;
}

export interface RequestOptions {
  by: string;
  reason?: string;
  timeoutMs: number;
}

/** Writes the request; throws OpsError when the plan has no target or another request won. */
export async function requestSwitchover(
  store: ElectionStore,
  plan: SwitchoverPlan,
  opts: RequestOptions,
): Promise<SwitchoverRequest> {
  if (plan.to === null) throw new OpsError('no-eligible-target', `failover: ${plan.problem ?? 'no target'}`);
  const now = Date.now();
  const req: SwitchoverRequest = {
    id: randomBytes(6).toString('hex'),
    from: plan.from,
    to: plan.to,
    by: opts.by,
    requestedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + opts.timeoutMs).toISOString(),
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
  };
  await updateControl('failover', store, plan.cluster, (cur) => {
    const base = cur ?? emptyControl(plan.cluster);
    if (base.paused) throw new OpsError('no-eligible-target', 'failover: the cluster was paused meanwhile');
    const p = base.switchover;
    if (p && !expired(p, Date.now()))
      throw new OpsError(
        'failed',
        `failover: switchover ${p.id} (${p.from} -> ${p.to}) was requested meanwhile`,
      );
    return { ...base, switchover: req };
  });
  await store
    .appendHistory({
      at: req.requestedAt,
      event: 'switchover-requested',
      from: req.from,
      to: req.to,
      cause: 'operator asked for a switchover',
      epoch: plan.epoch,
      switchover: req.id,
      by: req.by,
      ...(req.reason !== undefined ? { reason: req.reason } : {}),
    })
    .catch(() => undefined);
  return req;
}

/**
 * Waits for the outcome of `req` (watching the control znode, re-reading at least every 250 ms),
 * until its expiry. An expired request still pending is withdrawn, so nobody acts on it late.
 */
export async function awaitSwitchover(
  store: ElectionStore,
  cluster: string,
  req: SwitchoverRequest,
): Promise<SwitchoverOutcome> {
  const deadline = Date.parse(req.expiresAt);
  // One watch at a time (every watch set stays registered until it fires).
  let armed = false;
  let wake: () => void = () => {};
  for (;;) {
    const changed = new Promise<void>((r) => (wake = r));
    const v = await store.readControl(
      armed
        ? undefined
        : () => {
            armed = false;
            wake();
          },
    );
    armed = true;
    const rec: ControlRecord | null = 'record' in v ? v.record : null;
    if (rec?.lastSwitchover?.id === req.id) return rec.lastSwitchover;
    if (rec?.switchover?.id !== req.id && rec !== null) {
      return {
        id: req.id,
        outcome: 'refused',
        detail: 'the request was withdrawn or replaced by someone else',
        from: req.from,
        to: req.to,
        at: new Date().toISOString(),
      };
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([changed, new Promise<void>((r) => (timer = setTimeout(r, Math.min(250, left))))]);
    clearTimeout(timer);
  }
  const outcome: SwitchoverOutcome = {
    id: req.id,
    outcome: 'expired',
    detail: `not carried out by ${req.expiresAt}`,
    from: req.from,
    to: req.to,
    at: new Date().toISOString(),
  };
  await updateControl('failover', store, cluster, (cur) => {
    if (!cur || cur.switchover?.id !== req.id) return null;
    const next: ControlRecord = { ...cur, lastSwitchover: outcome };
    delete next.switchover;
    return next;
  }).catch(() => undefined);
  return outcome;
}
