/**
 * Keys with several input forms, each normalised into one output type: commands (string or
 * argv), HTTP status lists, health checks and fencing methods (a bare word or a one-key mapping).
 */
import { custom, integer, oneOf, string, type Context, type JsonSchema } from './declare.js';
import { isInteger, show } from './format.js';
import { has, isMapping, join, type Problems } from './problems.js';
import { badString, didYouMean, readKey, readShape } from './read.js';
import { ABSOLUTE_PATH, hostPort, parseHostPort, REGEX, URL_RULE, USER } from './rules.js';
import type { Command, FenceMethodConfig, HealthCheckConfig } from './types.js';

const COMMAND_EXPECTED = 'must be a command: a non-empty string, or a non-empty list of non-empty strings';

export const COMMAND_SCHEMA: JsonSchema = {
  oneOf: [
    { type: 'string', minLength: 1, description: 'run with /bin/sh -c' },
    { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'argv, no shell' },
  ],
};

export function readCommand(p: Problems, value: unknown, path: string): Command | undefined {
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

/** A command key; `doc` says when it runs and what its exit status or output means. */
export function command<const O extends { doc: string; optional?: true }>(o: O) {
  return custom<Command>()({
    ...o,
    type: 'command',
    schema: COMMAND_SCHEMA,
    read: (p: Problems, value: unknown, path: string) => readCommand(p, value, path),
  });
}

const STATUS_EXPECTED = 'must be an HTTP status (an integer from 100 to 599) or a non-empty list of them';
const STATUS_SCHEMA: JsonSchema = { type: 'integer', minimum: 100, maximum: 599 };

function readStatuses(p: Problems, value: unknown, path: string): number[] | undefined {
  if (isInteger(value, 100, 599)) return [value];
  if (!Array.isArray(value) || value.length === 0)
    return p.fail(path, `${STATUS_EXPECTED}, got ${show(value)}`);
  let ok = true;
  value.forEach((status: unknown, i) => {
    if (!isInteger(status, 100, 599)) {
      p.fail(`${path}[${i}]`, `must be an HTTP status (an integer from 100 to 599), got ${show(status)}`);
      ok = false;
    }
  });
  return ok ? (value as number[]) : undefined;
}

const expectStatus = custom<number[]>()({
  doc: 'The HTTP statuses that count as success: one, or a list.',
  type: 'HTTP status or list of them',
  default: [200],
  schema: { oneOf: [STATUS_SCHEMA, { type: 'array', minItems: 1, items: STATUS_SCHEMA }] },
  read: (p: Problems, value: unknown, path: string) => readStatuses(p, value, path),
});

// ---- health.check ----

const HTTP_CHECK = {
  http: string({ rule: URL_RULE, doc: 'GET this URL; healthy when the status is one of expectStatus.' }),
  expectStatus,
  expectBodyMatches: string({
    rule: REGEX,
    optional: true,
    doc: 'Also require the response body to match this regular expression.',
  }),
};
const TCP_CHECK = {
  tcp: string({ rule: hostPort(1), doc: 'Healthy when a TCP connection to host:port opens.' }),
};
const CHECK_KINDS = ['http', 'tcp', 'command'] as const;
const CHECK_KEYS = [...CHECK_KINDS, 'expectStatus', 'expectBodyMatches'];
const CHECK_EXPECTED = 'must be agent, {http: URL}, {tcp: "host:port"} or {command: COMMAND}';

function readHealthCheck(
  p: Problems,
  value: unknown,
  path: string,
  ctx: Context,
): HealthCheckConfig | undefined {
  if (value === null || value === 'agent') return { kind: 'agent' };
  if (!isMapping(value)) return p.fail(path, `${CHECK_EXPECTED}, got ${show(value)}`);
  const kinds = CHECK_KINDS.filter((kind) => has(value, kind));
  const [kind] = kinds;
  if (kinds.length !== 1 || kind === undefined) {
    readShape(p, {}, value, path, ctx, CHECK_KEYS);
    const got = kinds.length === 0 ? 'none' : kinds.join(' and ');
    return p.fail(path, `must have exactly one of http, tcp, command, got ${got}`);
  }
  if (kind !== 'http') {
    readShape(p, {}, value, path, ctx, CHECK_KEYS);
    for (const key of ['expectStatus', 'expectBodyMatches']) {
      if (has(value, key)) p.fail(join(path, key), `is only valid in an http check, not a ${kind} check`);
    }
  }
  if (kind === 'tcp') {
    const address = readKey(p, TCP_CHECK.tcp, value, 'tcp', path, ctx);
    const parsed = typeof address === 'string' ? parseHostPort(address, 1) : undefined;
    if (parsed === undefined || typeof parsed === 'string') return undefined;
    return { kind: 'tcp', host: parsed.host, port: parsed.port };
  }
  if (kind === 'command') {
    const cmd = readCommand(p, value.command, join(path, 'command'));
    return cmd === undefined ? undefined : { kind: 'command', command: cmd };
  }
  const c = readShape(p, HTTP_CHECK, value, path, ctx, ['tcp', 'command']);
  if (c === undefined || typeof c.http !== 'string') return undefined;
  const check: HealthCheckConfig = { kind: 'http', url: c.http, expectStatus: c.expectStatus as number[] };
  if (typeof c.expectBodyMatches === 'string') check.expectBodyMatches = c.expectBodyMatches;
  return check;
}

export const healthCheck = custom<HealthCheckConfig>()({
  doc: 'How the service\'s health is judged: "agent" asks the service agent (the shell agent runs service.check, the http agent GETs service.url + service.healthPath); or exactly one of the forms below.',
  type: 'agent | {http} | {tcp} | {command}',
  default: { kind: 'agent' },
  defaultText: 'agent',
  forms: [
    { key: 'http', field: HTTP_CHECK.http },
    { key: 'expectStatus', field: expectStatus },
    { key: 'expectBodyMatches', field: HTTP_CHECK.expectBodyMatches },
    { key: 'tcp', field: TCP_CHECK.tcp },
    { key: 'command', type: 'command', doc: 'Healthy when the command exits 0 within health.timeoutMs.' },
  ],
  schema: {
    oneOf: [
      { const: 'agent' },
      { type: 'null' },
      {
        type: 'object',
        properties: {
          http: { type: 'string', pattern: '^https?://' },
          expectStatus: expectStatus.schema,
          expectBodyMatches: { type: 'string' },
        },
        required: ['http'],
        additionalProperties: false,
      },
      {
        type: 'object',
        properties: { tcp: { type: 'string' } },
        required: ['tcp'],
        additionalProperties: false,
      },
      {
        type: 'object',
        properties: { command: COMMAND_SCHEMA },
        required: ['command'],
        additionalProperties: false,
      },
    ],
  },
  read: readHealthCheck,
});

// ---- fencing.methods ----

export const SSH_OPTIONS = {
  user: string({ rule: USER, default: 'root', doc: 'The user to log in as on the old active.' }),
  port: integer({ min: 1, max: 65535, default: 22, doc: "The old active's ssh port." }),
  identityFile: string({
    rule: ABSOLUTE_PATH,
    optional: true,
    doc: "The private key; ssh's own default when left out.",
  }),
};
const HTTP_FENCE = {
  url: string({ rule: URL_RULE, doc: 'Called with a JSON body naming the node to fence.' }),
  method: oneOf(['POST', 'PUT', 'GET'] as const, { default: 'POST', doc: 'The HTTP method.' }),
  expectStatus,
};
const FENCE_KINDS = ['graceful', 'shell', 'ssh', 'http'];
const FENCE_EXPECTED =
  'must be graceful, ssh, {shell: COMMAND}, {ssh: {user, port, identityFile}} or {http: URL}';

function readFenceMethod(
  p: Problems,
  value: unknown,
  path: string,
  ctx: Context,
): FenceMethodConfig | undefined {
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
      const cmd = readCommand(p, inner, innerPath);
      return cmd === undefined ? undefined : { kind: 'shell', command: cmd };
    }
    case 'ssh': {
      const s = readShape(p, SSH_OPTIONS, inner, innerPath, ctx);
      if (s === undefined) return undefined;
      const method: FenceMethodConfig = { kind: 'ssh', user: s.user as string, port: s.port as number };
      if (typeof s.identityFile === 'string') method.identityFile = s.identityFile;
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
      const s = readShape(p, HTTP_FENCE, inner, innerPath, ctx);
      if (s === undefined || typeof s.url !== 'string') return undefined;
      return {
        kind: 'http',
        url: s.url,
        method: s.method as 'POST' | 'PUT' | 'GET',
        expectStatus: s.expectStatus as number[],
      };
    }
    default:
      return p.fail(
        path,
        `unknown fencing method ${show(kind)}${didYouMean(kind, FENCE_KINDS)}; ` +
          `expected ${FENCE_EXPECTED.replace(/^must be /, '')}`,
      );
  }
}

