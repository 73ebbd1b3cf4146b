/**
 * The guard's decisions, driven by a FakeClock: which signal or error leads to which steps, in
 * which order, with which deadline. (The same paths run for real, with real agent processes, in
 * test/integration/agent-process.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { ProcessGuard, type GuardLimits, type GuardedAgent } from '../../../src/cli/process-guard.js';
import { createLogger, type LogFields } from '../../../src/log.js';
import { FakeClock } from '../../support/fake-clock.js';

const LIMITS: GuardLimits = { demoteTimeoutMs: 3000, stopTimeoutMs: 8000, releaseTimeoutMs: 4000 };

/** A promise the test settles by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup() {
  const clock = new FakeClock();
  const logs: LogFields[] = [];
  const events: string[] = [];
  const exits: number[] = [];
  const stop = deferred<void>();
  const demote = deferred<boolean>();
  const agent: GuardedAgent = {
    stop: () => {
      events.push('stop');
      return stop.promise;
    },
    emergencyDemote: (reason) => {
      events.push(`demote: ${reason}`);
      return demote.promise;
    },
  };
  const guard = new ProcessGuard({
    logger: createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l) as LogFields) }),
    clock,
    exit: (code) => {
      events.push(`exit ${code}`);
      exits.push(code);
    },
  });
  const msgs = () => logs.map((l) => String(l.msg));
  return { clock, logs, msgs, events, exits, stop, demote, agent, guard };
}

function running() {
  const s = setup();
  s.guard.attach(s.agent, LIMITS);
  return s;
}

describe('ProcessGuard', () => {
  it('SIGHUP, SIGUSR1, SIGUSR2: one log line each, nothing else happens', async () => {
    const s = running();
    s.guard.signal('SIGHUP');
    s.guard.signal('SIGUSR1');
    s.guard.signal('SIGUSR2');
    await s.clock.advance(60_000);
    expect(s.msgs()).toEqual([
      'SIGHUP received: reload is not supported yet; ignored',
      'SIGUSR1 received: ignored (a signal never opens the debugger in this agent)',
      'SIGUSR2 received: no action is bound to it; ignored',
    ]);
    expect(s.events).toEqual([]);
    expect(s.guard.getPhase()).toBe('running');
  });

  it('SIGHUP with a reload handler: reloads while running, ignored (logged) before and after', async () => {
    const s = setup();
    let reloads = 0;
    s.guard.setReloadHandler(() => reloads++);
    s.guard.signal('SIGHUP');
    s.guard.attach(s.agent, LIMITS);
    s.guard.signal('SIGHUP');
    s.guard.signal('SIGHUP');
    s.guard.signal('SIGTERM');
    s.guard.signal('SIGHUP');
    expect(reloads).toBe(2);
    expect(s.msgs()).toEqual([
      'SIGHUP received while starting: no configuration to reload; ignored',
      'SIGHUP received: reloading the configuration',
      'SIGHUP received: reloading the configuration',
      'SIGTERM received: stopping (demoting the service if active)',
      'SIGHUP received while stopping: no configuration to reload; ignored',
    ]);
  });

  it('a reload handler that throws is logged; the agent goes on running', async () => {
    const s = running();
    s.guard.setReloadHandler(() => {
      throw new Error('cannot read /etc/hafc/x.yaml');
    });
    s.guard.signal('SIGHUP');
    expect(s.logs[1]).toMatchObject({
      msg: 'reload failed to start; the configuration in force stays',
      error: 'cannot read /etc/hafc/x.yaml',
    });
    expect(s.events).toEqual([]);
    expect(s.guard.getPhase()).toBe('running');
  });

  it('SIGTERM: the clean stop, then done with 0 (no emergency, no process.exit)', async () => {
    const s = running();
    s.guard.signal('SIGTERM');
    expect(s.events).toEqual(['stop']);
    s.stop.resolve();
    expect(await s.guard.done).toBe(0);
    await s.clock.advance(60_000);
    expect(s.events).toEqual(['stop']);
    expect(s.msgs()).toContain('stopped');
    expect(s.guard.getPhase()).toBe('stopped');
  });

  it('a second SIGTERM during the clean stop: emergency demotion, the skipped steps logged, exit 1; a third is only logged', async () => {
    const s = running();
    s.guard.signal('SIGTERM');
    s.guard.signal('SIGINT');
    expect(s.events).toEqual(['stop', 'demote: second SIGINT during the clean stop']);
    s.guard.signal('SIGTERM');
    expect(s.msgs()).toContain(
      'SIGTERM received: already demoting the service before exit (within 7000 ms); ignored',
    );
    expect(s.exits).toEqual([]);
    s.demote.resolve(true);
    await s.clock.advance(0);
    expect(s.exits).toEqual([1]);
    expect(s.msgs()).toContain('service demoted before exit');
    expect(s.msgs().some((m) => m.startsWith('skipped: the rest of the clean stop'))).toBe(true);
    // The backstop was cancelled: exit happens exactly once.
    await s.clock.advance(60_000);
    expect(s.exits).toEqual([1]);
  });

  it('a clean stop that outlives its deadline turns into an emergency demotion', async () => {
    const s = running();
    s.guard.signal('SIGTERM');
    await s.clock.advance(LIMITS.stopTimeoutMs - 1);
    expect(s.events).toEqual(['stop']);
    await s.clock.advance(1);
    expect(s.events[1]).toBe('demote: the clean stop did not finish within 8000 ms');
    s.demote.resolve(true);
    await s.clock.advance(0);
    expect(s.exits).toEqual([1]);
  });

  it('a clean stop that fails: emergency demotion, exit 1', async () => {
    const s = running();
    s.guard.signal('SIGTERM');
    s.stop.reject(new Error('boom'));
    await s.clock.advance(0);
    expect(s.events).toEqual(['stop', 'demote: the clean stop failed']);
    s.demote.resolve(true);
    await s.clock.advance(0);
    expect(s.exits).toEqual([1]);
    expect(s.logs.find((l) => l.msg === 'error while stopping')?.error).toBe('boom');
  });

  it('a fatal error: logs the cause, starts the clean stop, demotes, waits for the release, exits 1', async () => {
    const s = running();
    s.guard.fatal('uncaughtException', new Error('kaboom'));
    expect(s.events).toEqual(['stop', 'demote: fatal uncaught exception: kaboom']);
    const first = s.logs[0]!;
    expect(first.msg).toBe('fatal uncaught exception: kaboom');
    expect(String(first.stack)).toContain('kaboom');
    s.demote.resolve(true);
    await s.clock.advance(0);
    expect(s.exits).toEqual([]); // waiting for the session to be closed
    s.stop.resolve();
    await s.clock.advance(0);
    expect(s.exits).toEqual([1]);
    expect(s.msgs()).not.toContain(expect.stringMatching(/^could not close the ZooKeeper session/));
  });

  it('an unhandled rejection of a non-Error is named as such', () => {
    const s = running();
    s.guard.fatal('unhandledRejection', 'just a string');
    expect(s.logs[0]!.msg).toBe('fatal unhandled promise rejection: just a string');
  });

  it('further fatal errors during the demotion are logged (then counted) and do not cut it short', async () => {
    const s = running();
    s.guard.fatal('uncaughtException', new Error('first'));
    for (let i = 0; i < 8; i++) s.guard.fatal('unhandledRejection', new Error(`more ${i}`));
    const again = s.logs.filter((l) => String(l.msg).startsWith('another unhandled promise rejection'));
    expect(again.map((l) => l.error)).toEqual(['more 0', 'more 1', 'more 2', 'more 3', 'more 4']);
    expect(s.msgs()).toContain('more fatal errors while demoting before exit: no longer logged one by one');
    expect(s.events.filter((e) => e.startsWith('demote'))).toHaveLength(1);
    expect(s.exits).toEqual([]);
    s.demote.resolve(true);
    s.stop.resolve();
    await s.clock.advance(0);
    expect(s.exits).toEqual([1]);
  });

  it('a demotion that never ends: after its deadline "may still be active" is logged, and the exit still comes', async () => {
    const s = running();
    s.guard.fatal('uncaughtException', new Error('x'));
    s.stop.resolve();
    await s.clock.advance(LIMITS.demoteTimeoutMs - 1);
    expect(s.exits).toEqual([]);
    await s.clock.advance(1);
    expect(s.exits).toEqual([1]);
    expect(s.msgs().some((m) => m.startsWith('the service may still be active'))).toBe(true);
  });

  it('a lock release that never ends: exit after its deadline, saying the standby waits for the session to expire', async () => {
    const s = running();
    s.guard.fatal('uncaughtException', new Error('x'));
    s.demote.resolve(true);
    await s.clock.advance(0); // the release deadline starts once the demotion is over
    await s.clock.advance(LIMITS.releaseTimeoutMs - 1);
    expect(s.exits).toEqual([]);
    await s.clock.advance(1);
    expect(s.exits).toEqual([1]);
    expect(s.msgs()).toContain(
      'could not close the ZooKeeper session cleanly within 4000 ms: the standby takes over once the session expires',
    );
  });

  it('a fatal error during the clean stop: emergency demotion, sharing the stop already in flight', async () => {
    const s = running();
    s.guard.signal('SIGTERM');
    s.guard.fatal('uncaughtException', new Error('late'));
    expect(s.events).toEqual(['stop', 'demote: fatal uncaught exception: late']);
    s.demote.resolve(true);
    s.stop.resolve();
    await s.clock.advance(0);
    expect(s.exits).toEqual([1]);
  });

  it('before the agent is attached: SIGTERM exits 0, a fatal error exits 1, neither touches a service', () => {
    const a = setup();
    a.guard.signal('SIGTERM');
    expect(a.events).toEqual(['exit 0']);
    const b = setup();
    b.guard.fatal('uncaughtException', new Error('early'));
    expect(b.events).toEqual(['exit 1']);
    expect(b.msgs()).toContain(
      'fatal uncaught exception: early: exiting (the agent had not started; nothing to demote)',
    );
  });

  it('a fatal error after the clean stop finished exits 1 at once (nothing left to demote)', async () => {
    const s = running();
    s.guard.signal('SIGTERM');
    s.stop.resolve();
    await s.guard.done;
    s.guard.fatal('uncaughtException', new Error('after'));
    expect(s.events).toEqual(['stop', 'exit 1']);
  });
});
