/**
 * Turns the plain data read from a config file into a HafcConfig, collecting every problem
 * instead of stopping at the first: an operator fixing a file wants the whole list at once.
 * Hand-written rather than schema-driven so each message names the key and the value exactly.
 */
import { hostname as osHostname } from 'node:os';
import { isIP } from 'node:net';
import type {
  Command,
  FenceMethodConfig,
  HafcConfig,
  HealthCheckConfig,
  HttpServiceConfig,
  ServiceConfig,
  ShellServiceConfig,
} from './types.js';
import { closest, integerRule, isInteger, show } from './format.js';
import { MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS, timingProblems } from './timing.js';

export const AVAILABLE_AGENTS = ['shell', 'http'] as const;
/** In the contract, not built yet: named so the error says "not available" rather than "unknown". */
export const PLANNED_AGENTS = ['hdfs-namenode', 'yarn-resourcemanager', 'postgresql', 'redis'] as const;

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
export const DEFAULT_CONTROL_LISTEN = '127.0.0.1:9779';

export function defaultRequestTimeoutMs(sessionTimeoutMs: number): number {
  return Math.round(Math.min(sessionTimeoutMs / 3, 5000));
}

export function defaultSafetyMarginMs(sessionTimeoutMs: number): number {
  return Math.round(Math.max(1000, sessionTimeoutMs / 10));
}

export interface ValidateOptions {
  /** node.host when the file has none; os.hostname() unless given (tests pin it). */
  hostname?: string;
}

export interface ValidationResult {
  /** Present only when `problems` is empty. */
  config?: HafcConfig;
  /** One message per problem, `key.path: what is wrong, got VALUE`, without the source. */
  problems: string[];
}

type Mapping = Record<string, unknown>;

class Problems {
  readonly messages: string[] = [];
  private readonly badPaths: string[] = [];

  fail(path: string, message: string): undefined {
    this.messages.push(`${path}: ${message}`);
    this.badPaths.push(path);
    return undefined;
  }

  unknownKey(path: string, suggestion: string | undefined): void {
    const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
    this.messages.push(`unknown key "${path}"${hint}`);
    this.badPaths.push(path);
  }

  /** Whether `path`, a section containing it, or a key inside it was reported. */
  isBad(path: string): boolean {
    return this.badPaths.some(
      (bad) => bad === path || path.startsWith(`${bad}.`) || bad.startsWith(`${path}.`),
    );
  }
}

