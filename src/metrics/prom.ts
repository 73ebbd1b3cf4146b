/**
 * The Metrics interface on prom-client, in a Registry of the agent's own (never the global one:
 * nothing a library registers globally leaks into /metrics, and tests can build several).
 *
 * Conventions: base units (seconds), `_total` counters, and no per-series identity labels: the
 * cluster and node are labels of `hafc_build_info` only; a query joins on the scrape target
 * (`* on(instance, job) group_left(cluster) hafc_build_info`), as with any `_info` metric. Every
 * label value a counter can take is created at zero up front, so `rate()` and `increase()` see
 * the first event and alerts need no `or vector(0)`.
 *
 * What lives in the controller's status (ZooKeeper connection state, lease) and the logger's drop
 * count is read when Prometheus scrapes (`collect()`), from the function given to `observe()`:
 * a pushed copy could only be staler.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metrics } from './metrics.js';

export const ROLES = ['active', 'standby', 'neutral', 'init'] as const;
export const HEALTH_STATES = [
  'initializing',
  'healthy',
  'unhealthy',
  'not_responding',
  'monitor_failed',
] as const;
export const ZK_STATES = ['connecting', 'connected', 'suspended', 'lost', 'closed', 'none'] as const;
const TRANSITION_TARGETS = ['active', 'standby'] as const;
const TRANSITION_RESULTS = ['ok', 'failed', 'ignored'] as const;
const OUTCOMES = ['ok', 'failed'] as const;

/** Health checks run in milliseconds; a slow one is cut at health.timeoutMs (seconds at most). */
const HEALTH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Hooks and fencing take from milliseconds to their timeouts (seconds to a minute). */
const HOOK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * How often prom-client's event-loop lag monitor samples (its default is 10 ms). Each sample is a
 * timer that wakes the process: at 10 ms that was 100 of an idle agent's ~110 wake-ups a second
 * and most of its CPU (bench/README.md, "Idle cost"). Once a second still catches every stall of
 * a second or more (what threatens a lease); a shorter one is caught in proportion to its length.
 */
export const EVENT_LOOP_SAMPLE_MS = 1000;

const LINT_FAILING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** Values read at scrape time. */
export interface LiveValues {
  /** The elector's session state ('none' without a session). */
  zookeeperState: string;
  /** Lease left while active under policy demote; null otherwise (no series then). */
  leaseRemainingMs: number | null;
  droppedLogLines: number;
}

export interface PromMetricsOptions {
  version: string;
  cluster: string;
  node: string;
  /** The configured fencing methods' kinds: their counters start at zero. */
  fencingMethods?: readonly string[];
  /** Wall-clock milliseconds (Prometheus timestamps are Unix time). @default Date.now */
  wallClock?: () => number;
  /** Also export process_* and nodejs_* (prom-client's default metrics). @default true */
  processMetrics?: boolean;
}

