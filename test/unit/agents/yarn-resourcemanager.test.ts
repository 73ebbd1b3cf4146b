/**
 * The yarn-resourcemanager agent against the fake HAServiceProtocol server (real socket, Hadoop
 * IPC server side) and a real HTTP server standing in for the RM's web address: the request
 * source it sends, and how /isActive and /ws/v1/cluster/info are held against the RPC state. The
 * real ResourceManager pair covers the same calls in test/integration/yarn-agents.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterInfoHaState, YarnResourceManagerAgent } from '../../../agents/yarn-resourcemanager.js';
import { EHEALTH_TIMEOUT, EHEALTH_UNHEALTHY } from '../../../src/health/errors.js';
import { silentLogger } from '../../../src/log.js';
import type { HookContext } from '../../../src/service/agent.js';
import { FakeNameNode } from '../../support/fake-namenode.js';

let rm: FakeNameNode;
let web: http.Server;
let webUrl: string;
/** What the fake web address answers: /isActive's status and cluster/info's body. */
let isActiveStatus = 405;
let clusterInfo = '';
const ctx: HookContext = { cluster: 'c', nodeId: 'rm1', role: 'standby', epoch: 7n, reason: 'test' };
const signal = (): AbortSignal => new AbortController().signal;

const rejection = (p: Promise<unknown>): Promise<Error & { code?: string }> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error & { code?: string },
  );

const info = (haState: string): string =>
  JSON.stringify({ clusterInfo: { id: 1, state: 'STARTED', haState, resourceManagerVersion: '3.4.1' } });

const agentFor = (extra: Record<string, unknown> = {}): YarnResourceManagerAgent =>
  new YarnResourceManagerAgent(
    {
      agent: 'yarn-resourcemanager',
      rpcAddress: `127.0.0.1:${rm.port}`,
      requestTimeoutMs: 500,
      transitionTimeoutMs: 500,
      ...extra,
    },
    silentLogger,
  );

