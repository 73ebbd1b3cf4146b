/**
 * An agent restarted within the session timeout resumes its previous session (the runtime keeps
 * the id and password in a file; here the fake server re-attaches it): the elector adopts the
 * activation only with the evidence that its previous run made it, and otherwise falls back to
 * the normal path. The standby must never be promoted while the lock's session lives.
 */
import { describe, expect, it } from 'vitest';
import { FORMAT_VERSION, type BreadcrumbRecord } from '../../../src/election/records.js';
import { decodeRecord, encodeRecord } from '../../../src/zk/records.js';
import { T, activeStandby, paths, type TestNode, type World } from './world.js';

/** kill -9 of a's agent: its connection object goes silent; the session lives on in the server. */
function killAgent(a: TestNode): string {
  const id = a.session().sessionId;
  a.reachable = false;
  a.hangConnect = true;
  return id;
}

function restart(
  w: World,
  a: TestNode,
  sessionId: string,
  service: 'active' | 'standby' | 'unknown',
): TestNode {
  const a2 = w.node('a', { host: a.host, port: a.port, resumeSessionId: sessionId });
  a2.behave.serviceState = async () => service;
  return a2;
}

describe('agent restart: the previous session is resumed', () => {
  it('kill -9 and a restart within the session timeout: same lock, same epoch, no failover, nothing re-run', async () => {
    const { w, a, b } = await activeStandby();
    const epoch = a.elector.getEpoch()!;
    const sid = killAgent(a);
    await w.advance(T / 4, 10); // systemd's RestartSec
    const a2 = restart(w, a, sid, 'active');
    a2.start();
    await w.until('a2 ACTIVE', () => a2.elector.getState() === 'ACTIVE', { maxMs: T / 2 });
    expect(a2.session().sessionId).toBe(sid);
    expect(a2.elector.getEpoch()).toBe(epoch);
    expect(a2.decisions()).toContain('resumed');
    expect(a2.cb.becomeActive).not.toHaveBeenCalled(); // the service said it is active
    expect(a2.cb.fenceOldActive).not.toHaveBeenCalled();
    // The lock never went away, so the standby never moved.
    await w.advance(3 * T, 50);
    expect(b.cb.becomeActive).not.toHaveBeenCalled();
    expect(b.cb.fenceOldActive).not.toHaveBeenCalled();
    expect(b.elector.getState()).toBe('STANDBY');
    expect(a2.elector.getState()).toBe('ACTIVE');
  });

  it('the service reports standby: it is told to-active again with the same epoch', async () => {
    const { w, a, b } = await activeStandby();
    const epoch = a.elector.getEpoch()!;
    const a2 = restart(w, a, killAgent(a), 'standby');
    a2.start();
    await w.until('a2 ACTIVE', () => a2.elector.getState() === 'ACTIVE', { maxMs: T / 2 });
    expect(a2.cb.becomeActive).toHaveBeenCalledTimes(1);
    expect(a2.cb.becomeActive.mock.calls[0]![0]).toBe(epoch);
    expect(b.cb.becomeActive).not.toHaveBeenCalled();
  });

  it('waits for the first health verdict; an unhealthy service is not adopted but demoted, and the standby takes over', async () => {
    const { w, a, b } = await activeStandby();
    const a2 = restart(w, a, killAgent(a), 'active');
    a2.elector.start(); // no health verdict yet
    await w.until('a2 waiting', () => a2.decisions().includes('resuming'), { maxMs: T / 2 });
    expect(a2.elector.getState()).toBe('INIT');
    a2.elector.setElectable(false, 'health UNHEALTHY');
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE', { maxMs: 3 * T });
    expect(a2.demotions().length).toBeGreaterThan(0);
    expect(a2.cb.becomeActive).not.toHaveBeenCalled();
    // It stood down cleanly while holding the lock: b need not fence it.
    expect(b.cb.fenceOldActive).not.toHaveBeenCalled();
  });

  it('a breadcrumb marked demoted (the previous run stood down) is not adopted: the lock is released and won afresh', async () => {
    const { w, a } = await activeStandby();
    const epoch = a.elector.getEpoch()!;
    const sid = killAgent(a);
    const got = w.server.get(paths.breadcrumb)!;
    const bc = decodeRecord('breadcrumb', paths.breadcrumb, got.data);
    w.server.put(paths.breadcrumb, encodeRecord({ ...bc, demoted: true } as BreadcrumbRecord));
    const a2 = restart(w, a, sid, 'standby');
    a2.start();
    await w.until('someone ACTIVE with a new epoch', () =>
      w.nodes.some((n) => n !== a && n.elector.getState() === 'ACTIVE' && n.elector.getEpoch()! > epoch),
    );
    expect(a2.decisions()).not.toContain('resumed');
    expect(FORMAT_VERSION).toBe(1);
  });

  it('the session expired before the restart: a fresh session, the normal path (the standby took over)', async () => {
    const { w, a, b } = await activeStandby();
    const sid = killAgent(a);
    w.server.expire(a.session(), { notice: false });
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE', { maxMs: 2 * T });
    const a2 = restart(w, a, sid, 'active');
    a2.start();
    await w.until('a2 STANDBY', () => a2.elector.getState() === 'STANDBY', { maxMs: T });
    expect(a2.session().sessionId).not.toBe(sid);
    expect(a2.cb.becomeActive).not.toHaveBeenCalled();
  });
});

describe('agent restart: no health verdict', () => {
  it('past one session timeout without a verdict, the resumed service is demoted and the lock given up', async () => {
    const { w, a, b } = await activeStandby();
    const a2 = w.node('a', { host: a.host, port: a.port, resumeSessionId: killAgent(a) });
    a2.behave.serviceState = async () => 'active';
    a2.elector.start(); // the health monitor never says anything
    await w.until('b ACTIVE', () => b.elector.getState() === 'ACTIVE', { maxMs: 3 * T });
    expect(a2.demotions()[0]!.args[0]).toContain('no health verdict within a session timeout');
    expect(a2.cb.becomeActive).not.toHaveBeenCalled();
    expect(b.cb.fenceOldActive).not.toHaveBeenCalled(); // it stood down cleanly, lock in hand
  });
});
