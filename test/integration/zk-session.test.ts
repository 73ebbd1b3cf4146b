/**
 * The session layer against a real standalone ZooKeeper 3.8 (through the harness's TCP proxy):
 * the API's mapping (Stat, errors, ACLs, watches, multi, mkdirp), connection strings, connect and
 * request timeouts, server-side expiry, a server restart the session survives, and callbacks that
 * arrive after the session is lost. The library's specific pitfalls are in zk-pitfalls.test.ts.
 */
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ConfigError } from '../../src/errors.js';
import { openSession } from '../../src/zk/session.js';
import { Perm, type WatchEvent, type ZkSession, type ZkSessionOptions } from '../../src/zk/types.js';
import { expireSession } from '../../harness/expire-session.js';
import { TestLogs, freezeStopped, rejection, track } from '../support/session-fixtures.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';

const SESSION_MS = 3000;
const REQUEST_MS = 1500;

let ens: ZkEnsemble;
const testLogs = new TestLogs();
const opened: ZkSession[] = [];

async function open(opts: Partial<ZkSessionOptions> = {}): Promise<ZkSession> {
  const s = await openSession({
    connect: ens.connectString(),
    sessionTimeoutMs: SESSION_MS,
    requestTimeoutMs: REQUEST_MS,
    logger: testLogs.logger(),
    ...opts,
  });
  opened.push(s);
  return s;
}

beforeAll(async () => {
  ens = await ZkEnsemble.start({ servers: 1, tickTimeMs: 200, maxSessionTimeoutMs: 10_000 });
});

afterAll(async () => {
  await ens?.stop();
});

beforeEach(() => {
  testLogs.reset();
});

afterEach(async (ctx) => {
  const server = ens.servers[0]!;
  if (server.isFrozen()) server.thaw();
  server.proxy.setBlackhole(false);
  server.proxy.setRefuse(false);
  await Promise.all(opened.splice(0).map((s) => s.close()));
  if (ctx.task.result?.state === 'fail') {
    console.log(testLogs.dump());
  }
});

