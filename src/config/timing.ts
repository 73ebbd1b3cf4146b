/**
 * Timing rules (docs/safety.md, docs/config.md): relations between timeouts that, when broken, let
 * the agent break a safety or liveness promise while every single value looks reasonable.
 */
import type { HafcConfig, ServiceConfig } from './types.js';
import { integerRule, isInteger, show } from './format.js';
import { CONFIG } from './schema.js';

export { MIN_SESSION_TIMEOUT_MS, MAX_SESSION_TIMEOUT_MS } from './schema.js';

/** The shortest lease budget we accept: less leaves no room for a scheduling hiccup or GC pause. */
export const MIN_LEASE_BUDGET_MS = 1000;

/** ZooKeeper's default tickTime; servers relay a follower's session touches every tickTime/2. */
export const DEFAULT_TICK_TIME_MS = 2000;

/**
 * What the agent subtracts from the lease at runtime, besides the configured margin: a session
 * touch reaching a follower is relayed to the leader only with the follower's next ping, sent
 * every tickTime/2, so the leader may see the session that much older than the agent does; plus
 * slack for a late ping. The same figure as zk/session.ts relayAllowanceFromMinSessionMs() for a
 * server whose minSessionTimeout is 2 x tickTime (a unit test pins the two together).
 */
export function relayAllowanceMs(tickTimeMs: number): number {
  const halfTick = tickTimeMs / 2;
  return Math.round(halfTick + Math.max(25, halfTick / 4));
}

/** Longest time the to-standby (and to-active) transition of the local service may take. */
export function transitionTimeoutMs(service: ServiceConfig): number {
  if (service.agent === 'postgresql') return service.stopTimeoutMs;
  return service.agent === 'shell' ? service.hookTimeoutMs : service.requestTimeoutMs;
}

/** The key transitionTimeoutMs reads, for messages. */
export function transitionTimeoutKey(service: ServiceConfig): string {
  if (service.agent === 'postgresql') return 'service.stopTimeoutMs';
  return service.agent === 'shell' ? 'service.hookTimeoutMs' : 'service.requestTimeoutMs';
}

/**
 * How long an active node that lost ZooKeeper may keep its service active, counted from the
 * moment its last answered request was sent: it must have *finished* demoting (hence minus the
 * to-standby timeout) before its session can have expired on the server (minus a safety margin
 * for clock-rate drift and scheduling delays).
 */
export function leaseBudgetMs(cfg: HafcConfig): number {
  return cfg.zookeeper.sessionTimeoutMs - cfg.zookeeper.safetyMarginMs - transitionTimeoutMs(cfg.service);
}

/** Time from the service failing to the agent declaring it unhealthy. */
export function detectionTimeMs(cfg: HafcConfig): number {
  return cfg.health.intervalMs * cfg.health.fall;
}

/**
 * Upper estimate of a failover when the active's agent died with its service: detection, the
 * dead session expiring, every fencing method running to its timeout, then the to-active hook.
 */
export function worstCaseFailoverMs(cfg: HafcConfig): number {
  return (
    detectionTimeMs(cfg) +
    cfg.zookeeper.sessionTimeoutMs +
    cfg.fencing.timeoutMs * cfg.fencing.methods.length +
    transitionTimeoutMs(cfg.service)
  );
}

interface Rule {
  /** The keys the rule reads; it is skipped when one of them already failed validation. */
  inputs(cfg: HafcConfig): string[];
  check(cfg: HafcConfig): string | undefined;
  /** A range check: when it fails, its key counts as invalid for the rules after it. */
  range?: true;
}

/** The bounds the declaration gives a key. */
interface Bounds {
  min: number;
  max: number;
}

function range(path: string, get: (cfg: HafcConfig) => number, bounds: Bounds): Rule {
  return {
    range: true,
    inputs: () => [path],
    check: (cfg) => {
      const value = get(cfg);
      return isInteger(value, bounds.min, bounds.max)
        ? undefined
        : `${path}: ${integerRule(bounds.min, bounds.max)}, got ${show(value)}`;
    },
  };
}

const ZK = CONFIG.keys.zookeeper.keys;
const HEALTH = CONFIG.keys.health.keys;
const SERVICE = CONFIG.keys.service.variants;

function transitionBounds(service: ServiceConfig): Bounds {
  if (service.agent === 'postgresql') return SERVICE.postgresql.keys.stopTimeoutMs;
  return service.agent === 'shell' ? SERVICE.shell.keys.hookTimeoutMs : SERVICE.http.keys.requestTimeoutMs;
}

