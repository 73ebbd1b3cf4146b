import { createRequire } from 'node:module';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expireSession } from '../../harness/expire-session.js';
import { TcpProxy } from '../../harness/tcp-proxy.js';
import { waitFor } from '../../harness/wait.js';
import { fourLetter, livePids, pidAlive, readRegistry, ZkEnsemble } from '../../harness/zk-ensemble.js';

interface NzkClient extends EventEmitter {
  connect(): void;
  close(): void;
  getSessionId(): Buffer;
  getSessionPassword(): Buffer;
}
const require = createRequire(import.meta.url);
const zookeeper = require('node-zookeeper-client') as {
  createClient(
    connect: string,
    opts: { sessionTimeout: number; spinDelay: number; retries: number },
  ): NzkClient;
};

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
    await waitFor('the cut connection to close', () => closed, { timeoutMs: 2000 });
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
      await waitFor('the client to connect', () => connected, { timeoutMs: 10_000 });
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

describe('TcpProxy on its own', () => {
  it('close() is idempotent and a dead target closes client connections', async () => {
    const proxy = await TcpProxy.start(1); // nothing listens on port 1
    const r = await collectFor(proxy.port, 'x', 300);
    expect(r).toEqual({ data: '', closed: true });
    await proxy.close();
    await proxy.close();
  });

  /** A target that records everything each connection sent it, until that connection ended. */
  async function recordingTarget(): Promise<{ port: number; received: string[]; close(): Promise<void> }> {
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