describe('operations', () => {
  it('connects and maps Stat, session facts and data', async () => {
    const s = await open();
    expect(s.state).toBe('connected');
    expect(s.sessionId).toMatch(/^[0-9a-f]{16}$/);
    expect(s.sessionPassword).toHaveLength(16);
    expect(s.negotiatedTimeoutMs).toBe(SESSION_MS);
    expect(performance.now() - s.lastReplySentAt).toBeLessThan(SESSION_MS / 3 + 500);

    const other = await open();
    expect(other.generation).toBeGreaterThan(s.generation);

    const path = await s.create('/stat-demo', Buffer.from('hello'), { mode: 'ephemeral' });
    expect(path).toBe('/stat-demo');
    const { data, stat } = await s.getData(path);
    expect(data?.toString()).toBe('hello');
    expect(typeof stat.czxid).toBe('bigint');
    expect(stat.czxid).toBeGreaterThan(0n);
    expect(stat.mzxid).toBe(stat.czxid);
    expect(stat.version).toBe(0);
    expect(stat.dataLength).toBe(5);
    // Lock ownership is decided by this comparison (retries are 0, so a create is never replayed).
    expect(stat.ephemeralOwner).toBe(s.sessionId);
    expect(Math.abs(stat.ctime - Date.now())).toBeLessThan(60_000);

    // Version 0 means version 0 on plain setData too.
    const st1 = await s.setData(path, Buffer.from('v1'), 0);
    expect(st1.version).toBe(1);
    expect(st1.mzxid).toBeGreaterThan(stat.mzxid);

    await s.create('/persist-demo', null);
    const persisted = await s.getData('/persist-demo');
    expect(persisted.data).toBeNull();
    expect(persisted.stat.ephemeralOwner).toBe('0000000000000000');

    const seq = await s.create('/persist-demo/item-', Buffer.from('x'), { mode: 'persistent_sequential' });
    expect(seq).toMatch(/^\/persist-demo\/item-\d{10}$/);
    expect(await s.getChildren('/persist-demo')).toEqual([seq.slice('/persist-demo/'.length)]);
    expect(await s.exists('/nope')).toBeNull();
    expect((await s.exists('/persist-demo'))?.numChildren).toBe(1);

    await s.remove(seq, 0);
    await s.remove('/persist-demo', -1);
    expect(await s.exists('/persist-demo')).toBeNull();
  });

  it('maps server errors to ZkError with the code name, op and path', async () => {
    const s = await open();
    const err = await rejection(s.getData('/missing/node'));
    expect(err.zkCode).toBe('NO_NODE');
    expect(err.code).toBe('EZK_NO_NODE');
    expect(err.path).toBe('/missing/node');
    expect(err.message).toContain('getData /missing/node');

    await s.create('/errs', null);
    await s.create('/errs/child', null);
    expect((await rejection(s.create('/errs', null))).zkCode).toBe('NODE_EXISTS');
    expect((await rejection(s.setData('/errs', Buffer.from('x'), 7))).zkCode).toBe('BAD_VERSION');
    expect((await rejection(s.remove('/errs', -1))).zkCode).toBe('NOT_EMPTY');
    const eph = await s.create('/errs/eph', null, { mode: 'ephemeral' });
    expect((await rejection(s.create(`${eph}/sub`, null))).zkCode).toBe('NO_CHILDREN_FOR_EPHEMERALS');

    // Arguments the library would throw on come back as rejections, not exceptions.
    expect((await rejection(s.getData('no-slash'))).zkCode).toBe('BAD_ARGUMENTS');
    expect((await rejection(s.setData('/errs', null, -2))).zkCode).toBe('BAD_ARGUMENTS');
    expect((await rejection(s.create('/errs/x', null, { acl: [] }))).zkCode).toBe('INVALID_ACL');
    expect(
      (await rejection(s.create('/errs/x', null, { acl: [{ scheme: 'world', id: 'anyone', perms: 0 }] })))
        .zkCode,
    ).toBe('INVALID_ACL');

    await s.multi([
      { op: 'remove', path: '/errs/child', version: -1 },
      { op: 'remove', path: eph, version: -1 },
      { op: 'remove', path: '/errs', version: -1 },
    ]);
    expect(await s.exists('/errs')).toBeNull();
  });

  it('runs multi atomically and names the failing op', async () => {
    const s = await open();
    await s.multi([
      { op: 'create', path: '/tx', data: Buffer.from('a') },
      { op: 'create', path: '/tx/c', data: null, mode: 'ephemeral' },
      { op: 'setData', path: '/tx', data: Buffer.from('b'), version: 0 },
    ]);
    expect((await s.getData('/tx')).data?.toString()).toBe('b');

    const err = await rejection(
      s.multi([
        { op: 'setData', path: '/tx', data: Buffer.from('c'), version: 1 },
        { op: 'check', path: '/tx/c', version: 3 },
      ]),
    );
    expect(err.zkCode).toBe('BAD_VERSION');
    expect(err.path).toBe('/tx/c');
    expect(err.message).toContain('op #2 (check /tx/c)');
    // Nothing of the failed transaction was applied.
    expect((await s.getData('/tx')).stat.version).toBe(1);
  });

  it('mkdirp creates missing parents with the given ACL and tolerates existing ones', async () => {
    const s = await open();
    await s.mkdirp('/a/b/c');
    await s.mkdirp('/a/b/c');
    await s.mkdirp('/a/b/d', [{ scheme: 'world', id: 'anyone', perms: Perm.ALL }]);
    expect(await s.getChildren('/a/b')).toEqual(expect.arrayContaining(['c', 'd']));
    expect((await rejection(s.mkdirp('relative'))).zkCode).toBe('BAD_ARGUMENTS');
  });

  it('delivers watch events once, in our shape', async () => {
    const s = await open();
    const obs = await open({ connect: ens.directConnectString() });
    const events: WatchEvent[] = [];
    const watcher = (e: WatchEvent): void => {
      events.push(e);
    };
    expect(await s.exists('/w1', watcher)).toBeNull();
    await obs.create('/w1', null);
    await waitFor('the created event', () => events.length === 1);
    expect(events[0]).toEqual({ type: 'created', path: '/w1' });

    await s.getData('/w1', watcher);
    await s.getData('/w1', watcher); // same watcher, same path: registered once, as in ZooKeeper
    await s.getChildren('/w1', watcher);
    await obs.setData('/w1', Buffer.from('x'), -1);
    await obs.create('/w1/kid', null);
    await waitFor('dataChanged and childrenChanged', () => events.length === 3);
    expect(events.slice(1)).toEqual(
      expect.arrayContaining([
        { type: 'dataChanged', path: '/w1' },
        { type: 'childrenChanged', path: '/w1' },
      ]),
    );
    await obs.remove('/w1/kid', -1);
    await obs.remove('/w1', -1);
    // A sync point: our own request is answered after any notification the server sent before it.
    await s.exists('/w1');
    expect(events).toHaveLength(3);
  });
});

