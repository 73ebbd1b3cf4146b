/**
 * The IPC client against the fake NameNode (a real TCP server speaking the server side of Hadoop
 * IPC): the faults a real NameNode will not produce on demand. Every bad answer must end in a
 * clear error and leave the client usable for the next call.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../harness/wait.js';
import { HA_SERVICE_PROTOCOL, HaServiceClient } from '../../../src/hadoop/ha-service.js';
import {
  IpcAuthError,
  IpcProtocolError,
  IpcRemoteError,
  IpcTransportError,
} from '../../../src/hadoop/ipc/errors.js';
import { FakeNameNode } from '../../support/fake-namenode.js';

let nn: FakeNameNode;
let client: HaServiceClient;

function makeClient(opts: { callTimeoutMs?: number; pingIntervalMs?: number } = {}): HaServiceClient {
  return new HaServiceClient({
    host: '127.0.0.1',
    port: nn.port,
    user: 'hdfs-ha',
    connectTimeoutMs: 1000,
    callTimeoutMs: opts.callTimeoutMs ?? 1000,
    pingIntervalMs: opts.pingIntervalMs ?? 0,
  });
}

beforeEach(async () => {
  nn = await FakeNameNode.start();
  client = makeClient();
});

afterEach(async () => {
  client.close();
  await nn.close();
});

const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    (v) => {
      throw new Error(`expected a failure, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );

describe('IpcClient against the fake NameNode', () => {
  it('sends the preamble, the SIMPLE user and protocol, then calls numbered from 0 on one connection', async () => {
    await client.getServiceStatus();
    await client.monitorHealth();
    expect(nn.connections).toHaveLength(1);
    const conn = nn.connections[0]!;
    expect(conn.preamble.toString('hex')).toBe('68727063090000');
    expect(conn.user).toBe('hdfs-ha');
    expect(conn.protocol).toBe(HA_SERVICE_PROTOCOL);
    expect(conn.calls.map((c) => [c.callId, c.method, c.protocol, c.protocolVersion])).toEqual([
      [0, 'getServiceStatus', HA_SERVICE_PROTOCOL, 1],
      [1, 'monitorHealth', HA_SERVICE_PROTOCOL, 1],
    ]);
  });

  it('an unhealthy NameNode: monitorHealth rejects with the server exception, not a transport error', async () => {
    nn.unhealthy = 'The NameNode has no resources available';
    const err = await failure(client.monitorHealth());
    expect(err).toBeInstanceOf(IpcRemoteError);
    expect((err as IpcRemoteError).exceptionClassName).toBe(
      'org.apache.hadoop.ha.HealthCheckFailedException',
    );
    expect((err as Error).message).toBe(
      `monitorHealth on 127.0.0.1:${nn.port} failed: org.apache.hadoop.ha.HealthCheckFailedException: ` +
        'The NameNode has no resources available [ERROR_APPLICATION]',
    );
  });

  it('not ready: readyToBecomeActive false and the reason are passed on', async () => {
    nn.readyToBecomeActive = false;
    nn.notReadyReason = 'The NameNode is in safemode.';
    expect(await client.getServiceStatus()).toEqual({
      state: 'standby',
      readyToBecomeActive: false,
      notReadyReason: 'The NameNode is in safemode.',
    });
  });

  it('transitions carry the request source; REQUEST_BY_ZKFC is 2', async () => {
    await client.transitionToActive('REQUEST_BY_ZKFC');
    await client.transitionToStandby('REQUEST_BY_ZKFC');
    expect(nn.transitions).toEqual([
      { method: 'transitionToActive', reqSource: 2 },
      { method: 'transitionToStandby', reqSource: 2 },
    ]);
  });

  it('a hung server: the call times out with a message naming the call, address and deadline', async () => {
    nn.faults.set('getServiceStatus', { kind: 'hang' });
    const t0 = Date.now();
    const err = await failure(client.getServiceStatus({ timeoutMs: 300 }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect((err as IpcTransportError).reason).toBe('timeout');
    expect((err as Error).message).toBe(
      `getServiceStatus on 127.0.0.1:${nn.port}: no answer within 300 ms (timed out waiting for the answer)`,
    );
    // The hung connection was dropped: the next call opens a new one.
    nn.faults.clear();
    await client.getServiceStatus();
    expect(nn.connections).toHaveLength(2);
  });

  it('a slow answer inside the deadline is fine; outside it is a timeout', async () => {
    nn.faults.set('monitorHealth', { kind: 'delay', ms: 150 });
    await client.monitorHealth({ timeoutMs: 1000 });
    const err = await failure(client.monitorHealth({ timeoutMs: 50 }));
    expect((err as IpcTransportError).reason).toBe('timeout');
  });

  it('garbage instead of a frame: a protocol error that shows the bytes, and a fresh connection next', async () => {
    nn.faults.set('getServiceStatus', {
      kind: 'garbage',
      bytes: Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'),
    });
    const err = await failure(client.getServiceStatus());
    expect(err).toBeInstanceOf(IpcProtocolError);
    expect((err as Error).message).toMatch(
      /^127\.0\.0\.1:\d+ sent a frame of 1213486160 bytes \(limit 4194304\); first bytes 485454502f312e31.*: not a Hadoop IPC server\?$/,
    );
    nn.faults.clear();
    expect(await client.getServiceStatus()).toMatchObject({ state: 'standby' });
  });

  it('a well-framed answer whose header is not protobuf: a protocol error naming the frame', async () => {
    nn.faults.set('getServiceStatus', { kind: 'garbage', bytes: Buffer.from('00000003020a07', 'hex') });
    const err = await failure(client.getServiceStatus());
    expect(err).toBeInstanceOf(IpcProtocolError);
    expect((err as Error).message).toContain('sent an answer that is not Hadoop IPC');
  });

  it('an answer for a call id never sent is a protocol error', async () => {
    nn.faults.set('getServiceStatus', { kind: 'wrong-call-id' });
    const err = await failure(client.getServiceStatus());
    expect((err as Error).message).toBe(`127.0.0.1:${nn.port} answered call id 1000, which was never sent`);
  });

  it('a FATAL reply fails the call with the server exception and ends the connection', async () => {
    nn.faults.set('monitorHealth', {
      kind: 'fatal',
      exceptionClassName: 'org.apache.hadoop.ipc.IpcException',
      errorMsg: 'Unknown rpc kind',
    });
    const err = await failure(client.monitorHealth());
    expect(err).toBeInstanceOf(IpcRemoteError);
    expect((err as IpcRemoteError).fatal).toBe(true);
    expect((err as Error).message).toBe(
      `monitorHealth on 127.0.0.1:${nn.port} failed (FATAL, connection closed): ` +
        'org.apache.hadoop.ipc.IpcException: Unknown rpc kind [FATAL_UNKNOWN]',
    );
    nn.faults.clear();
    await client.monitorHealth();
    expect(nn.connections).toHaveLength(2);
  });

  it('the connection closed mid-call: a transport error saying so; the next call reconnects', async () => {
    nn.faults.set('getServiceStatus', { kind: 'close' });
    const err = await failure(client.getServiceStatus());
    expect((err as IpcTransportError).reason).toBe('closed');
    expect((err as Error).message).toBe(
      `getServiceStatus: connection to 127.0.0.1:${nn.port} was closed by the server while waiting for the answer`,
    );
    nn.faults.clear();
    await client.getServiceStatus();
  });

  it('a connection dropped while idle is replaced on the next call', async () => {
    await client.getServiceStatus();
    nn.dropConnections();
    await waitFor('the client to notice the dropped connection', () => !client.ipc.connected);
    await client.getServiceStatus();
    expect(nn.connections).toHaveLength(2);
  });

  it('a server that demands SASL: a clear auth error naming what would be needed', async () => {
    nn.requireSasl = true;
    const err = await failure(client.getServiceStatus());
    expect(err).toBeInstanceOf(IpcAuthError);
    expect((err as Error).message).toMatch(
      /refused SIMPLE authentication \(SIMPLE authentication is not enabled/,
    );
    expect((err as Error).message).toMatch(/Kerberos GSSAPI with a principal and keytab/);
  });

  it('nothing listening: a connect error at once', async () => {
    const port = nn.port;
    await nn.close();
    const err = await failure(client.getServiceStatus());
    expect((err as IpcTransportError).reason).toBe('connect');
    expect((err as Error).message).toMatch(
      new RegExp(`^connecting to 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
    );
    nn = await FakeNameNode.start();
  });

  it('sends pings while idle, as call id -4', async () => {
    client.close();
    client = makeClient({ pingIntervalMs: 40 });
    await client.getServiceStatus();
    await waitFor('two pings to reach the fake', () => (nn.connections[0]?.pings ?? 0) >= 2, {
      timeoutMs: 3000,
    });
  });

  it('an aborted call drops its late answer without disturbing the next call', async () => {
    nn.faults.set('getServiceStatus', { kind: 'delay', ms: 100 });
    const ac = new AbortController();
    const p = failure(client.getServiceStatus({ signal: ac.signal }));
    await waitFor('the call to reach the fake', () => nn.calls.length >= 1);
    ac.abort();
    expect(((await p) as IpcTransportError).reason).toBe('aborted');
    // Answered after the late one (the fake answers in timer order), so it proves the late answer
    // was dropped quietly: an unexpected call id would have ended the connection.
    nn.faults.set('monitorHealth', { kind: 'delay', ms: 200 });
    expect(await client.monitorHealth()).toBeUndefined();
    expect(nn.connections).toHaveLength(1);
  });

  it('options are validated eagerly, naming the option and the value', () => {
    expect(() => new HaServiceClient({ host: 'h', port: 0, user: 'u' })).toThrow(
      'IpcClient: port must be 1-65535, got 0',
    );
    expect(() => new HaServiceClient({ host: 'h', port: 1, user: '' })).toThrow(
      'IpcClient: user must not be empty',
    );
    expect(() => new HaServiceClient({ host: 'h', port: 1, user: 'u', callTimeoutMs: -5 })).toThrow(
      'IpcClient: callTimeoutMs must be a positive integer, got -5',
    );
  });

  it('a closed client refuses calls', async () => {
    client.close();
    const err = await failure(client.getServiceStatus());
    expect((err as IpcTransportError).reason).toBe('closed');
  });
});
