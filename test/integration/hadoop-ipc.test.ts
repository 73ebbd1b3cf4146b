/**
 * Our Hadoop IPC client and HAServiceProtocol against a REAL NameNode HA pair (Hadoop's jars, as
 * scripts/setup-hadoop.sh caches them). One pair for the whole file: a NameNode start costs
 * seconds of both cores. The tests run in order and leave both NameNodes standby and running.
 *
 * Gated on the cached jars; under CI (which runs setup) a missing cache fails instead of skipping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hadoopAvailable, HadoopHaPair, runHadoopTool, type NameNodeProc } from '../../harness/hadoop.js';
import { waitFor } from '../../harness/wait.js';
import { HdfsNameNodeAgent } from '../../agents/hdfs-namenode.js';
import { HaServiceClient } from '../../src/hadoop/ha-service.js';
import { silentLogger } from '../../src/log.js';
import { IpcRemoteError, IpcTransportError } from '../../src/hadoop/ipc/errors.js';

const enabled = hadoopAvailable() || process.env.CI === 'true';

describe.runIf(enabled)('Hadoop IPC against a real NameNode pair', () => {
  let pair: HadoopHaPair;
  const clients: HaServiceClient[] = [];

  const clientFor = (nn: NameNodeProc, opts: { callTimeoutMs?: number } = {}): HaServiceClient => {
    const c = new HaServiceClient({
      host: '127.0.0.1',
      port: nn.rpcPort,
      user: 'hafc',
      connectTimeoutMs: 2000,
      callTimeoutMs: opts.callTimeoutMs ?? 5000,
    });
    clients.push(c);
    return c;
  };

  /** The real Hadoop client's view, independent of ours. */
  const haadminState = async (id: string): Promise<string> => {
    const r = await pair.haadmin(['-getServiceState', id]);
    const line = r.output
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l === 'active' || l === 'standby');
    if (r.code !== 0 || !line)
      throw new Error(`haadmin -getServiceState ${id} exited ${r.code}:\n${r.output}`);
    return line;
  };

  beforeAll(async () => {
    pair = await HadoopHaPair.start();
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await pair?.stop();
  });

  it('getServiceStatus: both NameNodes start standby and ready to become active', async () => {
    for (const nn of pair.nameNodes) {
      const status = await clientFor(nn).getServiceStatus();
      expect(status).toEqual({ state: 'standby', readyToBecomeActive: true, notReadyReason: undefined });
    }
  });

  it('monitorHealth succeeds on a healthy NameNode', async () => {
    await expect(clientFor(pair.nn1).monitorHealth()).resolves.toBeUndefined();
  });

  it('a user request (not forced, not ZKFC) is refused with the server exception: automatic failover is on', async () => {
    const err = await clientFor(pair.nn1)
      .transitionToActive('REQUEST_BY_USER')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpcRemoteError);
    const remote = err as IpcRemoteError;
    expect(remote.exceptionClassName).toBe('org.apache.hadoop.security.AccessControlException');
    expect(remote.message).toMatch(/Manual HA control for this NameNode is disallowed/);
    expect(remote.fatal).toBe(false);
    expect(await clientFor(pair.nn1).getServiceStatus()).toMatchObject({ state: 'standby' });
  });

  it('transitionToActive / transitionToStandby with REQUEST_BY_ZKFC, seen by haadmin too', async () => {
    const c = clientFor(pair.nn1);
    await c.transitionToActive('REQUEST_BY_ZKFC');
    expect(await c.getServiceStatus()).toEqual({
      state: 'active',
      readyToBecomeActive: true,
      notReadyReason: undefined,
    });
    expect(await haadminState('nn1')).toBe('active');
    expect(await haadminState('nn2')).toBe('standby');
    await c.transitionToStandby('REQUEST_BY_ZKFC');
    expect(await c.getServiceStatus()).toMatchObject({ state: 'standby' });
    expect(await haadminState('nn1')).toBe('standby');
  });

  it('a standby in safe mode is not ready to become active, and says why', async () => {
    const dfsadmin = (args: string[]): ReturnType<typeof runHadoopTool> =>
      runHadoopTool({
        dir: pair.dir,
        confDir: pair.clientConfDir,
        mainClass: 'org.apache.hadoop.hdfs.tools.DFSAdmin',
        args,
      });
    const on = await dfsadmin(['-safemode', 'enter']);
    expect(on.code, on.output).toBe(0);
    try {
      const status = await clientFor(pair.nn2).getServiceStatus();
      expect(status.state).toBe('standby');
      expect(status.readyToBecomeActive).toBe(false);
      expect(status.notReadyReason).toMatch(/^The NameNode is in safemode\./);
    } finally {
      const off = await dfsadmin(['-safemode', 'leave']);
      expect(off.code, off.output).toBe(0);
    }
    expect(await clientFor(pair.nn2).getServiceStatus()).toMatchObject({ readyToBecomeActive: true });
  });

  it('an unknown method gives the server exception class, and the connection stays usable', async () => {
    const c = clientFor(pair.nn1);
    const err = await c.ipc.call('noSuchMethod', Buffer.alloc(0)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpcRemoteError);
    const remote = err as IpcRemoteError;
    expect(remote.exceptionClassName).toBe('org.apache.hadoop.ipc.RpcNoSuchMethodException');
    expect(remote.errorDetail).toBe('ERROR_NO_SUCH_METHOD');
    expect(remote.message).toContain('noSuchMethod');
    expect(await c.getServiceStatus()).toMatchObject({ state: 'standby' });
  });

  it('a SIGSTOPped NameNode: the call times out with a clear error; after SIGCONT the client reconnects', async () => {
    const c = clientFor(pair.nn2, { callTimeoutMs: 1500 });
    await c.getServiceStatus();
    await pair.nn2.freeze();
    try {
      const t0 = Date.now();
      const err = await c.getServiceStatus().catch((e: unknown) => e);
      const took = Date.now() - t0;
      expect(err).toBeInstanceOf(IpcTransportError);
      expect((err as IpcTransportError).reason).toBe('timeout');
      expect((err as Error).message).toBe(
        `getServiceStatus on ${pair.nn2.rpcAddress}: no answer within 1500 ms (timed out waiting for the answer)`,
      );
      expect(took).toBeGreaterThanOrEqual(1400);
      expect(took).toBeLessThan(3000);
      // A fresh connection to a frozen process: the kernel completes the handshake, nobody answers.
      const again = await c.monitorHealth({ timeoutMs: 800 }).catch((e: unknown) => e);
      expect((again as IpcTransportError).reason).toBe('timeout');
    } finally {
      pair.nn2.thaw();
    }
    expect(await c.getServiceStatus()).toMatchObject({ state: 'standby' });
  });

  it('a killed NameNode: calls fail at once as transport errors; after a restart the same client works', async () => {
    const c = clientFor(pair.nn2);
    await c.getServiceStatus();
    await pair.nn2.kill('SIGKILL');
    const t0 = Date.now();
    const err = await c.getServiceStatus().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpcTransportError);
    expect(['closed', 'connect']).toContain((err as IpcTransportError).reason);
    expect(Date.now() - t0).toBeLessThan(1000);
    const refused = await c.getServiceStatus().catch((e: unknown) => e);
    expect((refused as IpcTransportError).reason).toBe('connect');
    expect((refused as Error).message).toMatch(
      new RegExp(`connecting to ${pair.nn2.rpcAddress}: .*ECONNREFUSED`),
    );
    await pair.nn2.start();
    const status = await waitFor('nn2 to answer getServiceStatus after its restart', () =>
      c.getServiceStatus().catch(() => undefined),
    );
    expect(status.state).toBe('standby');
  });

  it('an abort signal ends a call to a frozen NameNode at once, naming the abort', async () => {
    const c = clientFor(pair.nn1, { callTimeoutMs: 10_000 });
    await c.getServiceStatus();
    await pair.nn1.freeze();
    try {
      const ac = new AbortController();
      const p = c.getServiceStatus({ signal: ac.signal }).catch((e: unknown) => e);
      setTimeout(() => ac.abort(), 200);
      const t0 = Date.now();
      const err = await p;
      expect((err as IpcTransportError).reason).toBe('aborted');
      expect((err as Error).message).toMatch(/^getServiceStatus on 127\.0\.0\.1:\d+: aborted after \d+ ms$/);
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      pair.nn1.thaw();
    }
    // The aborted call's late answer is dropped; the connection keeps serving.
    expect(await c.getServiceStatus()).toMatchObject({ state: 'standby' });
  });

  it('the hdfs-namenode agent: healthy check with /isActive agreeing, toActive, graceful fence by the peer', async () => {
    const agentFor = (nn: NameNodeProc): HdfsNameNodeAgent =>
      new HdfsNameNodeAgent(
        {
          agent: 'hdfs-namenode',
          rpcAddress: nn.rpcAddress,
          user: 'hafc',
          requestTimeoutMs: 5000,
          httpUrl: `http://127.0.0.1:${nn.httpPort}`,
        },
        silentLogger,
      );
    const a1 = agentFor(pair.nn1);
    const a2 = agentFor(pair.nn2);
    const ctx = { cluster: 'hdfs', nodeId: 'nn1', role: 'standby', epoch: 1n, reason: 'test' };
    const signal = new AbortController().signal;
    try {
      await a1.check(ctx, signal);
      await a1.toActive({ ...ctx, role: 'active' }, signal);
      expect(await a1.state(ctx, signal)).toBe('active');
      // /isActive now answers 200 for nn1 and 405 for nn2; both checks pass only if each agrees.
      await a1.check(ctx, signal);
      await a2.check(ctx, signal);
      await a2.fenceGraceful(
        { id: 'nn1', host: '127.0.0.1', port: pair.nn1.rpcPort, address: pair.nn1.rpcAddress, epoch: 1n },
        { ...ctx, nodeId: 'nn2', epoch: 2n },
        signal,
      );
      expect(await a1.state(ctx, signal)).toBe('standby');
      expect(await haadminState('nn1')).toBe('standby');
    } finally {
      a1.close();
      a2.close();
    }
  });
});