describe('configuration', () => {
  it.each([
    ['', /empty/],
    ['   ', /empty/],
    [',', /server #1 is empty/],
    ['127.0.0.1:2181,,127.0.0.2:2181', /server #2 is empty/],
    ['zk1:0', /invalid port "0"/],
    ['zk1:99999', /invalid port "99999"/],
    ['zk1:21a', /invalid port "21a"/],
    ['zk1:', /invalid port ""/],
    [':2181', /has no host/],
    ['[::1]:2181', /IPv6/],
    ['fe80::1', /IPv6/],
    ['zk 1:2181', /invalid host name/],
    ['zk1:2181/app/', /must not end with "\/"/],
    ['zk1:2181/a//b', /empty path segment/],
    ['zk1:2181/a/../b', /"\." or "\.\."/],
    ['zk1:2181/app,zk2:2181', /comma/],
  ])('rejects the connect string %j with a ConfigError', async (connect, why) => {
    const err = await openSession({ connect, sessionTimeoutMs: 2000, requestTimeoutMs: 1000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`zookeeper.connect ${JSON.stringify(connect)} is invalid`);
    expect((err as Error).message).toMatch(why);
  });

  it('rejects bad timings and credentials without echoing the secret', async () => {
    const base = { connect: '127.0.0.1:2181', sessionTimeoutMs: 2000, requestTimeoutMs: 1000 };
    await expect(openSession({ ...base, sessionTimeoutMs: 0 })).rejects.toThrow(
      /sessionTimeoutMs must be a positive number of ms, got 0/,
    );
    await expect(openSession({ ...base, requestTimeoutMs: Number.NaN })).rejects.toThrow(/requestTimeoutMs/);
    const err = await openSession({ ...base, digestAuth: ['no-colon-s3cret'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('credential #1 must have the form "user:password"');
    expect((err as Error).message).not.toContain('s3cret');
  });

  it('accepts spaces, default ports and a chroot', async () => {
    const port = ens.servers[0]!.proxy.port;
    const root = await open();
    await root.mkdirp('/chroot-demo');
    const s = await open({ connect: ` 127.0.0.1:${port} /chroot-demo` });
    await s.create('/inside', null, { mode: 'ephemeral' });
    expect(await root.exists('/chroot-demo/inside')).not.toBeNull();
  });
});

describe('connecting', () => {
  it('rejects with CONNECT_TIMEOUT naming the connect string, and closes the client', async () => {
    const proxy = ens.servers[0]!.proxy;
    proxy.setRefuse(true);
    const connect = ens.connectString();
    const started = performance.now();
    const err = await rejection(
      openSession({ connect, sessionTimeoutMs: 2000, requestTimeoutMs: 1000, connectTimeoutMs: 700 }),
    );
    const took = performance.now() - started;
    expect(err.zkCode).toBe('CONNECT_TIMEOUT');
    expect(err.message).toContain(connect);
    expect(err.message).toContain('700 ms');
    expect(took).toBeGreaterThanOrEqual(690);
    expect(took).toBeLessThan(700 + 500);
    proxy.setRefuse(false);
    // The rejected attempt must not linger: nothing reaches the server afterwards.
    await waitFor('the proxy to have no connections', () => proxy.connectionCount === 0, { timeoutMs: 3000 });
  });

  it('names a server whose host name does not resolve, and a chroot that does not exist', async () => {
    const dns = await rejection(
      openSession({
        connect: 'zk-nowhere.invalid:2181',
        sessionTimeoutMs: 2000,
        requestTimeoutMs: 1000,
        connectTimeoutMs: 700,
      }),
    );
    expect(dns.zkCode).toBe('CONNECT_TIMEOUT');
    expect(dns.message).toMatch(/zk-nowhere\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN)\)/);
    const chroot = await rejection(
      openSession({
        connect: `${ens.connectString()}/no-such-chroot`,
        sessionTimeoutMs: 2000,
        requestTimeoutMs: 1000,
      }),
    );
    expect(chroot.zkCode).toBe('NO_CHROOT');
    expect(chroot.message).toContain('the chroot /no-such-chroot of the ZooKeeper connect string');
    expect(chroot.message).toContain('zkCli.sh create /no-such-chroot');
  });
});

describe('failures', () => {
  it('every request times out instead of hanging: frozen server and silent link', async () => {
    const s = await open({ requestTimeoutMs: 800 });
    await s.create('/t', null);
    const server = ens.servers[0]!;

    await freezeStopped(server);
    let started = performance.now();
    let err = await rejection(s.getData('/t'));
    let took = performance.now() - started;
    server.thaw();
    expect(err.zkCode).toBe('TIMEOUT');
    expect(err.message).toBe('ZooKeeper getData /t got no reply within 800 ms');
    expect(err.path).toBe('/t');
    expect(took).toBeGreaterThanOrEqual(795);
    expect(took).toBeLessThan(800 + 400);
    // The late reply of the frozen request is ignored; the session carries on.
    expect((await s.exists('/t'))?.version).toBe(0);

    server.proxy.setBlackhole(true);
    started = performance.now();
    err = await rejection(s.setData('/t', Buffer.from('x'), -1));
    took = performance.now() - started;
    server.proxy.setBlackhole(false);
    expect(err.zkCode).toBe('TIMEOUT');
    expect(took).toBeLessThan(800 + 400);
    await waitFor('the session to be connected again', () => s.state === 'connected', { timeoutMs: 5000 });
  });

  it('a forced expiry makes the session lost; a new session gets a new id', async () => {
    const s = await open();
    const seen = track(s);
    await s.create('/exp', null, { mode: 'ephemeral' });
    await expireSession(ens.directConnectString(), s.sessionId, s.sessionPassword);
    await waitFor('state lost', () => s.state === 'lost', { timeoutMs: 5000 });
    expect(seen.at(-1)).toMatchObject({ state: 'lost' });
    expect(testLogs.lines.find((l) => l.to === 'lost')?.reason).toMatch(/expired/);

    const err = await rejection(s.exists('/exp'));
    expect(err.zkCode).toBe('SESSION_LOST');

    const fresh = await open();
    expect(fresh.sessionId).not.toBe(s.sessionId);
    expect(await fresh.exists('/exp')).toBeNull();
    await s.close();
    expect(s.state).toBe('closed');
  });

  it('a server restart within the session timeout: suspended, then connected with the same session', async () => {
    // The JVM restart alone took over 4 s on a loaded 2-core box; the session must outlast it
    // (a shorter one is rightly declared lost by our clock). Nothing here waits for the timeout.
    const s = await open({ sessionTimeoutMs: 8000 });
    const seen = track(s);
    const id = s.sessionId;
    await s.create('/survivor', null, { mode: 'ephemeral' });
    const server = ens.servers[0]!;
    await server.kill('SIGKILL');
    await waitFor('state suspended', () => s.state === 'suspended', { timeoutMs: 3000 });
    await server.restart();
    await waitFor('state connected', () => s.state === 'connected', { timeoutMs: 8000 });
    expect(seen.map((t) => t.state)).toEqual(['suspended', 'connected']);
    expect(s.sessionId).toBe(id);
    expect((await s.exists('/survivor'))?.ephemeralOwner).toBe(id);
  });

  it('drops callbacks that arrive after the session is lost (a process pause longer than the timeout)', async () => {
    // A GC pause or CPU starvation is the classic way a lock holder outlives its session: the
    // server moves on while the process sleeps, and what it sent meanwhile is read on wake-up.
    const s = await open({ sessionTimeoutMs: 2000 });
    const doomed = await open({ connect: ens.directConnectString(), sessionTimeoutMs: 1000 });
    await doomed.create('/stale', null, { mode: 'ephemeral' });
    const events: WatchEvent[] = [];
    await s.getData('/stale', (e) => events.push(e));

    // During the pause the server expires `doomed` (1 s), deletes its ephemeral and sends us the
    // notification while our own session (2 s) is still alive there; then it expires ours too.
    const until = performance.now() + s.negotiatedTimeoutMs + 400;
    while (performance.now() < until) {
      // busy: nothing else in this process runs
    }

    await waitFor('state lost', () => s.state === 'lost', { timeoutMs: 2000 });
    // The library did read and fire the watch after the pause; our guard dropped it.
    await waitFor('the stale watch event to be dropped', () =>
      testLogs.lines.some(
        (l) => l.msg === 'dropped a watch event of a finished session' && l.path === '/stale',
      ),
    );
    expect(events).toEqual([]);
    const started = performance.now();
    const err = await rejection(s.getData('/stale'));
    expect(err.zkCode).toBe('SESSION_LOST');
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('digest auth and ACLs: an unauthenticated session cannot write a protected node', async () => {
    const digest = (user: string, pass: string): string =>
      `${user}:${createHash('sha1').update(`${user}:${pass}`).digest('base64')}`;
    const alice = await open({ digestAuth: ['alice:secret'] });
    const acl = [
      { scheme: 'digest', id: digest('alice', 'secret'), perms: Perm.ALL },
      { scheme: 'world', id: 'anyone', perms: Perm.READ },
    ];
    await alice.create('/secure', Buffer.from('mine'), { acl });
    await alice.setData('/secure', Buffer.from('still mine'), 0);

    const anon = await open();
    expect((await anon.getData('/secure')).data?.toString()).toBe('still mine');
    const err = await rejection(anon.setData('/secure', Buffer.from('theirs'), -1));
    expect(err.zkCode).toBe('NO_AUTH');
    // Creating a child needs CREATE on the node itself (deleting it is decided by its parent's ACL).
    expect((await rejection(anon.create('/secure/child', null))).zkCode).toBe('NO_AUTH');

    const mallory = await open({ digestAuth: ['alice:wrong'] });
    expect((await rejection(mallory.setData('/secure', Buffer.from('x'), -1))).zkCode).toBe('NO_AUTH');

    const { acl: read, stat } = await alice.getACL('/secure');
    expect(read).toEqual(acl);
    expect(stat.aversion).toBe(0);
    // ZooKeeper 3.8 masks the digest hash for readers without ADMIN on the node.
    expect((await anon.getACL('/secure')).acl[0]).toEqual({
      scheme: 'digest',
      id: 'alice:x',
      perms: Perm.ALL,
    });
    await alice.remove('/secure', 1);
  });

  it('close() is idempotent, ends the session on the server at once and fails what is outstanding', async () => {
    const s = await open({ requestTimeoutMs: 10_000 });
    const obs = await open({ connect: ens.directConnectString() });
    const seen = track(s);
    await s.create('/bye', null, { mode: 'ephemeral' });
    const started = performance.now();
    const outstanding = rejection(s.getData('/bye'));
    await Promise.all([s.close(), s.close()]);
    const err = await outstanding;
    expect(err.zkCode).toBe('CLOSED');
    expect(s.state).toBe('closed');
    expect((await rejection(s.exists('/bye'))).zkCode).toBe('CLOSED');
    await s.close();
    // Gone long before the session timeout would have removed it.
    await waitFor('the ephemeral to vanish', async () => (await obs.exists('/bye')) === null, {
      timeoutMs: 2000,
    });
    expect(performance.now() - started).toBeLessThan(SESSION_MS);
    expect(seen.map((t) => t.state)).toContain('closed');
  });
});
