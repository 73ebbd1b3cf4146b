import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { ProgressWatch } from '../../../src/systemd/liveness.js';
import { Notifier } from '../../../src/systemd/notifier.js';
import { statusLine, SystemdSupervisor, type SupervisedStatus } from '../../../src/systemd/supervisor.js';
import { FakeClock } from '../../support/fake-clock.js';

type StatusOverride = Partial<Omit<SupervisedStatus, 'elector'>> & {
  elector?: Partial<SupervisedStatus['elector']>;
};

function status(over: StatusOverride = {}): SupervisedStatus {
  return {
    role: over.role ?? 'init',
    health: over.health ?? 'INITIALIZING',
    elector: {
      epoch: null,
      sessionState: 'connecting',
      lastDecision: null,
      fatal: null,
      ...over.elector,
    },
  };
}

function rig(opts: { watchdogMs?: number | null; watches?: ProgressWatch[] } = {}) {
  const clock = new FakeClock();
  const sent: { at: number; fields: string[] }[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const notifier = new Notifier({
    send: async (fields) => {
      sent.push({ at: clock.now(), fields });
    },
    clock,
    logger,
  });
  let current: SupervisedStatus = status();
  const sup = new SystemdSupervisor({
    notifier,
    clock,
    logger,
    status: () => current,
    watchdogMs: opts.watchdogMs === undefined ? 2000 : opts.watchdogMs,
    watches: opts.watches ?? [],
    pollMs: 100,
    statusIntervalMs: 1000,
  });
  const fields = () => sent.flatMap((s) => s.fields);
  return {
    clock,
    sup,
    /** Starts it and lets what start() sent settle before time moves. */
    start: async () => {
      sup.start();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    },
    sent,
    lines,
    fields,
    set: (s: SupervisedStatus) => {
      current = s;
    },
  };
}

describe('SystemdSupervisor', () => {
  it('READY=1 only once connected AND the first health verdict is in, and only once', async () => {
    const r = rig({ watchdogMs: null });
    await r.start();
    await r.clock.advance(500);
    r.set(status({ health: 'HEALTHY' })); // health known, not connected
    await r.clock.advance(500);
    r.set(status({ elector: { sessionState: 'connected' } })); // connected, health unknown
    await r.clock.advance(500);
    expect(r.fields()).not.toContain('READY=1');
    r.set(status({ health: 'UNHEALTHY', elector: { sessionState: 'connected' } }));
    await r.clock.advance(100);
    expect(r.fields().filter((f) => f === 'READY=1')).toHaveLength(1);
    // The same datagram says why: the status line goes with it.
    expect(r.sent.at(-1)!.fields).toEqual(['READY=1', 'STATUS=init epoch - health UNHEALTHY zk connected']);
    r.set(status({ health: 'HEALTHY', elector: { sessionState: 'suspended' } }));
    await r.clock.advance(3000);
    r.set(status({ health: 'HEALTHY', elector: { sessionState: 'connected' } }));
    await r.clock.advance(3000);
    expect(r.fields().filter((f) => f === 'READY=1')).toHaveLength(1);
  });

  it('STATUS on every change, at most one a second, the latest one winning', async () => {
    const r = rig({ watchdogMs: null });
    r.set(status({ role: 'standby', health: 'HEALTHY', elector: { sessionState: 'connected' } }));
    await r.start();
    expect(r.fields()).toEqual(['READY=1', 'STATUS=standby epoch - health HEALTHY zk connected']);
    for (let i = 0; i < 10; i++) {
      r.set(
        status({
          role: 'active',
          health: 'HEALTHY',
          elector: { epoch: String(i), sessionState: 'connected' },
        }),
      );
      await r.clock.advance(100);
    }
    await r.clock.advance(2000);
    const statuses = r.sent.filter((s) => s.fields.some((f) => f.startsWith('STATUS=')));
    for (let i = 1; i < statuses.length; i++)
      expect(statuses[i]!.at - statuses[i - 1]!.at).toBeGreaterThanOrEqual(1000);
    expect(
      r
        .fields()
        .filter((f) => f.startsWith('STATUS='))
        .at(-1),
    ).toBe('STATUS=active epoch 9 health HEALTHY zk connected');
  });

  it('WATCHDOG=1 every half watchdog while every loop progresses; withheld while one is stuck; resumed', async () => {
    const clock0 = 0;
    const watch = new ProgressWatch('the election loop', 5000, clock0);
    const r = rig({ watchdogMs: 2000, watches: [watch] });
    await r.start();
    const pings = () => r.sent.filter((s) => s.fields.includes('WATCHDOG=1')).map((s) => s.at);
    await r.clock.advance(4000);
    expect(pings()).toEqual([0, 1000, 2000, 3000, 4000]);
    // No beat since t=0: stuck from t=5001 on.
    await r.clock.advance(4000);
    expect(pings().at(-1)).toBe(5000);
    const stuck = r.lines.filter(
      (l) => l.msg === 'watchdog pings withheld: a loop of the agent is stuck; systemd will restart it',
    );
    expect(stuck).toHaveLength(1);
    expect(stuck[0]!.stuck).toMatch(/^the election loop made no progress for 6000 ms \(limit 5000 ms\)$/);
    watch.beat(r.clock.now());
    await r.clock.advance(1000);
    expect(pings().at(-1)).toBe(9000);
    expect(r.lines.some((l) => l.msg === 'the agent makes progress again: watchdog pings resumed')).toBe(
      true,
    );
  });

  it('STOPPING=1 once; then pings go on whatever the loops do (the stop bounds itself); close() ends all', async () => {
    const watch = new ProgressWatch('the health monitor', 1000, 0);
    const r = rig({ watchdogMs: 2000, watches: [watch] });
    await r.start();
    await r.clock.advance(500);
    r.sup.markStopping('SIGTERM received');
    r.sup.markStopping('again');
    await r.clock.advance(3000);
    expect(r.fields().filter((f) => f.startsWith('STOPPING'))).toEqual(['STOPPING=1']);
    expect(r.fields()).toContain('STATUS=stopping: SIGTERM received');
    expect(r.sent.filter((s) => s.fields.includes('WATCHDOG=1')).map((s) => s.at)).toEqual([
      0, 1000, 2000, 3000,
    ]);
    const n = r.sent.length;
    r.sup.close();
    await r.clock.advance(10_000);
    expect(r.sent.length).toBe(n);
  });

  it('no watchdog asked for: no WATCHDOG=1 ever', async () => {
    const r = rig({ watchdogMs: null });
    await r.start();
    await r.clock.advance(10_000);
    expect(r.fields().filter((f) => f === 'WATCHDOG=1')).toEqual([]);
  });

  it('statusLine: role, epoch, health, session, decision or the fatal reason, one line', () => {
    expect(
      statusLine(
        status({
          role: 'active',
          health: 'HEALTHY',
          elector: { epoch: '61', sessionState: 'connected', lastDecision: { action: 'kept', reason: 'x' } },
        }),
      ),
    ).toBe('active epoch 61 health HEALTHY zk connected; kept');
    expect(statusLine(status({ elector: { fatal: 'duplicate\nnode id' } }))).toBe(
      'init epoch - health INITIALIZING zk connecting; fatal: duplicate node id',
    );
  });
});

describe('ProgressWatch', () => {
  it('stuck past the limit unless the loop has ended for a known reason', () => {
    let ended: string | null = null;
    const w = new ProgressWatch('h', 100, 0, () => ended);
    expect(w.check(100)).toBeNull();
    expect(w.check(101)).toMatch(/made no progress for 101 ms/);
    w.beat(150);
    expect(w.check(200)).toBeNull();
    ended = 'MONITOR_FAILED';
    expect(w.check(10_000)).toBeNull();
  });
});