function join(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A mapping whose keys must all be in `keys`. `null` counts as empty because that is what YAML
 * makes of a section whose every line is commented out.
 */
function section(p: Problems, value: unknown, path: string, keys: readonly string[]): Mapping | undefined {
  if (value === null) return {};
  if (!isMapping(value)) return p.fail(path, `must be a mapping, got ${show(value)}`);
  for (const key of Object.keys(value)) {
    if (keys.includes(key)) continue;
    const suggestion = closest(key, keys);
    p.unknownKey(join(path, key), suggestion === undefined ? undefined : join(path, suggestion));
  }
  return value;
}

function has(m: Mapping, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(m, key) && m[key] !== undefined;
}

function integer(
  p: Problems,
  m: Mapping,
  key: string,
  path: string,
  dflt: number,
  min: number,
  max?: number,
) {
  if (!has(m, key)) return dflt;
  const value = m[key];
  if (isInteger(value, min, max)) return value;
  p.fail(join(path, key), `${integerRule(min, max)}, got ${show(value)}`);
  return dflt;
}

function boolean(p: Problems, m: Mapping, key: string, path: string, dflt: boolean): boolean {
  if (!has(m, key)) return dflt;
  const value = m[key];
  if (typeof value === 'boolean') return value;
  p.fail(join(path, key), `must be true or false, got ${show(value)}`);
  return dflt;
}

function oneOf<T extends string>(
  p: Problems,
  m: Mapping,
  key: string,
  path: string,
  choices: readonly T[],
  dflt: T,
): T {
  if (!has(m, key)) return dflt;
  const value = m[key];
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  p.fail(
    join(path, key),
    `must be one of ${choices.join(', ')}, got ${show(value)}${didYouMean(value, choices)}`,
  );
  return dflt;
}

/**
 * What a string key must look like: `expect` completes "key: ..." in messages; `test` returns
 * true when the text is fine, else a detail saying what exactly is wrong ("" for none).
 */
interface StringRule {
  expect: string;
  test(value: string): true | string;
}

function badString(rule: StringRule, value: unknown): string {
  const detail = typeof value === 'string' ? rule.test(value) : '';
  return `${rule.expect}, got ${show(value)}${detail === true || detail === '' ? '' : ` (${detail})`}`;
}

function text(
  p: Problems,
  m: Mapping,
  key: string,
  path: string,
  required: boolean,
  rule: StringRule,
): string | undefined {
  if (!has(m, key)) return required ? p.fail(join(path, key), 'is required') : undefined;
  const value = m[key];
  if (typeof value === 'string' && rule.test(value) === true) return value;
  return p.fail(join(path, key), badString(rule, value));
}

const NAME: StringRule = {
  expect:
    'must match [a-z0-9][a-z0-9_-]{0,62} (lower-case letters, digits, "_" and "-"; at most 63 characters)',
  test: (value) => NAME_PATTERN.test(value) || '',
};

// Underscores are not DNS but are common in container and compose service names, and resolve.
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

function isHost(value: string): boolean {
  return HOSTNAME.test(value) || isIP(value) !== 0;
}

const HOST: StringRule = {
  expect: 'must be a host name or an IP address',
  test: (value) => isHost(value) || '',
};

/** `host:port`, IPv6 in brackets; returns the parts or what is wrong. */
function parseHostPort(value: string, minPort: number): { host: string; port: number } | string {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]+)$/.exec(value);
  if (match === null) return '';
  const host = match[1] ?? match[2] ?? '';
  if (match[1] !== undefined ? isIP(host) !== 6 : !isHost(host))
    return `"${host}" is not a host name or IP address`;
  const port = Number(match[3]);
  if (!isInteger(port, minPort, 65535)) return `port ${match[3]} is not from ${minPort} to 65535`;
  return { host, port };
}

function hostPort(minPort: number): StringRule {
  return {
    expect: 'must be host:port',
    test: (value) => {
      const parsed = parseHostPort(value, minPort);
      return typeof parsed === 'string' ? parsed : true;
    },
  };
}

const URL_RULE: StringRule = {
  expect: 'must be an http:// or https:// URL',
  test: (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:' || '';
    } catch {
      return '';
    }
  },
};

const URL_PATH: StringRule = {
  expect: 'must be a URL path starting with "/"',
  test: (value) => value.startsWith('/') || '',
};

/**
 * Files are read by the agent under systemd, whose working directory is "/": a relative path
 * would silently mean something else than in the shell where the operator tried it.
 */
const ABSOLUTE_PATH: StringRule = {
  expect: 'must be an absolute file path',
  test: (value) => value.startsWith('/') || '',
};

const USER: StringRule = {
  expect: 'must be a user name',
  test: (value) => /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(value) || '',
};

const REGEX: StringRule = {
  expect: 'must be a valid regular expression',
  test: (value) => {
    try {
      new RegExp(value);
      return true;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  },
};

/** What is wrong with `value` as an absolute znode path without trailing slash, if anything. */
function znodePath(value: string): true | string {
  if (!value.startsWith('/')) return 'it does not start with "/"';
  if (value === '/' || value.endsWith('/')) return 'it ends with "/"';
  const parts = value.slice(1).split('/');
  if (parts.some((part) => part === '')) return 'it has an empty segment';
  if (parts.some((part) => part === '.' || part === '..')) return 'it has a "." or ".." segment';
  // ZooKeeper rejects these code points in paths (PathUtils.validatePath).
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]/.test(value))
    return 'it has a control or reserved character';
  if (parts[0] === 'zookeeper') return '/zookeeper is reserved by ZooKeeper';
  return true;
}

