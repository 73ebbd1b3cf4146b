/**
 * What the controller reports. The controller depends on this interface only. A prom-client
 * implementation (and the HTTP endpoint serving it) is not built yet: the agent runs with
 * noMetrics, so nothing is counted.
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
