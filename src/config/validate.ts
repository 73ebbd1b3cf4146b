/**
 * Turns the plain data read from a config file into a HafcConfig: the declaration (schema.ts)
 * read key by key, then the rules that relate keys to each other. Every problem is collected:
 * an operator fixing a file wants the whole list at once.
 */
import { hostname as osHostname } from 'node:os';
import type { VariantSpec } from './declare.js';
import { show } from './format.js';
import { isMapping, MAX_PROBLEMS, Problems } from './problems.js';
import { readShape } from './read.js';
import { parseHostPort } from './rules.js';
import { CONFIG } from './schema.js';
import { timingProblems } from './timing.js';
import type { HafcConfig, ServiceConfig } from './types.js';

export {
  DEFAULT_CONTROL_LISTEN,
  DEFAULT_SESSION_TIMEOUT_MS,
  defaultRequestTimeoutMs,
  defaultSafetyMarginMs,
} from './schema.js';
export { NAME_PATTERN } from './rules.js';

export const AVAILABLE_AGENTS = Object.keys(CONFIG.keys.service.variants);
/** In the contract, not built yet: named so the error says "not available" rather than "unknown". */
export const PLANNED_AGENTS = CONFIG.keys.service.planned;

export interface ValidateOptions {
  /** node.host when the file has none; os.hostname() unless given (tests pin it). */
  hostname?: string;
}

export interface ValidationResult {
  /** Present only when `problems` is empty. */
  config?: HafcConfig;
  /** One message per problem, `key.path: what is wrong, got VALUE`, without the source. */
  problems: string[];
  /** Problems past MAX_PROBLEMS, counted but not in `problems`. */
  omitted?: number;
}

function variantOf(service: ServiceConfig): VariantSpec {
  return CONFIG.keys.service.variants[service.agent];
}

/**
 * Without a check hook the shell agent cannot judge health: the node would sit unhealthy (never
 * electable) with no hint why.
 */
function checkHealthSource(p: Problems, cfg: HafcConfig): void {
  const svc = cfg.service;
  if (cfg.health.check.kind !== 'agent' || svc.agent !== 'shell' || svc.check !== undefined) return;
  if (p.isBad('service') || p.isBad('health.check')) return;
  p.fail(
    'health.check',
    'is "agent" (the default), but the shell agent has no service.check command; set service.check or a health.check of kind http, tcp or command',
  );
}

const NO_GRACEFUL = 'needs a service agent that can ask the old active to demote, and the';

/**
 * Graceful fencing asks the old active's agent to demote its service; an agent without that
 * (shell) would fail it on every failover, so the first failover would log a fencing failure
 * and depend on the next method. Refused here rather than discovered during an outage.
 */
function checkGraceful(p: Problems, cfg: HafcConfig, methodsGiven: boolean): void {
  if (p.isBad('service') || p.isBad('fencing.methods')) return;
  if (variantOf(cfg.service).gracefulFencing) return;
  const agent = cfg.service.agent;
  if (!methodsGiven) {
    p.fail(
      'fencing.methods',
      `is required with the ${agent} agent: the default, graceful, ${NO_GRACEFUL} ${agent} agent cannot; list shell, ssh or http methods`,
    );
    return;
  }
  cfg.fencing.methods.forEach((method, i) => {
    if (method.kind !== 'graceful') return;
    p.fail(
      `fencing.methods[${i}]`,
      `graceful ${NO_GRACEFUL} ${agent} agent cannot; remove it and fence with shell, ssh or http`,
    );
  });
}

/**
 * A standby finds the active's server by the node.host and node.port in the lock record, and the
 * agent starts its server on service.port: they must be one port, or a standby would follow
 * whatever listens at node.port.
 */
function checkPostgresPort(p: Problems, cfg: HafcConfig): void {
  const svc = cfg.service;
  if (svc.agent !== 'postgresql' || p.isBad('service') || p.isBad('node.port')) return;
  if (svc.port === undefined) {
    svc.port = cfg.node.port;
    return;
  }
  if (svc.port !== cfg.node.port) {
    p.fail(
      'service.port',
      `must equal node.port (${cfg.node.port}): the lock record carries node.port, which is how a standby finds this server; got ${svc.port}`,
    );
  }
}

/**
 * A redis node's lock record carries node.host:node.port, and that is where peers follow and
 * fence it: the agent's own server must be on that port. Its address defaults to it here, so the
 * agent reads one resolved value.
 */
function checkRedisAddress(p: Problems, cfg: HafcConfig): void {
  const svc = cfg.service;
  if (svc.agent !== 'redis' || p.isBad('service') || p.isBad('node')) return;
  if (svc.address === undefined) {
    const host = cfg.node.host.includes(':') ? `[${cfg.node.host}]` : cfg.node.host;
    svc.address = `${host}:${cfg.node.port}`;
    return;
  }
  const parsed = parseHostPort(svc.address, 1);
  if (typeof parsed === 'string' || parsed.port === cfg.node.port) return;
  p.fail(
    'service.address',
    `port ${parsed.port} is not node.port ${cfg.node.port}; node.port must be the Redis server's own port (peers follow and fence the node at node.host:node.port), got ${show(svc.address)}`,
  );
}

function fencingMethodsGiven(raw: Record<string, unknown>): boolean {
  const fencing = raw.fencing;
  return isMapping(fencing) && fencing.methods !== undefined;
}

/** Validates `raw` (the file's data), applies the declared defaults and the timing rules. */
export function validateConfig(raw: unknown, options: ValidateOptions = {}): ValidationResult {
  if (raw === null || raw === undefined) {
    return { problems: ['the file is empty; it needs at least cluster, node, zookeeper and service'] };
  }
  if (!isMapping(raw))
    return { problems: [`the file must be a mapping of keys to values, got ${show(raw)}`] };
  const p = new Problems(MAX_PROBLEMS);
  const ctx = { hostname: options.hostname ?? osHostname() };
  // Bad keys are reported and fall back to defaults, so this is a full HafcConfig for the rules
  // below, which skip the keys reported; it is returned only when nothing was.
  const config = readShape(p, CONFIG.keys, raw, '', ctx) as HafcConfig;
  checkHealthSource(p, config);
  checkGraceful(p, config, fencingMethodsGiven(raw));
  checkPostgresPort(p, config);
  checkRedisAddress(p, config);
  const problems = [...p.messages, ...timingProblems(config, (path) => p.isBad(path))];
  if (problems.length === 0) return { config, problems };
  return p.omitted === 0 ? { problems } : { problems, omitted: p.omitted };
}