const ROOT: StringRule = {
  expect: 'must be an absolute znode path without a trailing slash, e.g. /hafc',
  test: znodePath,
};

/**
 * The client we use (node-zookeeper-client) splits each server on ":" and has no IPv6 form, so
 * only host names and IPv4 addresses are accepted here.
 */
const CONNECT: StringRule = {
  expect: 'must be host:port[,host:port...][/chroot]',
  test: (value) => {
    const slash = value.indexOf('/');
    const servers = slash === -1 ? value : value.slice(0, slash);
    if (slash !== -1) {
      const chroot = znodePath(value.slice(slash));
      if (chroot !== true) return `bad chroot: ${chroot}`;
      // Legal in a znode name, but the connect string would read as two server lists.
      if (/[\s,]/.test(value.slice(slash))) return 'bad chroot: it has whitespace or a comma';
    }
    if (servers === '') return 'no server';
    for (const server of servers.split(',')) {
      const match = /^([^:]*):([^:]*)$/.exec(server);
      if (match === null) return `"${server}" is not host:port`;
      const [, host = '', port = ''] = match;
      if (!HOSTNAME.test(host)) return `"${host}" is not a host name or IPv4 address`;
      if (!/^[0-9]+$/.test(port) || !isInteger(Number(port), 1, 65535))
        return `port "${port}" is not from 1 to 65535`;
    }
    return true;
  },
};

const COMMAND_EXPECTED = 'must be a command: a non-empty string, or a non-empty list of non-empty strings';

function command(p: Problems, m: Mapping, key: string, path: string, required: boolean): Command | undefined {
  const full = join(path, key);
  if (!has(m, key)) return required ? p.fail(full, 'is required') : undefined;
  return commandValue(p, m[key], full);
}

function commandValue(p: Problems, value: unknown, path: string): Command | undefined {
  if (typeof value === 'string') {
    return value.trim() === '' ? p.fail(path, `${COMMAND_EXPECTED}, got ${show(value)}`) : value;
  }
  if (!Array.isArray(value) || value.length === 0)
    return p.fail(path, `${COMMAND_EXPECTED}, got ${show(value)}`);
  let ok = true;
  value.forEach((arg: unknown, i) => {
    if (typeof arg !== 'string' || arg === '') {
      p.fail(`${path}[${i}]`, `must be a non-empty string, got ${show(arg)}`);
      ok = false;
    }
  });
  return ok ? (value as string[]) : undefined;
}

const STATUS_EXPECTED = 'must be an HTTP status (an integer from 100 to 599) or a non-empty list of them';

function expectStatus(p: Problems, m: Mapping, key: string, path: string): number[] {
  const full = join(path, key);
  if (!has(m, key)) return [200];
  const value = m[key];
  if (isInteger(value, 100, 599)) return [value];
  if (!Array.isArray(value) || value.length === 0) {
    p.fail(full, `${STATUS_EXPECTED}, got ${show(value)}`);
    return [200];
  }
  let ok = true;
  value.forEach((status: unknown, i) => {
    if (!isInteger(status, 100, 599)) {
      p.fail(`${full}[${i}]`, `must be an HTTP status (an integer from 100 to 599), got ${show(status)}`);
      ok = false;
    }
  });
  return ok ? (value as number[]) : [200];
}

const CHECK_KINDS = ['http', 'tcp', 'command'] as const;
const CHECK_KEYS = [...CHECK_KINDS, 'expectStatus', 'expectBodyMatches'];
const CHECK_EXPECTED = 'must be agent, {http: URL}, {tcp: "host:port"} or {command: COMMAND}';

