/** `hafc status` as a pure function of fixed records: who is active, the warnings, the text. */
import { describe, expect, it } from 'vitest';
import type { BreadcrumbRecord, ControlRecord, MemberRecord } from '../../../src/election/records.js';
import type { LockHolder } from '../../../src/election/store.js';
import { renderStatus } from '../../../src/cli/render/status-text.js';
import { buildStatus, statusFingerprint, type ClusterSnapshot } from '../../../src/cli/render/status-view.js';

const NOW = Date.parse('2026-12-01T10:00:00.000Z');
const SA = '0100005fb9990004';
const SB = '0100005fb9990006';

function member(id: string, over: Partial<MemberRecord> = {}): MemberRecord {
  return {
    formatVersion: 1,
    kind: 'member',
    cluster: 'toy',
    id,
    host: '127.0.0.1',
    port: id === 'a' ? 9001 : 9002,
    priority: id === 'a' ? 20 : 10,
    noFailover: false,
    health: 'HEALTHY',
    role: 'STANDBY',
    epoch: '0',
    agentVersion: '0.1.0',
    control: '127.0.0.1:9779',
    updatedAt: '2026-12-01T09:59:59.000Z',
    session: id === 'a' ? SA : SB,
    since: '2026-12-01T09:56:48.000Z',
    sinceReason: 'lock held by another node',
    ...over,
  };
}

function lockOf(owner: string, id: string, epoch = 30n): LockHolder {
  return {
    owner,
    epoch,
    record: {
      formatVersion: 1,
      kind: 'lock',
      cluster: 'toy',
      id,
      host: '127.0.0.1',
      port: id === 'a' ? 9001 : 9002,
      priority: 20,
      pid: 1,
      agentVersion: '0.1.0',
      acquiredAt: '2026-12-01T09:56:48.000Z',
      session: owner,
    },
  };
}

function crumb(id: string, over: Partial<BreadcrumbRecord> = {}): ClusterSnapshot['breadcrumb'] {
  return {
    version: 3,
    record: {
      formatVersion: 1,
      kind: 'breadcrumb',
      cluster: 'toy',
      id,
      host: '127.0.0.1',
      port: id === 'a' ? 9001 : 9002,
      epoch: '30',
      writtenAt: '2026-12-01T09:56:48.000Z',
      ...over,
    },
  };
}

/** A settled cluster: a active with epoch 30, b standing by. */
function settled(over: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return {
    cluster: 'toy',
    connect: '127.0.0.1:2181',
    path: '/hafc/toy',
    lock: lockOf(SA, 'a'),
    members: [
      member('b'),
      member('a', {
        role: 'ACTIVE',
        epoch: '30',
        sinceReason: 'won election; previous active b stood down cleanly',
      }),
    ],
    memberProblems: [],
    breadcrumb: crumb('a'),
    control: { record: null, version: 0 },
    ...over,
  };
}

const codes = (s: ClusterSnapshot) => buildStatus(s, NOW).warnings.map((w) => w.code);