function readFenceMethods(
  p: Problems,
  value: unknown,
  path: string,
  ctx: Context,
): FenceMethodConfig[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    // An empty list would make every promotion fail (nothing can fence), so it is never meant.
    return p.fail(path, `must be a non-empty list of fencing methods, got ${show(value)}`);
  }
  const methods: FenceMethodConfig[] = [];
  value.forEach((entry: unknown, i) => {
    const method = readFenceMethod(p, entry, `${path}[${i}]`, ctx);
    if (method !== undefined) methods.push(method);
  });
  return methods.length === value.length ? methods : undefined;
}

const SSH_SCHEMA: JsonSchema = {
  type: ['object', 'null'],
  properties: {
    user: { type: 'string', pattern: USER.pattern, default: 'root' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 22 },
    identityFile: { type: 'string', pattern: ABSOLUTE_PATH.pattern },
  },
  additionalProperties: false,
};

function oneKey(key: string, schema: JsonSchema): JsonSchema {
  return { type: 'object', properties: { [key]: schema }, required: [key], additionalProperties: false };
}

export const fenceMethods = custom<FenceMethodConfig[]>()({
  doc: "Tried in order until one succeeds; when all fail, this node does not promote. Each is graceful (ask the old active's agent to demote; the http agent can, the shell agent cannot), ssh or {ssh: {...}} (ZKFC's sshfence), {shell: COMMAND}, or {http: URL} / {http: {url, method, expectStatus}} (a STONITH or webhook call).",
  type: 'list of fencing methods',
  default: [{ kind: 'graceful' }],
  defaultText: '[graceful] for an agent with graceful fencing (http); required for the shell agent',
  forms: [
    {
      key: 'graceful',
      type: 'the word graceful',
      doc: "Ask the old active's service agent to demote its service.",
    },
    {
      key: 'shell',
      type: 'command',
      doc: "Exit 0 = fenced. Gets HAFC_TARGET_* and ZKFC's target_host, target_port and target_address.",
    },
    {
      key: 'ssh',
      type: 'the word ssh, or a mapping',
      doc: "ZKFC's sshfence: log in to the old active's host and kill what listens on its port.",
    },
    { key: 'ssh.user', field: SSH_OPTIONS.user },
    { key: 'ssh.port', field: SSH_OPTIONS.port },
    { key: 'ssh.identityFile', field: SSH_OPTIONS.identityFile },
    {
      key: 'http',
      type: 'URL, or a mapping',
      doc: 'A STONITH or webhook call; a URL alone means POST, expecting 200.',
    },
    { key: 'http.url', field: HTTP_FENCE.url },
    { key: 'http.method', field: HTTP_FENCE.method },
    { key: 'http.expectStatus', field: expectStatus },
  ],
  schema: {
    type: 'array',
    minItems: 1,
    items: {
      oneOf: [
        { enum: ['graceful', 'ssh'] },
        oneKey('graceful', { type: 'null' }),
        oneKey('shell', COMMAND_SCHEMA),
        oneKey('ssh', SSH_SCHEMA),
        oneKey('http', {
          oneOf: [
            { type: 'string', pattern: '^https?://' },
            {
              type: 'object',
              properties: {
                url: { type: 'string', pattern: '^https?://' },
                method: { enum: ['POST', 'PUT', 'GET'], default: 'POST' },
                expectStatus: expectStatus.schema,
              },
              required: ['url'],
              additionalProperties: false,
            },
          ],
        }),
      ],
    },
  },
  read: readFenceMethods,
});
