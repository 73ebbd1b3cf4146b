import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidConfigError, parseConfig } from '../../../src/config/load.js';
import { preflight } from '../../../src/config/preflight.js';
import type { HafcConfig } from '../../../src/config/types.js';

const base = (service: string, node = '{ id: r1, host: redis1.example, port: 6379 }') => `
cluster: cache1
node: ${node}
zookeeper: { connect: "zk1:2181" }
service: ${service}
`;

const parse = (text: string): HafcConfig => parseConfig(text, 'r1.yaml', { hostname: 'here' });

function problems(text: string): readonly string[] {
  try {
    parse(text);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return (err as InvalidConfigError).problems;
  }
}

describe('the redis agent in the config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hafc-redis-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults every key; the address is node.host:node.port', () => {
    expect(parse(base('{ agent: redis }')).service).toEqual({
      agent: 'redis',
      address: 'redis1.example:6379',
      maximumLagOnFailover: 1_048_576,
      requestTimeoutMs: 1000,
      gracefulFenceTimeoutMs: 1000,
    });
    // The graceful fence's deadline follows requestTimeoutMs unless set.
    expect(parse(base('{ agent: redis, requestTimeoutMs: 400 }')).service).toMatchObject({
      gracefulFenceTimeoutMs: 400,
    });
    expect(parse(base('{ agent: redis }', '{ id: r1, host: "::1", port: 6380 }')).service).toMatchObject({
      address: '[::1]:6380',
    });
  });

  it('accepts another host for the agent, on node.port only', () => {
    expect(parse(base('{ agent: redis, address: "127.0.0.1:6379" }')).service).toMatchObject({
      address: '127.0.0.1:6379',
    });
    expect(problems(base('{ agent: redis, address: "127.0.0.1:6380" }'))).toEqual([
      `config r1.yaml: service.address: port 6380 is not node.port 6379; node.port must be the Redis server's own port (peers follow and fence the node at node.host:node.port), got "127.0.0.1:6380"`,
    ]);
    expect(problems(base('{ agent: redis, address: "nowhere" }'))).toEqual([
      'config r1.yaml: service.address: must be host:port, got "nowhere"',
    ]);
  });

  it('bounds the lag limit and names it', () => {
    expect(problems(base('{ agent: redis, maximumLagOnFailover: -1 }'))).toEqual([
      'config r1.yaml: service.maximumLagOnFailover: must be an integer from 0 to 1073741824, got -1',
    ]);
    expect(problems(base('{ agent: redis, passwordFile: "secret" }'))).toEqual([
      'config r1.yaml: service.passwordFile: must be an absolute file path, got "secret"',
    ]);
  });

  it('preflight: a missing or empty password file is named, its content never', async () => {
    const missing = join(dir, 'none');
    expect(await preflight(parse(base(`{ agent: redis, passwordFile: "${missing}" }`)))).toEqual([
      `service.passwordFile: "${missing}" does not exist; it must hold the Redis password`,
    ]);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\nsecond-line-is-not-read\n');
    expect(await preflight(parse(base(`{ agent: redis, passwordFile: "${empty}" }`)))).toEqual([
      `service.passwordFile: "${empty}" has an empty first line; it must hold the Redis password`,
    ]);
    const good = join(dir, 'good');
    writeFileSync(good, 's3cret\n');
    expect(await preflight(parse(base(`{ agent: redis, passwordFile: "${good}" }`)))).toEqual([]);
  });
});