const RULES: Rule[] = [
  // Ranges. The loader checks these per key already; they are repeated here so that a config
  // built in code (tests, tools) gets the same protection from validateTiming alone. The bounds
  // are the declaration's: every duration stays far below 2^31 ms, where Node timers break.
  range('zookeeper.sessionTimeoutMs', (c) => c.zookeeper.sessionTimeoutMs, ZK.sessionTimeoutMs),
  range('zookeeper.requestTimeoutMs', (c) => c.zookeeper.requestTimeoutMs, ZK.requestTimeoutMs),
  range('zookeeper.safetyMarginMs', (c) => c.zookeeper.safetyMarginMs, ZK.safetyMarginMs),
  range('health.intervalMs', (c) => c.health.intervalMs, HEALTH.intervalMs),
  range('health.timeoutMs', (c) => c.health.timeoutMs, HEALTH.timeoutMs),
  range('health.fall', (c) => c.health.fall, HEALTH.fall),
  range('health.rise', (c) => c.health.rise, HEALTH.rise),
  range('fencing.timeoutMs', (c) => c.fencing.timeoutMs, CONFIG.keys.fencing.keys.timeoutMs),
  range(
    'election.priorityGraceMs',
    (c) => c.election.priorityGraceMs,
    CONFIG.keys.election.keys.priorityGraceMs,
  ),
  range('election.backoffMs', (c) => c.election.backoffMs, CONFIG.keys.election.keys.backoffMs),
  {
    range: true,
    inputs: (c) => ['service.agent', transitionTimeoutKey(c.service)],
    check: (c) => {
      const value = transitionTimeoutMs(c.service);
      const { min, max } = transitionBounds(c.service);
      return isInteger(value, min, max)
        ? undefined
        : `${transitionTimeoutKey(c.service)}: ${integerRule(min, max)}, got ${show(value)}`;
    },
  },

  // A check that may hang for longer than the whole detection window means a service that hangs
  // every check is only declared unhealthy after timeoutMs x fall, not intervalMs x fall.
  {
    inputs: () => ['health.timeoutMs', 'health.intervalMs', 'health.fall'],
    check: (c) => {
      const window = c.health.intervalMs * c.health.fall;
      if (c.health.timeoutMs < window) return undefined;
      return (
        `health.timeoutMs (${c.health.timeoutMs}) must be less than health.intervalMs x health.fall ` +
        `(${window}), or a hung check could never count as a failure in time`
      );
    },
  },

  // The health checks must notice a failed service sooner than ZooKeeper notices a dead agent;
  // otherwise a sick active (agent alive, service down) keeps the lock longer than a crashed one,
  // and the failover time (docs/safety.md, liveness) is dominated by the health settings.
  {
    inputs: () => ['health.intervalMs', 'health.fall', 'zookeeper.sessionTimeoutMs'],
    check: (c) => {
      const window = c.health.intervalMs * c.health.fall;
      if (window < c.zookeeper.sessionTimeoutMs) return undefined;
      return (
        `health.intervalMs x health.fall (${window}) must be less than zookeeper.sessionTimeoutMs ` +
        `(${c.zookeeper.sessionTimeoutMs}), or a failed service would be noticed later than a dead agent`
      );
    },
  },

  // The lease deadline is counted from when the last answered request was sent; a request allowed
  // to run longer than the session could still be "in flight" after the session expired.
  {
    inputs: () => ['zookeeper.requestTimeoutMs', 'zookeeper.sessionTimeoutMs'],
    check: (c) => {
      if (c.zookeeper.requestTimeoutMs < c.zookeeper.sessionTimeoutMs) return undefined;
      return (
        `zookeeper.requestTimeoutMs (${c.zookeeper.requestTimeoutMs}) must be less than ` +
        `zookeeper.sessionTimeoutMs (${c.zookeeper.sessionTimeoutMs}), or a single request could ` +
        `outlast the session it was sent in`
      );
    },
  },

  // The lease (docs/safety.md): with onConnectionLoss demote, an active node cut off from ZooKeeper must have
  // demoted its service before its session can expire and a standby can take the lock. With hold
  // the service's own storage fences (e.g. a NameNode on QJM), so the budget does not apply.
  {
    inputs: (c) => [
      'zookeeper.onConnectionLoss',
      'zookeeper.sessionTimeoutMs',
      'zookeeper.safetyMarginMs',
      'service.agent',
      transitionTimeoutKey(c.service),
    ],
    check: (c) => {
      if (c.zookeeper.onConnectionLoss !== 'demote') return undefined;
      const budget = leaseBudgetMs(c);
      if (budget >= MIN_LEASE_BUDGET_MS) return undefined;
      const hookKey = transitionTimeoutKey(c.service);
      return (
        `lease budget zookeeper.sessionTimeoutMs (${c.zookeeper.sessionTimeoutMs}) - ` +
        `zookeeper.safetyMarginMs (${c.zookeeper.safetyMarginMs}) - ${hookKey} ` +
        `(${transitionTimeoutMs(c.service)}) = ${budget} ms must be at least ${MIN_LEASE_BUDGET_MS} ms, ` +
        `because an active node that loses ZooKeeper must finish demoting itself before its session ` +
        `can expire on the server; raise zookeeper.sessionTimeoutMs, lower ${hookKey} or ` +
        `zookeeper.safetyMarginMs, or set zookeeper.onConnectionLoss: hold if the service fences itself`
      );
    },
  },
];

/**
 * The timing rules a config breaks, as messages without the source. `skip` says whether a key
 * already failed validation; rules reading such a key (or one out of range) are skipped, so one
 * bad value gives one message rather than a cascade computed from a fallback.
 */
export function timingProblems(cfg: HafcConfig, skip: (path: string) => boolean): string[] {
  const problems: string[] = [];
  const outOfRange = new Set<string>();
  for (const rule of RULES) {
    const inputs = rule.inputs(cfg);
    if (inputs.some((path) => skip(path) || outOfRange.has(path))) continue;
    const problem = rule.check(cfg);
    if (problem === undefined) continue;
    problems.push(problem);
    if (rule.range) inputs.forEach((path) => outOfRange.add(path));
  }
  return problems;
}

/** Every timing rule `cfg` breaks, one message each; empty when the timing is sound. */
export function validateTiming(cfg: HafcConfig): string[] {
  return timingProblems(cfg, () => false);
}