function healthCheck(p: Problems, h: Mapping): HealthCheckConfig {
  const path = 'health.check';
  const agent: HealthCheckConfig = { kind: 'agent' };
  if (!has(h, 'check') || h.check === null || h.check === 'agent') return agent;
  const value = h.check;
  if (!isMapping(value)) return p.fail(path, `${CHECK_EXPECTED}, got ${show(value)}`) ?? agent;
  const c = section(p, value, path, CHECK_KEYS) ?? {};
  const kinds = CHECK_KINDS.filter((kind) => has(c, kind));
  const [kind] = kinds;
  if (kinds.length !== 1 || kind === undefined) {
    const got = kinds.length === 0 ? 'none' : kinds.join(' and ');
    return p.fail(path, `must have exactly one of http, tcp, command, got ${got}`) ?? agent;
  }
  if (kind !== 'http') {
    for (const key of ['expectStatus', 'expectBodyMatches']) {
      if (has(c, key)) p.fail(join(path, key), `is only valid in an http check, not a ${kind} check`);
    }
  }
  if (kind === 'tcp') {
    const address = text(p, c, 'tcp', path, true, hostPort(1));
    const parsed = address === undefined ? undefined : parseHostPort(address, 1);
    if (parsed === undefined || typeof parsed === 'string') return agent;
    return { kind: 'tcp', host: parsed.host, port: parsed.port };
  }
  if (kind === 'command') {
    const cmd = command(p, c, 'command', path, true);
    return cmd === undefined ? agent : { kind: 'command', command: cmd };
  }
  const url = text(p, c, 'http', path, true, URL_RULE);
  const statuses = expectStatus(p, c, 'expectStatus', path);
  const pattern = text(p, c, 'expectBodyMatches', path, false, REGEX);
  if (url === undefined) return agent;
  const check: HealthCheckConfig = { kind: 'http', url, expectStatus: statuses };
  if (pattern !== undefined) check.expectBodyMatches = pattern;
  return check;
}

function didYouMean(word: unknown, candidates: readonly string[]): string {
  const suggestion = typeof word === 'string' ? closest(word, candidates) : undefined;
  return suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
}

const SHELL_KEYS = ['agent', 'toActive', 'toStandby', 'state', 'check', 'hookTimeoutMs'];
const HTTP_KEYS = ['agent', 'url', 'rolePath', 'statePath', 'healthPath', 'requestTimeoutMs'];
const AVAILABLE = `available: ${AVAILABLE_AGENTS.join(', ')}`;

function service(p: Problems, value: unknown): ServiceConfig {
  const placeholder: ShellServiceConfig = {
    agent: 'shell',
    toActive: 'true',
    toStandby: 'true',
    hookTimeoutMs: 5000,
  };
  if (value === undefined) return p.fail('service', 'is required') ?? placeholder;
  if (!isMapping(value)) return p.fail('service', `must be a mapping, got ${show(value)}`) ?? placeholder;
  const agent = value.agent;
  if (agent === undefined || agent === null)
    return p.fail('service.agent', `is required (${AVAILABLE})`) ?? placeholder;
  if (typeof agent === 'string' && (PLANNED_AGENTS as readonly string[]).includes(agent)) {
    return (
      p.fail('service.agent', `${show(agent)} is not available in this version (${AVAILABLE})`) ?? placeholder
    );
  }
  if (agent === 'shell') {
    const s = section(p, value, 'service', SHELL_KEYS) ?? {};
    const cfg: ShellServiceConfig = {
      agent: 'shell',
      toActive: command(p, s, 'toActive', 'service', true) ?? 'true',
      toStandby: command(p, s, 'toStandby', 'service', true) ?? 'true',
      hookTimeoutMs: integer(p, s, 'hookTimeoutMs', 'service', 5000, 1),
    };
    const state = command(p, s, 'state', 'service', false);
    if (state !== undefined) cfg.state = state;
    const check = command(p, s, 'check', 'service', false);
    if (check !== undefined) cfg.check = check;
    return cfg;
  }
  if (agent === 'http') {
    const s = section(p, value, 'service', HTTP_KEYS) ?? {};
    return {
      agent: 'http',
      // The paths are appended to the base URL, so a trailing slash would double up.
      url: (text(p, s, 'url', 'service', true, URL_RULE) ?? 'http://invalid').replace(/\/+$/, ''),
      rolePath: text(p, s, 'rolePath', 'service', false, URL_PATH) ?? '/role',
      statePath: text(p, s, 'statePath', 'service', false, URL_PATH) ?? '/role',
      healthPath: text(p, s, 'healthPath', 'service', false, URL_PATH) ?? '/health',
      requestTimeoutMs: integer(p, s, 'requestTimeoutMs', 'service', 5000, 1),
    } satisfies HttpServiceConfig;
  }
  const hint = didYouMean(agent, [...AVAILABLE_AGENTS, ...PLANNED_AGENTS]);
  return (
    p.fail('service.agent', `must be one of ${AVAILABLE_AGENTS.join(', ')}, got ${show(agent)}${hint}`) ??
    placeholder
  );
}

