import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { IntegerSpec, Shape } from '../../../src/config/declare.js';
import { InvalidConfigError, parseConfig } from '../../../src/config/load.js';
import { CONFIG, MAX_DURATION_MS } from '../../../src/config/schema.js';

/** Node's timers: from 2^31 ms on, setTimeout fires after 1 ms (with a TimeoutOverflowWarning). */
const TIMER_MAX = 2 ** 31 - 1;

interface Key {
  /** Section names and the key, e.g. ['zookeeper', 'sessionTimeoutMs']. */
  path: string[];
  /** The service agent whose key it is, if it is one. */
  agent?: string;
  spec: IntegerSpec;
}

function integerKeys(shape: Shape, base: string[] = [], agent?: string): Key[] {
  return Object.entries(shape).flatMap(([key, field]): Key[] => {
    const path = [...base, key];
    if (field.kind === 'integer') return [{ path, spec: field, ...(agent ? { agent } : {}) }];
    if (field.kind === 'section') return integerKeys(field.keys, path, agent);
    if (field.kind === 'variants')
      return Object.entries(field.variants).flatMap(([name, v]) => integerKeys(v.keys, path, name));
    return [];
  });
}

const SERVICES: Record<string, Record<string, unknown>> = {
  shell: { agent: 'shell', toActive: 'a', toStandby: 's', check: 'c' },
  http: { agent: 'http', url: 'http://127.0.0.1:8008' },
  'hdfs-namenode': { agent: 'hdfs-namenode', rpcAddress: '127.0.0.1:8020' },
  'yarn-resourcemanager': { agent: 'yarn-resourcemanager', rpcAddress: '127.0.0.1:8033' },
  postgresql: { agent: 'postgresql', dataDir: '/var/lib/postgresql/15/main' },
  redis: { agent: 'redis' },
};

/** A valid config (with the key's agent) with `value` at the key's path. */
function configWith(key: Key, value: number): string {
  const doc: Record<string, unknown> = {
    cluster: 'ns1',
    node: { id: 'nn1', port: 8020 },
    // hold: a duration at its maximum would break the lease budget, a different rule.
    zookeeper: { connect: 'zk1:2181', onConnectionLoss: 'hold' },
    service: { ...SERVICES[key.agent ?? 'http'] },
    fencing: { methods: [{ shell: 'fence' }] },
  };
  let target = doc;
  for (const name of key.path.slice(0, -1)) {
    target[name] = { ...((target[name] as object | undefined) ?? {}) };
    target = target[name] as Record<string, unknown>;
  }
  target[key.path.at(-1) ?? ''] = value;
  return stringify(doc);
}

function problemsOf(text: string): readonly string[] {
  try {
    parseConfig(text, 'x.yaml', { hostname: 'h' });
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return (err as InvalidConfigError).problems;
  }
}

const keys = integerKeys(CONFIG.keys);
const durations = keys.filter((k) => k.spec.unit === 'ms');

describe('every integer key is bounded', () => {
  it('finds the keys (the walk is not empty)', () => {
    expect(durations.map((k) => k.path.join('.'))).toEqual(
      expect.arrayContaining(['fencing.timeoutMs', 'service.hookTimeoutMs', 'zookeeper.requestTimeoutMs']),
    );
    expect(durations.length).toBeGreaterThanOrEqual(10);
  });

  it('has a maximum that Node timers can take', () => {
    for (const key of keys) expect(key.spec.max, key.path.join('.')).toBeLessThan(TIMER_MAX);
    for (const key of durations) expect(key.spec.max, key.path.join('.')).toBe(MAX_DURATION_MS);
  });

  it.each(durations.map((k) => [k.path.join('.') + (k.agent ? ` (${k.agent})` : ''), k] as const))(
    '%s: 2^31 is refused with the bounds, the maximum is not refused as out of range',
    (name, key) => {
      const path = key.path.join('.');
      expect(problemsOf(configWith(key, 2 ** 31))).toEqual([
        `config x.yaml: ${path}: must be an integer from ${key.spec.min} to ${key.spec.max}, got 2147483648`,
      ]);
      const atMax = problemsOf(configWith(key, key.spec.max));
      // A maximum may still break a relation (e.g. requestTimeoutMs < sessionTimeoutMs), never the range.
      expect(
        atMax.filter((p) => p.includes('must be an integer')),
        name,
      ).toEqual([]);
    },
  );

  it('refuses the values that broke the agent: a fencing timeout of 2^31, a hook timeout of 3e9', () => {
    expect(
      problemsOf(
        configWith({ path: ['fencing', 'timeoutMs'], spec: CONFIG.keys.fencing.keys.timeoutMs }, 2147483648),
      ),
    ).toEqual(['config x.yaml: fencing.timeoutMs: must be an integer from 1 to 600000, got 2147483648']);
    const hook = CONFIG.keys.service.variants.shell.keys.hookTimeoutMs;
    expect(
      problemsOf(configWith({ path: ['service', 'hookTimeoutMs'], agent: 'shell', spec: hook }, 3e9)),
    ).toEqual(['config x.yaml: service.hookTimeoutMs: must be an integer from 1 to 600000, got 3000000000']);
    expect(
      problemsOf(configWith({ path: ['health', 'fall'], spec: CONFIG.keys.health.keys.fall }, 1e300)),
    ).toEqual(['config x.yaml: health.fall: must be an integer from 1 to 100, got 1e+300']);
  });
});
