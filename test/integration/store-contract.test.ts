/**
 * One set of cases for the election store seam (src/election/store.ts), run against the in-memory
 * double the elector's unit tests use AND against the real ZooKeeper store, so the double cannot
 * drift from the real thing unnoticed (Hadoop's TestActiveStandbyElectorRealZK idea).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { systemClock } from '../../src/clock.js';
import {
  FORMAT_VERSION,
  type BreadcrumbRecord,
  type LockRecord,
  type MemberRecord,
} from '../../src/election/records.js';
import type { ElectionConnection } from '../../src/election/store.js';
import { ZkElectionConnection, ZkElectionStore } from '../../src/zk/election-store.js';
import { clusterPaths, type ClusterPaths } from '../../src/zk/paths.js';
import { encodeRecord } from '../../src/zk/records.js';
import { openSession } from '../../src/zk/session.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeCoordinator } from '../support/fake-store.js';

interface Backend {
  paths: ClusterPaths;
  connect(): Promise<ElectionConnection>;
  /** Plants a raw znode (an operator with zkCli, or another program). */
  plant(path: string, data: Buffer, ephemeral: boolean): Promise<void>;
  now(): number;
  close(): Promise<void>;
}

let zk: ZkEnsemble | null = null;
let seq = 0;

async function zkBackend(): Promise<Backend> {
  zk ??= await ZkEnsemble.start({ servers: 1 });
  const ens = zk;
  const paths = clusterPaths('/hafc', `contract${++seq}`);
  const conns: ElectionConnection[] = [];
  const open = async () => {
    const s = await openSession({
      connect: ens.connectString(),
      sessionTimeoutMs: 4000,
      requestTimeoutMs: 2000,
    });
    const c = new ZkElectionConnection(s, paths);
    conns.push(c);
    return c;
  };
  const admin = await open();
  await (admin.store as ZkElectionStore).ensureLayout();
  return {
    paths,
    connect: open,
    plant: async (path, data, ephemeral) => {
      await (admin as ZkElectionConnection).session.create(path, data, {
        mode: ephemeral ? 'ephemeral' : 'persistent',
      });
    },
    now: () => systemClock.now(),
    close: async () => {
      await Promise.all(conns.map((c) => c.close()));
    },
  };
}

async function fakeBackend(): Promise<Backend> {
  const clock = new FakeClock();
  const paths = clusterPaths('/hafc', `contract${++seq}`);
  const server = new FakeCoordinator(clock, paths);
  const admin = await server.connect({ deadlines: false });
  return {
    paths,
    connect: () => server.connect({ deadlines: false }),
    plant: async (path, data, ephemeral) => {
      if (ephemeral) server.putEphemeral(path, data, admin);
      else server.put(path, data);
    },
    now: () => clock.now(),
    close: async () => {},
  };
}

function lockRecord(id: string): LockRecord {
  return {
    formatVersion: FORMAT_VERSION,
    kind: 'lock',
    cluster: 'c',
    id,
    host: `${id}.example`,
    port: 1,
    priority: 0,
    pid: 1,
    agentVersion: 'test',
    acquiredAt: new Date(0).toISOString(),
  };
}

function breadcrumb(id: string, epoch: bigint): BreadcrumbRecord {
  return {
    formatVersion: FORMAT_VERSION,
    kind: 'breadcrumb',
    cluster: 'c',
    id,
    host: `${id}.example`,
    port: 1,
    epoch: epoch.toString(),
    writtenAt: new Date(0).toISOString(),
  };
}

function memberRecord(id: string, priority = 0): MemberRecord {
  return {
    formatVersion: FORMAT_VERSION,
    kind: 'member',
    cluster: 'c',
    id,
    host: `${id}.example`,
    port: 1,
    priority,
    noFailover: false,
    health: 'HEALTHY',
    role: 'STANDBY',
    epoch: '0',
    agentVersion: 'test',
    control: '127.0.0.1:0',
    updatedAt: new Date(0).toISOString(),
  };
}

afterAll(async () => {
  await zk?.stop();
});

