import { describe, expect, it } from 'vitest';
import { activeIntervals, check, type CheckInput, type ServiceEvent } from '../../../chaos/checker.js';

const ev = (
  node: string,
  pid: number,
  mono: number,
  event: string,
  extra: Partial<ServiceEvent> = {},
): ServiceEvent => ({
  node,
  pid,
  mono,
  event,
  ...extra,
});
const up = (node: string, pid: number, mono: number, epoch: string): ServiceEvent =>
  ev(node, pid, mono, 'role', { from: 'standby', to: 'active', epoch });
const down = (node: string, pid: number, mono: number, epoch: string): ServiceEvent =>
  ev(node, pid, mono, 'role', { from: 'active', to: 'standby', epoch });

const input = (events: ServiceEvent[], extra: Partial<CheckInput> = {}): CheckInput => ({
  events,
  ops: [],
  quiet: [],
  boundMs: 1000,
  ...extra,
});

/** A clean failover: nn1 active with epoch 10, killed after its last tick at 500; nn2 takes 20 at 900. */
const clean: ServiceEvent[] = [
  ev('nn1', 1, 0, 'start'),
  up('nn1', 1, 100, '10'),
  ev('nn1', 1, 150, 'write', { epoch: '10', seq: '1' }),
  ev('nn1', 1, 500, 'tick', { epoch: '10' }),
  ev('nn2', 2, 0, 'start'),
  up('nn2', 2, 900, '20'),
  ev('nn2', 2, 950, 'write', { epoch: '20', seq: '1' }),
  down('nn2', 2, 2000, '20'),
];

describe('chaos checker', () => {
  it('passes a clean failover; a killed active ends at its last line', () => {
    const r = check(input(clean));
    expect(r.violations).toEqual([]);
    expect(r.activations).toBe(2);
    expect(r.ackedWrites).toBe(2);
    expect(activeIntervals(clean).map((i) => [i.node, i.fromMono, i.toMono, i.end])).toEqual([
      ['nn1', 100, 500, 'last-seen'],
      ['nn2', 900, 2000, 'standby'],
    ]);
  });

  it('catches two actives: an old active that ticks after the new one took over', () => {
    const r = check(input([...clean, ev('nn1', 1, 1200, 'tick', { epoch: '10' })]));
    expect(r.violations.map((v) => v.kind)).toEqual(['two-actives']);
    expect(r.violations[0]!.detail).toMatch(
      /nn2 \(pid 2\) active with epoch 20 from 900\.0 while nn1 \(pid 1, epoch 10\) was active until 1200\.0 \(overlap 300\.0 ms/,
    );
  });

  it('catches two instances of the same node active at once (a restart beside a survivor)', () => {
    const r = check(input([up('nn1', 1, 0, '10'), ev('nn1', 1, 500, 'tick'), up('nn1', 2, 400, '20')]));
    expect(r.violations.map((v) => v.kind)).toEqual(['two-actives']);
  });

  it('catches an epoch that does not increase, but lets a node take up its own epoch again', () => {
    const replayed = [up('nn1', 1, 0, '10'), down('nn1', 1, 100, '10'), up('nn1', 1, 200, '10')];
    expect(check(input(replayed)).violations).toEqual([]);
    const r = check(input([up('nn1', 1, 0, '10'), down('nn1', 1, 100, '10'), up('nn2', 2, 200, '10')]));
    expect(r.violations.map((v) => [v.kind, v.node])).toEqual([['epoch-not-increasing', 'nn2']]);
    expect(r.violations[0]!.detail).toBe('nn2 became active with epoch 10, not above 10 (last taken by nn1)');
  });

  it('catches a write acknowledged under an epoch older than an activation before it, from the service and the client', () => {
    const events = [...clean, ev('nn1', 1, 950, 'write', { epoch: '10', seq: '2' })];
    const ops = [{ node: 'nn1', epoch: '10', sentMono: 940, doneMono: 951, status: 200 }];
    const kinds = check(input(events, { ops })).violations.map((v) => v.kind);
    expect(kinds).toContain('stale-write');
    expect(kinds).toContain('stale-ack');
    // A write sent before the new activation and answered after it may be either; not a violation.
    const early = [{ node: 'nn1', epoch: '10', sentMono: 450, doneMono: 951, status: 409 }];
    expect(check(input(clean, { ops: early })).violations).toEqual([]);
  });

  it('judges liveness after a heal against the bound, only where the quiet lasted that long', () => {
    const late = [up('nn1', 1, 5000, '10'), ev('nn1', 1, 9000, 'tick')];
    const quiet = [{ fromMono: 1000, toMono: 9000, after: 'f3' }];
    const r = check(input(late, { quiet, boundMs: 2000 }));
    expect(r.violations.map((v) => v.kind)).toEqual(['no-active-after-heal']);
    expect(r.violations[0]!.detail).toBe(
      'no active within 2000 ms after every fault was healed (after f3); the first came after 4000 ms',
    );
    expect(check(input(late, { quiet, boundMs: 5000 })).violations).toEqual([]);
    // Too short a quiet to judge: the next fault came first.
    expect(
      check(input(late, { quiet: [{ fromMono: 1000, toMono: 2000, after: 'f3' }], boundMs: 2000 }))
        .violations,
    ).toEqual([]);
  });

  it('reports agents that exited by themselves', () => {
    const r = check(
      input(clean, { agentExits: [{ node: 'nn2', atMono: 700, detail: 'agent nn2 exited: code 1' }] }),
    );
    expect(r.violations).toEqual([
      { kind: 'agent-exit', node: 'nn2', atMono: 700, detail: 'agent nn2 exited: code 1' },
    ]);
  });
});

describe('no-active gaps', () => {
  it('measures every span without an active from the first activation to the end, longest first', () => {
    const r = check(input(clean, { endMono: 2500 }));
    expect(r.gaps.map((g) => [g.fromMono, g.toMono])).toEqual([
      [2000, 2500],
      [500, 900],
    ]);
  });
});