describe('buildStatus', () => {
  it('a settled cluster: one active holding the lock, healthy, no warnings, b can take over', () => {
    const v = buildStatus(settled(), NOW);
    expect(v).toMatchObject({
      schemaVersion: 1,
      healthy: true,
      active: { node: 'a', epoch: '30', session: SA, acquiredAt: '2026-12-01T09:56:48.000Z' },
      warnings: [],
      candidates: [{ node: 'b', priority: 10, eligible: true, why: [] }],
    });
    expect(v.members.map((m) => [m.node, m.holdsLock, m.sinceMs])).toEqual([
      ['a', true, 192_000],
      ['b', false, 192_000],
    ]);
  });

  it('the lock free: no active, and the breadcrumb of a node that did not stand down will be fenced', () => {
    const s = settled({ lock: null, members: [member('b')] });
    const v = buildStatus(s, NOW);
    expect(v.healthy).toBe(false);
    expect(v.active).toBeNull();
    expect(v.warnings.map((w) => w.code)).toEqual(['no-active', 'will-be-fenced']);
    expect(v.warnings[0]!.message).toBe('no node is active: the lock is free');
    expect(v.warnings[1]!.message).toContain('the breadcrumb names a at 127.0.0.1:9001 (epoch 30)');
  });

  it('a breadcrumb marked demoted is nobody to fence', () => {
    expect(codes(settled({ lock: null, members: [], breadcrumb: crumb('a', { demoted: true }) }))).toEqual([
      'no-active',
    ]);
    expect(buildStatus(settled({ lock: null, members: [] }), NOW).warnings[0]!.message).toContain(
      'no agent is running',
    );
  });

  it('an activation in progress (lock taken, its own breadcrumb written, not ACTIVE yet) is not "will be fenced"', () => {
    const s = settled({
      lock: lockOf(SB, 'b', 41n),
      members: [member('a', { role: 'NEUTRAL' }), member('b', { role: 'NEUTRAL' })],
      breadcrumb: crumb('b', { epoch: '41' }),
    });
    const v = buildStatus(s, NOW);
    expect(v.warnings.map((w) => w.code)).toEqual(['no-active']);
    expect(v.warnings[0]!.message).toContain('the lock is held by b, which is NEUTRAL');
  });

  it('two members claiming ACTIVE', () => {
    const s = settled({
      members: [member('a', { role: 'ACTIVE', epoch: '30' }), member('b', { role: 'ACTIVE', epoch: '12' })],
    });
    const v = buildStatus(s, NOW);
    expect(v.healthy).toBe(false);
    expect(v.active?.node).toBe('a');
    expect(v.warnings).toEqual([
      {
        code: 'multiple-active',
        message: 'a, b all claim ACTIVE; the lock is held by a: check the services themselves',
      },
    ]);
  });

  it('one member claiming ACTIVE without the lock', () => {
    const s = settled({
      lock: lockOf(SB, 'b', 41n),
      members: [member('a', { role: 'ACTIVE', epoch: '30' }), member('b', { role: 'INIT' })],
      breadcrumb: crumb('b', { epoch: '41' }),
    });
    expect(codes(s)).toEqual(['no-active', 'active-without-lock']);
  });

  it('a lock held by a session with no member record', () => {
    const s = settled({ lock: lockOf('0100005fb999aaaa', 'a'), members: [member('b')] });
    const v = buildStatus(s, NOW);
    expect(v.warnings.map((w) => w.code)).toEqual(['no-active', 'lock-orphan', 'will-be-fenced']);
    expect(v.warnings[1]!.message).toContain(
      'the lock is held by session 0100005fb999aaaa (node a at 127.0.0.1:9001), which has no live member record',
    );
  });

  it('a persistent znode on the lock path, and unreadable lock, breadcrumb, control and member records', () => {
    const s = settled({
      lock: { owner: '0000000000000000', epoch: 5n, recordError: 'znode /hafc/toy/lock: not JSON, got "x"' },
      breadcrumb: { error: 'znode /hafc/toy/breadcrumb: not JSON, got "y"', version: 1 },
      control: { error: 'znode /hafc/toy/control: not JSON, got "z"', version: 2 },
      memberProblems: ['znode /hafc/toy/members/c: persistent, so no live agent owns it; ignored'],
    });
    const v = buildStatus(s, NOW);
    expect(v.warnings.map((w) => w.code)).toEqual([
      'no-active',
      // a's record still says ACTIVE, and nobody's session owns a persistent lock
      'active-without-lock',
      'foreign-lock',
      'lock-record-unreadable',
      'breadcrumb-unreadable',
      'control-unreadable',
      'member-unreadable',
    ]);
    expect(v.lock).toMatchObject({
      persistent: true,
      node: null,
      recordError: expect.stringContaining('not JSON'),
    });
    expect(v.breadcrumb).toEqual({ error: 'znode /hafc/toy/breadcrumb: not JSON, got "y"' });
  });

  it('pause, a pending switchover and the last outcome come from the control record', () => {
    const control: ControlRecord = {
      formatVersion: 1,
      kind: 'control',
      cluster: 'toy',
      paused: { by: 'alice@h1', at: '2026-12-01T09:50:00.000Z', reason: 'kernel upgrade' },
      switchover: {
        id: 'so-1',
        from: 'a',
        to: 'b',
        by: 'bob@h2',
        requestedAt: '2026-12-01T09:59:50.000Z',
        expiresAt: '2026-12-01T10:00:25.000Z',
      },
      lastSwitchover: {
        id: 'so-0',
        outcome: 'done',
        detail: 'switched',
        from: 'b',
        to: 'a',
        at: '2026-12-01T09:40:00.000Z',
        handoverMs: 120,
        epoch: '30',
      },
      updatedAt: '2026-12-01T09:59:50.000Z',
    };
    const v = buildStatus(settled({ control: { record: control, version: 4 } }), NOW);
    expect(v.paused).toEqual({ by: 'alice@h1', at: '2026-12-01T09:50:00.000Z', reason: 'kernel upgrade' });
    expect(v.switchover).toMatchObject({ id: 'so-1', from: 'a', to: 'b', reason: null, expiresInMs: 25_000 });
    expect(v.lastSwitchover).toMatchObject({ outcome: 'done', handoverMs: 120, epoch: '30' });
    const text = renderStatus(v, NOW);
    expect(text).toContain(
      'paused: yes, by alice@h1 10m00s ago: kernel upgrade (no automatic promotion, demotion or fencing)',
    );
    expect(text).toContain('switchover: so-1 a -> b by bob@h2, expires in 25s');
    expect(text).toContain('last switchover: done b -> a 20m00s ago, handover 120 ms (so-0): switched');
    const later = renderStatus(
      buildStatus(settled({ control: { record: control, version: 4 } }), NOW + 30_000),
      NOW + 30_000,
    );
    expect(later).toContain('expired 5s ago, nobody acts on it');
  });

  it('candidates say why a member cannot take over', () => {
    const s = settled({
      members: [
        member('a', { role: 'ACTIVE', epoch: '30' }),
        member('b', { health: 'UNHEALTHY', role: 'NEUTRAL', noFailover: true }),
      ],
    });
    const v = buildStatus(s, NOW);
    expect(v.candidates[0]).toMatchObject({ node: 'b', eligible: false });
    expect(v.candidates[0]!.why).toContain('noFailover is set');
    expect(renderStatus(v, NOW)).toContain(
      'no failover target: b unhealthy (health UNHEALTHY), noFailover is set',
    );
  });

  it('the fingerprint ignores the passing of time but not a change of role', () => {
    const a = statusFingerprint(buildStatus(settled(), NOW));
    expect(statusFingerprint(buildStatus(settled(), NOW + 5000))).toBe(a);
    expect(
      statusFingerprint(
        buildStatus(settled({ members: [member('a', { role: 'ACTIVE', epoch: '30' })] }), NOW),
      ),
    ).not.toBe(a);
  });
});

