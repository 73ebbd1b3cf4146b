/**
 * Deterministic tests of the ActiveStandbyElector on an in-memory store (test/support/fake-store.ts)
 * and a fake clock.
 *
 * Time moves only through `world.advance*` / `world.until`, which step the FakeClock and let every
 * pending microtask run between steps (setImmediate, never a real sleep). Callbacks are recorders
 * whose behaviour each test sets (resolve, reject, or hang until a gate opens or the signal aborts),
 * and every call is stamped with the fake time at which it happened.
 *
 * Timing used throughout: negotiated session timeout T = 4000 ms, safety margin 1000 ms, to-standby
 * timeout 1000 ms, so the lease budget is 2000 ms after the last answered request was sent.
 */
import { describe, expect, it } from 'vitest';
import {
  BACKOFF,
  GRACE,
  LEASE,
  MARGIN,
  T,
  TO_STANDBY,
  TestNode,
  World,
  abortable,
  activeStandby,
  gone,
  member,
  paths,
  world,
} from './world.js';
import type { FenceTarget } from '../../../src/service/agent.js';
import {
  FORMAT_VERSION,
  encodeRecord,
  type BreadcrumbRecord,
  type MemberRecord,
} from '../../../src/zk/records.js';

// ---- the fake itself ------------------------------------------------------------------------

/** One node, ACTIVE and settled for a second. */
async function activeA() {
  const w = world();
  const a = w.node('a');
  a.start();
  await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
  await w.advance(1000);
  return { w, a, epoch1: a.elector.getEpoch()! };
}

describe('FakeCoordinator (the test double the elector tests rely on)', () => {
  it('orders zxids, owns ephemerals by session, fires one-shot watches on expiry', async () => {
    const w = world();
    const s1 = await w.server.connect();
    const s2 = await w.server.connect();
    expect(s1.sessionId).toMatch(/^[0-9a-f]{16}$/);
    expect(s1.sessionId).not.toBe(s2.sessionId);
    expect(s2.generation).toBeGreaterThan(s1.generation);
    const rec = (id: string) => ({ ...member(id, 1), kind: 'lock' as const, pid: 1, acquiredAt: '' });

    const v1 = await s1.tryAcquire(rec('x'));
    expect(v1).toMatchObject({ state: 'ours' });
    const v2 = await s2.tryAcquire(rec('y'));
    expect(v2).toMatchObject({ state: 'theirs', owner: s1.sessionId });
    await expect(s2.readBreadcrumb()).resolves.toBeNull();
    await expect(s2.writeBreadcrumb({} as never, 3)).rejects.toMatchObject({ zkCode: 'NO_NODE' });

    const events: string[] = [];
    await s2.viewLock(() => events.push('s2'));
    w.server.expire(s1);
    await w.settle();
    expect(s1.state).toBe('lost');
    expect(w.server.get(paths.lock)).toBeNull();
    expect(events).toEqual(['s2']);
    await expect(s1.viewLock()).rejects.toMatchObject({ zkCode: 'SESSION_LOST' });

    const v3 = await s2.tryAcquire(rec('y'));
    expect(v3.state === 'ours' && v1.state === 'ours' && v3.epoch > v1.epoch).toBe(true);
    expect(events).toHaveLength(1); // the watch was one-shot
  });

  it('suspended: CONNECTION_LOSS and no fresh proof; deadlines make it lost; events wait for resume', async () => {
    const w = world();
    const s = await w.server.connect({ negotiatedTimeoutMs: T });
    const other = await w.server.connect({ negotiatedTimeoutMs: T, deadlines: false, probeIntervalMs: 0 });
    const states: string[] = [];
    s.onState((next, prev) => states.push(`${prev}->${next}`));
    await w.advance(1500);
    expect(s.lastReplySentAt).toBe(Math.floor(T / 3)); // the probe keeps it fresh
    expect(s.expiryNotBefore).toBe(s.lastReplySentAt + T);
    const events: string[] = [];
    await s.readBreadcrumb(() => events.push('breadcrumb'));
    s.suspend();
    const last = s.lastReplySentAt;
    await expect(s.viewLock()).rejects.toMatchObject({ zkCode: 'CONNECTION_LOSS' });
    await other.writeBreadcrumb({} as never, null);
    await w.advance(500);
    expect(events).toEqual([]);
    expect(s.lastReplySentAt).toBe(last);
    s.resume();
    await w.settle();
    expect(events).toEqual(['breadcrumb']);
    s.suspend();
    const last2 = s.lastReplySentAt;
    await w.until('lost by its own deadline', () => s.state === 'lost');
    expect(w.clock.now() - last2).toBeGreaterThanOrEqual(T);
    expect(w.clock.now() - last2).toBeLessThan(T + 20);
    expect(w.server.isAlive(s)).toBe(true); // the server was never told
    expect(states).toEqual([
      'connected->suspended',
      'suspended->connected',
      'connected->suspended',
      'suspended->lost',
    ]);
  });
});

// ---- the elector ----------------------------------------------------------------------------

