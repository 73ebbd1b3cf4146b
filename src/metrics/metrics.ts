/**
 * What the controller reports. The controller depends on this interface only. No exporter exists
 * yet (prom-client and the HTTP listener are the operations work still to come), so `noMetrics`
 * is the only implementation today; each method is called where the event happens, so an
 * exporter plugs in from the CLI composition root without touching the controller.
 */
export interface Metrics {
  role(role: 'active' | 'standby' | 'neutral' | 'init'): void;
  health(state: string): void;
  healthCheck(ok: boolean, durationMs: number): void;
  transition(to: 'active' | 'standby', result: 'ok' | 'failed' | 'ignored', durationMs: number): void;
  fencingAttempt(method: string, result: 'ok' | 'failed', durationMs: number): void;
  lockAcquired(): void;
  epoch(epoch: bigint): void;
  /** Maintenance mode on (true) or off. */
  paused?(paused: boolean): void;
}

export const noMetrics: Metrics = {
  role: () => {},
  health: () => {},
  healthCheck: () => {},
  transition: () => {},
  fencingAttempt: () => {},
  lockAcquired: () => {},
  epoch: () => {},
};
