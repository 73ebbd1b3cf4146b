import { describe, expect, it } from 'vitest';
import { RecordError } from '../../../src/errors.js';
import {
  sshConnectTimeoutSeconds,
  sshFenceArgv,
  sshVerifyArgv,
  type SshFenceConfig,
} from '../../../src/fencing/ssh.js';
import { targetHostPort } from '../../../src/fencing/target.js';
import type { FenceTarget } from '../../../src/service/agent.js';

const target: FenceTarget = {
  id: 'nn1',
  host: 'nn1.example.com',
  port: 8020,
  address: 'nn1.example.com:8020',
  epoch: 1n,
};
const cfg: SshFenceConfig = { kind: 'ssh', user: 'hdfs', port: 2222 };

describe('ssh fencing argv (ZKFC sshfence)', () => {
  it('kills whatever listens on the target port, non-interactively', () => {
    expect(sshFenceArgv(cfg, target, 30_000)).toEqual([
      'ssh',
      '-p',
      '2222',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'ConnectTimeout=10',
      'hdfs@nn1.example.com',
      'PATH=$PATH:/sbin:/usr/sbin fuser -v -k -n tcp 8020',
    ]);
  });

  it('passes the identity file when configured', () => {
    const argv = sshFenceArgv({ ...cfg, identityFile: '/etc/hafc/id ed25519' }, target, 30_000);
    expect(argv.slice(0, 5)).toEqual(['ssh', '-p', '2222', '-i', '/etc/hafc/id ed25519']);
  });

  it('verifies with nc -z against the same host and port', () => {
    expect(sshVerifyArgv(cfg, { ...target, host: '10.0.0.7' }, 3_000).slice(-3)).toEqual([
      'ConnectTimeout=1',
      'hdfs@10.0.0.7',
      'nc -z 10.0.0.7 8020',
    ]);
  });

  it('bounds the connect timeout to [1, 30] s', () => {
    expect(sshConnectTimeoutSeconds(100)).toBe(1);
    expect(sshConnectTimeoutSeconds(30_000)).toBe(10);
    expect(sshConnectTimeoutSeconds(600_000)).toBe(30);
  });

  it.each(['-oProxyCommand=sh', 'a;b', 'host name', '$(id)', 'x`id`', '', 'a/b'])(
    'refuses target host %j from ZooKeeper',
    (host) => {
      expect(() => sshFenceArgv(cfg, { ...target, host }, 30_000)).toThrow(RecordError);
      expect(() => sshFenceArgv(cfg, { ...target, host }, 30_000)).toThrow(
        `fencing target "nn1" has an invalid host ${JSON.stringify(host)}`,
      );
    },
  );

  it.each([0, 65536, 1.5, Number.NaN, '22; reboot' as unknown as number])(
    'refuses target port %j',
    (port) => {
      expect(() => sshFenceArgv(cfg, { ...target, port }, 30_000)).toThrow(
        /^fencing target "nn1" has an invalid port /,
      );
    },
  );
});

describe('targetHostPort', () => {
  it('brackets IPv6', () => {
    expect(targetHostPort({ ...target, host: 'fd00::1' })).toBe('[fd00::1]:8020');
    expect(targetHostPort(target)).toBe('nn1.example.com:8020');
  });
});
