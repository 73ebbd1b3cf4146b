/**
 * What the election keeps in the coordination service, as values. The JSON encoding and the
 * checks of untrusted data live in zk/records.ts; the elector and its store seam speak only these
 * types. Minor additions are new OPTIONAL fields (older agents ignore them); anything an older
 * agent would misread needs a FORMAT_VERSION bump.
 */

/** Major format version we write. */
export const FORMAT_VERSION = 1;

export interface NodeIdentity {
  id: string;
  host: string;
  port: number;
}

/** The ephemeral lock: who holds it (informational; ownership is the znode's ephemeral owner). */
export interface LockRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'lock';
  cluster: string;
  priority: number;
  pid: number;
  agentVersion: string;
  acquiredAt: string;
  /** The holder's session id (16 hex digits), for status and logs. */
  session?: string;
}

/**
 * The last activation (persistent): the node the next active must fence. A clean demotion does
 * not delete it but marks it `demoted`, so that a MISSING breadcrumb always means "someone removed
 * it" (an operator, a script, a bug) and never "the last active stood down".
 */
export interface BreadcrumbRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'breadcrumb';
  cluster: string;
  /** Decimal string of the u64 epoch of the activation that wrote it. */
  epoch: string;
  writtenAt: string;
  /** The writer's session id: a breadcrumb is "ours" only if it names one of our sessions. */
  session?: string;
  /** The port of the writer's service control API, when not `port` (graceful fencing). */
  controlPort?: number;
  /** Set by the writer after its service was demoted cleanly: nothing to fence. */
  demoted?: boolean;
  demotedAt?: string;
}

/** An agent's ephemeral presence record. */
export interface MemberRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'member';
  cluster: string;
  priority: number;
  noFailover: boolean;
  health: string;
  role: string;
  epoch: string;
  agentVersion: string;
  control: string;
  updatedAt: string;
  pid?: number;
  session?: string;
  /**
   * Its last activation failed (fencing or to-active) and it has not succeeded since: peers do
   * not hold a free lock back for it however high its priority.
   */
  activationFailed?: boolean;
  /** Set while the node is not electable: why (health detail, noFailover). */
  notElectableReason?: string;
  /** When the role last changed, and why (for `hafc status`). */
  since?: string;
  sinceReason?: string;
  /** The last failed activation. */
  lastFailure?: { reason: string; at: string };
}

export type AnyRecord = LockRecord | BreadcrumbRecord | MemberRecord;

/** Maintenance mode: agents monitor and report but take no automatic action. */
export interface PauseState {
  reason?: string;
  /** `user@host` of whoever asked (or `http:<address>` for the HTTP API). */
  by: string;
  at: string;
}

/**
 * A graceful switchover asked for by an operator: the active (`from`) demotes its service while
 * it still holds the lock, marks its breadcrumb demoted, then lets go; `to` takes the lock without
 * fencing; everyone else stands aside until it is done, refused, or expired.
 */
export interface SwitchoverRequest {
  /** Random, so that a waiting CLI recognises the outcome of its own request. */
  id: string;
  from: string;
  to: string;
  reason?: string;
  by: string;
  requestedAt: string;
  /** Wall-clock time after which nobody acts on it (liveness only: safety never depends on it). */
  expiresAt: string;
}

export interface SwitchoverOutcome {
  id: string;
  outcome: 'done' | 'refused' | 'expired';
  detail: string;
  from: string;
  to: string;
  at: string;
  /** done: the old active's service standby (its breadcrumb's demotedAt) -> the new one active. */
  handoverMs?: number;
  epoch?: string;
}

/** The `control` znode (persistent; written with compare-and-set). */
export interface ControlRecord {
  formatVersion: number;
  kind: 'control';
  cluster: string;
  paused?: PauseState;
  switchover?: SwitchoverRequest;
  lastSwitchover?: SwitchoverOutcome;
  updatedAt: string;
}

export type HistoryEvent =
  | 'activated'
  | 'demoted'
  | 'activation-failed'
  | 'switchover-requested'
  | 'switchover-refused'
  | 'switchover-expired'
  | 'paused'
  | 'resumed';

/** One transition in the bounded `history` znode (newest last). */
export interface HistoryEntry {
  at: string;
  event: HistoryEvent;
  /** The node the event happened to (the new active for `activated`). */
  node?: string;
  /** For `activated`: the previous active (the breadcrumb's node), if any. */
  from?: string;
  to?: string;
  cause: string;
  epoch?: string;
  /** Whom this activation fenced (empty: nobody needed it). */
  fenced?: string[];
  /**
   * lockWaitMs: this node saw the lock free -> acquired it (back-off, priority grace); fencingMs;
   * hookMs: the to-active or to-standby call; handoverMs: a switchover's old service standby ->
   * the new one active. (Failure detection is the old active's health fall or session timeout.)
   */
  durations?: { lockWaitMs?: number; fencingMs?: number; hookMs?: number; handoverMs?: number };
  /** Manual actions: the operator's --reason, who asked, the switchover's id. */
  reason?: string;
  by?: string;
  switchover?: string;
}

export interface HistoryRecord {
  formatVersion: number;
  kind: 'history';
  cluster: string;
  entries: HistoryEntry[];
}

/** Entries kept in the history znode (oldest dropped first); it stays far below jute.maxbuffer. */
export const HISTORY_LIMIT = 200;
