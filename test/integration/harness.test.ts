import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expireSession } from '../../harness/expire-session.js';
import { TcpProxy } from '../../harness/tcp-proxy.js';
import { waitFor } from '../../harness/wait.js';
import {
  bareIdElectionPreamble,
  fourLetter,
  livePids,
  pidAlive,
  readRegistry,
  ZkEnsemble,
} from '../../harness/zk-ensemble.js';

type NzkCallback = (err: Error | null, result?: unknown) => void;
interface NzkClient extends EventEmitter {
  connect(): void;
  close(): void;
  getSessionId(): Buffer;
  getSessionPassword(): Buffer;
  create(path: string, data: Buffer | undefined, acls: unknown[], mode: number, cb: NzkCallback): void;
  exists(path: string, watcher: undefined, cb: NzkCallback): void;
}
const require = createRequire(import.meta.url);
const zookeeper = require('node-zookeeper-client') as {
  createClient(
    connect: string,
    opts: { sessionTimeout: number; spinDelay: number; retries: number },
  ): NzkClient;
  ACL: { OPEN_ACL_UNSAFE: unknown[] };
};

/** A connected client, and a promise form of the two calls used here. */
async function connectedClient(connect: string): Promise<{
  client: NzkClient;
  create(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}> {
  const client = zookeeper.createClient(connect, {
    sessionTimeout: 6000,
    spinDelay: 100,
    retries: 0,
  });
  let connected = false;
  client.once('connected', () => (connected = true));
  client.connect();
  await waitFor(`a client to connect through ${connect}`, () => connected, {
    timeoutMs: 15_000,
  });
  const call = <T>(what: string, issue: (cb: NzkCallback) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: no answer within 10000 ms`)), 10_000);
      issue((err, result) => {
        clearTimeout(timer);
        if (err) reject(new Error(`${what}: ${String(err)}`));
        else resolve(result as T);
      });
    });
  return {
    client,
    create: (path) =>
      call(`create ${path}`, (cb) => client.create(path, undefined, zookeeper.ACL.OPEN_ACL_UNSAFE, 0, cb)),
    exists: async (path) =>
      (await call<unknown>(`exists ${path}`, (cb) => client.exists(path, undefined, cb))) != null,
  };
}

/** Established loopback TCP connections owned by `pid`, as local and remote ports. */
function tcpConnectionsOf(pid: number): Array<{ local: number; remote: number }> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // Closed while we looked.
    }
  }
  const ESTABLISHED = '01';
  return fs
    .readFileSync(`/proc/${pid}/net/tcp`, 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length > 9 && f[3] === ESTABLISHED && inodes.has(f[9]!))
    .map((f) => ({
      local: parseInt(f[1]!.split(':')[1]!, 16),
      remote: parseInt(f[2]!.split(':')[1]!, 16),
    }));
}

/**
 * The server answers `srvr` and says it does not serve (it left the quorum). Unlike mode() === null
 * this cannot be a slow answer on a loaded box.
 */
async function saysNotServing(port: number): Promise<boolean> {
  return /not currently serving requests/.test(await fourLetter(port, 'srvr', 5000));
}

/** Fails if `probe` turns false at any point during `ms` (a property that must hold, not a wait). */
async function holdsFor(what: string, ms: number, probe: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await probe()))
      throw new Error(`${what} stopped holding ${ms - (end - Date.now())} ms into ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ownRegisteredPids(): number[] {
  return readRegistry()
    .filter((e) => e.ownerPid === process.pid)
    .map((e) => e.pid);
}

/** Resolves with whatever arrives on one fresh connection within `ms` (empty if nothing). */
function collectFor(port: number, send: string, ms: number): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const sock = net.connect({ port, host: '127.0.0.1' }, () => sock.write(send));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('close', () => (closed = true));
    sock.on('error', () => {});
    setTimeout(() => {
      sock.destroy();
      resolve({ data: Buffer.concat(chunks).toString('utf8'), closed });
    }, ms);
  });
}