describe.each([
  ['the in-memory double', fakeBackend],
  ['ZooKeeper', zkBackend],
])('election store contract: %s', (_name, make) => {
  let b: Backend;
  beforeAll(async () => {
    b = await make();
  });
  afterAll(async () => {
    await b.close();
  });

  it('a connection is connected, with an expiry floor after now and at most one timeout ahead', async () => {
    const c = await b.connect();
    expect(c.state).toBe('connected');
    expect(c.sessionId).toMatch(/^[0-9a-f]{16}$/);
    expect(c.expiryNotBefore).toBeGreaterThan(b.now());
    expect(c.expiryNotBefore).toBeLessThanOrEqual(b.now() + c.negotiatedTimeoutMs);
    await expect(c.store.clusterExists()).resolves.toBe(true);
  });

  it('the lock: one owner, epochs grow, release and removeLockOf respect ownership, close frees it', async () => {
    const c1 = await b.connect();
    const c2 = await b.connect();
    const v1 = await c1.store.tryAcquire(lockRecord('one'));
    expect(v1.state).toBe('ours');
    const v2 = await c2.store.tryAcquire(lockRecord('two'));
    expect(v2).toMatchObject({ state: 'theirs', owner: c1.sessionId });
    expect(v1.state === 'ours' && v2.state === 'theirs' && v1.epoch === v2.epoch).toBe(true);
    await expect(c2.store.lockHolder()).resolves.toMatchObject({
      owner: c1.sessionId,
      record: { id: 'one' },
    });

    await c2.store.releaseLock(); // not its lock: nothing happens
    expect(await c1.store.viewLock()).toMatchObject({ state: 'ours' });
    await expect(c2.store.removeLockOf('ffffffffffffffff')).resolves.toBe(false);

    let fired = false;
    await c2.store.viewLock(() => {
      fired = true;
    });
    await c1.close();
    await waitFor('the lock watch to fire on the owner closing', () => fired, { timeoutMs: 5000 });
    expect(await c2.store.viewLock()).toEqual({ state: 'free' });
    await expect(c2.store.lockHolder()).resolves.toBeNull();

    const v3 = await c2.store.tryAcquire(lockRecord('two'));
    expect(v3.state === 'ours' && v1.state === 'ours' && v3.epoch > v1.epoch).toBe(true);
    const c3 = await b.connect();
    await expect(c3.store.removeLockOf(c2.sessionId)).resolves.toBe(true);
    expect(await c2.store.viewLock()).toEqual({ state: 'free' });
  });

  it('a persistent znode on the lock path is foreign; garbage in the lock record is reported, not thrown', async () => {
    const c = await b.connect();
    await b.plant(b.paths.lock, Buffer.from('by hand'), false);
    expect(await c.store.viewLock()).toMatchObject({ state: 'foreign' });
    const holder = await c.store.lockHolder();
    expect(holder?.record).toBeUndefined();
    expect(holder?.recordError).toContain('not JSON');
  });

  it('the breadcrumb: create once, compare-and-set, garbage reported, watches on change and creation', async () => {
    const c = await b.connect();
    await expect(c.store.readBreadcrumb()).resolves.toBeNull();
    let created = false;
    await c.store.readBreadcrumb(() => {
      created = true;
    });
    await c.store.writeBreadcrumb(breadcrumb('one', 5n), null);
    await waitFor('the watch set on a missing breadcrumb to fire on its creation', () => created, {
      timeoutMs: 5000,
    });
    await expect(c.store.writeBreadcrumb(breadcrumb('one', 6n), null)).rejects.toMatchObject({
      zkCode: 'NODE_EXISTS',
    });
    const bc = await c.store.readBreadcrumb();
    expect(bc && 'record' in bc && bc.record).toMatchObject({ id: 'one', epoch: '5' });
    const version = bc!.version;
    await expect(c.store.writeBreadcrumb(breadcrumb('two', 7n), version + 1)).rejects.toMatchObject({
      zkCode: 'BAD_VERSION',
    });
    let changed = false;
    await c.store.readBreadcrumb(() => {
      changed = true;
    });
    await c.store.writeBreadcrumb({ ...breadcrumb('one', 5n), demoted: true }, version);
    await waitFor('the breadcrumb watch to fire on a change', () => changed, { timeoutMs: 5000 });
    const marked = await c.store.readBreadcrumb();
    expect(marked && 'record' in marked && marked.record).toMatchObject({ demoted: true });
  });

  it('members: ours replaced in place, another live session reported, past sessions and persistent junk replaced', async () => {
    const c1 = await b.connect();
    const c2 = await b.connect();
    await expect(c1.store.putMember(memberRecord('m1'), new Set())).resolves.toEqual({ ok: true });
    await expect(c1.store.putMember({ ...memberRecord('m1'), role: 'ACTIVE' }, new Set())).resolves.toEqual({
      ok: true,
    });
    const conflict = await c2.store.putMember(memberRecord('m1', 9), new Set());
    expect(conflict).toMatchObject({ ok: false, owner: c1.sessionId, record: { id: 'm1', role: 'ACTIVE' } });
    await expect(c2.store.putMember(memberRecord('m1', 9), new Set([c1.sessionId]))).resolves.toEqual({
      ok: true,
    });
    await b.plant(b.paths.member('junk'), encodeRecord(memberRecord('junk', 1_000_000)), false);
    await b.plant(b.paths.member('bad'), Buffer.from('{"formatVersion":1}'), true);
    const list = await c2.store.listMembers();
    expect(list.members.map((m) => [m.id, m.priority])).toEqual([['m1', 9]]);
    expect(list.problems.some((p) => p.includes('members/junk') && p.includes('persistent'))).toBe(true);
    expect(list.problems.some((p) => p.includes('members/bad'))).toBe(true);
    // Reported once, not once per round.
    expect((await c2.store.listMembers()).problems).toEqual([]);
    await expect(c2.store.putMember(memberRecord('junk'), new Set())).resolves.toEqual({ ok: true });
  });
});