describe('Elector: winning the lock', () => {
  it('acquires the lock, epoch = its czxid, writes the breadcrumb before becomeActive, stays ACTIVE', async () => {
    const w = world();
    const a = w.node('a');
    let inside: { lock: unknown; breadcrumb: BreadcrumbRecord | null; epoch: bigint } | null = null;
    a.behave.becomeActive = async (epoch) => {
      const lock = w.lockStat();
      inside = {
        lock: lock && { czxid: lock.czxid, owner: lock.ephemeralOwner },
        breadcrumb: w.record<BreadcrumbRecord>(paths.breadcrumb),
        epoch,
      };
    };
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');

    const lock = w.lockStat()!;
    expect(lock.ephemeralOwner).toBe(a.session().sessionId);
    expect(a.elector.getEpoch()).toBe(lock.czxid);
    expect(inside).not.toBeNull();
    const seen = inside!;
    expect(seen.epoch).toBe(lock.czxid);
    expect(seen.lock).toEqual({ czxid: lock.czxid, owner: a.session().sessionId });
    expect(seen.breadcrumb).toMatchObject({
      kind: 'breadcrumb',
      cluster: 'ns1',
      id: 'a',
      host: a.host,
      port: a.port,
      epoch: lock.czxid.toString(),
    });
    expect(a.cb.fenceOldActive).not.toHaveBeenCalled(); // no breadcrumb: nobody to fence
    expect(a.states().at(-1)).toMatchObject({ state: 'ACTIVE', epoch: lock.czxid });
    expect(a.elector.status()).toMatchObject({
      state: 'ACTIVE',
      epoch: lock.czxid.toString(),
      electable: true,
    });
    expect(a.elector.mayBeActive()).toBe(true);
    expect(a.activationSignal().aborted).toBe(false);
    // The member record says so too.
    await w.advance(100);
    expect(w.record<MemberRecord>(paths.member('a'))).toMatchObject({
      role: 'ACTIVE',
      epoch: lock.czxid.toString(),
    });

    // A healthy link keeps the lease: nothing changes over many session timeouts.
    await w.advance(5 * T, 50);
    expect(a.elector.getState()).toBe('ACTIVE');
    expect(a.elector.getEpoch()).toBe(lock.czxid);
    expect(a.cb.becomeActive).toHaveBeenCalledTimes(1);
    expect(a.cb.demote).not.toHaveBeenCalled();
    expect(w.lockStat()?.czxid).toBe(lock.czxid);
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({ session: a.session().sessionId });
  });

  it('not electable: never creates the lock, publishes its member record, NEUTRAL', async () => {
    const w = world();
    const a = w.node('a');
    a.start(false);
    await w.advance(3 * T, 50);
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(w.lockStat()).toBeNull();
    expect(w.server.history.filter((h) => h.path === paths.lock)).toEqual([]);
    expect(a.cb.becomeActive).not.toHaveBeenCalled();
    expect(a.cb.fenceOldActive).not.toHaveBeenCalled();
    expect(w.record<MemberRecord>(paths.member('a'))).toMatchObject({ id: 'a', role: 'NEUTRAL' });
  });

  it('becoming unelectable while ACTIVE: demotes, marks its breadcrumb demoted, THEN releases the lock', async () => {
    const w = world();
    const a = w.node('a');
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const epoch = a.elector.getEpoch()!;
    const signal = a.activationSignal();
    let lockDuringDemotion: string | null = null;
    a.behave.demote = async () => {
      lockDuringDemotion = w.lockStat()?.ephemeralOwner ?? null;
      return true;
    };
    const mark = w.server.history.length;

    a.elector.setElectable(false, 'health UNHEALTHY: check failed');
    await w.until('lock released', () => w.lockStat() === null);

    expect(a.cb.demote).toHaveBeenCalledTimes(1);
    expect(a.cb.demote).toHaveBeenCalledWith(expect.stringContaining('no longer electable'));
    expect(lockDuringDemotion).toBe(a.session().sessionId); // demoted while still holding the lock
    expect(signal.aborted).toBe(true);
    expect(a.elector.getState()).toBe('NEUTRAL');
    const changes = w.server.history
      .slice(mark)
      .filter((h) => h.path === paths.lock || h.path === paths.breadcrumb);
    expect(changes.map((h) => [h.op, h.path, h.sessionId])).toEqual([
      ['setData', paths.breadcrumb, a.session().sessionId],
      ['remove', paths.lock, a.session().sessionId],
    ]);
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({
      id: 'a',
      epoch: epoch.toString(),
      demoted: true,
    });
    expect(epoch).toBeGreaterThan(0n);

    // And it stays out.
    await w.advance(2 * T, 50);
    expect(w.lockStat()).toBeNull();
    expect(a.cb.becomeActive).toHaveBeenCalledTimes(1);
  });

  it('a to-active failure demotes, releases the lock, reports, and retries only after the back-off', async () => {
    const w = world();
    const a = w.node('a');
    a.behave.becomeActive = async () => {
      throw new Error('service refused: disk full');
    };
    a.start();
    await w.until('activation failed', () => a.calls('activationFailed').length === 1);
    const failedAt = a.calls('activationFailed')[0]!.at;
    expect(a.calls('activationFailed')[0]!.args[0]).toContain('disk full');
    expect(a.cb.demote).toHaveBeenCalledWith(expect.stringContaining('disk full'));
    expect(w.lockStat()).toBeNull();
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(a.states().some((s) => s.state === 'ACTIVE')).toBe(false);
    expect(a.elector.status().lastFailure?.reason).toContain('disk full');

    a.behave.becomeActive = async () => {};
    await w.advanceTo(failedAt + BACKOFF - 1);
    expect(a.cb.becomeActive).toHaveBeenCalledTimes(1);
    await w.until('a ACTIVE after the back-off', () => a.elector.getState() === 'ACTIVE');
    expect(a.calls('becomeActive')[1]!.at).toBeGreaterThanOrEqual(failedAt + BACKOFF);
    expect(a.calls('becomeActive')[1]!.at).toBeLessThanOrEqual(failedAt + BACKOFF + 20);
  });

  it('garbage member znodes are ignored (each logged once), the election goes on', async () => {
    const w = world();
    const junk = await w.server.connect({ deadlines: false });
    w.server.putEphemeral(paths.member('zz'), Buffer.from([0xde, 0xad, 0xbe, 0xef]), junk);
    w.server.putEphemeral(paths.member('yy'), '{"formatVersion":1,"kind":"lock","id":"yy"}', junk);
    // A persistent record claiming a huge priority is no live agent: not waited for.
    w.server.put(paths.member('xx'), encodeRecord(member('xx', 1_000_000)));
    const a = w.node('a');
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE', { maxMs: 500 });
    const warnings = () => a.logs.filter((l) => l.includes('ignoring a member znode'));
    expect(warnings().some((l) => l.includes(paths.member('zz')))).toBe(true);
    expect(warnings().some((l) => l.includes(paths.member('yy')))).toBe(true);
    expect(warnings().some((l) => l.includes(paths.member('xx')) && l.includes('persistent'))).toBe(true);
    expect(w.server.members()).toEqual(['a', 'xx', 'yy', 'zz']);
    // More election rounds do not repeat the warnings.
    const n = warnings().length;
    a.elector.serviceLostActive('test: compete again');
    await w.until(
      'a ACTIVE again',
      () => a.cb.becomeActive.mock.calls.length === 2 && a.elector.getState() === 'ACTIVE',
    );
    expect(warnings()).toHaveLength(n);
  });

  it('a persistent (foreign) znode at the lock path: never ACTIVE, never deletes it', async () => {
    const w = world();
    w.server.put(paths.lock, 'created by hand');
    const a = w.node('a');
    a.start();
    await w.advance(2 * T, 50);
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(a.cb.becomeActive).not.toHaveBeenCalled();
    expect(a.cb.becomeStandby).not.toHaveBeenCalled();
    expect(w.server.get(paths.lock)?.data?.toString()).toBe('created by hand');
  });
});