const FENCE_KINDS = ['graceful', 'shell', 'ssh', 'http'];
const FENCE_EXPECTED =
  'must be graceful, ssh, {shell: COMMAND}, {ssh: {user, port, identityFile}} or {http: URL}';

function fenceMethod(p: Problems, value: unknown, path: string): FenceMethodConfig | undefined {
  if (value === 'graceful') return { kind: 'graceful' };
  if (value === 'ssh') return { kind: 'ssh', user: 'root', port: 22 };
  if (!isMapping(value)) {
    return p.fail(path, `${FENCE_EXPECTED}, got ${show(value)}${didYouMean(value, ['graceful', 'ssh'])}`);
  }
  const keys = Object.keys(value);
  const [kind] = keys;
  if (keys.length !== 1 || kind === undefined) {
    return p.fail(path, `must have exactly one key (${FENCE_KINDS.join(', ')}), got ${show(value)}`);
  }
  const inner = value[kind];
  const innerPath = join(path, kind);
  switch (kind) {
    case 'graceful':
      // `- graceful:` in YAML is {graceful: null}; take it as the plain string form.
      if (inner === null || (isMapping(inner) && Object.keys(inner).length === 0))
        return { kind: 'graceful' };
      return p.fail(innerPath, `takes no options, got ${show(inner)}`);
    case 'shell': {
      const cmd = commandValue(p, inner, innerPath);
      return cmd === undefined ? undefined : { kind: 'shell', command: cmd };
    }
    case 'ssh': {
      const s = section(p, inner, innerPath, ['user', 'port', 'identityFile']);
      if (s === undefined) return undefined;
      const method: FenceMethodConfig = {
        kind: 'ssh',
        user: text(p, s, 'user', innerPath, false, USER) ?? 'root',
        port: integer(p, s, 'port', innerPath, 22, 1, 65535),
      };
      const identityFile = text(p, s, 'identityFile', innerPath, false, ABSOLUTE_PATH);
      if (identityFile !== undefined) method.identityFile = identityFile;
      return method;
    }
    case 'http': {
      if (typeof inner === 'string') {
        if (URL_RULE.test(inner) !== true) return p.fail(innerPath, badString(URL_RULE, inner));
        return { kind: 'http', url: inner, method: 'POST', expectStatus: [200] };
      }
      if (!isMapping(inner)) {
        return p.fail(
          innerPath,
          `must be a URL or a mapping {url, method, expectStatus}, got ${show(inner)}`,
        );
      }
      const s = section(p, inner, innerPath, ['url', 'method', 'expectStatus']) ?? {};
      const url = text(p, s, 'url', innerPath, true, URL_RULE);
      const method = oneOf(p, s, 'method', innerPath, ['POST', 'PUT', 'GET'] as const, 'POST');
      const statuses = expectStatus(p, s, 'expectStatus', innerPath);
      return url === undefined ? undefined : { kind: 'http', url, method, expectStatus: statuses };
    }
    default:
      return p.fail(
        path,
        `unknown fencing method ${show(kind)}${didYouMean(kind, FENCE_KINDS)}; ` +
          `expected ${FENCE_EXPECTED.replace(/^must be /, '')}`,
      );
  }
}

