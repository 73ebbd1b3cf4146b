import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { ConfigError } from '../../../src/errors.js';
import { InvalidConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';
import type { HafcConfig } from '../../../src/config/types.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const SRC = 'ns1.yaml';
const OPTS = { hostname: 'this-host' };

const BASE = {
  cluster: 'ns1',
  node: { id: 'nn1', port: 8020 },
  zookeeper: { connect: 'zk1:2181' },
  service: { agent: 'shell', toActive: 'promote', toStandby: 'demote', check: 'probe' },
  // The shell agent has no graceful fencing, the default, so a shell config names its methods.
  fencing: { methods: [{ shell: 'fence' }] },
};

type Plain = Record<string, unknown>;

/** BASE's service as the http agent, which has graceful fencing (so fencing may default). */
const HTTP_SERVICE = {
  agent: 'http',
  url: 'http://127.0.0.1:8008',
  toActive: undefined,
  toStandby: undefined,
  check: undefined,
};

/** BASE with `patch` merged in; an `undefined` in the patch removes the key. */
function withPatch(patch: Plain, base: Plain = BASE): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    if (value === undefined) delete out[key];
    else if (isPlain(value) && isPlain(current)) out[key] = withPatch(value, current);
    else out[key] = value;
  }
  return out;
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parse(patch: Plain = {}): HafcConfig {
  return parseConfig(stringify(withPatch(patch)), SRC, OPTS);
}

function problems(textOrPatch: string | Plain): readonly string[] {
  const text = typeof textOrPatch === 'string' ? textOrPatch : stringify(withPatch(textOrPatch));
  try {
    parseConfig(text, SRC, OPTS);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as InvalidConfigError;
    expect(e.code).toBe('ECONFIG');
    expect(e.message).toBe(e.problems.join('\n'));
    return e.problems;
  }
  throw new Error('expected a ConfigError');
}

/** The single problem of a config, asserting there is exactly one. */
function problem(textOrPatch: string | Plain): string {
  const list = problems(textOrPatch);
  expect(list).toHaveLength(1);
  return list[0] ?? '';
}

