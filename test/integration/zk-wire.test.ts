/**
 * Issue 7 item 5: a malformed reply from a ZooKeeper server, at the handshake or mid-session, used
 * to throw inside the client library's socket handler (the agent died, its service stayed active)
 * or, worse, decode silently into wrong values. With the patch a bad frame only ends its
 * connection: the requests on it fail with CONNECTION_LOSS, the client connects again (to the
 * next server, or the same one), and the session lives on while it has not expired.
 *
 * Real sockets and a real ZooKeeper throughout. A server that botches the handshake is a plain
 * net.Server (test/support/fake-zk-server.ts); lies in the middle of a session are told by a
 * proxy in front of the real server (test/support/tamper-proxy.ts). An exception escaping the
 * library here is an uncaught error, which fails the vitest run.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { openSession } from '../../src/zk/session.js';
import type { SessionState, WatchEvent, ZkSession, ZkSessionOptions } from '../../src/zk/types.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { waitFor } from '../../harness/wait.js';
import { FakeZkServer, connectResponse, frame } from '../support/fake-zk-server.js';
import { REPLY_BODY, REPLY_XID, TamperProxy } from '../support/tamper-proxy.js';
import { TestLogs, rejection, track } from '../support/session-fixtures.js';

const testLogs = new TestLogs();
const opened: ZkSession[] = [];
let ens: ZkEnsemble;

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

async function open(connect: string, opts: Partial<ZkSessionOptions> = {}): Promise<ZkSession> {
  const s = await openSession({
    connect,
    sessionTimeoutMs: 4000,
    requestTimeoutMs: 2000,
    logger: testLogs.logger(),
    ...opts,
  });
  opened.push(s);
  return s;
}

beforeAll(async () => {
  ens = await ZkEnsemble.start({ servers: 1, tickTimeMs: 200 });
});

afterAll(async () => {
  await ens?.stop();
});

beforeEach(() => {
  testLogs.reset();
});

afterEach(async (ctx) => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  ens.servers[0]!.proxy.setRefuse(false);
  if (ctx.task.result?.state === 'fail') console.log(testLogs.dump());
});

describe('a server that botches the handshake, listed with a real one', () => {
  const someSession = Buffer.from('0123456789abcdef', 'hex');
  const cases: Array<[string, () => Buffer]> = [
    ['garbage in a short frame', () => frame(Buffer.from('not zookeeper'))],
    [
      'a ConnectResponse cut short inside its password',
      () =>
        connectResponse({
          timeOutMs: 30_000,
          sessionId: someSession,
          passwd: Buffer.alloc(16, 7),
          passwdBytes: 6,
        }),
    ],
    [
      'a ConnectResponse with a negative session timeout',
      () => connectResponse({ timeOutMs: -1, sessionId: someSession, passwd: Buffer.alloc(16, 7) }),
    ],
    ['a 2 GiB length prefix', () => Buffer.concat([int32(0x7fffffff), Buffer.alloc(64, 0x41)])],
    ['a negative length prefix', () => Buffer.concat([int32(-5), Buffer.alloc(64, 0x41)])],
    ['an HTTP reply', () => Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')],
  ];

  it.each(cases)(
    '%s: the client hangs up on it at once and opens its session on the real one',
    async (name, answer) => {
      const real = ens.servers[0]!.proxy;
      // The library shuffles the servers: the real one refuses until the fake one has answered, so
      // the fake answer is always read before a session can open.
      real.setRefuse(true);
      const fake = await FakeZkServer.start(answer, () => real.setRefuse(false));
      try {
        // A 30 s session gives each of the 2 servers a 10 s connect timer; the open must not need it.
        const s = await open(`${fake.address},127.0.0.1:${real.port}`, {
          sessionTimeoutMs: 30_000,
          connectTimeoutMs: 8000,
        });
        expect(s.state).toBe('connected');
        const path = `/handshake-${cases.findIndex((c) => c[0] === name)}`;
        await s.create(path, null, { mode: 'ephemeral' });
        expect((await s.exists(path))?.ephemeralOwner).toBe(s.sessionId);

        expect(fake.connections.length).toBeGreaterThanOrEqual(1);
        await waitFor('the client to hang up on every connection to the fake server', () =>
          fake.connections.every((c) => c.clientClosedAt !== undefined),
        );
        for (const c of fake.connections) {
          expect(c.answeredAt).toBeDefined();
          expect(c.clientClosedAt! - c.answeredAt!).toBeLessThan(2000);
        }
      } finally {
        real.setRefuse(false);
        await fake.close();
      }
    },
  );

  it('the ConnectRequest carries the readOnly byte, and the real server takes it without a warning', async () => {
    const fake = await FakeZkServer.start(() => frame(Buffer.from('x')));
    try {
      await expect(open(fake.address, { connectTimeoutMs: 300 })).rejects.toThrow(/could not connect/);
      const request = fake.connections[0]?.request;
      // protocolVersion 4, lastZxidSeen 8, timeOut 4, sessionId 8, passwd 4+16, readOnly 1
      expect(request?.readInt32BE(0)).toBe(45);
      expect(request?.at(-1)).toBe(0);
    } finally {
      await fake.close();
    }

    const server = ens.servers[0]!;
    const s = await open(ens.directConnectString());
    await s.create('/readonly-byte', null, { mode: 'ephemeral' });
    // Control: a ConnectRequest that ends after the password, as the library used to send it,
    // makes ZooKeeper log its WARN, naming the connection's port.
    const controlPort = await connectWithoutReadOnlyByte(server.clientPort);
    const warning = 'Connection request from old client';
    await waitFor('the server to warn about the control connection', () =>
      fs.readFileSync(server.logFile, 'utf8').includes(`${warning} /127.0.0.1:${controlPort}`),
    );
    // ...and only about it: none of the connections of this file's clients (all before it) did.
    const warnings = fs
      .readFileSync(server.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(warning));
    expect(warnings).toHaveLength(1);
  });
});

/** Sends a handshake without the readOnly byte, reads the reply, hangs up; returns its local port. */
async function connectWithoutReadOnlyByte(port: number): Promise<number> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  const signal = AbortSignal.timeout(5000);
  try {
    await once(socket, 'connect', { signal });
    const body = Buffer.alloc(4 + 8 + 4 + 8 + 4 + 16);
    body.writeInt32BE(4000, 12); // timeOut; protocolVersion, zxid and sessionId stay 0
    body.writeInt32BE(16, 24); // passwd length (16 zero bytes)
    socket.write(frame(body));
    await once(socket, 'data', { signal });
    return socket.localPort!;
  } catch (err) {
    throw new Error(`the control handshake with 127.0.0.1:${port} got no reply within 5000 ms`, {
      cause: err,
    });
  } finally {
    socket.destroy();
  }
}