describe('renderStatus', () => {
  it('a settled cluster, exactly', () => {
    const text = renderStatus(buildStatus(settled(), NOW), NOW);
    expect(text).toBe(
      [
        'cluster toy at /hafc/toy (ZooKeeper 127.0.0.1:2181)',
        'active: a (epoch 30, lock taken 3m12s ago, session 0100005fb9990004)',
        'paused: no',
        'switchover: none pending',
        'breadcrumb: a at 127.0.0.1:9001, epoch 30, written 3m12s ago',
        '',
        '   NODE  ROLE     HEALTH   PRIO  EPOCH  SINCE  ADDRESS         FLAGS  WHY',
        '*  a     ACTIVE   HEALTHY  20    30     3m12s  127.0.0.1:9001  -      won election; previous active b stood down cleanly',
        '   b     STANDBY  HEALTHY  10    -      3m12s  127.0.0.1:9002  -      lock held by another node',
        '(* holds the lock)',
        'failover target: b (priority 10)',
        '',
      ].join('\n'),
    );
  });

  it('flags, the last failure, warnings; a member record cannot paint the terminal', () => {
    const s = settled({
      lock: null,
      members: [
        member('b', {
          role: 'NEUTRAL',
          activationFailed: true,
          noFailover: true,
          lastFailure: { reason: 'to-active hook exited 1\x1b[2J', at: '2026-12-01T09:59:00.000Z' },
          sinceReason: 'activation failed\x07',
        }),
      ],
    });
    const text = renderStatus(buildStatus(s, NOW), NOW);
    expect(text.includes('\x07') || text.includes('\x1b')).toBe(false);
    expect(text).toContain(
      'noFailover; activationFailed; last failure 1m00s ago: to-active hook exited 1?[2J',
    );
    expect(text).toContain('activation failed?');
    expect(text).toContain('active: none');
    expect(text).toContain(
      'warnings:\n  no-active: no node is active: the lock is free\n  will-be-fenced: the breadcrumb names a',
    );
  });

  it('no members', () => {
    expect(renderStatus(buildStatus(settled({ lock: null, members: [] }), NOW), NOW)).toContain(
      'no live members (no agent of this cluster is connected)',
    );
  });
});