describe('ZooKeeper harness: 3-server ensemble', () => {
  let zk: ZkEnsemble;
  let startedPids: number[] = [];

  beforeAll(async () => {
    zk = await ZkEnsemble.start({ servers: 3 });
    console.log(`[harness] 3-server ensemble serving after ${zk.startupMs} ms`);
  });

  afterAll(async () => {
    await zk?.stop();
  });

  it('every server answers srvr with a mode and the proxies lead to them', async () => {
    const modes = await Promise.all(zk.servers.map((s) => s.mode()));
    expect(modes.filter((m) => m === 'leader')).toHaveLength(1);
    expect(modes.filter((m) => m === 'follower')).toHaveLength(2);
    for (const s of zk.servers) {
      expect(s.isRunning()).toBe(true);
      expect(await fourLetter(s.proxy.port, 'ruok')).toBe('imok');
    }
    expect(zk.connectString().split(',')).toHaveLength(3);
    expect(zk.directConnectString()).toBe(zk.servers.map((s) => `127.0.0.1:${s.clientPort}`).join(','));
    startedPids = zk.servers.map((s) => s.pid()!);
    expect(ownRegisteredPids().sort()).toEqual([...startedPids].sort());
    expect(zk.isolatable).toBeUndefined();
    expect(() => zk.isolate(0, true)).toThrow(/isolate\(0\).*without the isolatable option/);
    expect(zk.connectStringFor([2, 0])).toBe(
      `127.0.0.1:${zk.servers[2]!.proxy.port},127.0.0.1:${zk.servers[0]!.proxy.port}`,
    );
    expect(() => zk.connectStringFor([])).toThrow(/no server index/);
    expect(() => zk.connectStringFor([3])).toThrow(/server index 3 is not in 0\.\.2/);
    expect(() => zk.connectStringFor([1, 1])).toThrow(/server index 1 is listed twice/);
  });

  it('kill -9 of the leader elects a new leader among the others; the old one rejoins as follower', async () => {
    const oldLeader = await zk.leaderIndex();
    const victim = zk.servers[oldLeader]!;
    const victimPid = victim.pid()!;
    const t0 = Date.now();
    await victim.kill();
    expect(victim.isRunning()).toBe(false);
    expect(pidAlive(victimPid)).toBe(false);
    expect(ownRegisteredPids()).not.toContain(victimPid);

    const newLeader = await zk.leaderIndex(20_000);
    const electedMs = Date.now() - t0;
    console.log(
      `[harness] new leader zk${newLeader + 1} elected ${electedMs} ms after kill -9 of the leader`,
    );
    expect(newLeader).not.toBe(oldLeader);
    await zk.waitForQuorum(20_000);

    const t1 = Date.now();
    await victim.restart();
    await waitFor(
      `restarted zk${oldLeader + 1} to rejoin as follower`,
      async () => (await victim.mode()) === 'follower',
      {
        timeoutMs: 20_000,
        intervalMs: 100,
      },
    );
    console.log(`[harness] restarted server rejoined as follower after ${Date.now() - t1} ms`);
    expect(await zk.leaderIndex()).toBe(newLeader);
    await zk.waitForQuorum(20_000);
  });

  it('a frozen follower does not answer; after thaw it serves again', async () => {
    const leader = await zk.leaderIndex();
    const follower = zk.servers.find((s) => s.index !== leader)!;
    follower.freeze();
    try {
      await expect(fourLetter(follower.clientPort, 'srvr', 700)).rejects.toThrow(/no answer within 700 ms/);
      expect(follower.isRunning()).toBe(true);
      // The other two still form a quorum.
      expect(await zk.leaderIndex()).toBe(leader);
    } finally {
      follower.thaw();
    }
    await waitFor(
      `thawed zk${follower.index + 1} to serve again`,
      async () => (await follower.mode()) === 'follower',
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    await zk.waitForQuorum(20_000);
  });

  it('proxy blackhole silences the link while the direct port answers; cut() drops connections', async () => {
    const s = zk.servers[0]!;
    s.proxy.setBlackhole(true);
    try {
      const through = await collectFor(s.proxy.port, 'ruok', 700);
      expect(through).toEqual({ data: '', closed: false });
      await expect(fourLetter(s.proxy.port, 'ruok', 500)).rejects.toThrow(/no answer/);
      expect(await fourLetter(s.clientPort, 'ruok')).toBe('imok');
    } finally {
      s.proxy.setBlackhole(false);
    }
    expect(await fourLetter(s.proxy.port, 'ruok')).toBe('imok');

    // cut(): an idle connection held open through the proxy is closed from the proxy side.
    const sock = net.connect({ port: s.proxy.port, host: '127.0.0.1' });
    sock.on('error', () => {});
    let closed = false;
    sock.on('close', () => (closed = true));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    await waitFor('the proxy to hold the connection', () => s.proxy.connectionCount >= 1, {
      timeoutMs: 2000,
    });
    s.proxy.cut();
    await waitFor('the cut connection to close', () => closed, {
      timeoutMs: 2000,
    });
    expect(await fourLetter(s.proxy.port, 'ruok')).toBe('imok');

    // setRefuse(): new connections are closed without an answer.
    s.proxy.setRefuse(true);
    try {
      const refused = await collectFor(s.proxy.port, 'ruok', 500);
      expect(refused).toEqual({ data: '', closed: true });
    } finally {
      s.proxy.setRefuse(false);
    }
  });

  it('expireSession ends a live session of another client', async () => {
    const client = zookeeper.createClient(zk.connectString(), {
      sessionTimeout: 6000,
      spinDelay: 100,
      retries: 0,
    });
    let expired = false;
    client.once('expired', () => (expired = true));
    let connected = false;
    client.once('connected', () => (connected = true));
    client.connect();
    try {
      await waitFor('the client to connect', () => connected, {
        timeoutMs: 10_000,
      });
      const id = client.getSessionId().toString('hex');
      const t0 = Date.now();
      await expireSession(zk.directConnectString(), id, client.getSessionPassword(), 10_000);
      await waitFor('the original client to see its session expire', () => expired, { timeoutMs: 10_000 });
      console.log(`[harness] expireSession + client notified in ${Date.now() - t0} ms`);
    } finally {
      client.close();
    }
  });

  it('stop() leaves no registered process alive and is idempotent', async () => {
    const pids = zk.servers.flatMap((s) => (s.pid() === undefined ? [] : [s.pid()!]));
    expect(pids).toHaveLength(3);
    await zk.stop();
    await zk.stop();
    for (const pid of [...pids, ...startedPids]) expect(pidAlive(pid)).toBe(false);
    expect(ownRegisteredPids()).toEqual([]);
    expect(livePids()).toEqual([]);
    for (const s of zk.servers) expect(s.isRunning()).toBe(false);
  });
});

describe('ZooKeeper harness: single server', () => {
  it('starts standalone, serves through its proxy, and stops clean', async () => {
    const zk = await ZkEnsemble.start({ servers: 1, enforceQuota: true });
    try {
      console.log(`[harness] standalone server serving after ${zk.startupMs} ms`);
      expect(zk.servers).toHaveLength(1);
      expect(await zk.servers[0]!.mode()).toBe('standalone');
      expect(await zk.leaderIndex()).toBe(0);
      expect(await fourLetter(zk.servers[0]!.proxy.port, 'ruok')).toBe('imok');
      const pid = zk.servers[0]!.pid()!;
      await zk.stop();
      expect(pidAlive(pid)).toBe(false);
      expect(ownRegisteredPids()).toEqual([]);
    } finally {
      await zk.stop();
    }
  });
});

describe('ZooKeeper harness: an isolatable follower', () => {
  const ISO = 0; // the lowest id: its links to the others are the ones ZooKeeper dials back
  const TICK_MS = 200;
  const SYNC_LIMIT = 5;
  let zk: ZkEnsemble;
  const clients: NzkClient[] = [];

  beforeAll(async () => {
    zk = await ZkEnsemble.start({
      servers: 3,
      isolatable: ISO,
      tickTimeMs: TICK_MS,
      syncLimit: SYNC_LIMIT,
    });
    console.log(`[harness] ensemble with isolatable zk${ISO + 1} serving after ${zk.startupMs} ms`);
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    if (zk?.isIsolated(ISO)) zk.isolate(ISO, false);
    await zk?.stop();
  });

  it('rejects bad options before starting anything', async () => {
    await expect(ZkEnsemble.start({ isolatable: 3 })).rejects.toThrow(
      /isolatable must be a server index 0\.\.2, got 3/,
    );
    await expect(ZkEnsemble.start({ servers: 1, isolatable: 0 })).rejects.toThrow(
      /isolatable needs a 3-server ensemble/,
    );
    await expect(ZkEnsemble.start({ syncLimit: 0 })).rejects.toThrow(
      /syncLimit must be a positive integer, got 0/,
    );
    await expect(ZkEnsemble.start({ initLimit: 2.5 })).rejects.toThrow(
      /initLimit must be a positive integer, got 2\.5/,
    );
    await expect(
      ZkEnsemble.start({
        minSessionTimeoutMs: 5000,
        maxSessionTimeoutMs: 4000,
      }),
    ).rejects.toThrow(/minSessionTimeoutMs \(5000\) must not exceed maxSessionTimeoutMs \(4000\)/);
    expect(() => zk.isolate(1, true)).toThrow(/isolate\(1\): only server index 0 \(zk1\) is isolatable/);
  });

  it('starts as a follower, and its quorum links run only through the proxies', async () => {
    const modes = await Promise.all(zk.servers.map((s) => s.mode()));
    expect(modes[ISO]).toBe('follower');
    expect(modes.filter((m) => m === 'leader')).toHaveLength(1);
    const iso = zk.servers[ISO]!;
    const others = zk.servers.filter((s) => s.index !== ISO);
    const quorumPorts = (s: typeof iso): number[] => [s.peerPort, s.electionPort];
    // Both kinds of link exist: a follower holds one to the leader's peer port and one election
    // link to each other server (client connections, to its client port, do not count) ...
    await waitFor(
      `zk${ISO + 1} to hold its three quorum connections`,
      () => tcpConnectionsOf(iso.pid()!).filter((c) => c.local !== iso.clientPort).length >= 3,
      { timeoutMs: 10_000 },
    );
    // ... and none of them reaches a real quorum port of the other side directly.
    const direct = [
      ...tcpConnectionsOf(iso.pid()!)
        .filter((c) => others.some((o) => quorumPorts(o).includes(c.remote)))
        .map((c) => `${iso.name} -> :${c.remote}`),
      ...others.flatMap((o) =>
        tcpConnectionsOf(o.pid()!)
          .filter((c) => quorumPorts(iso).includes(c.remote))
          .map((c) => `${o.name} -> :${c.remote}`),
      ),
    ];
    expect(direct, 'quorum connections that bypass the proxies').toEqual([]);
    expect(zk.isIsolated(ISO)).toBe(false);
  });

  it('isolate() cuts it off: it stops serving after syncLimit x tickTime, the others keep a quorum; heal brings it back', async () => {
    const iso = zk.servers[ISO]!;
    const leader = await zk.leaderIndex();
    expect(leader).not.toBe(ISO);
    const quorum = await connectedClient(
      zk.connectStringFor(zk.servers.map((s) => s.index).filter((i) => i !== ISO)),
    );
    clients.push(quorum.client);

    const t0 = Date.now();
    zk.isolate(ISO, true);
    expect(zk.isIsolated(ISO)).toBe(true);
    await waitFor(
      `zk${ISO + 1} to say it is not serving once cut off`,
      () => saysNotServing(iso.clientPort),
      {
        timeoutMs: 20_000,
        intervalMs: 50,
      },
    );
    const cutMs = Date.now() - t0;
    console.log(
      `[harness] isolated zk${ISO + 1} stopped serving ${cutMs} ms after the cut (syncLimit x tickTime = ${SYNC_LIMIT * TICK_MS})`,
    );
    expect(cutMs).toBeGreaterThanOrEqual(SYNC_LIMIT * TICK_MS - TICK_MS);
    // Its client port stays reachable, and the two others go on as a quorum that takes writes.
    expect(await fourLetter(iso.proxy.port, 'ruok')).toBe('imok');
    expect(await zk.leaderIndex()).toBe(leader);
    const otherFollower = zk.servers.find((s) => s.index !== ISO && s.index !== leader)!;
    expect(await otherFollower.mode()).toBe('follower');
    await quorum.create('/written-while-isolated');
    // Cut off for good: no path around the proxies lets it rejoin.
    await holdsFor(`zk${ISO + 1} staying out of the quorum`, 3 * SYNC_LIMIT * TICK_MS, () =>
      saysNotServing(iso.clientPort),
    );

    const t1 = Date.now();
    zk.isolate(ISO, false);
    expect(zk.isIsolated(ISO)).toBe(false);
    await waitFor(
      `zk${ISO + 1} to rejoin as follower after the heal`,
      async () => (await iso.mode()) === 'follower',
      {
        timeoutMs: 60_000,
        intervalMs: 100,
      },
    );
    console.log(`[harness] healed zk${ISO + 1} was a follower again ${Date.now() - t1} ms after the heal`);
    await zk.waitForQuorum(20_000);
    expect(await zk.leaderIndex()).toBe(leader);
    // It caught up with what the quorum wrote meanwhile.
    const viaIso = await connectedClient(zk.connectStringFor([ISO]));
    clients.push(viaIso.client);
    expect(await viaIso.exists('/written-while-isolated')).toBe(true);
  });
});

describe('TcpProxy on its own', () => {
  it('close() is idempotent and a dead target closes client connections', async () => {
    const proxy = await TcpProxy.start(1); // nothing listens on port 1
    const r = await collectFor(proxy.port, 'x', 300);
    expect(r).toEqual({ data: '', closed: true });
    await proxy.close();
    await proxy.close();
  });

  /** A target that records everything each connection sent it, until that connection ended. */
  async function recordingTarget(): Promise<{
    port: number;
    received: string[];
    close(): Promise<void>;
  }> {
    const received: string[] = [];
    const server = net.createServer((sock) => {
      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('end', () => received.push(Buffer.concat(chunks).toString('latin1')));
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1' }, () => r()));
    return {
      port: (server.address() as net.AddressInfo).port,
      received,
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
  }

  it('rewriteClientPreamble replaces the start of each connection, however it is split', async () => {
    const target = await recordingTarget();
    const seen: number[] = [];
    const proxy = await TcpProxy.start(target.port, {
      rewriteClientPreamble: (head) => {
        seen.push(head.length);
        return head.length < 6 ? null : Buffer.concat([Buffer.from('<new>'), head.subarray(6)]);
      },
    });
    try {
      // Split for sure: the next chunk goes only once the proxy has held the previous one.
      const split = net.connect({ port: proxy.port, host: '127.0.0.1' });
      split.on('error', () => {});
      await new Promise<void>((r) => split.once('connect', () => r()));
      split.write('HEA');
      await waitFor('the proxy to hold the first 3 bytes', () => seen.includes(3), { timeoutMs: 5000 });
      split.write('DER');
      await waitFor('the proxy to see the whole header', () => seen.includes(6), { timeoutMs: 5000 });
      split.end('body');
      const whole = net.connect({ port: proxy.port, host: '127.0.0.1' }, () => whole.end('HEADERbody2'));
      whole.on('error', () => {});
      await waitFor('both connections to reach the target', () => target.received.length === 2, {
        timeoutMs: 5000,
      });
      expect([...target.received].sort()).toEqual(['<new>body', '<new>body2']);
    } finally {
      await proxy.close();
      await target.close();
    }
  });
});

describe('bareIdElectionPreamble', () => {
  const initialMessage = (version: bigint, sid: bigint, address: string, rest = ''): Buffer => {
    const head = Buffer.alloc(20);
    head.writeBigInt64BE(version, 0);
    head.writeBigInt64BE(sid, 8);
    head.writeInt32BE(Buffer.byteLength(address), 16);
    return Buffer.concat([head, Buffer.from(address), Buffer.from(rest)]);
  };
  const sidOnly = (sid: bigint, rest = ''): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(sid, 0);
    return Buffer.concat([b, Buffer.from(rest)]);
  };

  it('turns a v1 or v2 initial message into the bare server id, keeping what follows', () => {
    expect(bareIdElectionPreamble(initialMessage(-65536n, 3n, '127.0.0.1:4000', 'next'))).toEqual(
      sidOnly(3n, 'next'),
    );
    expect(bareIdElectionPreamble(initialMessage(-65535n, 1n, '127.0.0.1:1|127.0.0.1:2'))).toEqual(
      sidOnly(1n),
    );
  });

  it('asks for more until the address is complete', () => {
    const whole = initialMessage(-65536n, 2n, '127.0.0.1:4000');
    for (const cut of [0, 7, 8, 19, 20, whole.length - 1]) {
      expect(bareIdElectionPreamble(whole.subarray(0, cut)), `first ${cut} bytes`).toBeNull();
    }
  });

  it('passes the old form and anything unknown through unchanged', () => {
    const old = sidOnly(2n, 'rest');
    expect(bareIdElectionPreamble(old)).toBe(old);
    const unknown = initialMessage(-7n, 2n, 'x');
    expect(bareIdElectionPreamble(unknown)).toBe(unknown);
  });
});
