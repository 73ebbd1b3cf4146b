/**
 * GET /status: the controller's status as JSON with field names of its own (docs/http.md), so an
 * internal rename never changes what scripts read. Epochs (64-bit zxids) are decimal strings;
 * monotonic-clock times are turned into ages, since the clock's origin means nothing outside.
 */
import type { ControllerStatus, ReloadRecord, TransitionRecord } from '../controller/controller.js';
import type { PauseState, SwitchoverRequest } from '../election/records.js';

export interface StatusJson {
  cluster: string;
  node: string;
  version: string;
  role: string;
  /** Lease-aware: what GET /active answers. */
  mayBeActive: boolean;
  health: string;
  electable: boolean;
  epoch: string | null;
  zookeeper: { sessionId: string | null; state: string };
  lease: { remainingMs: number | null; budgetMs: number | null };
  lastDecision: { action: string; reason: string } | null;
  lastFailure: { reason: string; agoMs: number } | null;
  backoffRemainingMs: number;
  holdingServiceWithoutLock: boolean;
  fatal: string | null;
  /** Maintenance mode as this agent last read it from the control znode. */
  paused: PauseState | null;
  /** A switchover waiting to be carried out. */
  switchover: SwitchoverRequest | null;
  lastTransition: TransitionRecord | null;
  lastFenceFailure: ControllerStatus['lastFenceFailure'];
  reloads: ControllerStatus['reloads'];
  lastReload: ReloadRecord | null;
  /** Replica agents: the last attempt to follow the active (null for other agents). */
  follow: ControllerStatus['follow'];
}

const finite = (n: number | null): number | null => (n !== null && Number.isFinite(n) ? n : null);

export function statusJson(
  s: ControllerStatus,
  extra: { version: string; mayBeActive: boolean; nowMs: number },
): StatusJson {
  const e = s.elector;
  return {
    cluster: s.cluster,
    node: s.node,
    version: extra.version,
    role: s.role,
    mayBeActive: extra.mayBeActive,
    health: s.health,
    electable: s.electable,
    epoch: e.epoch,
    zookeeper: { sessionId: e.sessionId, state: e.sessionState },
    lease: { remainingMs: finite(e.leaseRemainingMs), budgetMs: finite(e.leaseBudgetMs) },
    lastDecision: e.lastDecision ? { action: e.lastDecision.action, reason: e.lastDecision.reason } : null,
    lastFailure: e.lastFailure
      ? { reason: e.lastFailure.reason, agoMs: Math.max(0, Math.round(extra.nowMs - e.lastFailure.atMs)) }
      : null,
    backoffRemainingMs: e.backoffRemainingMs,
    holdingServiceWithoutLock: e.holdingServiceWithoutLock,
    fatal: e.fatal,
    paused: e.paused,
    switchover: e.switchover,
    lastTransition: s.lastTransition,
    lastFenceFailure: s.lastFenceFailure,
    reloads: s.reloads,
    lastReload: s.lastReload,
    follow: s.follow,
  };
}

/** JSON text for any value: bigints as decimal strings (JSON has no 64-bit integers). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