function fenceMethods(p: Problems, f: Mapping): FenceMethodConfig[] {
  const graceful: FenceMethodConfig[] = [{ kind: 'graceful' }];
  if (!has(f, 'methods')) return graceful;
  const value = f.methods;
  if (!Array.isArray(value) || value.length === 0) {
    // An empty list would make every promotion fail (nothing can fence), so it is never meant.
    return (
      p.fail('fencing.methods', `must be a non-empty list of fencing methods, got ${show(value)}`) ?? graceful
    );
  }
  const methods: FenceMethodConfig[] = [];
  value.forEach((entry: unknown, i) => {
    const method = fenceMethod(p, entry, `fencing.methods[${i}]`);
    if (method !== undefined) methods.push(method);
  });
  return methods.length === value.length ? methods : graceful;
}

/**
 * A required section. Returns undefined when it is missing or not a mapping (reported), so the
 * caller skips its required keys rather than piling "is required" on top of the real problem.
 */
function requiredSection(
  p: Problems,
  top: Mapping,
  key: string,
  keys: readonly string[],
): Mapping | undefined {
  if (!has(top, key) || top[key] === null) return p.fail(key, 'is required');
  return section(p, top[key], key, keys);
}

/** An optional section: {} when absent, null or broken (its defaults then apply). */
function optionalSection(p: Problems, top: Mapping, key: string, keys: readonly string[]): Mapping {
  return (has(top, key) ? section(p, top[key], key, keys) : undefined) ?? {};
}

const TOP_KEYS = [
  'cluster',
  'node',
  'zookeeper',
  'health',
  'service',
  'fencing',
  'election',
  'control',
  'log',
];
const NODE_KEYS = ['id', 'host', 'port', 'priority', 'noFailover'];
const ZK_KEYS = [
  'connect',
  'root',
  'sessionTimeoutMs',
  'onConnectionLoss',
  'auth',
  'requestTimeoutMs',
  'safetyMarginMs',
];

