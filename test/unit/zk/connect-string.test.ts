import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../../src/errors.js';
import { parseConnectString } from '../../../src/zk/connect-string.js';

describe('parseConnectString', () => {
  it('normalises hosts, default ports, spaces and the chroot', () => {
    expect(parseConnectString(' zk1:2181, zk2 ,10.0.0.3:2182/hafc/prod ')).toEqual({
      servers: [
        { host: 'zk1', port: 2181 },
        { host: 'zk2', port: 2181 },
        { host: '10.0.0.3', port: 2182 },
      ],
      chroot: '/hafc/prod',
      normalized: 'zk1:2181,zk2:2181,10.0.0.3:2182/hafc/prod',
    });
    expect(parseConnectString('zk-1.example.com:2181/').chroot).toBeUndefined();
  });

  it.each([
    [undefined, /must be a string/],
    [42, /must be a string/],
    ['', /it is empty/],
    ['/chroot', /no host before the chroot/],
    ['zk1:2181,', /server #2 is empty/],
    ['zk1:65536', /invalid port "65536"/],
    ['zk1:-1', /invalid port "-1"/],
    ['zk1:2181:1', /IPv6/],
    ['zk_1..x:2181', /invalid host name "zk_1..x"/],
    ['-zk:2181', /invalid host name/],
    ['zk1/a/./b', /"\." or "\.\."/],
    ['zk1/a\tb', /whitespace/],
  ])('rejects %j', (value, why) => {
    let caught: unknown;
    try {
      parseConnectString(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).code).toBe('ECONFIG');
    expect((caught as Error).message).toMatch(/^zookeeper\.connect .* is invalid: /);
    expect((caught as Error).message).toMatch(why);
  });
});
