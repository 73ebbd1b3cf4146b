/**
 * What the controller reports. The controller depends on this interface only; the prom-client
 * implementation (prom.ts) plugs in from the CLI composition root, and `noMetrics` serves the
 * tests and any caller that does not export metrics. Each method is called where the event
 * happens. Values that live in the controller's status (ZooKeeper connection state, lease) are
 * not pushed through here: the exporter reads them when it is scraped.
 */
export interface Metrics {
  role(role: 'active' | 'standby' | 'neutral' | 'init'): void;
  health(state: string): void;
  healthCheck(ok: boolean, durationMs: number): void;
  transition(to: 'active' | 'standby', result: 'ok' | 'failed' | 'ignored', durationMs: number): void;
  fencingAttempt(method: string, result: 'ok' | 'failed', durationMs: number): void;
  /** One whole fencing of a previous active: ok = some method fenced it; failed = every one failed. */
  fencing(result: 'ok' | 'failed'): void;
  lockAcquired(): void;
  epoch(epoch: bigint): void;
  /** A ZooKeeper session of this agent was lost (expired, or presumed expired: see zk/session.ts). */
  sessionExpired(): void;
  /** The cluster's pause flag (maintenance mode) as this agent sees it. */
  paused(paused: boolean): void;
}

export const noMetrics: Metrics = {
  role: () => {},
  health: () => {},
  healthCheck: () => {},
  transition: () => {},
  fencingAttempt: () => {},
  fencing: () => {},
  lockAcquired: () => {},
  epoch: () => {},
  sessionExpired: () => {},
  paused: () => {},
};