/** Validates `raw` (the file's data), applies the defaults of types.ts and the timing rules. */
export function validateConfig(raw: unknown, options: ValidateOptions = {}): ValidationResult {
  if (raw === null || raw === undefined) {
    return { problems: ['the file is empty; it needs at least cluster, node, zookeeper and service'] };
  }
  if (!isMapping(raw))
    return { problems: [`the file must be a mapping of keys to values, got ${show(raw)}`] };
  const p = new Problems();
  const top = section(p, raw, '', TOP_KEYS) ?? {};

  const cluster = text(p, top, 'cluster', '', true, NAME) ?? 'invalid';

  const n = requiredSection(p, top, 'node', NODE_KEYS);
  const node: HafcConfig['node'] = {
    id: (n && text(p, n, 'id', 'node', true, NAME)) ?? 'invalid',
    host: (n && text(p, n, 'host', 'node', false, HOST)) ?? options.hostname ?? osHostname(),
    port:
      n === undefined
        ? 0
        : has(n, 'port')
          ? integer(p, n, 'port', 'node', 0, 1, 65535)
          : (p.fail('node.port', 'is required') ?? 0),
    priority: n === undefined ? 0 : integer(p, n, 'priority', 'node', 0, 0, 1_000_000),
    noFailover: n === undefined ? false : boolean(p, n, 'noFailover', 'node', false),
  };

  const z = requiredSection(p, top, 'zookeeper', ZK_KEYS);
  const zk = z ?? {};
  const sessionTimeoutMs = integer(
    p,
    zk,
    'sessionTimeoutMs',
    'zookeeper',
    DEFAULT_SESSION_TIMEOUT_MS,
    MIN_SESSION_TIMEOUT_MS,
    MAX_SESSION_TIMEOUT_MS,
  );
  const zookeeper: HafcConfig['zookeeper'] = {
    connect: (z && text(p, z, 'connect', 'zookeeper', true, CONNECT)) ?? '',
    root: text(p, zk, 'root', 'zookeeper', false, ROOT) ?? '/hafc',
    sessionTimeoutMs,
    onConnectionLoss: oneOf(p, zk, 'onConnectionLoss', 'zookeeper', ['demote', 'hold'] as const, 'demote'),
    requestTimeoutMs: integer(
      p,
      zk,
      'requestTimeoutMs',
      'zookeeper',
      defaultRequestTimeoutMs(sessionTimeoutMs),
      1,
    ),
    safetyMarginMs: integer(p, zk, 'safetyMarginMs', 'zookeeper', defaultSafetyMarginMs(sessionTimeoutMs), 0),
  };
  if (has(zk, 'auth')) {
    const a = section(p, zk.auth, 'zookeeper.auth', ['scheme', 'credentialsFile']);
    if (a !== undefined) {
      oneOf(p, a, 'scheme', 'zookeeper.auth', ['digest'] as const, 'digest');
      const credentialsFile = text(p, a, 'credentialsFile', 'zookeeper.auth', true, ABSOLUTE_PATH);
      if (credentialsFile !== undefined) zookeeper.auth = { scheme: 'digest', credentialsFile };
    }
  }

  const h = optionalSection(p, top, 'health', ['intervalMs', 'timeoutMs', 'fall', 'rise', 'check']);
  const health: HafcConfig['health'] = {
    intervalMs: integer(p, h, 'intervalMs', 'health', 1000, 1),
    // Not 5000: the default intervalMs x fall is 3000, and the timeout must be below it.
    timeoutMs: integer(p, h, 'timeoutMs', 'health', 2000, 1),
    fall: integer(p, h, 'fall', 'health', 3, 1),
    rise: integer(p, h, 'rise', 'health', 2, 1),
    check: healthCheck(p, h),
  };

  const svc = service(p, has(top, 'service') ? top.service : undefined);
  // Without a check hook the shell agent cannot judge health: the node would sit unhealthy (never
  // electable) with no hint why. Say so now.
  if (
    health.check.kind === 'agent' &&
    svc.agent === 'shell' &&
    svc.check === undefined &&
    !p.isBad('service')
  ) {
    p.fail(
      'health.check',
      'is "agent" (the default), but the shell agent has no service.check command; set service.check or a health.check of kind http, tcp or command',
    );
  }

  const f = optionalSection(p, top, 'fencing', ['methods', 'timeoutMs']);
  const fencing: HafcConfig['fencing'] = {
    methods: fenceMethods(p, f),
    timeoutMs: integer(p, f, 'timeoutMs', 'fencing', 30_000, 1),
  };

  const e = optionalSection(p, top, 'election', ['priorityGraceMs', 'backoffMs']);
  const election: HafcConfig['election'] = {
    priorityGraceMs: integer(p, e, 'priorityGraceMs', 'election', 3000, 0),
    backoffMs: integer(p, e, 'backoffMs', 'election', 5000, 0),
  };

  const c = optionalSection(p, top, 'control', ['listen', 'tokenFile']);
  const control: HafcConfig['control'] = {
    // Port 0 (any free port) is allowed here: tests run many agents on one host.
    listen: text(p, c, 'listen', 'control', false, hostPort(0)) ?? DEFAULT_CONTROL_LISTEN,
  };
  const tokenFile = text(p, c, 'tokenFile', 'control', false, ABSOLUTE_PATH);
  if (tokenFile !== undefined) control.tokenFile = tokenFile;

  const l = optionalSection(p, top, 'log', ['level', 'format']);
  const log: HafcConfig['log'] = {
    level: oneOf(p, l, 'level', 'log', ['debug', 'info', 'warn', 'error'] as const, 'info'),
    format: oneOf(p, l, 'format', 'log', ['json', 'pretty'] as const, 'json'),
  };

  const config: HafcConfig = {
    cluster,
    node,
    zookeeper,
    health,
    service: svc,
    fencing,
    election,
    control,
    log,
  };
  const problems = [...p.messages, ...timingProblems(config, (path) => p.isBad(path))];
  return problems.length === 0 ? { config, problems } : { problems };
}