describe('Elector: a hung service (NOT_RESPONDING) while ACTIVE', () => {
  const hang = (a: TestNode): void =>
    a.elector.setElectable(false, 'health NOT_RESPONDING: no answer in 300 ms', { hung: true });

  it('a hung service (NOT_RESPONDING): releases the lock FIRST, breadcrumb unmarked, then tries the demotion', async () => {
    const { w, a } = await activeA();
    const epoch = a.elector.getEpoch()!;
    let lockDuringDemotion: string | null | undefined;
    let finishDemotion!: (clean: boolean) => void;
    a.behave.demote = () => {
      lockDuringDemotion = w.lockStat()?.ephemeralOwner ?? null;
      return new Promise<boolean>((r) => (finishDemotion = r));
    };
    const mark = w.server.history.length;

    hang(a);
    await w.until('the demotion started', () => lockDuringDemotion !== undefined);
    // The lock was already gone when the demotion began: a peer may take it and fence meanwhile.
    expect(lockDuringDemotion).toBeNull();
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({ id: 'a', epoch: epoch.toString() });
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)!.demoted).toBeUndefined();
    // Until the demotion ends the service may still be active, and the node says so.
    expect(a.elector.serviceMayBeActive()).toBe(true);
    finishDemotion(false); // timed out, as against a frozen service
    await w.until('a NEUTRAL', () => a.elector.getState() === 'NEUTRAL');
    const changes = w.server.history
      .slice(mark)
      .filter((h) => h.path === paths.lock || h.path === paths.breadcrumb)
      .map((h) => [h.op, h.path]);
    expect(changes).toEqual([['remove', paths.lock]]);
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)!.demoted).toBeUndefined();
    await w.advance(2 * T, 50);
    expect(w.lockStat()).toBeNull();
    expect(a.cb.becomeActive).toHaveBeenCalledTimes(1);
  });

  it('a hung service: the peer takes the free lock at once and fences it while its demotion hangs', async () => {
    const { w, a } = await activeA();
    const b = w.node('b');
    b.start();
    await w.until('b STANDBY', () => b.elector.getState() === 'STANDBY');
    let finishDemotion!: (clean: boolean) => void;
    a.behave.demote = () => new Promise<boolean>((r) => (finishDemotion = r));
    hang(a);
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE');
    expect(b.cb.fenceOldActive).toHaveBeenCalledTimes(1);
    expect(b.cb.fenceOldActive.mock.calls[0]![0]).toMatchObject({ id: 'a' });
    finishDemotion(true);
    await w.until('a NEUTRAL or STANDBY', () => a.elector.getState() !== 'ACTIVE');
    // A late clean demotion does not touch the breadcrumb b wrote.
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({ id: 'b' });
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)!.demoted).toBeUndefined();
  });

  it('a hung service whose demotion then succeeds marks the breadcrumb, while it is still ours', async () => {
    const { w, a } = await activeA();
    hang(a);
    await w.until('a NEUTRAL', () => a.elector.getState() === 'NEUTRAL');
    expect(w.lockStat()).toBeNull();
    // The demotion came back clean (the service answered after all): the next active need not fence.
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({ id: 'a', demoted: true });
  });
});

describe('Elector: the service lost its active role behind our back', () => {
  it('serviceLostActive with a healthy peer: the peer takes the lock, not the node that lost it', async () => {
    const { w, a } = await activeA();
    const b = w.node('b');
    b.start();
    await w.until('b STANDBY', () => b.elector.getState() === 'STANDBY');
    a.elector.serviceLostActive('service reported standby while this node held the lock');
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE', { maxMs: BACKOFF - 100 });
    await w.advance(BACKOFF * 2);
    expect(a.elector.getState()).toBe('STANDBY');
    expect(a.cb.becomeActive).toHaveBeenCalledTimes(1);
  });

  it('serviceLostActive: demotes cleanly, gives the lock up, backs off, and alone wins again with a NEW epoch', async () => {
    const w = world();
    const a = w.node('a');
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const epoch1 = a.elector.getEpoch()!;
    const signal1 = a.activationSignal();
    const mark = w.server.history.length;

    const lostAt = w.clock.now();
    a.elector.serviceLostActive('service reported standby while this node held the lock');
    await w.until('the lock released', () => w.lockStat() === null);
    // Not straight back: its health verdict may still be pending (a crash seen first by the
    // state query), and a healthy peer should take over instead.
    await w.advanceTo(lostAt + BACKOFF - 1);
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(w.lockStat()).toBeNull();
    await w.until(
      'a ACTIVE with a new epoch',
      () => a.elector.getEpoch() !== epoch1 && a.elector.getState() === 'ACTIVE',
      { maxMs: 500 },
    );

    const epoch2 = a.elector.getEpoch()!;
    expect(epoch2).toBeGreaterThan(epoch1);
    expect(signal1.aborted).toBe(true);
    expect(a.demotions()).toHaveLength(1);
    expect(a.demotions()[0]!.args[0]).toContain('service reported standby');
    expect(a.cb.becomeActive.mock.calls.map((c) => c[0])).toEqual([epoch1, epoch2]);
    expect(a.cb.fenceOldActive).not.toHaveBeenCalled(); // it marked its own breadcrumb first
    const changes = w.server.history
      .slice(mark)
      .filter((h) => h.path === paths.lock || h.path === paths.breadcrumb)
      .map((h) => `${h.op} ${h.path}`);
    expect(changes).toEqual([
      `setData ${paths.breadcrumb}`,
      `remove ${paths.lock}`,
      `create ${paths.lock}`,
      `setData ${paths.breadcrumb}`,
    ]);
  });
});

