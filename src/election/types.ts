/**
 * The elector's outside: what it is told (options, callbacks) and what it says (state, decisions,
 * status). Kept apart from the loop itself so that callers read one short file.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { FenceTarget } from '../service/agent.js';
import type { ConnectionLossPolicy } from './lease.js';
import type { PauseState, SwitchoverRequest } from './records.js';
import type { ConnectionState, ElectionConnection } from './store.js';

export type ElectorState = 'INIT' | 'ACTIVE' | 'STANDBY' | 'NEUTRAL';

export interface ElectorCallbacks {
  /** Make the local service active with this epoch. Throws on failure; abort = give up now. */
  becomeActive(epoch: bigint, reason: string, signal: AbortSignal): Promise<void>;
  /** The service's own word on its role (resuming after an agent restart); 'unknown' if it cannot say. */
  serviceState?(signal: AbortSignal): Promise<'active' | 'standby' | 'unknown'>;
  /** Another node holds the lock: make sure the local service is standby. Errors are logged. */
  becomeStandby(reason: string): Promise<void>;
  /** Demote the local service (it may be active). True when it is known to be standby now. */
  demote(reason: string): Promise<boolean>;
  /** Fence the previous active; true = it can no longer serve as active. */
  fenceOldActive(target: FenceTarget, epoch: bigint, signal: AbortSignal): Promise<boolean>;
  /** Every state change, after it happened (logs, metrics, status). Must not throw. */
  onStateChange?(next: ElectorState, prev: ElectorState, reason: string, epoch: bigint | null): void;
  /** An activation that did not happen (fencing failed, to-active failed, bad breadcrumb). */
  onActivationFailed?(reason: string): void;
  /** The cluster was paused (the pause) or resumed (null). Must not throw. */
  onPausedChange?(paused: PauseState | null): void;
  /** The elector cannot go on (e.g. a second live agent with our node id): the agent must stop. */
  onFatal?(reason: string): void;
}

export interface ElectorNode {
  id: string;
  host: string;
  port: number;
  priority: number;
  noFailover: boolean;
  control: string;
  /** Recorded in the breadcrumb for peers' graceful fencing (ServiceAgent.controlPort). */
  controlPort?: number;
}

export interface ElectorOptions {
  cluster: string;
  node: ElectorNode;
  /**
   * A fresh connection (session) to the coordination service; rejects when unreachable, or at
   * once when `signal` aborts (the agent is stopping).
   */
  connect: (signal: AbortSignal) => Promise<ElectionConnection>;
  policy: ConnectionLossPolicy;
  safetyMarginMs: number;
  toStandbyTimeoutMs: number;
  backoffMs: number;
  priorityGraceMs: number;
  /**
   * Longest one step may take (every callback and request in it is bounded; this is the net
   * under a bug). Past it the elector gives its session up, so the lock and lease can go.
   */
  stepDeadlineMs: number;
  agentVersion: string;
  /** Health string published in the member record. */
  health: () => string;
  clock: Clock;
  logger: Logger;
  callbacks: ElectorCallbacks;
  pid?: number;
}

/** What one step did and why (logged, kept in status, asserted by tests). */
export interface Decision {
  action: DecisionAction;
  reason: string;
}

export type DecisionAction =
  | 'stopped'
  | 'fatal'
  | 'demoted'
  | 'unreachable'
  | 'riding-out'
  | 'neutral'
  | 'not-initialised'
  | 'lease-too-short'
  | 'duplicate-id'
  | 'not-electable'
  | 'kept'
  | 'breadcrumb-repaired'
  | 'released'
  | 'removed-own-stale-lock'
  | 'standby'
  | 'foreign-lock'
  | 'backing-off'
  | 'deferring'
  | 'lost-race'
  | 'activated'
  | 'activation-failed'
  | 'activation-ignored'
  | 'paused'
  | 'resuming'
  | 'resumed'
  | 'handed-over'
  | 'switchover-refused'
  | 'error';

export interface ElectorStatus {
  state: ElectorState;
  epoch: string | null;
  sessionId: string | null;
  sessionState: ConnectionState | 'none';
  electable: boolean;
  /** Milliseconds of lease left while active (policy demote), else null. */
  leaseRemainingMs: number | null;
  /** What the current session leaves as lease budget (policy demote), else null. */
  leaseBudgetMs: number | null;
  lastFailure: { reason: string; atMs: number } | null;
  lastDecision: Decision | null;
  backoffRemainingMs: number;
  holdingServiceWithoutLock: boolean;
  fatal: string | null;
  /** Maintenance mode (the control znode), or null. */
  paused: PauseState | null;
  /** A switchover waiting to be carried out, or null. */
  switchover: SwitchoverRequest | null;
}
