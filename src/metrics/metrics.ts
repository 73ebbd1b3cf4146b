/**
 * What the controller reports. The controller depends on this interface only; the prom-client
 * implementation (and the HTTP endpoint serving it) plug in from the CLI composition root.
 */
export interface Metrics {
  role(role: 'active' | 'standby' | 'neutral' | 'init'): void;
  health(state: string): void;
  healthCheck(ok: boolean, durationMs: number): void;
  transition(to: 'active' | 'standby', result: 'ok' | 'failed' | 'ignored', durationMs: number): void;
  fencingAttempt(method: string, result: 'ok' | 'failed', durationMs: number): void;
  lockAcquired(): void;
  epoch(epoch: bigint): void;
  zkState(state: string): void;
  sessionLost(): void;
}

export const noMetrics: Metrics = {
  role: () => {},
  health: () => {},
  healthCheck: () => {},
  transition: () => {},
  fencingAttempt: () => {},
  lockAcquired: () => {},
  epoch: () => {},
  zkState: () => {},
  sessionLost: () => {},
};
