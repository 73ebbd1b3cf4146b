/**
 * Connects a running agent to systemd's notification protocol; a no-op when systemd did not ask
 * for notifications (no NOTIFY_SOCKET: nothing is ever spawned).
 */
import type { Clock } from '../clock.js';
import type { HafcConfig } from '../config/types.js';
import { AGENT_CALL_SLACK_MS } from '../controller/controller.js';
import type { HealthMonitor } from '../health/monitor.js';
import type { Logger } from '../log.js';
import { electorProgressLimitMs, healthProgressLimitMs, ProgressWatch } from './liveness.js';
import type { NotifyTarget } from './notify-env.js';
import { Notifier, systemdNotifySend } from './notifier.js';
import { SystemdSupervisor, type SupervisedStatus } from './supervisor.js';

export interface SystemdLink {
  start(): void;
  /** The agent began to stop (clean or emergency). */
  markStopping(reason: string): void;
  /** Stops every timer (the process is about to end). */
  close(): void;
}

const NONE: SystemdLink = { start() {}, markStopping() {}, close() {} };
const POLL_MS = 500;

export interface SystemdDeps {
  config: HafcConfig;
  toStandbyTimeoutMs: number;
  status: () => SupervisedStatus;
  health: HealthMonitor;
  clock: Clock;
  logger: Logger;
}

/**
 * The elector's step deadline as the Controller computes it (every agent call of a step, every
 * fencing method, 30 ZooKeeper requests), which the elector does not publish.
 */
export function electorStepDeadlineMs(cfg: HafcConfig, toStandbyTimeoutMs: number): number {
  const agentCalls = 3 * (toStandbyTimeoutMs + AGENT_CALL_SLACK_MS);
  const fencing = cfg.fencing.methods.length * (cfg.fencing.timeoutMs + AGENT_CALL_SLACK_MS);
  return agentCalls + fencing + 30 * cfg.zookeeper.requestTimeoutMs;
}

export function linkSystemd(target: NotifyTarget | null, deps: SystemdDeps): SystemdLink {
  if (!target) return NONE;
  const { clock, config: cfg } = deps;
  const logger = deps.logger.child({ component: 'systemd' });
  const notifier = new Notifier({ send: systemdNotifySend({ socket: target.socket, clock }), clock, logger });
  const now = clock.now();
  const health = new ProgressWatch(
    'the health monitor',
    healthProgressLimitMs(cfg.health.intervalMs, cfg.health.timeoutMs),
    now,
    // Its loop ends for good in MONITOR_FAILED (the node is then not electable and says so).
    () => (deps.health.state === 'MONITOR_FAILED' ? 'health monitor failed' : null),
  );
  const elector = new ProgressWatch(
    'the election loop',
    electorProgressLimitMs(electorStepDeadlineMs(cfg, deps.toStandbyTimeoutMs), POLL_MS),
    now,
  );
  deps.health.onResult(() => health.beat(clock.now()));
  // Every step of the elector reports a new Decision object: a different one means a step ended.
  let lastDecision: object | null = null;
  const supervisor = new SystemdSupervisor({
    notifier,
    clock,
    logger,
    status: deps.status,
    watchdogMs: target.watchdogMs,
    watches: [health, elector],
    pollMs: POLL_MS,
    onPoll: (s, at) => {
      if (s.elector.lastDecision !== lastDecision) {
        lastDecision = s.elector.lastDecision;
        elector.beat(at);
      }
    },
  });
  logger.info('notifying systemd', {
    socket: target.socket,
    watchdogMs: target.watchdogMs,
  });
  return {
    start: () => supervisor.start(),
    markStopping: (reason) => supervisor.markStopping(reason),
    close: () => {
      supervisor.close();
      notifier.close();
    },
  };
}