export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private live: (() => LiveValues) | null = null;
  private readonly wall: () => number;

  private readonly roleG: Gauge<'role'>;
  private readonly healthG: Gauge<'state'>;
  private readonly checkDuration: Histogram;
  private readonly checks: Counter<'result'>;
  private readonly transitions: Counter<'to' | 'result'>;
  private readonly transitionDuration: Histogram<'to'>;
  private readonly fencingAttempts: Counter<'method' | 'result'>;
  private readonly fencingAttemptDuration: Histogram<'method'>;
  private readonly fencings: Counter<'result'>;
  private readonly lockAcquisitions: Counter;
  private readonly epochG: Gauge;
  private readonly expirations: Counter;
  private readonly pausedG: Gauge;
  private readonly lastTransition: Gauge;

  constructor(opts: PromMetricsOptions) {
    const registers = [this.registry];
    this.wall = opts.wallClock ?? Date.now;
    // prom-client calls collect() with `this` = the metric; this arrow keeps ours.
    const liveNow = (): LiveValues | null => this.live?.() ?? null;

    new Gauge({
      name: 'hafc_build_info',
      help: 'Always 1; labels: the agent version, its node id and cluster.',
      labelNames: ['version', 'node', 'cluster'],
      registers,
    }).set({ version: opts.version, node: opts.node, cluster: opts.cluster }, 1);
    this.roleG = new Gauge({
      name: 'hafc_role',
      help: "The elector's role: 1 for the current one, 0 for the others.",
      labelNames: ['role'],
      registers,
    });
    this.healthG = new Gauge({
      name: 'hafc_health_state',
      help: "The health monitor's state: 1 for the current one, 0 for the others.",
      labelNames: ['state'],
      registers,
    });
    this.checkDuration = new Histogram({
      name: 'hafc_health_check_duration_seconds',
      help: 'Duration of each health check (up to its timeout).',
      buckets: HEALTH_BUCKETS,
      registers,
    });
    this.checks = new Counter({
      name: 'hafc_health_checks_total',
      help: 'Health checks by result.',
      labelNames: ['result'],
      registers,
    });
    this.transitions = new Counter({
      name: 'hafc_transitions_total',
      help: 'Service transitions (to-active / to-standby) by target role and result.',
      labelNames: ['to', 'result'],
      registers,
    });
    this.transitionDuration = new Histogram({
      name: 'hafc_transition_duration_seconds',
      help: 'Duration of each service transition, by target role.',
      labelNames: ['to'],
      buckets: HOOK_BUCKETS,
      registers,
    });
    this.fencingAttempts = new Counter({
      name: 'hafc_fencing_attempts_total',
      help: 'Fencing attempts by method kind and result.',
      labelNames: ['method', 'result'],
      registers,
    });
    this.fencingAttemptDuration = new Histogram({
      name: 'hafc_fencing_attempt_duration_seconds',
      help: 'Duration of each fencing attempt, by method kind.',
      labelNames: ['method'],
      buckets: HOOK_BUCKETS,
      registers,
    });
    this.fencings = new Counter({
      name: 'hafc_fencings_total',
      help: 'Fencings of a previous active: ok = a method fenced it, failed = every method failed.',
      labelNames: ['result'],
      registers,
    });
    this.lockAcquisitions = new Counter({
      name: 'hafc_lock_acquisitions_total',
      help: 'Times this agent became active (took the lock and promoted its service).',
      registers,
    });
    this.epochG = new Gauge({
      name: 'hafc_epoch',
      help: 'The last epoch this agent saw (a ZooKeeper zxid; informational: exact only below 2^53).',
      registers,
    });
    new Gauge({
      name: 'hafc_zookeeper_connection_state',
      help: "The elector's ZooKeeper session state: 1 for the current one, 0 for the others.",
      labelNames: ['state'],
      registers,
      collect() {
        const s = liveNow()?.zookeeperState ?? 'none';
        for (const st of ZK_STATES) this.set({ state: st }, st === s ? 1 : 0);
      },
    });
    this.expirations = new Counter({
      name: 'hafc_zookeeper_session_expirations_total',
      help: 'ZooKeeper sessions of this agent that were lost (expired, or presumed expired).',
      registers,
    });
    this.pausedG = new Gauge({
      name: 'hafc_cluster_paused',
      help: '1 while the cluster is paused (no automatic failover), else 0.',
      registers,
    });
    this.lastTransition = new Gauge({
      name: 'hafc_last_transition_timestamp_seconds',
      help: 'Unix time the last service transition finished (0: none since the agent started).',
      registers,
    });
    registerOptionalGauge(
      this.registry,
      'hafc_lease_remaining_seconds',
      'Lease left while active under onConnectionLoss: demote (no sample otherwise).',
      () => {
        const ms = liveNow()?.leaseRemainingMs ?? null;
        return ms !== null && Number.isFinite(ms) ? ms / 1000 : null;
      },
    );
    let reportedDrops = 0;
    new Counter({
      name: 'hafc_log_lines_dropped_total',
      help: 'Log lines lost because the log stream could not take them.',
      registers,
      collect() {
        const now = liveNow()?.droppedLogLines ?? 0;
        if (now > reportedDrops) this.inc(now - reportedDrops);
        reportedDrops = Math.max(reportedDrops, now);
      },
    });

    this.role('init');
    this.health('INITIALIZING');
    this.pausedG.set(0);
    this.lastTransition.set(0);
    for (const result of OUTCOMES) {
      this.checks.inc({ result }, 0);
      this.fencings.inc({ result }, 0);
    }
    for (const to of TRANSITION_TARGETS)
      for (const result of TRANSITION_RESULTS) this.transitions.inc({ to, result }, 0);
    for (const method of new Set(opts.fencingMethods ?? []))
      for (const result of OUTCOMES) this.fencingAttempts.inc({ method, result }, 0);
    this.lockAcquisitions.inc(0);
    this.expirations.inc(0);
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
      // Gauges named like counters fail `promtool check metrics` (CONTRACT section 7); each is the
      // sum of its labelled twin (nodejs_active_handles{type} etc.), so nothing is lost.
      for (const name of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(name);
    }
  }

  /** Where scrape-time values come from (the controller's status, the logger). */
  observe(live: () => LiveValues): void {
    this.live = live;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  role(role: (typeof ROLES)[number]): void {
    for (const r of ROLES) this.roleG.set({ role: r }, r === role ? 1 : 0);
  }

  health(state: string): void {
    const s = state.toLowerCase();
    for (const st of HEALTH_STATES) this.healthG.set({ state: st }, st === s ? 1 : 0);
  }

  healthCheck(ok: boolean, durationMs: number): void {
    this.checks.inc({ result: ok ? 'ok' : 'failed' });
    this.checkDuration.observe(durationMs / 1000);
  }

  transition(to: 'active' | 'standby', result: 'ok' | 'failed' | 'ignored', durationMs: number): void {
    this.transitions.inc({ to, result });
    this.transitionDuration.observe({ to }, durationMs / 1000);
    this.lastTransition.set(this.wall() / 1000);
  }

  fencingAttempt(method: string, result: 'ok' | 'failed', durationMs: number): void {
    this.fencingAttempts.inc({ method, result });
    this.fencingAttemptDuration.observe({ method }, durationMs / 1000);
  }

  fencing(result: 'ok' | 'failed'): void {
    this.fencings.inc({ result });
  }

  lockAcquired(): void {
    this.lockAcquisitions.inc();
  }

  epoch(epoch: bigint): void {
    this.epochG.set(Number(epoch));
  }

  sessionExpired(): void {
    this.expirations.inc();
  }

  paused(paused: boolean): void {
    this.pausedG.set(paused ? 1 : 0);
  }
}

/**
 * A label-less gauge that has no sample while `value()` is null. prom-client's own Gauge always
 * exports a label-less value (0 after reset()), which would claim a lease of 0 s on a standby; the
 * registry accepts any object with its metric protocol (get, reset), so this is one.
 */
function registerOptionalGauge(
  registry: Registry,
  name: string,
  help: string,
  value: () => number | null,
): void {
  const metric = {
    name,
    help,
    type: 'gauge',
    aggregator: 'sum',
    get: () => {
      const v = value();
      return Promise.resolve({
        name,
        help,
        type: 'gauge',
        aggregator: 'sum',
        values: v === null ? [] : [{ value: v, labels: {} }],
      });
    },
    reset: () => {},
  };
  registry.registerMetric(metric as unknown as Gauge);
}
