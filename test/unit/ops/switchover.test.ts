/**
 * Operator actions (src/ops) on the in-memory store: planning a switchover (who is eligible and
 * why not), writing the request, and the HTTP-facing results.
 */
import { describe, expect, it } from 'vitest';
import { FORMAT_VERSION, type LockRecord } from '../../../src/election/records.js';
import { clusterActions } from '../../../src/ops/actions.js';
import { OpsError } from '../../../src/ops/errors.js';
import { setPaused } from '../../../src/ops/pause.js';
import { planSwitchover, requestSwitchover } from '../../../src/ops/switchover.js';
import { clusterPaths } from '../../../src/zk/paths.js';
import { decodeControl, decodeHistory, encodeRecord } from '../../../src/zk/records.js';
import { FakeClock } from '../../support/fake-clock.js';
import { FakeCoordinator } from '../../support/fake-store.js';
import { member } from '../election/world.js';

const paths = clusterPaths('/hafc', 'ns1');

async function setup(b: { health?: string; role?: string; notElectableReason?: string } = {}) {
  const server = new FakeCoordinator(new FakeClock(), paths);
  const holder = await server.connect({ probeIntervalMs: 0, deadlines: false });
  const cli = await server.connect({ probeIntervalMs: 0, deadlines: false });
  const lock: LockRecord = {
    formatVersion: FORMAT_VERSION,
    kind: 'lock',
    cluster: 'ns1',
    id: 'a',
    host: '10.0.0.1',
    port: 1,
    priority: 10,
    pid: 1,
    agentVersion: 'test',
    acquiredAt: new Date().toISOString(),
  };
  server.putEphemeral(paths.lock, encodeRecord(lock), holder);
  server.putEphemeral(paths.member('a'), encodeRecord({ ...member('a', 10), role: 'ACTIVE' }), holder);
  server.putEphemeral(
    paths.member('b'),
    encodeRecord({
      ...member('b', 5, b.health ?? 'HEALTHY'),
      role: b.role ?? 'STANDBY',
      ...(b.notElectableReason ? { notElectableReason: b.notElectableReason } : {}),
    }),
    holder,
  );
  return { server, store: cli };
}

describe('planSwitchover', () => {
  it('picks the eligible standby; explains an ineligible one', async () => {
    const { store } = await setup();
    const plan = await planSwitchover(store, 'ns1');
    expect(plan).toMatchObject({ from: 'a', to: 'b' });
    const bad = await setup({ health: 'UNHEALTHY', role: 'NEUTRAL' });
    const p2 = await planSwitchover(bad.store, 'ns1');
    expect(p2.to).toBeNull();
    expect(p2.problem).toBe('no member is eligible to take over');
    expect(p2.candidates[0]!.why).toEqual([
      'unhealthy (health UNHEALTHY)',
      'not standing by (NEUTRAL: not electable, or not connected to ZooKeeper)',
    ]);
  });

  it("names the service's own reason a member cannot take over (a lagging replica)", async () => {
    const why = 'health UNHEALTHY: replica lags 9000000 bytes behind, more than maximumLagOnFailover 1048576';
    const { store } = await setup({ health: 'UNHEALTHY', notElectableReason: why });
    const plan = await planSwitchover(store, 'ns1');
    expect(plan.to).toBeNull();
    expect(plan.candidates[0]!.why).toEqual([`unhealthy (${why})`]);
  });

  it('no lock holder: nothing to hand over (no-eligible-target)', async () => {
    const server = new FakeCoordinator(new FakeClock(), paths);
    const store = await server.connect({ probeIntervalMs: 0, deadlines: false });
    const err = await planSwitchover(store, 'ns1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpsError);
    expect((err as OpsError).kind).toBe('no-eligible-target');
  });

  it('paused, or another request pending: no target, and the plan says why', async () => {
    const { store } = await setup();
    await setPaused(store, 'ns1', true, { by: 'ops@h', reason: 'disk swap' });
    expect((await planSwitchover(store, 'ns1')).problem).toContain('the cluster is paused (by ops@h');
    await setPaused(store, 'ns1', false, { by: 'ops@h' });
    const plan = await planSwitchover(store, 'ns1');
    await requestSwitchover(store, plan, { by: 'ops@h', timeoutMs: 30_000 });
    expect((await planSwitchover(store, 'ns1')).problem).toMatch(
      /^switchover [0-9a-f]+ \(a -> b, by ops@h\) is pending/,
    );
    // Racing a request written meanwhile: refused, not overwritten.
    await expect(requestSwitchover(store, plan, { by: 'x@y', timeoutMs: 30_000 })).rejects.toThrow(
      /was requested meanwhile/,
    );
  });

  it('--to: the active itself, a stranger, or an eligible node', async () => {
    const { store } = await setup();
    expect((await planSwitchover(store, 'ns1', 'a')).problem).toBe('a is already the active node');
    expect((await planSwitchover(store, 'ns1', 'zz')).problem).toContain('zz is not a live member');
    expect((await planSwitchover(store, 'ns1', 'b')).to).toBe('b');
  });
});

describe('clusterActions (the HTTP API)', () => {
  it('202 for a request, 409 with the explanation when nobody is eligible, 503 without a session', async () => {
    const { server, store } = await setup();
    const acts = clusterActions({
      cluster: 'ns1',
      store: () => store,
      by: 'http:127.0.0.1',
      switchoverTimeoutMs: 30_000,
    });
    const ok = await acts.switchover({ reason: 'patching' });
    expect(ok.status).toBe(202);
    expect(ok.message).toMatch(/^switchover [0-9a-f]+ requested: a -> b/);
    const c = decodeControl(paths.control, server.get(paths.control)!.data)!;
    expect(c.switchover).toMatchObject({ from: 'a', to: 'b', by: 'http:127.0.0.1', reason: 'patching' });
    const h = decodeHistory(paths.history, server.get(paths.history)!.data).record.entries;
    expect(h.at(-1)).toMatchObject({ event: 'switchover-requested', by: 'http:127.0.0.1' });

    const bad = await setup({ health: 'UNHEALTHY' });
    const no = await clusterActions({
      cluster: 'ns1',
      store: () => bad.store,
      by: 'x',
      switchoverTimeoutMs: 1000,
    }).switchover({});
    expect(no.status).toBe(409);
    expect(no.message).toContain('b  priority 5  not eligible: unhealthy (health UNHEALTHY)');

    const off = clusterActions({ cluster: 'ns1', store: () => null, by: 'x', switchoverTimeoutMs: 1000 });
    expect((await off.pause({})).status).toBe(503);
  });

  it('pause and resume are idempotent', async () => {
    const { store } = await setup();
    const acts = clusterActions({
      cluster: 'ns1',
      store: () => store,
      by: 'http:1',
      switchoverTimeoutMs: 1000,
    });
    expect((await acts.pause({ reason: 'r' })).message).toContain('paused: agents take no automatic action');
    expect((await acts.pause({})).message).toContain('already paused by http:1');
    expect((await acts.resume({})).message).toContain('resumed');
    expect((await acts.resume({})).message).toContain('not paused');
  });
});