describe('Elector: two nodes, failover and fencing', () => {
  /** a ACTIVE, b STANDBY; then a's host is cut off and its session expires on the server. */
  async function failoverSetup() {
    const w = world();
    const a = w.node('a');
    const b = w.node('b');
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const epochA = a.elector.getEpoch()!;
    b.start();
    await w.until('b STANDBY', () => b.elector.getState() === 'STANDBY');
    await w.advance(2 * T, 50);
    return { w, a, b, epochA };
  }

  async function killA(w: World, a: TestNode): Promise<number> {
    const sA = a.session();
    a.partition();
    // The client gives up after T without a reply; the server expires the session at the same
    // moment (it heard the last request no earlier than it was sent).
    await w.until('a lost its session', () => gone(sA));
    w.server.expire(sA, { notice: false });
    return w.clock.now();
  }

  it('the standby stays STANDBY (told once), then fences the breadcrumb holder and becomes ACTIVE', async () => {
    const { w, a, b, epochA } = await failoverSetup();
    expect(b.cb.becomeStandby).toHaveBeenCalledTimes(1);
    expect(b.states().map((s) => s.state)).toEqual(['STANDBY']);
    expect(w.server.history.some((h) => h.path === paths.lock && h.sessionId === b.session().sessionId)).toBe(
      false,
    );
    expect(b.cb.fenceOldActive).not.toHaveBeenCalled();

    const expiredAt = await killA(w, a);
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE');

    const epochB = b.elector.getEpoch()!;
    expect(epochB).toBeGreaterThan(epochA);
    expect(w.lockStat()).toMatchObject({ czxid: epochB, ephemeralOwner: b.session().sessionId });
    expect(b.cb.fenceOldActive).toHaveBeenCalledTimes(1);
    const [target, fenceEpoch, signal] = b.cb.fenceOldActive.mock.calls[0]!;
    expect(target).toEqual({
      id: 'a',
      host: a.host,
      port: a.port,
      address: `${a.host}:${a.port}`,
      epoch: epochA,
    } satisfies FenceTarget);
    expect(fenceEpoch).toBe(epochB);
    expect(signal.aborted).toBe(false);
    // Fencing came before the breadcrumb changed hands and before b's service went active.
    expect(b.calls('fenceOldActive')[0]!.at).toBeLessThanOrEqual(b.calls('becomeActive')[0]!.at);
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({ id: 'b', epoch: epochB.toString() });
    // Failover was driven by the lock watch, not by a periodic recheck.
    expect(b.calls('becomeActive')[0]!.at - expiredAt).toBeLessThanOrEqual(20);
    // The old active had stood its service down (lease) before the new one went active.
    expect(a.demotions().length).toBe(1);
    expect(a.demotions()[0]!.at).toBeLessThan(b.calls('becomeActive')[0]!.at);
    expect(a.elector.getState()).toBe('NEUTRAL');
  });

  it('fencing fails: not promoted, lock released, reason names the target, back-off before the retry', async () => {
    const { w, a, b, epochA } = await failoverSetup();
    b.behave.fenceOldActive = async () => false;
    await killA(w, a);
    await w.until('b gave up', () => b.calls('activationFailed').length === 1);

    const failedAt = b.calls('activationFailed')[0]!.at;
    const reason = b.calls('activationFailed')[0]!.args[0] as string;
    expect(reason).toContain('previous active a ');
    expect(reason).toContain(`epoch ${epochA}`);
    expect(b.cb.becomeActive).not.toHaveBeenCalled();
    expect(b.elector.getState()).toBe('NEUTRAL');
    expect(w.lockStat()).toBeNull();
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({ id: 'a', epoch: epochA.toString() });
    expect(b.elector.status().backoffRemainingMs).toBe(BACKOFF);

    await w.advanceTo(failedAt + BACKOFF - 1);
    expect(b.cb.fenceOldActive).toHaveBeenCalledTimes(1);
    expect(w.lockStat()).toBeNull();

    b.behave.fenceOldActive = async () => true;
    await w.until('b retried', () => b.cb.fenceOldActive.mock.calls.length === 2);
    expect(b.calls('fenceOldActive')[1]!.at).toBeGreaterThanOrEqual(failedAt + BACKOFF);
    expect(b.calls('fenceOldActive')[1]!.at).toBeLessThanOrEqual(failedAt + BACKOFF + 20);
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE');
    expect(b.cb.fenceOldActive.mock.calls[1]![0].id).toBe('a');
  });

  it('a fence that throws is a failed fence too: reported, lock released, back-off before the retry', async () => {
    const { w, a, b } = await failoverSetup();
    // A fencing method with a bug: it throws instead of answering false, every time.
    b.behave.fenceOldActive = async () => {
      throw new Error('fencing method crashed');
    };
    await killA(w, a);
    await w.until('b tried to fence', () => b.cb.fenceOldActive.mock.calls.length >= 1);
    const firstAt = b.calls('fenceOldActive')[0]!.at;
    expect(b.cb.onActivationFailed).toHaveBeenCalledTimes(1);
    expect(b.calls('activationFailed')[0]!.args[0]).toContain('a');
    expect(w.lockStat()).toBeNull();
    await w.advanceTo(firstAt + BACKOFF - 1);
    expect(b.cb.fenceOldActive).toHaveBeenCalledTimes(1);
    expect(b.cb.becomeActive).not.toHaveBeenCalled();
    expect(b.elector.getState()).toBe('NEUTRAL');
  });

  it('stop() of the ACTIVE node: demotes, marks its breadcrumb, closes the session; the lock is gone at once', async () => {
    const { w, a, b } = await failoverSetup();
    const sA = a.session();
    const before = w.clock.now();
    let stopped = false;
    void a.elector.stop().then(() => {
      stopped = true;
    });
    await w.settle();
    expect(stopped).toBe(true);
    expect(w.clock.now()).toBe(before);
    expect(sA.state).toBe('closed');
    expect(a.cb.demote).toHaveBeenCalledWith('agent stopping');
    expect(a.cb.demote).toHaveBeenCalledTimes(1);
    expect(a.elector.getState()).toBe('NEUTRAL');
    // Its breadcrumb was marked first (it stood down cleanly), then its lock went with the
    // session, and all of it without the clock moving.
    const ofA = w.server.history.filter(
      (h) => h.sessionId === sA.sessionId && h.at === before && h.path !== paths.history,
    );
    expect(ofA.map((h) => [h.op, h.path, h.cause ?? 'request'])).toEqual([
      ['setData', paths.breadcrumb, 'request'],
      ['remove', paths.member('a'), 'closed'],
      ['remove', paths.lock, 'closed'],
    ]);
    // The standby takes over at once and need not fence a node that stood down cleanly.
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE', { maxMs: 100 });
    expect(b.cb.fenceOldActive).not.toHaveBeenCalled();
    expect(b.cb.becomeActive.mock.calls[0]![1]).toContain('previous active a stood down cleanly');
  });
});

describe('Elector: breadcrumb edge cases', () => {
  it('an unreadable breadcrumb: refuses to promote, the reason names the znode', async () => {
    const w = world();
    w.server.put(paths.breadcrumb, Buffer.from([0xff, 0x00, 0x7b, 0x13]));
    const a = w.node('a');
    a.start();
    await w.until('activation failed', () => a.calls('activationFailed').length === 1);
    expect(a.calls('activationFailed')[0]!.args[0]).toContain(paths.breadcrumb);
    expect(a.cb.fenceOldActive).not.toHaveBeenCalled();
    expect(a.cb.becomeActive).not.toHaveBeenCalled();
    expect(w.lockStat()).toBeNull();
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(w.server.get(paths.breadcrumb)?.data).toEqual(Buffer.from([0xff, 0x00, 0x7b, 0x13]));
    // Every retry refuses again.
    await w.advance(BACKOFF + 100);
    expect(a.calls('activationFailed')).toHaveLength(2);
    expect(a.states().some((s) => s.state === 'ACTIVE')).toBe(false);
  });

  it('a breadcrumb with our node id but not provably ours (other host, or no session of ours): fenced', async () => {
    for (const twin of [
      { host: '10.9.9.9', port: 8001, session: 'ffffffffffffffff' },
      { host: '10.0.0.1', port: 8001, session: 'ffffffffffffffff' },
      { host: '10.0.0.1', port: 8001, session: undefined },
    ]) {
      const w = world();
      const old: BreadcrumbRecord = {
        formatVersion: FORMAT_VERSION,
        kind: 'breadcrumb',
        cluster: 'ns1',
        id: 'a',
        host: twin.host,
        port: twin.port,
        epoch: '42',
        writtenAt: new Date(0).toISOString(),
        ...(twin.session ? { session: twin.session } : {}),
      };
      w.server.put(paths.breadcrumb, encodeRecord(old));
      const a = w.node('a'); // host 10.0.0.1, port 8001
      a.start();
      await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
      expect(a.cb.fenceOldActive).toHaveBeenCalledTimes(1);
      expect(a.cb.fenceOldActive.mock.calls[0]![0]).toMatchObject({ id: 'a', host: twin.host, epoch: 42n });
      expect(a.calls('fenceOldActive')[0]!.at).toBeLessThanOrEqual(a.calls('becomeActive')[0]!.at);
      expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({
        id: 'a',
        host: a.host,
        epoch: a.elector.getEpoch()!.toString(),
        session: a.session().sessionId,
      });
    }
  });
});

