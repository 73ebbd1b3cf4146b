/**
 * Graceful switchover and maintenance mode (the control znode) on the elector's test world: a
 * real Elector on the in-memory store and a fake clock. A ledger of who serves as active checks
 * "at most one active" at every promotion.
 */
import { describe, expect, it } from 'vitest';
import { FORMAT_VERSION, type ControlRecord, type HistoryEntry } from '../../../src/election/records.js';
import { decodeControl, decodeHistory } from '../../../src/zk/records.js';
import { GRACE, T, paths, world, type TestNode, type World } from './world.js';

/** Wires every node's callbacks to one ledger of serving actives; records any overlap. */
function ledger(nodes: TestNode[]) {
  const serving = new Set<string>();
  const overlaps: string[] = [];
  for (const n of nodes) {
    n.behave.becomeActive = async () => {
      if (serving.size > 0) overlaps.push(`${n.id} promoted while ${[...serving].join(',')} served`);
      serving.add(n.id);
    };
    n.behave.demote = async () => {
      serving.delete(n.id);
      return true;
    };
    n.behave.becomeStandby = async () => {
      serving.delete(n.id);
    };
  }
  return { serving, overlaps };
}

function control(w: World): ControlRecord | null {
  return decodeControl(paths.control, w.server.get(paths.control)?.data ?? null);
}

function history(w: World): HistoryEntry[] {
  return decodeHistory(paths.history, w.server.get(paths.history)?.data ?? null).record.entries;
}

function writeControl(w: World, patch: Partial<ControlRecord>): void {
  const rec: ControlRecord = {
    ...(control(w) ?? { formatVersion: FORMAT_VERSION, kind: 'control', cluster: 'ns1' }),
    ...patch,
    updatedAt: new Date().toISOString(),
  } as ControlRecord;
  w.server.put(paths.control, JSON.stringify(rec));
}

function request(w: World, from: string, to: string, expiresInMs = 60_000, id = 'req-1'): void {
  writeControl(w, {
    switchover: {
      id,
      from,
      to,
      reason: 'kernel upgrade',
      by: 'ops@host1',
      requestedAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
    },
  });
}

async function cluster(ids: { id: string; priority: number }[]) {
  const w = world();
  const nodes = ids.map((x) => w.node(x.id, { priority: x.priority }));
  const l = ledger(nodes);
  nodes[0]!.start();
  await w.until(`${ids[0]!.id} ACTIVE`, () => nodes[0]!.elector.getState() === 'ACTIVE');
  for (const n of nodes.slice(1)) n.start();
  await w.until('the others STANDBY', () => nodes.slice(1).every((n) => n.elector.getState() === 'STANDBY'));
  await w.advance(2 * T, 50); // member records published, watches armed
  return { w, nodes, ...l };
}

describe('switchover', () => {
  it('the active demotes while holding the lock, marks its breadcrumb, lets go; the target takes over unfenced', async () => {
    const { w, nodes, overlaps, serving } = await cluster([
      { id: 'a', priority: 10 },
      { id: 'b', priority: 5 },
    ]);
    const [a, b] = nodes as [TestNode, TestNode];
    const epochA = a.elector.getEpoch()!;
    request(w, 'a', 'b');
    const t0 = w.clock.now();
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE', { maxMs: 100 });
    // Event-driven: no timer had to run (no back-off, no priority grace for the target).
    expect(w.clock.now() - t0).toBeLessThan(GRACE);
    expect(overlaps).toEqual([]);
    expect([...serving]).toEqual(['b']);
    expect(a.demotions()[0]!.args[0]).toContain(
      'switchover req-1 to b requested by ops@host1: kernel upgrade',
    );
    expect(b.cb.fenceOldActive).not.toHaveBeenCalled();
    expect(b.cb.becomeActive.mock.calls[0]![1]).toContain(
      'switchover req-1 from a; previous active a stood down cleanly',
    );
    expect(b.elector.getEpoch()!).toBeGreaterThan(epochA);
    // The request is done and says so; the history has both halves.
    await w.settle();
    const c = control(w)!;
    expect(c.switchover).toBeUndefined();
    expect(c.lastSwitchover).toMatchObject({ id: 'req-1', outcome: 'done', from: 'a', to: 'b' });
    expect(c.lastSwitchover!.handoverMs).toBeGreaterThanOrEqual(0);
    const h = history(w);
    expect(h.map((e) => `${e.event} ${e.node}`)).toEqual(['activated a', 'demoted a', 'activated b']);
    expect(h[2]).toMatchObject({
      from: 'a',
      switchover: 'req-1',
      by: 'ops@host1',
      reason: 'kernel upgrade',
      fenced: [],
    });
    // The old active does not take the lock back, although its priority is higher.
    await w.advance(3 * T, 50);
    expect(a.elector.getState()).toBe('STANDBY');
    expect(b.elector.getState()).toBe('ACTIVE');
  });

  it('with three nodes, a higher-priority bystander stands aside for the named target', async () => {
    const { w, nodes, overlaps } = await cluster([
      { id: 'a', priority: 10 },
      { id: 'b', priority: 8 },
      { id: 'c', priority: 1 },
    ]);
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    request(w, 'a', 'c');
    await w.until('c ACTIVE', () => c.elector.getState() === 'ACTIVE', { maxMs: 100 });
    expect(overlaps).toEqual([]);
    expect(b.cb.becomeActive).not.toHaveBeenCalled();
    expect(b.decisions()).toContain('deferring');
    expect(a.elector.getState()).not.toBe('ACTIVE');
  });

  it('an ineligible target: the active refuses, stays active, and says why', async () => {
    const { w, nodes } = await cluster([
      { id: 'a', priority: 10 },
      { id: 'b', priority: 5 },
    ]);
    const [a, b] = nodes as [TestNode, TestNode];
    b.healthState = 'UNHEALTHY';
    b.elector.memberChanged();
    b.elector.setElectable(false, 'health UNHEALTHY');
    await w.advance(T, 50);
    request(w, 'a', 'b');
    await w.until('the request answered', () => control(w)?.lastSwitchover !== undefined, { maxMs: 200 });
    expect(control(w)!.lastSwitchover).toMatchObject({ outcome: 'refused', id: 'req-1' });
    expect(control(w)!.lastSwitchover!.detail).toContain('unhealthy (health UNHEALTHY)');
    expect(control(w)!.switchover).toBeUndefined();
    expect(a.elector.getState()).toBe('ACTIVE');
    expect(a.demotions()).toEqual([]);
    expect(history(w).at(-1)).toMatchObject({ event: 'switchover-refused', to: 'b' });
  });

  it('an expired request is cleared by the active and not acted on', async () => {
    const { w, nodes } = await cluster([
      { id: 'a', priority: 10 },
      { id: 'b', priority: 5 },
    ]);
    const [a, b] = nodes as [TestNode, TestNode];
    request(w, 'a', 'b', -1);
    await w.until('the request answered', () => control(w)?.lastSwitchover !== undefined, { maxMs: 200 });
    expect(control(w)!.lastSwitchover!.outcome).toBe('expired');
    expect(a.elector.getState()).toBe('ACTIVE');
    expect(b.cb.becomeActive).not.toHaveBeenCalled();
  });

  it('the target dies after the active let go: the others stop standing aside and one of them takes over', async () => {
    const { w, nodes, overlaps } = await cluster([
      { id: 'a', priority: 10 },
      { id: 'b', priority: 5 },
    ]);
    const [a, b] = nodes as [TestNode, TestNode];
    // b's to-active never finishes; then b's agent dies (its member record vanishes with its session).
    const never = w.gate();
    b.behave.becomeActive = () => never.promise;
    request(w, 'a', 'b');
    await w.until('b activating', () => b.cb.becomeActive.mock.calls.length === 1, { maxMs: 100 });
    w.server.expire(b.session(), { notice: false });
    b.reachable = false;
    await w.until('a ACTIVE again', () => a.elector.getState() === 'ACTIVE', { maxMs: 3 * T });
    expect(overlaps).toEqual([]);
    // a fenced b: b did not stand down cleanly (it was mid-activation).
    expect(a.cb.fenceOldActive.mock.calls.at(-1)![0].id).toBe('b');
    never.resolve();
  });
});