describe('parseConfig defaults', () => {
  it('fills every default into a minimal config', () => {
    expect(parse()).toEqual({
      cluster: 'ns1',
      node: { id: 'nn1', host: 'this-host', port: 8020, priority: 0, noFailover: false },
      zookeeper: {
        connect: 'zk1:2181',
        root: '/hafc',
        sessionTimeoutMs: 10000,
        onConnectionLoss: 'demote',
        requestTimeoutMs: 3333,
        safetyMarginMs: 1000,
      },
      health: {
        intervalMs: 1000,
        fastIntervalMs: 50,
        timeoutMs: 2000,
        fall: 3,
        rise: 2,
        check: { kind: 'agent' },
      },
      service: {
        agent: 'shell',
        toActive: 'promote',
        toStandby: 'demote',
        check: 'probe',
        hookTimeoutMs: 5000,
      },
      fencing: { methods: [{ kind: 'shell', command: 'fence' }], timeoutMs: 30000 },
      election: { priorityGraceMs: 3000, backoffMs: 5000 },
      control: { listen: '127.0.0.1:9779' },
      log: { level: 'info', format: 'auto' },
    } satisfies HafcConfig);
  });

  it('uses os.hostname() for node.host when no hostname is given', async () => {
    const { hostname } = await import('node:os');
    const cfg = parseConfig(stringify(BASE), SRC);
    expect(cfg.node.host).toBe(hostname());
  });

  it('derives requestTimeoutMs and safetyMarginMs from sessionTimeoutMs', () => {
    expect(parse({ zookeeper: { sessionTimeoutMs: 30000 } }).zookeeper).toMatchObject({
      requestTimeoutMs: 5000,
      safetyMarginMs: 3000,
    });
    expect(parse({ zookeeper: { sessionTimeoutMs: 8000 } }).zookeeper).toMatchObject({
      requestTimeoutMs: 2667,
      safetyMarginMs: 1000,
    });
  });

  it('takes sections whose lines are all commented out (null) as empty', () => {
    const base = withPatch({ service: HTTP_SERVICE, fencing: undefined });
    const cfg = parseConfig(`${stringify(base)}health:\nfencing:\ncontrol:\nlog:\n`, SRC, OPTS);
    expect(cfg.health.fall).toBe(3);
    expect(cfg.fencing.methods).toEqual([{ kind: 'graceful' }]);
    expect(cfg.control.listen).toBe('127.0.0.1:9779');
  });

  it('fills the http agent defaults and drops a trailing slash from its url', () => {
    const cfg = parse({
      service: {
        agent: 'http',
        url: 'http://127.0.0.1:8008/',
        toActive: undefined,
        toStandby: undefined,
        check: undefined,
      },
    });
    expect(cfg.service).toEqual({
      agent: 'http',
      url: 'http://127.0.0.1:8008',
      rolePath: '/role',
      statePath: '/role',
      healthPath: '/health',
      requestTimeoutMs: 5000,
      gracefulFenceTimeoutMs: 5000,
    });
  });

  it("derives the http agent's gracefulFenceTimeoutMs from its requestTimeoutMs unless given", () => {
    const base = {
      agent: 'http',
      url: 'http://127.0.0.1:8008',
      requestTimeoutMs: 800,
      toActive: undefined,
      toStandby: undefined,
      check: undefined,
    };
    expect(parse({ service: base }).service).toMatchObject({ gracefulFenceTimeoutMs: 800 });
    expect(parse({ service: { ...base, gracefulFenceTimeoutMs: 120 } }).service).toMatchObject({
      requestTimeoutMs: 800,
      gracefulFenceTimeoutMs: 120,
    });
  });

  it('reads every health check form', () => {
    expect(parse({ health: { check: 'agent' } }).health.check).toEqual({ kind: 'agent' });
    expect(parse({ health: { check: { http: 'http://127.0.0.1:8080/health' } } }).health.check).toEqual({
      kind: 'http',
      url: 'http://127.0.0.1:8080/health',
      expectStatus: [200],
    });
    expect(
      parse({ health: { check: { http: 'https://h/x', expectStatus: 204, expectBodyMatches: '^ok$' } } })
        .health.check,
    ).toEqual({ kind: 'http', url: 'https://h/x', expectStatus: [204], expectBodyMatches: '^ok$' });
    expect(parse({ health: { check: { tcp: 'db1:5432' } } }).health.check).toEqual({
      kind: 'tcp',
      host: 'db1',
      port: 5432,
    });
    expect(parse({ health: { check: { tcp: '[::1]:5432' } } }).health.check).toEqual({
      kind: 'tcp',
      host: '::1',
      port: 5432,
    });
    expect(parse({ health: { check: { command: ['pg_isready', '-q'] } } }).health.check).toEqual({
      kind: 'command',
      command: ['pg_isready', '-q'],
    });
  });

  it('reads every fencing method form', () => {
    const cfg = parse({
      service: HTTP_SERVICE,
      fencing: {
        methods: [
          'graceful',
          { shell: ['/usr/bin/fence', '--hard'] },
          'ssh',
          { ssh: { user: 'hdfs', port: 2222, identityFile: '/etc/hafc/id' } },
          { http: 'https://pdu/off' },
          { http: { url: 'https://pdu/off', method: 'PUT', expectStatus: [200, 204] } },
        ],
      },
    });
    expect(cfg.fencing.methods).toEqual([
      { kind: 'graceful' },
      { kind: 'shell', command: ['/usr/bin/fence', '--hard'] },
      { kind: 'ssh', user: 'root', port: 22 },
      { kind: 'ssh', user: 'hdfs', port: 2222, identityFile: '/etc/hafc/id' },
      { kind: 'http', url: 'https://pdu/off', method: 'POST', expectStatus: [200] },
      { kind: 'http', url: 'https://pdu/off', method: 'PUT', expectStatus: [200, 204] },
    ]);
  });

  it('takes `- ssh:` and `- graceful:` (null options) as the plain forms', () => {
    const base = withPatch({ service: HTTP_SERVICE, fencing: undefined });
    const cfg = parseConfig(
      `${stringify(base)}fencing:\n  methods:\n    - graceful:\n    - ssh:\n`,
      SRC,
      OPTS,
    );
    expect(cfg.fencing.methods).toEqual([{ kind: 'graceful' }, { kind: 'ssh', user: 'root', port: 22 }]);
  });

  it('keeps optional settings that are given', () => {
    const cfg = parse({
      node: { host: '10.0.0.5', priority: 100, noFailover: true },
      zookeeper: {
        connect: 'zk1:2181,zk2:2182/prod/hafc',
        root: '/ha/ctl',
        onConnectionLoss: 'hold',
        auth: { credentialsFile: '/etc/hafc/zk.secret' },
      },
      service: { state: 'role', check: ['curl', '-fs', 'http://x/'] },
      control: { listen: '[::1]:0', tokenFile: '/etc/hafc/token' },
      log: { level: 'debug', format: 'pretty' },
    });
    expect(cfg.node).toEqual({ id: 'nn1', host: '10.0.0.5', port: 8020, priority: 100, noFailover: true });
    expect(cfg.zookeeper.auth).toEqual({ scheme: 'digest', credentialsFile: '/etc/hafc/zk.secret' });
    expect(cfg.zookeeper.connect).toBe('zk1:2181,zk2:2182/prod/hafc');
    expect(cfg.service).toMatchObject({ state: 'role', check: ['curl', '-fs', 'http://x/'] });
    expect(cfg.control).toEqual({ listen: '[::1]:0', tokenFile: '/etc/hafc/token' });
    expect(cfg.log).toEqual({ level: 'debug', format: 'pretty' });
  });
});