describe('a bad frame in the middle of a session', () => {
  let proxy: TamperProxy;
  let s: ZkSession;
  let seen: Array<{ state: SessionState }>;
  let originalId: string;
  const precious = Buffer.from('the value a half-decoded reply would corrupt: 0123456789abcdef');

  beforeEach(async () => {
    proxy = await TamperProxy.start(ens.servers[0]!.clientPort);
    s = await open(proxy.address);
    originalId = s.sessionId;
    if (!(await s.exists('/wire-data'))) await s.create('/wire-data', precious);
    await s.create('/wire-lock', null, { mode: 'ephemeral' });
    seen = track(s);
  });

  afterEach(async () => {
    // Before the proxy goes: CLOSE_SESSION must reach the server, or the ephemerals outlive the test.
    await Promise.all(opened.splice(0).map((x) => x.close()));
    await proxy.close();
  });

  /** The client dropped the connection itself, reconnected, and the session is the same one. */
  async function expectSameSessionBack(): Promise<void> {
    await waitFor('the client to hang up on the bad connection', () => proxy.closedByClient >= 1);
    await waitFor('a new connection to be established', () => proxy.established >= 1 && proxy.accepted >= 2);
    await waitFor('the session to be connected again', () => seen.length >= 2 && s.state === 'connected', {
      timeoutMs: s.negotiatedTimeoutMs,
    });
    expect(seen.map((t) => t.state)).toEqual(['suspended', 'connected']);
    expect(s.sessionId).toBe(originalId);
    // Requests work again, on the session that still owns its ephemeral.
    expect((await s.exists('/wire-lock'))?.ephemeralOwner).toBe(originalId);
    const { data } = await s.getData('/wire-data');
    expect(data).toEqual(precious);
  }

  const injected: Array<[string, Buffer]> = [
    ['a frame too short for a reply header', frame(Buffer.from('garbage'))],
    ['a 2 GiB length prefix', Buffer.concat([int32(0x7fffffff), Buffer.from('AAAA')])],
    ['a negative length prefix', Buffer.concat([int32(-2), Buffer.from('AAAAAAAAAAAAAAAAAAAA')])],
  ];

  it.each(injected)('injected %s: the connection is dropped, the session goes on', async (_name, bytes) => {
    proxy.inject(bytes);
    await expectSameSessionBack();
  });

  it('a watch event whose path runs past its frame is not delivered; the watch survives', async () => {
    const events: WatchEvent[] = [];
    await s.getData('/wire-data', (e) => events.push(e));
    const path = Buffer.from('/wire-data');
    const body = Buffer.concat([
      int32(-1), // xid: notification
      Buffer.alloc(8, 0xff), // zxid -1
      int32(0), // err
      int32(3), // NodeDataChanged
      int32(3), // SyncConnected
      int32(200), // path length: far beyond the frame
      path,
    ]);
    proxy.inject(frame(body));
    await expectSameSessionBack();
    expect(events).toEqual([]);
    // The reconnect re-armed the watch: a real change is reported, once.
    await s.setData('/wire-data', precious, -1);
    await waitFor('the watch to fire', () => events.length === 1);
    expect(events).toEqual([{ type: 'dataChanged', path: '/wire-data' }]);
  });

  it('a getData reply cut inside its data fails the request instead of returning half of it', async () => {
    const tampered = proxy.rewriteNext('reply', (f) => {
      const at = f.indexOf(precious.subarray(0, 16));
      return at < 0 ? undefined : frame(f.subarray(4, at + 10));
    });
    const err = await rejection(s.getData('/wire-data'));
    await tampered;
    expect(err.zkCode).toBe('CONNECTION_LOSS');
    await expectSameSessionBack();
  });

  it('a multi reply with an op type the client does not know fails the multi; the write happened', async () => {
    const tampered = proxy.rewriteNext('reply', (f) => {
      if (!f.includes('/wire-multi')) return undefined;
      const copy = Buffer.from(f);
      copy.writeInt32BE(99, REPLY_BODY); // the first result's MultiHeader type
      return copy;
    });
    const err = await rejection(
      s.multi([{ op: 'create', path: '/wire-multi', data: null, mode: 'ephemeral' }]),
    );
    await tampered;
    expect(err.zkCode).toBe('CONNECTION_LOSS');
    await expectSameSessionBack();
    expect((await s.exists('/wire-multi'))?.ephemeralOwner).toBe(originalId);
  });

  it('a reply with the wrong xid fails its request at once (it used to wait for the request timeout)', async () => {
    const tampered = proxy.rewriteNext('reply', (f) => {
      if (!f.includes(precious.subarray(0, 16))) return undefined;
      const copy = Buffer.from(f);
      copy.writeInt32BE(copy.readInt32BE(REPLY_XID) + 1000, REPLY_XID);
      return copy;
    });
    const err = await rejection(s.getData('/wire-data'));
    await tampered;
    expect(err.zkCode).toBe('CONNECTION_LOSS');
    await expectSameSessionBack();
  });

  it('a connection lost halfway through a reply leaves nothing behind for the next handshake', async () => {
    const tampered = proxy.rewriteNext(
      'reply',
      (f) => (f.includes(precious.subarray(0, 16)) ? f.subarray(0, 12) : undefined),
      {
        thenCut: true,
      },
    );
    const err = await rejection(s.getData('/wire-data'));
    await tampered;
    expect(err.zkCode).toBe('CONNECTION_LOSS');
    // Not closed by the client this time: the proxy cut it.
    await waitFor('a new connection to be established', () => proxy.established >= 1 && proxy.accepted >= 2);
    await waitFor('the session to be connected again', () => seen.length >= 2 && s.state === 'connected', {
      timeoutMs: s.negotiatedTimeoutMs,
    });
    expect(seen.map((t) => t.state)).toEqual(['suspended', 'connected']);
    expect(s.sessionId).toBe(originalId);
    expect((await s.getData('/wire-data')).data).toEqual(precious);
  });

  it('a reconnect handshake naming another session is refused; the client keeps its own', async () => {
    const tampered = proxy.rewriteNext('handshake', (f) => {
      const copy = Buffer.from(f);
      copy.writeInt32BE(copy.readInt32BE(12) ^ 0x5a5a5a5a, 12); // inside the sessionId (offset 12..19)
      return copy;
    });
    proxy.cut();
    await tampered;
    await expectSameSessionBack();
  });
});

