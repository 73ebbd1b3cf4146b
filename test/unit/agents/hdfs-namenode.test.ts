/**
 * The hdfs-namenode agent against the fake NameNode (real socket, Hadoop IPC server side): how
 * each answer maps to health outcomes, transitions and fencing. The real NameNode pair covers the
 * same calls in test/integration/hadoop-ipc.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HdfsNameNodeAgent, parseRpcAddress } from '../../../agents/hdfs-namenode.js';
import { definiteOf, EHEALTH_TIMEOUT, EHEALTH_UNHEALTHY } from '../../../src/health/errors.js';
import { silentLogger } from '../../../src/log.js';
import type { HookContext } from '../../../src/service/agent.js';
import { FakeNameNode } from '../../support/fake-namenode.js';

let nn: FakeNameNode;
let agent: HdfsNameNodeAgent;
const ctx: HookContext = { cluster: 'c', nodeId: 'nn1', role: 'standby', epoch: 7n, reason: 'test' };
const signal = (): AbortSignal => new AbortController().signal;

const rejection = (p: Promise<unknown>): Promise<Error & { code?: string }> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error & { code?: string },
  );

beforeEach(async () => {
  nn = await FakeNameNode.start();
  agent = new HdfsNameNodeAgent(
    {
      agent: 'hdfs-namenode',
      rpcAddress: `127.0.0.1:${nn.port}`,
      requestTimeoutMs: 500,
      transitionTimeoutMs: 500,
    },
    silentLogger,
  );
});

afterEach(async () => {
  agent.close();
  await nn.close();
});

describe('hdfs-namenode agent', () => {
  it('check: getServiceStatus then monitorHealth, as ZKFC HealthMonitor', async () => {
    await agent.check(ctx, signal());
    expect(nn.calls.map((c) => c.method)).toEqual(['getServiceStatus', 'monitorHealth']);
  });

  it('check: HealthCheckFailedException is UNHEALTHY with the NameNode message', async () => {
    nn.unhealthy = 'The NameNode has no resources available';
    const err = await rejection(agent.check(ctx, signal()));
    expect(err.code).toBe(EHEALTH_UNHEALTHY);
    expect(err.message).toBe(
      `NameNode 127.0.0.1:${nn.port} reports itself unhealthy: The NameNode has no resources available`,
    );
  });

  it('check: a hang is NOT_RESPONDING', async () => {
    nn.faults.set('monitorHealth', { kind: 'hang' });
    const err = await rejection(agent.check(ctx, signal()));
    expect(err.code).toBe(EHEALTH_TIMEOUT);
    expect(err.message).toMatch(
      /did not answer the health check usably: monitorHealth on .*: no answer within 500 ms/,
    );
  });

  it('check: a garbage answer is NOT_RESPONDING (ZKFC rule); a refused connection is UNHEALTHY and definite (nothing listens)', async () => {
    nn.faults.set('getServiceStatus', { kind: 'garbage', bytes: Buffer.from('garbage!') });
    const garbage = await rejection(agent.check(ctx, signal()));
    expect(garbage.code).toBe(EHEALTH_TIMEOUT);
    expect(definiteOf(garbage)).toBeUndefined();
    await nn.close();
    const refused = await rejection(agent.check(ctx, signal()));
    expect(refused.code).toBe(EHEALTH_UNHEALTHY);
    expect(definiteOf(refused)).toBe('refused');
    expect(refused.message).toMatch(/is not serving: .*ECONNREFUSED/);
    nn = await FakeNameNode.start();
  });

  it('check: a standby not ready to become active is UNHEALTHY with its reason', async () => {
    nn.readyToBecomeActive = false;
    nn.notReadyReason = 'The NameNode is in safemode. Resources are low.';
    const err = await rejection(agent.check(ctx, signal()));
    expect(err.code).toBe(EHEALTH_UNHEALTHY);
    expect(err.message).toBe(
      `NameNode 127.0.0.1:${nn.port} is not ready to become active: The NameNode is in safemode. Resources are low.`,
    );
  });

  it('toActive / toStandby use REQUEST_BY_ZKFC; state() reads the NameNode', async () => {
    await agent.toActive(ctx, signal());
    expect(await agent.state(ctx, signal())).toBe('active');
    await agent.toStandby(ctx, signal());
    expect(await agent.state(ctx, signal())).toBe('standby');
    expect(nn.transitions.map((t) => t.reqSource)).toEqual([2, 2]);
  });

  it('a refused transition fails with the method, address and server exception', async () => {
    nn.faults.set('transitionToActive', {
      kind: 'fatal',
      exceptionClassName: 'org.apache.hadoop.ha.ServiceFailedException',
      errorMsg: 'Could not transition',
    });
    const err = await rejection(agent.toActive(ctx, signal()));
    expect(err.code).toBe('EHOOKFAILED');
    expect(err.message).toMatch(
      /^transitionToActive\(REQUEST_BY_ZKFC\) on NameNode 127\.0\.0\.1:\d+ failed after \d+ ms: .*ServiceFailedException: Could not transition/,
    );
  });

  it('fenceGraceful: transitionToStandby on the old active, at its recorded control port', async () => {
    const old = await FakeNameNode.start();
    try {
      old.state = 'active';
      await agent.fenceGraceful(
        { id: 'nn2', host: '127.0.0.1', port: 1, address: '127.0.0.1:1', epoch: 6n, controlPort: old.port },
        ctx,
        signal(),
      );
      expect(old.state).toBe('standby');
      expect(old.transitions).toEqual([{ method: 'transitionToStandby', reqSource: 2 }]);
      expect(nn.transitions).toEqual([]);
    } finally {
      await old.close();
    }
  });

  it('fenceGraceful refuses a target host that is not a plain host name', async () => {
    const err = await rejection(
      agent.fenceGraceful(
        { id: 'x', host: '-oProxy', port: 8020, address: '-oProxy:8020', epoch: 1n },
        ctx,
        signal(),
      ),
    );
    expect(err.message).toMatch(/fencing target "x"/);
  });

  it('config errors name the key and the value', () => {
    expect(() => parseRpcAddress('nn1.example')).toThrow(
      'service.rpcAddress: expected host:port, got "nn1.example"',
    );
    expect(() => parseRpcAddress('nn1:70000')).toThrow(
      'service.rpcAddress: expected host:port, got "nn1:70000"',
    );
    expect(parseRpcAddress('[::1]:8020')).toEqual({ host: '::1', port: 8020 });
    expect(
      () =>
        new HdfsNameNodeAgent(
          { agent: 'hdfs-namenode', rpcAddress: 'h:1', requestTimeoutMs: 0 },
          silentLogger,
        ),
    ).toThrow('service.requestTimeoutMs: expected a positive integer of milliseconds, got 0');
    expect(
      () =>
        new HdfsNameNodeAgent(
          { agent: 'hdfs-namenode', rpcAddress: 'h:1', httpUrl: 'ftp://x' },
          silentLogger,
        ),
    ).toThrow('service.httpUrl: expected http:// or https://, got "ftp://x"');
  });
});