describe('parseConfig errors', () => {
  it('names the key and the bad value', () => {
    expect(problem({ health: { fall: 'three' } })).toBe(
      'config ns1.yaml: health.fall: must be an integer from 1 to 100, got "three"',
    );
    expect(problem({ health: { fall: 0 } })).toBe(
      'config ns1.yaml: health.fall: must be an integer from 1 to 100, got 0',
    );
    expect(problem({ health: { rise: 1.5 } })).toBe(
      'config ns1.yaml: health.rise: must be an integer from 1 to 100, got 1.5',
    );
    expect(problem({ node: { port: 70000 } })).toBe(
      'config ns1.yaml: node.port: must be an integer from 1 to 65535, got 70000',
    );
    expect(problem({ node: { port: '8020' } })).toBe(
      'config ns1.yaml: node.port: must be an integer from 1 to 65535, got "8020"',
    );
    expect(problem({ node: { priority: -1 } })).toBe(
      'config ns1.yaml: node.priority: must be an integer from 0 to 1000000, got -1',
    );
    expect(problem({ node: { noFailover: 'yes' } })).toBe(
      'config ns1.yaml: node.noFailover: must be true or false, got "yes"',
    );
    expect(problem({ node: { host: 'bad host' } })).toBe(
      'config ns1.yaml: node.host: must be a host name or an IP address, got "bad host"',
    );
    expect(problem({ zookeeper: { sessionTimeoutMs: 999 } })).toBe(
      'config ns1.yaml: zookeeper.sessionTimeoutMs: must be an integer from 1000 to 600000, got 999',
    );
    expect(problem({ log: { level: 'verbose' } })).toBe(
      'config ns1.yaml: log.level: must be one of debug, info, warn, error, got "verbose"',
    );
    expect(problem({ zookeeper: { onConnectionLoss: 'demot' } })).toBe(
      'config ns1.yaml: zookeeper.onConnectionLoss: must be one of demote, hold, got "demot" (did you mean "demote"?)',
    );
  });

  it('checks cluster and node names', () => {
    const expectName =
      'must match [a-z0-9][a-z0-9_-]{0,62} (lower-case letters, digits, "_" and "-"; at most 63 characters)';
    expect(problem({ cluster: 'NS1' })).toBe(`config ns1.yaml: cluster: ${expectName}, got "NS1"`);
    expect(problem({ cluster: '-ns' })).toBe(`config ns1.yaml: cluster: ${expectName}, got "-ns"`);
    expect(problem({ cluster: 'a'.repeat(64) })).toBe(
      `config ns1.yaml: cluster: ${expectName}, got "${'a'.repeat(64)}"`,
    );
    expect(parse({ cluster: 'a'.repeat(63) }).cluster).toBe('a'.repeat(63));
    expect(problem({ node: { id: 7 } })).toBe(`config ns1.yaml: node.id: ${expectName}, got 7`);
    expect(parse({ node: { id: '7' } }).node.id).toBe('7');
  });

  it('reports missing required keys', () => {
    expect(
      problems({ cluster: undefined, node: { port: undefined }, zookeeper: { connect: undefined } }),
    ).toEqual([
      'config ns1.yaml: cluster: is required',
      'config ns1.yaml: node.port: is required',
      'config ns1.yaml: zookeeper.connect: is required',
    ]);
    expect(problems({ node: undefined, zookeeper: undefined, service: undefined })).toEqual([
      'config ns1.yaml: node: is required',
      'config ns1.yaml: zookeeper: is required',
      'config ns1.yaml: service: is required',
    ]);
    expect(problem({ node: 'nn1' })).toBe('config ns1.yaml: node: must be a mapping, got "nn1"');
  });

  it('rejects an empty file or one that is not a mapping', () => {
    expect(problem('')).toBe(
      'config ns1.yaml: the file is empty; it needs at least cluster, node, zookeeper and service',
    );
    expect(problem('- a\n- b\n')).toBe(
      'config ns1.yaml: the file must be a mapping of keys to values, got ["a","b"]',
    );
  });

  it('checks zookeeper.connect', () => {
    const expected = 'config ns1.yaml: zookeeper.connect: must be host:port[,host:port...][/chroot], got';
    expect(problem({ zookeeper: { connect: 'zk1' } })).toBe(`${expected} "zk1" ("zk1" is not host:port)`);
    expect(problem({ zookeeper: { connect: 'zk1:0' } })).toBe(
      `${expected} "zk1:0" (port "0" is not from 1 to 65535)`,
    );
    expect(problem({ zookeeper: { connect: 'zk1:2181,zk2:65536' } })).toBe(
      `${expected} "zk1:2181,zk2:65536" (port "65536" is not from 1 to 65535)`,
    );
    expect(problem({ zookeeper: { connect: 'zk1:2181,' } })).toBe(
      `${expected} "zk1:2181," ("" is not host:port)`,
    );
    expect(problem({ zookeeper: { connect: 'zk1:2181/hafc/' } })).toBe(
      `${expected} "zk1:2181/hafc/" (bad chroot: it ends with "/")`,
    );
    expect(problem({ zookeeper: { connect: '/hafc' } })).toBe(`${expected} "/hafc" (no server)`);
    expect(problem({ zookeeper: { connect: '[::1]:2181' } })).toBe(
      `${expected} "[::1]:2181" ("[::1]:2181" is not host:port)`,
    );
    expect(problem({ zookeeper: { connect: 2181 } })).toBe(`${expected} 2181`);
  });

  it('checks zookeeper.root', () => {
    const expected =
      'config ns1.yaml: zookeeper.root: must be an absolute znode path without a trailing slash, e.g. /hafc, got';
    expect(problem({ zookeeper: { root: 'hafc' } })).toBe(`${expected} "hafc" (it does not start with "/")`);
    expect(problem({ zookeeper: { root: '/hafc/' } })).toBe(`${expected} "/hafc/" (it ends with "/")`);
    expect(problem({ zookeeper: { root: '/' } })).toBe(`${expected} "/" (it ends with "/")`);
    expect(problem({ zookeeper: { root: '/a//b' } })).toBe(`${expected} "/a//b" (it has an empty segment)`);
    expect(problem({ zookeeper: { root: '/a/../b' } })).toBe(
      `${expected} "/a/../b" (it has a "." or ".." segment)`,
    );
    expect(problem({ zookeeper: { root: '/zookeeper/x' } })).toBe(
      `${expected} "/zookeeper/x" (/zookeeper is reserved by ZooKeeper)`,
    );
  });

  it('checks zookeeper.auth, control and file paths', () => {
    expect(problem({ zookeeper: { auth: { scheme: 'sasl', credentialsFile: '/s' } } })).toBe(
      'config ns1.yaml: zookeeper.auth.scheme: must be one of digest, got "sasl"',
    );
    expect(problem({ zookeeper: { auth: {} } })).toBe(
      'config ns1.yaml: zookeeper.auth.credentialsFile: is required',
    );
    expect(problem({ zookeeper: { auth: { credentialsFile: 'zk.secret' } } })).toBe(
      'config ns1.yaml: zookeeper.auth.credentialsFile: must be an absolute file path, got "zk.secret"',
    );
    expect(problem({ control: { listen: '9779' } })).toBe(
      'config ns1.yaml: control.listen: must be host:port, got "9779"',
    );
    expect(problem({ control: { listen: 'localhost:99999' } })).toBe(
      'config ns1.yaml: control.listen: must be host:port, got "localhost:99999" (port 99999 is not from 0 to 65535)',
    );
  });

  it('checks commands', () => {
    const expected = 'must be a command: a non-empty string, or a non-empty list of non-empty strings, got';
    expect(problem({ service: { toActive: '' } })).toBe(`config ns1.yaml: service.toActive: ${expected} ""`);
    expect(problem({ service: { toActive: [] } })).toBe(`config ns1.yaml: service.toActive: ${expected} []`);
    expect(problem({ service: { toStandby: { run: 'x' } } })).toBe(
      `config ns1.yaml: service.toStandby: ${expected} {"run":"x"}`,
    );
    expect(problem({ service: { state: ['role', 3] } })).toBe(
      'config ns1.yaml: service.state[1]: must be a non-empty string, got 3',
    );
    expect(problem({ service: { toActive: undefined } })).toBe(
      'config ns1.yaml: service.toActive: is required',
    );
  });

  it('checks the service agent', () => {
    expect(problem({ service: { agent: 'mysql' } })).toBe(
      'config ns1.yaml: service.agent: must be one of shell, http, hdfs-namenode, yarn-resourcemanager, postgresql, redis, got "mysql"',
    );
    expect(problem({ service: { agent: 'shel' } })).toBe(
      'config ns1.yaml: service.agent: must be one of shell, http, hdfs-namenode, yarn-resourcemanager, postgresql, redis, got "shel" (did you mean "shell"?)',
    );
    expect(problem({ service: { agent: undefined } })).toBe(
      'config ns1.yaml: service.agent: is required (available: shell, http, hdfs-namenode, yarn-resourcemanager, postgresql, redis)',
    );
    expect(problem({ service: { url: 'http://x' } })).toBe('config ns1.yaml: unknown key "service.url"');
    expect(
      problems({
        service: {
          agent: 'http',
          url: 'ftp://x',
          rolePath: 'role',
          toActive: undefined,
          toStandby: undefined,
          check: undefined,
        },
      }),
    ).toEqual([
      'config ns1.yaml: service.url: must be an http:// or https:// URL, got "ftp://x"',
      'config ns1.yaml: service.rolePath: must be a URL path starting with "/", got "role"',
    ]);
  });

  it('checks health checks', () => {
    const check = (c: unknown) => problems({ health: { check: c } });
    expect(check('tcp')).toEqual([
      'config ns1.yaml: health.check: must be agent, {http: URL}, {tcp: "host:port"} or {command: COMMAND}, got "tcp"',
    ]);
    expect(check({ http: 'http://x/', tcp: 'x:1' })).toEqual([
      'config ns1.yaml: health.check: must have exactly one of http, tcp, command, got http and tcp',
    ]);
    expect(check({ expectStatus: 200 })).toEqual([
      'config ns1.yaml: health.check: must have exactly one of http, tcp, command, got none',
    ]);
    expect(check({ tcp: 'db1' })).toEqual([
      'config ns1.yaml: health.check.tcp: must be host:port, got "db1"',
    ]);
    expect(check({ tcp: 'db1:x' })).toEqual([
      'config ns1.yaml: health.check.tcp: must be host:port, got "db1:x"',
    ]);
    expect(check({ tcp: 'db1:0' })).toEqual([
      'config ns1.yaml: health.check.tcp: must be host:port, got "db1:0" (port 0 is not from 1 to 65535)',
    ]);
    expect(check({ http: 'localhost:8080/health' })).toEqual([
      'config ns1.yaml: health.check.http: must be an http:// or https:// URL, got "localhost:8080/health"',
    ]);
    expect(check({ http: 'http://x/', expectStatus: [200, 99] })).toEqual([
      'config ns1.yaml: health.check.expectStatus[1]: must be an HTTP status (an integer from 100 to 599), got 99',
    ]);
    expect(check({ http: 'http://x/', expectStatus: 'ok' })).toEqual([
      'config ns1.yaml: health.check.expectStatus: must be an HTTP status (an integer from 100 to 599) or a non-empty list of them, got "ok"',
    ]);
    expect(check({ http: 'http://x/', expectBodyMatches: '(' })).toEqual([
      'config ns1.yaml: health.check.expectBodyMatches: must be a valid regular expression, got "(" (Invalid regular expression: /(/: Unterminated group)',
    ]);
    expect(check({ command: 'true', expectStatus: 200 })).toEqual([
      'config ns1.yaml: health.check.expectStatus: is only valid in an http check, not a command check',
    ]);
    expect(check({ comand: 'true' })).toEqual([
      'config ns1.yaml: unknown key "health.check.comand" (did you mean "health.check.command"?)',
      'config ns1.yaml: health.check: must have exactly one of http, tcp, command, got none',
    ]);
  });

  it('checks fencing methods', () => {
    const methods = (m: unknown) => problems({ fencing: { methods: m } });
    expect(methods([])).toEqual([
      'config ns1.yaml: fencing.methods: must be a non-empty list of fencing methods, got []',
    ]);
    expect(methods('graceful')).toEqual([
      'config ns1.yaml: fencing.methods: must be a non-empty list of fencing methods, got "graceful"',
    ]);
    expect(methods(['gracefull'])).toEqual([
      'config ns1.yaml: fencing.methods[0]: must be graceful, ssh, {shell: COMMAND}, {ssh: {user, port, identityFile}} or {http: URL}, got "gracefull" (did you mean "graceful"?)',
    ]);
    expect(methods(['graceful', { stonith: 'x' }])).toEqual([
      'config ns1.yaml: fencing.methods[1]: unknown fencing method "stonith"; expected graceful, ssh, {shell: COMMAND}, {ssh: {user, port, identityFile}} or {http: URL}',
    ]);
    expect(methods([{ shell: 'a', ssh: null }])).toEqual([
      'config ns1.yaml: fencing.methods[0]: must have exactly one key (graceful, shell, ssh, http), got {"shell":"a","ssh":null}',
    ]);
    expect(methods([{ shell: [] }])).toEqual([
      'config ns1.yaml: fencing.methods[0].shell: must be a command: a non-empty string, or a non-empty list of non-empty strings, got []',
    ]);
    expect(methods([{ ssh: { user: 'root', prot: 22, identityFile: 'id_rsa' } }])).toEqual([
      'config ns1.yaml: unknown key "fencing.methods[0].ssh.prot" (did you mean "fencing.methods[0].ssh.port"?)',
      'config ns1.yaml: fencing.methods[0].ssh.identityFile: must be an absolute file path, got "id_rsa"',
    ]);
    expect(methods([{ http: { url: 'http://pdu/off', method: 'post' } }])).toEqual([
      'config ns1.yaml: fencing.methods[0].http.method: must be one of POST, PUT, GET, got "post" (did you mean "POST"?)',
    ]);
    expect(methods([{ http: 'pdu/off' }])).toEqual([
      'config ns1.yaml: fencing.methods[0].http: must be an http:// or https:// URL, got "pdu/off"',
    ]);
  });

  it('reports unknown keys at every level, with a did-you-mean for near misses', () => {
    expect(problem({ zookeeper: { sesionTimeoutMs: 10000 } })).toBe(
      'config ns1.yaml: unknown key "zookeeper.sesionTimeoutMs" (did you mean "zookeeper.sessionTimeoutMs"?)',
    );
    expect(problem({ helth: { fall: 3 } })).toBe(
      'config ns1.yaml: unknown key "helth" (did you mean "health"?)',
    );
    expect(problem({ node: { ip: '10.0.0.1' } })).toBe(
      'config ns1.yaml: unknown key "node.ip" (did you mean "node.id"?)',
    );
    expect(problem({ fencing: { timeout: 1000 } })).toBe(
      'config ns1.yaml: unknown key "fencing.timeout" (did you mean "fencing.timeoutMs"?)',
    );
    expect(problem({ log: { destination: 'syslog' } })).toBe(
      'config ns1.yaml: unknown key "log.destination"',
    );
    expect(problem({ zookeeper: { auth: { scheme: 'digest', credentialsFile: '/s', password: 'x' } } })).toBe(
      'config ns1.yaml: unknown key "zookeeper.auth.password"',
    );
  });

  it('reports every problem at once, in the order of the reference (docs/config.md)', () => {
    expect(
      problems({
        cluster: 'NS 1',
        node: { port: 0, colour: 'blue' },
        zookeeper: { connect: 'zk1', sessionTimeoutMs: 'ten seconds' },
        health: { fall: 'three', check: { tcp: 'x' } },
        service: { agent: 'mysql' },
        log: { format: 'xml' },
      }),
    ).toEqual([
      'config ns1.yaml: cluster: must match [a-z0-9][a-z0-9_-]{0,62} (lower-case letters, digits, "_" and "-"; at most 63 characters), got "NS 1"',
      'config ns1.yaml: unknown key "node.colour"',
      'config ns1.yaml: node.port: must be an integer from 1 to 65535, got 0',
      'config ns1.yaml: zookeeper.connect: must be host:port[,host:port...][/chroot], got "zk1" ("zk1" is not host:port)',
      'config ns1.yaml: zookeeper.sessionTimeoutMs: must be an integer from 1000 to 600000, got "ten seconds"',
      'config ns1.yaml: health.fall: must be an integer from 1 to 100, got "three"',
      'config ns1.yaml: health.check.tcp: must be host:port, got "x"',
      'config ns1.yaml: service.agent: must be one of shell, http, hdfs-namenode, yarn-resourcemanager, postgresql, redis, got "mysql"',
      'config ns1.yaml: log.format: must be one of auto, json, pretty, got "xml"',
    ]);
  });

  it('does not report a timing rule on top of a bad value it depends on', () => {
    // fall: "three" would otherwise fall back to 3 and trip the timeoutMs rule as well.
    expect(problems({ health: { timeoutMs: 3000, fall: 'three' } })).toEqual([
      'config ns1.yaml: health.fall: must be an integer from 1 to 100, got "three"',
    ]);
  });

  it('reports timing rules together with other problems', () => {
    expect(problems({ log: { level: 'loud' }, health: { timeoutMs: 6000 } })).toEqual([
      'config ns1.yaml: log.level: must be one of debug, info, warn, error, got "loud"',
      'config ns1.yaml: health.timeoutMs (6000) must be less than health.intervalMs x health.fall (3000), or a hung check could never count as a failure in time',
    ]);
  });
});