describe('the library, as the session layer sees it', () => {
  interface LibClient extends EventEmitter {
    connect(): void;
    close(): void;
    getSessionId(): Buffer;
    getData(path: string, cb: (err: { code: number } | null, data?: Buffer) => void): void;
    connectionManager: EventEmitter;
  }
  const lib = createRequire(import.meta.url)('node-zookeeper-client') as {
    createClient(
      connect: string,
      opts: { sessionTimeout: number; spinDelay: number; retries: number },
    ): LibClient;
  };

  it('a corrupted reply: protocolError, the callback gets CONNECTION_LOSS, then disconnected, connected', async () => {
    const proxy = await TamperProxy.start(ens.servers[0]!.clientPort);
    const client = lib.createClient(proxy.address, { sessionTimeout: 4000, spinDelay: 50, retries: 0 });
    const events: string[] = [];
    try {
      client.once('connected', () => events.push('connected'));
      client.connect();
      await waitFor('the library to connect', () => events.includes('connected'));
      const id = client.getSessionId().toString('hex');
      const data = await new Promise<Buffer | undefined>((resolve, reject) =>
        client.getData('/wire-data', (err, d) =>
          err ? reject(new Error(`getData: ${err.code}`)) : resolve(d),
        ),
      );
      expect(data?.length).toBeGreaterThan(16);

      client.on('connected', () => events.push('connected'));
      client.on('disconnected', () => events.push('disconnected'));
      client.connectionManager.on('protocolError', (e: Error) => events.push(`protocolError: ${e.message}`));
      void proxy.rewriteNext('reply', (f) =>
        f.includes(data!.subarray(0, 16)) ? frame(f.subarray(4, 30)) : undefined,
      );
      client.getData('/wire-data', (err, d) =>
        events.push(`callback: ${err?.code} ${d === undefined ? 'no data' : 'DATA'}`),
      );

      await waitFor('the library to reconnect', () => events.filter((e) => e === 'connected').length === 2);
      expect(events.slice(1)).toEqual([
        expect.stringMatching(
          /^protocolError: malformed reply from ZooKeeper server 127\.0\.0\.1:\d+: reply to request type 4: .*; dropped the connection$/,
        ),
        'callback: -4 no data',
        'disconnected',
        'connected',
      ]);
      expect(client.getSessionId().toString('hex')).toBe(id);
    } finally {
      client.close();
      await proxy.close();
    }
  });
});