describe('Elector: policy demote (the lease)', () => {
  it('a suspended session: demotion starts no later than lastReplySentAt + T - margin - toStandbyTimeout', async () => {
    const { w, a } = await activeA();
    const s = a.session();
    s.suspend();
    const deadline = s.lastReplySentAt + T - MARGIN - TO_STANDBY;
    await w.advanceTo(deadline - 2, 1);
    expect(a.elector.getState()).toBe('ACTIVE'); // rides out a blip while the lease lasts
    expect(a.cb.demote).not.toHaveBeenCalled();

    await w.until('demoted', () => a.demotions().length > 0, { step: 1, maxMs: LEASE });
    expect(a.elector.mayBeActive()).toBe(false);
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(a.demotions()[0]!.args[0]).toContain('lease');
    expect(a.demotions()[0]!.at).toBeLessThanOrEqual(deadline);
  });

  it('after a lease demotion, the same session back: lock released and re-acquired with a NEW epoch', async () => {
    const { w, a, epoch1 } = await activeA();
    const s = a.session();
    s.suspend();
    const deadline = s.lastReplySentAt + LEASE;
    await w.until('demoted', () => a.demotions().length > 0, { step: 1 });
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(w.lockStat()?.czxid).toBe(epoch1); // nothing could be released without a link
    await w.advanceTo(deadline + 500);
    expect(s.state).toBe('suspended');
    s.resume();
    await w.until('a ACTIVE again', () => a.elector.getState() === 'ACTIVE', { maxMs: 500 });

    const epoch2 = a.elector.getEpoch()!;
    expect(epoch2).toBeGreaterThan(epoch1);
    expect(a.session()).toBe(s); // same session, new activation
    expect(a.cb.becomeActive).toHaveBeenCalledTimes(2);
    expect(a.cb.becomeActive.mock.calls[1]![0]).toBe(epoch2);
    expect(w.lockStat()).toMatchObject({ czxid: epoch2, ephemeralOwner: s.sessionId });
    expect(a.cb.fenceOldActive).not.toHaveBeenCalled();
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)?.epoch).toBe(epoch2.toString());
    // The old lock was released by this session, after its breadcrumb was marked (clean demotion).
    const changes = w.server.history.filter(
      (h) => h.sessionId === s.sessionId && (h.path === paths.lock || h.path === paths.breadcrumb),
    );
    expect(changes.map((h) => `${h.op} ${h.path}`).slice(2, 5)).toEqual([
      `setData ${paths.breadcrumb}`,
      `remove ${paths.lock}`,
      `create ${paths.lock}`,
    ]);
  });

  it('the lease runs out while becomeActive runs: signal aborted, never ACTIVE, service demoted', async () => {
    const w = world();
    const a = w.node('a');
    let signalSeen: AbortSignal | null = null;
    let deadline = 0;
    a.behave.becomeActive = (_epoch, _reason, signal) => {
      signalSeen = signal;
      const s = a.session();
      s.suspend(); // the link goes while the service is being promoted
      deadline = s.lastReplySentAt + LEASE;
      return abortable(new Promise<void>(() => {}), signal);
    };
    a.start();
    await w.until('becomeActive called', () => a.cb.becomeActive.mock.calls.length === 1);
    await w.until('demoted', () => a.demotions().length > 0, { step: 1, maxMs: LEASE + 100 });

    expect(signalSeen).not.toBeNull();
    expect(signalSeen!.aborted).toBe(true);
    expect(String((signalSeen!.reason as Error).message)).toContain('lease');
    expect(a.demotions()[0]!.at).toBeGreaterThanOrEqual(deadline);
    expect(a.states().some((s) => s.state === 'ACTIVE')).toBe(false);
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(a.elector.mayBeActive()).toBe(false);
    expect(a.cb.onActivationFailed).toHaveBeenCalledTimes(1);
  });

  it('a to-active that ignores the abort and succeeds after the lease ran out (link back by then) is not ACTIVE', async () => {
    const w = world();
    const a = w.node('a');
    const done = w.gate();
    let signalSeen: AbortSignal | null = null;
    a.behave.becomeActive = (_epoch, _reason, signal) => {
      signalSeen = signal;
      a.session().suspend();
      a.behave.becomeActive = async () => {};
      return done.promise;
    };
    a.start();
    await w.until('becomeActive called', () => a.cb.becomeActive.mock.calls.length === 1);
    const epoch1 = a.cb.becomeActive.mock.calls[0]![0];
    await w.until('activation aborted', () => signalSeen!.aborted, { step: 1, maxMs: LEASE + 100 });
    a.session().resume(); // the lease is fine again...
    await w.advance(50);
    done.resolve(); // ...but this activation outlived the lease it started under
    await w.until('demoted', () => a.demotions().length > 0, { maxMs: 100 });
    expect(a.demotions()[0]!.args[0]).toContain('outlived');
    expect(a.states().some((s) => s.state === 'ACTIVE' && s.epoch === epoch1)).toBe(false);
    // It competes afresh: a new activation with a new epoch.
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE', { maxMs: 500 });
    expect(a.elector.getEpoch()!).toBeGreaterThan(epoch1);
  });

  it('a fence that succeeds only after the lease ran out does not lead to becomeActive', async () => {
    const w = world();
    w.server.put(
      paths.breadcrumb,
      encodeRecord({
        formatVersion: FORMAT_VERSION,
        kind: 'breadcrumb',
        cluster: 'ns1',
        id: 'old',
        host: '10.0.9.9',
        port: 1,
        epoch: '7',
        writtenAt: new Date(0).toISOString(),
      }),
    );
    const a = w.node('a');
    const fenced = w.gate<boolean>();
    a.behave.fenceOldActive = () => {
      a.session().suspend();
      return fenced.promise; // ignores the abort
    };
    a.start();
    await w.until('fencing', () => a.cb.fenceOldActive.mock.calls.length === 1);
    const signal = a.cb.fenceOldActive.mock.calls[0]![2];
    await w.until('fencing aborted by the lease', () => signal.aborted, { step: 1, maxMs: LEASE + 100 });
    fenced.resolve(true);
    await w.until('activation abandoned', () => a.calls('activationFailed').length === 1, { maxMs: 100 });
    expect(a.calls('activationFailed')[0]!.args[0]).toContain('during fencing');
    expect(a.cb.becomeActive).not.toHaveBeenCalled();
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)?.id).toBe('old');
  });

  it('a lease expiry the busy loop could not act on at once: the next lease is still enforced on time', async () => {
    const { w, a } = await activeA();
    const s = a.session();
    const signal1 = a.activationSignal();
    s.suspend();
    const deadline1 = s.lastReplySentAt + LEASE;
    // Something else holds the elector's mutex across the deadline (the controller's reconcile
    // waiting for the service's state report), and the link is back before it lets go.
    const busy = w.gate();
    const exclusive = a.elector.exclusive(() => busy.promise);
    await w.advanceTo(deadline1 + 5, 1);
    expect(signal1.aborted).toBe(true); // the watchdog fired
    s.resume();
    await w.advance(20);
    busy.resolve();
    await exclusive;
    await w.advance(200);

    // Whether the elector demoted and won again or kept this activation (the server cannot have
    // expired a session that got replies again), an ACTIVE node must have its lease enforced.
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const demotionsBefore = a.demotions().length;
    s.suspend();
    const deadline2 = s.lastReplySentAt + LEASE;
    await w.until('demoted again', () => a.demotions().length > demotionsBefore, { step: 1, maxMs: T });
    // (+1: the watchdog's own one-millisecond lateness is the subject of another test.)
    expect(a.demotions().at(-1)!.at).toBeLessThanOrEqual(deadline2 + 1);
  });

  it('the lease runs out while the loop waits on a ZooKeeper request: the demotion does not wait for it', async () => {
    const { w, a } = await activeA();
    const s = a.session();
    // A silent link: every request (the loop's own recheck included) goes out and hears nothing,
    // so the loop sits in a read that only its request timeout would end.
    const silent = w.hold(() => true);
    const deadline = s.lastReplySentAt + LEASE;
    await w.until(
      'the loop to be stuck in a held request',
      () => silent.held.some((r) => r.path === paths.lock || r.path === paths.control),
      {
        maxMs: LEASE,
      },
    );
    await w.until('demoted', () => a.demotions().length > 0, { step: 1, maxMs: T });
    expect(a.demotions()[0]!.at).toBeLessThanOrEqual(deadline);
    expect(a.demotions()[0]!.args[0]).toContain('lease');
    expect(silent.pending).toBeGreaterThan(0); // the loop was still waiting when it happened
    expect(a.elector.getState()).toBe('NEUTRAL');
    silent.release();
  });

  it('a session lost while ACTIVE demotes at once, before the lease would have run out', async () => {
    const { w, a } = await activeA();
    const s = a.session();
    const deadline = s.lastReplySentAt + LEASE;
    w.server.expire(s); // e.g. forced by an operator; the client hears "expired"
    const at = w.clock.now();
    await w.until('demoted', () => a.demotions().length > 0, { maxMs: 100 });
    expect(a.demotions()[0]!.at).toBe(at);
    expect(a.demotions()[0]!.at).toBeLessThan(deadline);
  });
});