describe('pause', () => {
  it('stops an automatic failover that would otherwise happen; resume lets it happen', async () => {
    const { w, nodes, overlaps } = await cluster([
      { id: 'a', priority: 10 },
      { id: 'b', priority: 5 },
    ]);
    const [a, b] = nodes as [TestNode, TestNode];
    writeControl(w, {
      paused: { reason: 'storage maintenance', by: 'ops@host1', at: new Date().toISOString() },
    });
    await w.until('b sees the pause', () => b.elector.status().paused !== null, { maxMs: 100 });
    await w.until('a sees the pause', () => a.elector.status().paused !== null, { maxMs: 100 });
    // Unhealthy: no automatic demotion while paused.
    a.elector.setElectable(false, 'health UNHEALTHY');
    await w.advance(2 * T, 50);
    expect(a.elector.getState()).toBe('ACTIVE');
    expect(a.demotions()).toEqual([]);
    // The active's agent dies: the lock goes with its session, and nobody is promoted.
    w.server.expire(a.session(), { notice: false });
    a.reachable = false;
    await w.advance(3 * T, 50);
    expect(b.cb.becomeActive).not.toHaveBeenCalled();
    expect(b.decisions()).toContain('paused');
    // Resume: b takes over (and fences a, which did not stand down).
    writeControl(w, { paused: undefined });
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE', { maxMs: 2 * T });
    expect(b.cb.fenceOldActive).toHaveBeenCalled();
    expect(overlaps.filter((o) => !o.startsWith('b promoted while a'))).toEqual([]);
  });

  it('the lease still demotes a paused active that loses ZooKeeper', async () => {
    const { w, nodes } = await cluster([
      { id: 'a', priority: 10 },
      { id: 'b', priority: 5 },
    ]);
    const [a] = nodes as [TestNode, TestNode];
    writeControl(w, { paused: { by: 'ops@host1', at: new Date().toISOString() } });
    await w.until('a sees the pause', () => a.elector.status().paused !== null, { maxMs: 100 });
    a.partition();
    await w.until('a demoted', () => a.demotions().length > 0, { maxMs: T });
    expect(a.demotions()[0]!.args[0]).toContain('lease');
  });

  it('an unreadable control znode is ignored (no pause, no switchover), reported once', async () => {
    const { w, nodes } = await cluster([
      { id: 'a', priority: 10 },
      { id: 'b', priority: 5 },
    ]);
    const [a] = nodes as [TestNode, TestNode];
    w.server.put(paths.control, '{"formatVersion":1,"kind":"control","paused":"yes"}');
    await w.advance(T, 50);
    expect(a.elector.status().paused).toBeNull();
    expect(a.logs.filter((l) => l.includes('control znode is unreadable')).length).toBe(1);
    expect(a.elector.getState()).toBe('ACTIVE');
  });
});