describe('parseConfig YAML errors', () => {
  it('gives the line and column of a syntax error', () => {
    expect(
      problems('cluster: ns1\nnode: { id: nn1, port: 8020\nzookeeper: { connect: "zk1:2181" }\n')[0],
    ).toMatch(/^config ns1\.yaml: line 3, column \d+: invalid YAML: /);
    expect(problems('cluster: ns1\n\tnode: {}\n')[0]).toMatch(
      /^config ns1\.yaml: line 2, column 1: invalid YAML: /,
    );
  });

  it('rejects duplicate keys, several documents and unresolved tags', () => {
    expect(problem('cluster: ns1\ncluster: ns2\n')).toBe(
      'config ns1.yaml: line 2, column 1: invalid YAML: duplicate key "cluster" (first at line 1, column 1); a key may appear once per mapping',
    );
    expect(problem('cluster: a\n---\ncluster: b\n')).toBe(
      'config ns1.yaml: line 2, column 1: invalid YAML: a second YAML document starts here; a config file holds exactly one',
    );
    expect(problem('cluster: !secret ns1\n')).toBe(
      'config ns1.yaml: line 1, column 10: invalid YAML: Unresolved tag: !secret',
    );
  });

  it('rejects an alias to an undefined anchor', () => {
    expect(problem('cluster: *name\n')).toBe(
      'config ns1.yaml: invalid YAML: Unresolved alias (the anchor must be set before the alias): name',
    );
  });
});