describe.each(['demote', 'hold'] as const)('Elector: stale-session guard (policy %s)', (policy) => {
  it('becomeActive finishing after its session was lost: result ignored, service demoted', async () => {
    const w = world();
    const a = w.node('a', { policy });
    const done = w.gate();
    a.behave.becomeActive = () => {
      a.behave.becomeActive = async () => {};
      return done.promise; // slow, and deaf to the signal
    };
    a.start();
    await w.until('becomeActive called', () => a.cb.becomeActive.mock.calls.length === 1);
    const s1 = a.session();
    const epoch1 = a.cb.becomeActive.mock.calls[0]![0];
    w.server.expire(s1);
    await w.advance(100);
    expect(gone(s1)).toBe(true);
    expect(a.elector.getState()).not.toBe('ACTIVE');
    done.resolve();
    await w.until('demoted', () => a.demotions().length > 0, { maxMs: 100 });
    expect(a.demotions()[0]!.args[0]).toContain('outlived');
    expect(a.states().some((s) => s.state === 'ACTIVE' && s.epoch === epoch1)).toBe(false);
    expect(a.states().find((s) => s.reason.includes('outlived'))?.state).toBe('NEUTRAL');

    // A new session competes afresh (the breadcrumb names this node: no fencing).
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE', { maxMs: 1000 });
    expect(a.session()).not.toBe(s1);
    expect(a.elector.getEpoch()!).toBeGreaterThan(epoch1);
    expect(a.cb.fenceOldActive).not.toHaveBeenCalled();
  });
});

describe('Elector: policy hold', () => {
  it('rides out a suspension past the lease, keeps the service when the session is lost, reclaims without fencing', async () => {
    const w = world();
    const a = w.node('a', { policy: 'hold' });
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const epoch1 = a.elector.getEpoch()!;
    // A higher-priority candidate appears: a node still holding its service must not defer to it.
    w.server.putEphemeral(
      paths.member('z'),
      encodeRecord(member('z', 99)),
      await w.server.connect({ deadlines: false }),
    );
    await w.advance(500);

    const s1 = a.session();
    a.partition();
    const last = s1.lastReplySentAt;
    await w.advanceTo(last + LEASE + 500);
    expect(a.elector.getState()).toBe('ACTIVE');
    expect(a.elector.mayBeActive()).toBe(true);
    expect(a.cb.demote).not.toHaveBeenCalled();

    await w.until('session lost', () => gone(s1));
    w.server.expire(s1, { notice: false });
    await w.advance(3000); // cannot reconnect yet
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(a.elector.serviceShouldBeActive()).toBe(true);
    expect(a.elector.status().holdingServiceWithoutLock).toBe(true);
    expect(a.demotions()).toEqual([]);

    a.reachable = true;
    const healedAt = w.clock.now();
    await w.until('a ACTIVE again', () => a.elector.getState() === 'ACTIVE');
    expect(a.calls('becomeActive')[1]!.at - healedAt).toBeLessThan(GRACE);
    expect(a.elector.getEpoch()!).toBeGreaterThan(epoch1);
    expect(a.cb.fenceOldActive).not.toHaveBeenCalled();
    expect(a.demotions()).toEqual([]);
    expect(a.elector.status().holdingServiceWithoutLock).toBe(false);
  });
});

describe.each(['demote', 'hold'] as const)(
  'Elector: own lock of an earlier session (policy %s)',
  (policy) => {
    it('is removed and re-acquired at once, without waiting for the server to expire it', async () => {
      const w = world();
      const a = w.node('a', { policy });
      a.start();
      await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
      const epoch1 = a.elector.getEpoch()!;
      const s1 = a.session();
      s1.suspend(); // only this connection is gone; the host can still open a new session
      await w.until('s1 lost (client side only)', () => gone(s1));
      const lostAt = w.clock.now();

      await w.until(
        'a ACTIVE on a new session',
        () => a.elector.getState() === 'ACTIVE' && a.session() !== s1,
        {
          maxMs: 200,
        },
      );
      expect(w.clock.now() - lostAt).toBeLessThan(100);
      expect(w.server.isAlive(s1)).toBe(true); // the server never expired the old session
      const s2 = a.session();
      const removal = w.server.history.find((h) => h.op === 'remove' && h.path === paths.lock);
      expect(removal?.sessionId).toBe(s2.sessionId);
      expect(w.lockStat()?.ephemeralOwner).toBe(s2.sessionId);
      expect(a.elector.getEpoch()!).toBeGreaterThan(epoch1);
      expect(a.cb.fenceOldActive).not.toHaveBeenCalled();
    });
  },
);

describe('Elector: priority', () => {
  it('a higher-priority HEALTHY member makes a free lock wait priorityGraceMs for the lower node', async () => {
    const w = world();
    w.server.putEphemeral(
      paths.member('hi'),
      encodeRecord(member('hi', 10)),
      await w.server.connect({ deadlines: false }),
    );
    const lo = w.node('lo', { priority: 1 });
    const start = w.clock.now();
    lo.start();
    await w.advanceTo(start + GRACE - 1);
    expect(w.lockStat()).toBeNull();
    expect(lo.cb.becomeActive).not.toHaveBeenCalled();
    await w.until('lo ACTIVE', () => lo.elector.getState() === 'ACTIVE');
    const createdAt = w.server.history.find((h) => h.op === 'create' && h.path === paths.lock)!.at;
    expect(createdAt).toBeGreaterThanOrEqual(start + GRACE);
    expect(createdAt).toBeLessThanOrEqual(start + GRACE + 10);
  });

  it('a higher-priority member still INITIALIZING (a cold start) is waited for too', async () => {
    const w = world();
    const other = await w.server.connect({ deadlines: false });
    w.server.putEphemeral(paths.member('hi'), encodeRecord(member('hi', 10, 'INITIALIZING')), other);
    const lo = w.node('lo', { priority: 1 });
    const start = w.clock.now();
    lo.start();
    await w.advanceTo(start + GRACE - 1);
    expect(w.lockStat()).toBeNull();
    await w.until('lo ACTIVE after the grace', () => lo.elector.getState() === 'ACTIVE');
  });

  it('the higher-priority node itself does not wait', async () => {
    const w = world();
    w.server.putEphemeral(
      paths.member('lo'),
      encodeRecord(member('lo', 1)),
      await w.server.connect({ deadlines: false }),
    );
    const hi = w.node('hi', { priority: 10 });
    hi.start();
    await w.until('hi ACTIVE', () => hi.elector.getState() === 'ACTIVE', { maxMs: 50 });
  });

  it('higher-priority members that are not HEALTHY or have noFailover are not waited for', async () => {
    const w = world();
    const other = await w.server.connect({ deadlines: false });
    w.server.putEphemeral(paths.member('sick'), encodeRecord(member('sick', 10, 'UNHEALTHY')), other);
    w.server.putEphemeral(paths.member('pinned'), encodeRecord(member('pinned', 20, 'HEALTHY', true)), other);
    w.server.putEphemeral(
      paths.member('failed'),
      encodeRecord({ ...member('failed', 30), activationFailed: true }),
      other,
    );
    const lo = w.node('lo', { priority: 1 });
    lo.start();
    await w.until('lo ACTIVE', () => lo.elector.getState() === 'ACTIVE', { maxMs: 50 });
  });

  it('noFailover: never joins the election, even when told it is electable', async () => {
    const w = world();
    const n = w.node('n', { noFailover: true, priority: 100 });
    n.start(true);
    await w.advance(2 * T, 50);
    expect(n.elector.status().electable).toBe(false);
    expect(n.elector.getState()).toBe('NEUTRAL');
    expect(w.lockStat()).toBeNull();
    expect(n.cb.becomeActive).not.toHaveBeenCalled();
    expect(w.record<MemberRecord>(paths.member('n'))).toMatchObject({ noFailover: true });
    // ...and a lower-priority node does not wait for it.
    const lo = w.node('lo', { priority: 1 });
    lo.start();
    await w.until('lo ACTIVE', () => lo.elector.getState() === 'ACTIVE', { maxMs: 50 });
  });
});

