/**
 * Graceful switchover and maintenance mode, as pure decisions over what the control znode and the
 * member records say. The elector acts on them; `hafc failover` explains them. Safety never rests
 * on anything here: the old active demotes before it lets the lock go, the new one takes the lock
 * the normal way (a fresh epoch) and fences whatever did not stand down cleanly. Wall-clock times
 * (expiry) only decide liveness: how long others stand aside.
 */
import type { ControlRecord, MemberRecord, SwitchoverRequest } from './records.js';

export interface CandidateVerdict {
  id: string;
  priority: number;
  eligible: boolean;
  /** Why not, one reason each; empty when eligible. */
  why: string[];
}

/** Every live member but the active, with why it can or cannot take over now. */
export function switchoverCandidates(
  members: readonly MemberRecord[],
  activeId: string | null,
): CandidateVerdict[] {
  const out: CandidateVerdict[] = [];
  for (const m of members) {
    if (m.id === activeId) continue;
    const why: string[] = [];
    // The agent's own words when it gave them ("health UNHEALTHY: replica lags ..."), else the state.
    if (m.health !== 'HEALTHY') why.push(`unhealthy (${m.notElectableReason ?? `health ${m.health}`})`);
    if (m.noFailover) why.push('noFailover is set');
    if (m.activationFailed === true) why.push('its last activation failed');
    if (m.role !== 'STANDBY') {
      why.push(
        m.role === 'NEUTRAL'
          ? 'not standing by (NEUTRAL: not electable, or not connected to ZooKeeper)'
          : `not standing by (role ${m.role})`,
      );
    }
    out.push({ id: m.id, priority: m.priority, eligible: why.length === 0, why });
  }
  return out.sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
}

/** The target a switchover without `--to` goes to: the eligible candidate of highest priority. */
export function pickTarget(verdicts: readonly CandidateVerdict[]): CandidateVerdict | null {
  return verdicts.find((v) => v.eligible) ?? null;
}

export function expired(req: SwitchoverRequest, nowWallMs: number): boolean {
  const at = Date.parse(req.expiresAt);
  return Number.isNaN(at) || nowWallMs >= at;
}

/** What a pending switchover asks of this node. */
export type SwitchoverPart =
  | { kind: 'none' }
  /** We are active and named as `from`; the target can take over: demote, mark, release. */
  | { kind: 'hand-over'; req: SwitchoverRequest }
  /** We are active; the request cannot be carried out (target gone, unhealthy, stale...). */
  | { kind: 'refuse'; req: SwitchoverRequest; why: string }
  /** We are active and it was not acted on in time. */
  | { kind: 'expire'; req: SwitchoverRequest }
  /** The lock is free and we are the target: take it now (no back-off, no priority grace). */
  | { kind: 'take-over'; req: SwitchoverRequest }
  /** The lock is free and someone else is the target: leave it to them. */
  | { kind: 'stand-aside'; req: SwitchoverRequest; why: string };

export interface SwitchoverView {
  control: ControlRecord | null;
  me: string;
  /** We hold the lock and act on it. */
  active: boolean;
  members: readonly MemberRecord[];
  nowWallMs: number;
}

export function switchoverPart(v: SwitchoverView): SwitchoverPart {
  const req = v.control?.switchover;
  if (!req) return { kind: 'none' };
  if (v.active) {
    if (expired(req, v.nowWallMs)) return { kind: 'expire', req };
    if (v.control?.paused) return { kind: 'refuse', req, why: 'the cluster is paused' };
    if (req.from !== v.me) return { kind: 'refuse', req, why: `the active node is ${v.me}, not ${req.from}` };
    if (req.to === v.me) return { kind: 'refuse', req, why: `${req.to} is already active` };
    const verdict = switchoverCandidates(v.members, v.me).find((c) => c.id === req.to);
    if (!verdict) return { kind: 'refuse', req, why: `target ${req.to} is not a live member` };
    if (!verdict.eligible)
      return { kind: 'refuse', req, why: `target ${req.to} is ${verdict.why.join(', ')}` };
    return { kind: 'hand-over', req };
  }
  if (expired(req, v.nowWallMs)) return { kind: 'none' };
  if (req.to === v.me) return { kind: 'take-over', req };
  // Stand aside only while the target can still take the lock: if it went away or cannot serve,
  // waiting for the expiry would only leave the cluster without an active.
  const target = v.members.find((m) => m.id === req.to);
  if (!target) return { kind: 'none' };
  if (target.health !== 'HEALTHY' || target.noFailover || target.activationFailed === true)
    return { kind: 'none' };
  return { kind: 'stand-aside', req, why: `switchover ${req.id} to ${req.to} pending` };
}