describe('loadConfig', () => {
  it('accepts every example config in config/', async () => {
    const files = readdirSync(join(repo, 'config')).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining(['shell.yaml', 'http.yaml']));
    for (const file of files) await expect(loadConfig(join(repo, 'config', file))).resolves.toBeTruthy();
  });

  it('loads the minimal fixture with defaults', async () => {
    const cfg = await loadConfig(join(repo, 'test/unit/config/fixtures/minimal.yaml'), OPTS);
    expect(cfg).toEqual(parse());
  });

  it('names the path and the OS error when the file cannot be read', async () => {
    const path = join(repo, 'test/unit/config/fixtures/no-such-file.yaml');
    const err = await loadConfig(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `config ${path}: cannot read the file: ENOENT: no such file or directory, open '${path}'`,
    );
    const dir = join(repo, 'test/unit/config/fixtures');
    await expect(loadConfig(dir)).rejects.toThrow(
      `config ${dir}: is a directory, not a regular file; give the path of a YAML file`,
    );
  });

  it('prefixes every problem with the path it was given', async () => {
    const path = join(repo, 'test/unit/config/fixtures/invalid.yaml');
    const err = (await loadConfig(path).catch((e: unknown) => e)) as InvalidConfigError;
    expect(err.source).toBe(path);
    expect(err.problems).toEqual([
      `config ${path}: cluster: must match [a-z0-9][a-z0-9_-]{0,62} (lower-case letters, digits, "_" and "-"; at most 63 characters), got "NS1"`,
      `config ${path}: unknown key "zookeeper.sesionTimeoutMs" (did you mean "zookeeper.sessionTimeoutMs"?)`,
      `config ${path}: health.fall: must be an integer from 1 to 100, got "three"`,
    ]);
  });
});

describe('shell agent health', () => {
  it('refuses the default agent health check when the shell agent has no check hook', () => {
    expect(problems({ service: { check: undefined } })).toEqual([
      'config ns1.yaml: health.check: is "agent" (the default), but the shell agent has no service.check command; set service.check or a health.check of kind http, tcp or command',
    ]);
    expect(
      parse({ service: { check: undefined }, health: { check: { tcp: '127.0.0.1:5432' } } }).health.check,
    ).toEqual({
      kind: 'tcp',
      host: '127.0.0.1',
      port: 5432,
    });
  });
});