describe('Elector: lock watch', () => {
  it('a standby whose watch-setting lock read failed in a blip still hears of the lock deletion at once', async () => {
    const w = world();
    const a = w.node('a');
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const b = w.node('b');
    // b's first look at the lock (the one that sets its watch) is lost with the connection.
    const h = w.hold(
      (r) => r.op === 'exists' && r.path === paths.lock && r.conn.sessionId !== a.session().sessionId,
    );
    b.start();
    await w.until('b reads the lock', () => h.pending === 1);
    b.session().suspend();
    h.release();
    await w.advance(100);
    b.session().resume();
    await w.until('b STANDBY', () => b.elector.getState() === 'STANDBY');
    await w.advance(2 * T, 50);

    const sA = a.session();
    a.partition();
    await w.until('a lost', () => gone(sA));
    w.server.expire(sA, { notice: false });
    const expiredAt = w.clock.now();
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE');
    expect(b.calls('fenceOldActive')[0]!.at - expiredAt).toBeLessThanOrEqual(20);
  });
});

// ---- issue 6/7 regressions: each of these failed on the elector before the store seam ------------

describe('Elector: promotion evidence is re-checked right before the call that promotes', () => {
  it('frozen while the breadcrumb write was in flight: on thaw the lease is gone, to-active is never called', async () => {
    const w = world();
    const a = w.node('a');
    const h = w.hold((r) => r.path === paths.breadcrumb && (r.op === 'create' || r.op === 'setData'));
    a.start();
    await w.until('breadcrumb write in flight', () => h.pending === 1);
    const deadline = a.session().expiryNotBefore - MARGIN - TO_STANDBY;
    // SIGSTOP for a while: time passes, no timer runs; on SIGCONT the reply is handled first.
    w.clock.jump(deadline - w.clock.now() + 1000);
    h.release();
    await w.settle();
    expect(a.cb.becomeActive).not.toHaveBeenCalled();
    await w.advance(20);
    expect(a.cb.becomeActive).not.toHaveBeenCalled();
    expect(a.calls('activationFailed')[0]?.args[0]).toContain('before to-active');
    expect(a.states().some((s) => s.state === 'ACTIVE')).toBe(false);
  });
});

describe('Elector: a session that leaves too short a lease', () => {
  it.each([
    ['clamped by the server', { negotiatedTimeoutMs: 2900 }],
    ['eaten by the relay allowance', { relayAllowanceMs: 1100 }],
  ])('%s: NEUTRAL, never takes the lock, says once what to change', async (_what, opts) => {
    const w = world();
    const a = w.node('a', opts);
    a.start();
    await w.advance(3 * T, 50);
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(w.server.history.filter((h) => h.path === paths.lock)).toEqual([]);
    expect(a.cb.becomeActive).not.toHaveBeenCalled();
    const status = a.elector.status();
    expect(status.leaseBudgetMs).toBe(900);
    expect(status.lastDecision).toMatchObject({ action: 'lease-too-short' });
    expect(status.lastDecision?.reason).toContain('lease budget of 900 ms');
    expect(status.lastDecision?.reason).toContain('maxSessionTimeout');
    expect(a.logs.filter((l) => l.includes('cannot become active safely'))).toHaveLength(1);
  });
});

describe('Elector: housekeeping that cannot succeed does not wedge the loop', () => {
  it('a clean demotion whose breadcrumb cannot be marked (NO_AUTH): logged once, the next active fences it', async () => {
    const { w, a, b } = await activeStandby();
    const sA = a.session().sessionId;
    w.server.deny(paths.breadcrumb, (sid) => sid === sA);
    a.elector.setElectable(false, 'health UNHEALTHY: test');
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE');
    expect(b.cb.fenceOldActive).toHaveBeenCalledTimes(1); // not marked demoted: fenced, which is safe
    await w.advance(3 * T, 50);
    expect(a.logs.filter((l) => l.includes('cannot mark our breadcrumb'))).toHaveLength(1);
    expect(a.logs.filter((l) => l.includes('election step failed'))).toHaveLength(0);
    a.elector.setElectable(true, 'health HEALTHY');
    await w.until('a STANDBY', () => a.elector.getState() === 'STANDBY');
  });
});

describe('Elector: priority cannot starve a lower node', () => {
  it('a higher-priority node whose to-active always fails (back-off shorter than the grace)', async () => {
    const w = world();
    const timing = { backoffMs: 500, priorityGraceMs: 2000 };
    const hi = w.node('hi', { priority: 10, ...timing });
    hi.behave.becomeActive = async () => {
      throw new Error('to-active always fails');
    };
    const lo = w.node('lo', { priority: 1, ...timing });
    hi.start();
    lo.start();
    await w.until('lo ACTIVE', () => lo.elector.getState() === 'ACTIVE', { maxMs: 10_000 });
    await w.advance(5 * T, 50);
    expect(lo.elector.getState()).toBe('ACTIVE');
    expect(lo.cb.becomeActive).toHaveBeenCalledTimes(1);
    expect(hi.calls('activationFailed')).toHaveLength(1);
    expect(hi.elector.getState()).toBe('STANDBY');
    expect(w.record<MemberRecord>(paths.member('hi'))).toMatchObject({ activationFailed: true });
  });
});