beforeEach(async () => {
  rm = await FakeNameNode.start();
  // An RM under hafc runs with automatic failover off (Hadoop 3.4 insists on its own elector
  // otherwise), so it takes REQUEST_BY_USER and refuses REQUEST_BY_ZKFC.
  rm.automaticFailover = false;
  isActiveStatus = 405;
  clusterInfo = info('STANDBY');
  web = http.createServer((req, res) => {
    if (req.url === '/isActive') {
      res.writeHead(isActiveStatus).end(isActiveStatus === 200 ? 'I am Active!' : 'I am not Active!');
    } else if (req.url === '/ws/v1/cluster/info') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(clusterInfo);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await rm.close();
  await new Promise((r) => web.close(r));
});

describe('yarn-resourcemanager agent', () => {
  it('transitions send REQUEST_BY_USER by default; zkfc when configured', async () => {
    const agent = agentFor();
    try {
      await agent.toActive(ctx, signal());
      expect(await agent.state(ctx, signal())).toBe('active');
      await agent.toStandby(ctx, signal());
      expect(rm.transitions.map((t) => t.reqSource)).toEqual([0, 0]);
    } finally {
      agent.close();
    }
    rm.automaticFailover = true;
    const zkfc = agentFor({ requestSource: 'zkfc' });
    try {
      await zkfc.toActive(ctx, signal());
      expect(rm.transitions.at(-1)).toEqual({ method: 'transitionToActive', reqSource: 2 });
    } finally {
      zkfc.close();
    }
  });

  it('a refused transition names the ResourceManager and the request source', async () => {
    const agent = agentFor({ requestSource: 'zkfc' });
    try {
      rm.faults.set('transitionToActive', {
        kind: 'fatal',
        exceptionClassName: 'org.apache.hadoop.security.AccessControlException',
        errorMsg:
          'Request from ZK failover controller at 127.0.0.1 denied since automatic failover is not enabled',
      });
      const err = await rejection(agent.toActive(ctx, signal()));
      expect(err.message).toMatch(
        /^transitionToActive\(REQUEST_BY_ZKFC\) on ResourceManager 127\.0\.0\.1:\d+ failed after \d+ ms: .*denied since automatic failover is not enabled/,
      );
    } finally {
      agent.close();
    }
  });

  it('check with httpUrl: /isActive and cluster/info haState must agree with RPC', async () => {
    const agent = agentFor({ httpUrl: webUrl });
    try {
      await agent.check(ctx, signal());
      rm.state = 'active';
      isActiveStatus = 200;
      clusterInfo = info('ACTIVE');
      await agent.check(ctx, signal());

      clusterInfo = info('STANDBY');
      const split = await rejection(agent.check(ctx, signal()));
      expect(split.code).toBe(EHEALTH_UNHEALTHY);
      expect(split.message).toBe(
        `ResourceManager 127.0.0.1:${rm.port} says active over RPC but GET ${webUrl}/ws/v1/cluster/info says haState STANDBY`,
      );

      isActiveStatus = 405;
      const isActive = await rejection(agent.check(ctx, signal()));
      expect(isActive.message).toBe(
        `ResourceManager 127.0.0.1:${rm.port} says active over RPC but GET ${webUrl}/isActive says not active`,
      );

      isActiveStatus = 200;
      clusterInfo = '<html>redirecting</html>';
      const garbage = await rejection(agent.check(ctx, signal()));
      expect(garbage.code).toBe(EHEALTH_UNHEALTHY);
      expect(garbage.message).toBe(
        `GET ${webUrl}/ws/v1/cluster/info: expected JSON with clusterInfo.haState, got "<html>redirecting</html>"`,
      );
    } finally {
      agent.close();
    }
  });

  it('check: a web address that does not answer is NOT_RESPONDING', async () => {
    await new Promise((r) => web.close(r));
    web = http.createServer();
    const agent = agentFor({ httpUrl: webUrl });
    try {
      const err = await rejection(agent.check(ctx, signal()));
      expect(err.code).toBe(EHEALTH_TIMEOUT);
      expect(err.message).toMatch(new RegExp(`^GET ${webUrl}/isActive: .*ECONNREFUSED`));
    } finally {
      agent.close();
    }
  });

  it('check: the RM says unhealthy with its own message, and an initializing RM is not electable', async () => {
    const agent = agentFor();
    try {
      rm.unhealthy = 'Active ResourceManager services are not running!';
      const sick = await rejection(agent.check(ctx, signal()));
      expect(sick.code).toBe(EHEALTH_UNHEALTHY);
      expect(sick.message).toBe(
        `ResourceManager 127.0.0.1:${rm.port} reports itself unhealthy: Active ResourceManager services are not running!`,
      );
      rm.unhealthy = undefined;
      rm.state = 'initializing';
      rm.notReadyReason = 'State is INITIALIZING';
      const init = await rejection(agent.check(ctx, signal()));
      expect(init.message).toBe(
        `ResourceManager 127.0.0.1:${rm.port} is still initializing: State is INITIALIZING`,
      );
    } finally {
      agent.close();
    }
  });

  it('config errors name the key and the value', () => {
    expect(() => agentFor({ requestSource: 'zk' })).toThrow(
      'service.requestSource: expected zkfc or user, got "zk"',
    );
    expect(() => agentFor({ rpcAddress: 'rm1' })).toThrow(
      'service.rpcAddress: expected host:port, got "rm1"',
    );
  });

  it('clusterInfoHaState reads only a string haState', () => {
    expect(clusterInfoHaState(info('ACTIVE'))).toBe('ACTIVE');
    expect(clusterInfoHaState('{"clusterInfo":{"haState":3}}')).toBeUndefined();
    expect(clusterInfoHaState('null')).toBeUndefined();
    expect(clusterInfoHaState('not json')).toBeUndefined();
  });

  it('a health call that times out does not take a slow transition in flight down with it', async () => {
    // A loaded RM serves one admin call at a time: the promotion takes seconds and the health
    // call behind it times out. The timeout destroys the health connection; the promotion, on a
    // connection of its own, must still get its answer.
    rm.faults.set('transitionToActive', { kind: 'delay', ms: 400 });
    rm.faults.set('getServiceStatus', { kind: 'hang' });
    const agent = agentFor({ requestTimeoutMs: 100, transitionTimeoutMs: 2000 });
    try {
      const promotion = agent.toActive(ctx, signal());
      const check = await rejection(agent.check(ctx, signal()));
      expect(check.code).toBe(EHEALTH_TIMEOUT);
      await promotion;
      expect(rm.state).toBe('active');
      expect(rm.transitions.map((t) => t.method)).toEqual(['transitionToActive']);
    } finally {
      agent.close();
    }
  });
});
