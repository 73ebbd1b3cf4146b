/**
 * The one seam between the controller and a managed service. Built-in implementations live in
 * agents/ (shell, http, later hdfs-namenode, yarn-resourcemanager, postgresql, redis).
 *
 * Contract for implementations:
 * - every method honours `signal` (abort = give up now, kill child processes) and never hangs
 *   past the timeout its config names;
 * - a failure is a thrown HafcError whose message says what was run and what came back;
 * - methods never throw for "service said no" in `state` - they return 'unknown' instead.
 */
export type ServiceRole = 'active' | 'standby';

export interface HookContext {
  cluster: string;
  nodeId: string;
  /** The role being entered (to-active / to-standby) or the current belief (check / state). */
  role: string;
  /** The fencing token of the activation; '0' when there is none. */
  epoch: bigint;
  reason: string;
}

export interface FenceTarget {
  id: string;
  host: string;
  port: number;
  /** host:port */
  address: string;
  epoch: bigint;
  /** Port of the old active's service control API, when it differs from `port` (http agent). */
  controlPort?: number;
}

export interface ServiceAgent {
  readonly kind: string;
  /** Resolves when healthy; throws (with a message saying why) when not. */
  check(ctx: HookContext, signal: AbortSignal): Promise<void>;
  toActive(ctx: HookContext, signal: AbortSignal): Promise<void>;
  toStandby(ctx: HookContext, signal: AbortSignal): Promise<void>;
  /** What the service itself reports, when the agent can ask; used to reconcile belief. */
  state?(ctx: HookContext, signal: AbortSignal): Promise<ServiceRole | 'unknown'>;
  /** Graceful fencing: ask the OLD active's service (at target's address) to become standby. */
  fenceGraceful?(target: FenceTarget, ctx: HookContext, signal: AbortSignal): Promise<void>;
  /**
   * Replicas only (postgresql, redis): make this standby follow the node that holds the lock
   * now (re-point replication; rewind or re-clone a diverged data directory; start a stopped
   * server as a replica). Called while this node is not active and another node holds the lock,
   * again whenever that node or its epoch changes, and at the health interval while it keeps
   * failing (with backoff). Must be idempotent and cheap when already following `active`, must
   * never make the service writable, and must give up on `signal`: the controller aborts it
   * before this node's own promotion.
   */
  follow?(active: FenceTarget, ctx: HookContext, signal: AbortSignal): Promise<void>;
  /** Longest one follow() may take (a re-clone can be slow); default 10 minutes. */
  readonly followTimeoutMs?: number;
  /** Longest time toStandby may take; the lease model subtracts it from the session timeout. */
  readonly toStandbyTimeoutMs: number;
  /**
   * The port a peer's graceful fencing must reach this service's control API on, when that is
   * not node.port (it travels in the breadcrumb).
   */
  readonly controlPort?: number;
  /**
   * Releases what the agent keeps open (connections to its service). Called once, after a reload
   * replaced the agent, when nothing of it can still be in flight. The running agent is never
   * closed: an emergency demotion may need it up to the process's exit.
   */
  close?(): void;
}