describe('Elector: a step that never ends', () => {
  it('gives its session up after stepDeadlineMs, so the lock goes and a peer takes over after fencing it', async () => {
    const w = world();
    const a = w.node('a', { stepDeadlineMs: 5000 });
    const forever = w.gate();
    a.behave.becomeActive = () => forever.promise; // hangs, deaf to its signal
    a.start();
    await w.until('to-active called', () => a.cb.becomeActive.mock.calls.length === 1);
    const calledAt = a.calls('becomeActive')[0]!.at;
    const b = w.node('b');
    b.start();
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE', { maxMs: 10_000 });
    expect(b.calls('becomeActive')[0]!.at - calledAt).toBeLessThan(5000 + 100);
    expect(b.cb.fenceOldActive.mock.calls[0]![0]).toMatchObject({ id: 'a' });
    expect(a.logs.some((l) => l.includes('election step is stuck'))).toBe(true);
    expect(a.sessions[0]!.state).toBe('closed');
  });
});

describe('Elector: stopping', () => {
  it('stop() while a connection attempt hangs gives the attempt up at once', async () => {
    const w = world();
    const a = w.node('a');
    a.hangConnect = true;
    a.start();
    await w.advance(100);
    let stopped = false;
    void a.elector.stop().then(() => {
      stopped = true;
    });
    await w.settle();
    expect(stopped).toBe(true);
    expect(w.clock.now()).toBe(100);
  });
});

describe('Elector: demotions are never doubled', () => {
  it('stop() while the lease watchdog is demoting joins that demotion: one to-standby', async () => {
    const w = world();
    const a = w.node('a');
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const slow = w.gate<boolean>();
    a.behave.demote = () => slow.promise;
    a.session().suspend();
    await w.until('lease demotion started', () => a.demotions().length === 1, { step: 1, maxMs: T });
    let stopped = false;
    void a.elector.stop().then(() => {
      stopped = true;
    });
    await w.advance(100);
    expect(stopped).toBe(false);
    slow.resolve(true);
    await w.until('stopped', () => stopped);
    expect(a.demotions()).toHaveLength(1);
  });

  it('policy hold: a failed reclaim demotes the held service (it must not stay active without the lock)', async () => {
    const w = world();
    const a = w.node('a', { policy: 'hold' });
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const s1 = a.session();
    a.partition();
    await w.until('session lost', () => gone(s1));
    w.server.expire(s1, { notice: false });
    expect(a.elector.serviceShouldBeActive()).toBe(true);
    a.behave.becomeActive = async () => {
      throw new Error('to-active refused');
    };
    a.reachable = true;
    await w.until('reclaim failed', () => a.calls('activationFailed').length === 1);
    expect(a.demotions().length).toBeGreaterThanOrEqual(1);
    expect(a.elector.serviceShouldBeActive()).toBe(false);
    expect(a.elector.status().holdingServiceWithoutLock).toBe(false);
  });
});

describe('Elector: the breadcrumb is kept true', () => {
  it('removed under a live active: rewritten at once (the watch fires)', async () => {
    const w = world();
    const a = w.node('a');
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    await w.advance(100);
    const epoch = a.elector.getEpoch()!;
    w.server.remove(paths.breadcrumb);
    const at = w.clock.now();
    await w.until(
      'rewritten',
      () => w.record<BreadcrumbRecord>(paths.breadcrumb)?.epoch === epoch.toString(),
      {
        maxMs: 100,
      },
    );
    expect(w.clock.now() - at).toBeLessThanOrEqual(10);
    expect(a.decisions()).toContain('breadcrumb-repaired');
    expect(a.elector.getState()).toBe('ACTIVE');
  });

  it('removed, and the active dies before it can rewrite it: the standby fences the last holder it saw', async () => {
    const { w, a, b } = await activeStandby();
    const sA = a.session();
    // a's rewrite never gets out; then a's host is cut off and its session expires.
    w.hold((r) => r.conn === sA && r.path === paths.breadcrumb && r.op !== 'getData');
    w.server.remove(paths.breadcrumb);
    await w.advance(50);
    a.partition();
    await w.until('a lost', () => gone(sA));
    w.server.expire(sA, { notice: false });
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE');
    expect(b.cb.fenceOldActive).toHaveBeenCalledTimes(1);
    expect(b.cb.fenceOldActive.mock.calls[0]![0]).toMatchObject({ id: 'a', host: a.host, port: a.port });
  });
});

describe('Elector: graceful fencing reaches the control API', () => {
  it("the breadcrumb carries the active's control port, and its successor's fence target gets it", async () => {
    const w = world();
    const a = w.node('a', { controlPort: 8008 });
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    expect(w.record<BreadcrumbRecord>(paths.breadcrumb)).toMatchObject({ id: 'a', controlPort: 8008 });
    const b = w.node('b');
    b.start();
    await w.until('b STANDBY', () => b.elector.getState() === 'STANDBY');
    const sA = a.session();
    a.partition();
    await w.until('a lost', () => gone(sA));
    w.server.expire(sA, { notice: false });
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE');
    expect(b.cb.fenceOldActive.mock.calls[0]![0]).toMatchObject({ id: 'a', port: a.port, controlPort: 8008 });
  });
});

describe('Elector: one node id, one agent', () => {
  it('a second live agent with our node id: never competes, fatal after one session timeout, naming the other', async () => {
    const w = world();
    const a = w.node('a');
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const epoch = a.elector.getEpoch();
    const twin = w.node('a', { host: '10.0.0.99' });
    twin.start();
    await w.until('twin refused', () => twin.cb.onFatal.mock.calls.length === 1, {
      maxMs: T + MARGIN + 1000,
    });
    const why = twin.cb.onFatal.mock.calls[0]![0];
    expect(why).toContain(a.session().sessionId);
    expect(why).toContain(a.host);
    expect(why).toContain('node id a');
    expect(twin.cb.becomeActive).not.toHaveBeenCalled();
    expect(
      w.server.history.some((h) => h.path === paths.lock && h.sessionId === twin.session().sessionId),
    ).toBe(false);
    await w.advance(2 * T, 50);
    expect(a.elector.getState()).toBe('ACTIVE');
    expect(a.elector.getEpoch()).toBe(epoch);
    expect(a.cb.becomeActive).toHaveBeenCalledTimes(1);
  });

  it('a member record of a previous run (whose session is about to expire) is waited for, then replaced', async () => {
    const w = world();
    const previous = await w.server.connect({ deadlines: false });
    w.server.putEphemeral(paths.member('a'), encodeRecord(member('a', 1)), previous);
    const a = w.node('a');
    a.start();
    await w.advance(1000);
    expect(a.elector.getState()).toBe('NEUTRAL');
    expect(a.decisions()).toContain('duplicate-id');
    w.server.expire(previous);
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    expect(a.cb.onFatal).not.toHaveBeenCalled();
  });

  it('the same node id on another host after the first agent died: not provably its own breadcrumb, so fenced', async () => {
    const w = world();
    const a = w.node('a', { policy: 'hold' });
    a.start();
    await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
    const sA = a.session();
    a.partition(); // killed or frozen: its service stays active (policy hold)
    await w.until('a lost', () => gone(sA));
    w.server.expire(sA, { notice: false });
    const twin = w.node('a', { host: '10.0.0.99', policy: 'hold' });
    twin.start();
    await w.until('twin ACTIVE', () => twin.elector.getState() === 'ACTIVE');
    expect(twin.cb.fenceOldActive).toHaveBeenCalledTimes(1);
    expect(twin.cb.fenceOldActive.mock.calls[0]![0]).toMatchObject({ id: 'a', host: a.host });
  });
});
