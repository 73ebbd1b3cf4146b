/**
 * Timing rules (CONTRACT.md sections 2 and 4): relations between timeouts that, when broken, let
 * the agent break a safety or liveness promise while every single value looks reasonable.
 */
import type { HafcConfig, ServiceConfig } from './types.js';
import { integerRule, isInteger, show } from './format.js';

/** The shortest lease budget we accept: less leaves no room for a scheduling hiccup or GC pause. */
export const MIN_LEASE_BUDGET_MS = 1000;
export const MIN_SESSION_TIMEOUT_MS = 1000;
export const MAX_SESSION_TIMEOUT_MS = 600_000;

/** Longest time the to-standby (and to-active) transition of the local service may take. */
export function transitionTimeoutMs(service: ServiceConfig): number {
  return service.agent === 'shell' ? service.hookTimeoutMs : service.requestTimeoutMs;
}

function transitionTimeoutKey(service: ServiceConfig): string {
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

function range(path: string, get: (cfg: HafcConfig) => number, min: number, max?: number): Rule {
  return {
    range: true,
    inputs: () => [path],
    check: (cfg) => {
      const value = get(cfg);
      return isInteger(value, min, max) ? undefined : `${path}: ${integerRule(min, max)}, got ${show(value)}`;
    },
  };
}

const RULES: Rule[] = [
  // Ranges. The loader checks these per key already; they are repeated here so that a config
  // built in code (tests, tools) gets the same protection from validateTiming alone.
  // ZooKeeper servers clamp sessions to [2, 20] x tickTime; outside 1 s..10 min the value is a typo.
  range(
    'zookeeper.sessionTimeoutMs',
    (c) => c.zookeeper.sessionTimeoutMs,
    MIN_SESSION_TIMEOUT_MS,
    MAX_SESSION_TIMEOUT_MS,
  ),
  range('zookeeper.requestTimeoutMs', (c) => c.zookeeper.requestTimeoutMs, 1),
  range('zookeeper.safetyMarginMs', (c) => c.zookeeper.safetyMarginMs, 0),
  // A zero interval would spin the health loop; zero timeouts would fail every check or hook.
  range('health.intervalMs', (c) => c.health.intervalMs, 1),
  range('health.timeoutMs', (c) => c.health.timeoutMs, 1),
  // fall/rise count consecutive results; zero would flip the health state on no evidence at all.
  range('health.fall', (c) => c.health.fall, 1),
  range('health.rise', (c) => c.health.rise, 1),
  range('fencing.timeoutMs', (c) => c.fencing.timeoutMs, 1),
  range('election.priorityGraceMs', (c) => c.election.priorityGraceMs, 0),
  range('election.backoffMs', (c) => c.election.backoffMs, 0),
  {
    range: true,
    inputs: (c) => ['service.agent', transitionTimeoutKey(c.service)],
    check: (c) => {
      const value = transitionTimeoutMs(c.service);
      return isInteger(value, 1)
        ? undefined
        : `${transitionTimeoutKey(c.service)}: ${integerRule(1)}, got ${show(value)}`;
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
  // and the liveness bound of CONTRACT.md 2.4 is dominated by the health settings.
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

  // CONTRACT.md 2.2: with onConnectionLoss demote, an active node cut off from ZooKeeper must have
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
