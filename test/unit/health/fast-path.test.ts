/**
 * The monitor's fast path (health.fastIntervalMs after a definite failure) on the fake clock, and
 * the pid watch (health.pidFile) against real processes and real pid files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../harness/wait.js';
import { ConfigError } from '../../../src/errors.js';
import type { HealthCheck } from '../../../src/health/checks.js';
import { HealthTimeoutError, HealthUnhealthyError, type DefiniteCause } from '../../../src/health/errors.js';
import {
  HealthMonitor,
  type HealthChangeDetail,
  type HealthMonitorOptions,
  type HealthState,
} from '../../../src/health/monitor.js';
import { parsePid, procState } from '../../../src/health/pid-watch.js';
import type { LogFields, Logger } from '../../../src/log.js';
import { FakeClock } from '../../support/fake-clock.js';

type Step = 'ok' | 'bad' | 'slow' | 'hang' | DefiniteCause | (() => Promise<void>);

interface LogLine {
  level: string;
  msg: string;
  fields?: LogFields;
}

function recordingLogger(lines: LogLine[]): Logger {
  const make = (): Logger => ({
    debug: (msg, fields) => lines.push({ level: 'debug', msg, fields }),
    info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
    child: () => make(),
  });
  return make();
}

let monitors: HealthMonitor[] = [];
let children: ChildProcess[] = [];
let dirs: string[] = [];

afterEach(async () => {
  await Promise.all(monitors.map((m) => m.stop()));
  monitors = [];
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children = [];
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

/** Call times of the check, on the fake clock; `steps` say what each call does, then `after`. */
function setup(steps: Step[], opts: Partial<HealthMonitorOptions> = {}, after: Step = 'ok') {
  const clock = new FakeClock();
  const calls: { at: number; signal: AbortSignal }[] = [];
  const check: HealthCheck = (signal) => {
    calls.push({ at: clock.now(), signal });
    const step = steps.shift() ?? after;
    const n = calls.length;
    if (typeof step === 'function') return step();
    switch (step) {
      case 'ok':
        return Promise.resolve();
      case 'bad':
        return Promise.reject(new HealthUnhealthyError(`answered 500 (call ${n})`));
      case 'slow':
        return Promise.reject(new HealthTimeoutError(`no answer (call ${n})`));
      case 'hang':
        return new Promise<void>(() => {});
      default:
        return Promise.reject(new HealthUnhealthyError(`${step} (call ${n})`, { definite: step }));
    }
  };
  const logs: LogLine[] = [];
  const monitor = new HealthMonitor({
    check,
    intervalMs: 1000,
    fastIntervalMs: 100,
    timeoutMs: 500,
    fall: 3,
    rise: 2,
    clock,
    logger: recordingLogger(logs),
    ...opts,
  });
  monitors.push(monitor);
  const changes: [HealthState, HealthState, HealthChangeDetail][] = [];
  monitor.onChange((next, prev, detail) => changes.push([next, prev, detail]));
  const at = () => calls.map((c) => c.at);
  return { clock, monitor, calls, at, changes, logs };
}

/** Started, and HEALTHY after two successes (at 0 and 1000). */
async function healthy(t: ReturnType<typeof setup>): Promise<void> {
  t.monitor.start();
  // Lets the first check's result land before any timer is looked at.
  await t.clock.advance(0);
  await t.clock.advance(1000);
  expect(t.monitor.state).toBe('HEALTHY');
}

function stateLine(t: ReturnType<typeof setup>, to: HealthState): LogLine | undefined {
  return t.logs.find((l) => l.msg.endsWith(`-> ${to}`));
}

describe('fast path after a definite failure', () => {
  it('re-probes at fastIntervalMs until `fall`, then back to intervalMs', async () => {
    const t = setup(['ok', 'ok', 'refused', 'refused', 'refused']);
    await healthy(t);
    await t.clock.advance(1000); // refused 1/3 at 2000
    expect(t.at()).toEqual([0, 1000, 2000]);
    await t.clock.advance(100); // refused 2/3 at 2100
    expect(t.monitor.state).toBe('HEALTHY');
    await t.clock.advance(100); // refused 3/3 at 2200
    expect(t.monitor.state).toBe('UNHEALTHY');
    expect(t.at()).toEqual([0, 1000, 2000, 2100, 2200]);
    // UNHEALTHY: further checks are at the normal interval again.
    await t.clock.advance(999);
    expect(t.calls).toHaveLength(5);
    await t.clock.advance(1);
    expect(t.at().at(-1)).toBe(3200);

    expect(t.changes.at(-1)?.[2]).toMatchObject({ consecutive: 3, reason: 'refused (call 5)' });
    expect(stateLine(t, 'UNHEALTHY')?.fields).toMatchObject({ definite: 'refused', fastChecks: 2 });
    const decisions = t.logs.filter((l) => l.msg.includes('failed definitely (refused)'));
    expect(decisions.map((l) => l.fields?.fastIntervalMs)).toEqual([100, 100]);
    expect(decisions[0]?.msg).toContain('next check in 100 ms instead of 1000 (1/3 before UNHEALTHY)');
  });

  it('each definite cause takes the fast path; a mixed streak still needs `fall` failures', async () => {
    const t = setup(['ok', 'ok', 'reset', 'missing', 'bad']);
    await healthy(t);
    await t.clock.advance(1200);
    expect(t.at()).toEqual([0, 1000, 2000, 2100, 2200]);
    expect(t.monitor.state).toBe('UNHEALTHY');
    // The last failure (a 500) is not definite: the line says the fast checks led here, not proof.
    expect(stateLine(t, 'UNHEALTHY')?.fields).toMatchObject({ fastChecks: 2 });
    expect(stateLine(t, 'UNHEALTHY')?.fields?.definite).toBeUndefined();
  });

  it('timeouts and bad answers keep intervalMs (flapping must not fail over sooner)', async () => {
    const t = setup(['ok', 'ok', 'bad', 'slow', 'bad']);
    await healthy(t);
    await t.clock.advance(3000);
    expect(t.at()).toEqual([0, 1000, 2000, 3000, 4000]);
    expect(t.monitor.state).toBe('UNHEALTHY');
    expect(stateLine(t, 'UNHEALTHY')?.fields?.fastChecks).toBeUndefined();
    expect(t.logs.some((l) => l.msg.includes('failed definitely'))).toBe(false);
  });

  it('a definite failure then a bad answer: the fast check came, then the normal interval', async () => {
    const t = setup(['ok', 'ok', 'refused', 'bad', 'ok']);
    await healthy(t);
    await t.clock.advance(1100);
    expect(t.at()).toEqual([0, 1000, 2000, 2100]);
    await t.clock.advance(999);
    expect(t.calls).toHaveLength(4);
    await t.clock.advance(1);
    expect(t.at().at(-1)).toBe(3100);
    expect(t.monitor.state).toBe('HEALTHY');
  });

  it('a passing check ends the fast path and resets the count', async () => {
    const t = setup(['ok', 'ok', 'refused', 'ok', 'refused', 'refused']);
    await healthy(t);
    await t.clock.advance(1100); // refused at 2000, ok at 2100
    expect(t.at()).toEqual([0, 1000, 2000, 2100]);
    await t.clock.advance(1000); // refused at 3100 (1/3 again)
    await t.clock.advance(100); // refused at 3200 (2/3)
    expect(t.at()).toEqual([0, 1000, 2000, 2100, 3100, 3200]);
    expect(t.monitor.state).toBe('HEALTHY');
  });

  it('not while INITIALIZING or UNHEALTHY: each failure already is a verdict there', async () => {
    const t = setup(['refused', 'refused', 'refused']);
    t.monitor.start();
    await t.clock.advance(0);
    expect(t.monitor.state).toBe('UNHEALTHY');
    await t.clock.advance(2000);
    expect(t.at()).toEqual([0, 1000, 2000]);
  });

  it('fastIntervalMs equal to intervalMs, or left out, is no fast path', async () => {
    for (const opts of [{ fastIntervalMs: 1000 }, { fastIntervalMs: undefined }]) {
      const t = setup(['ok', 'ok', 'refused', 'refused', 'refused'], opts);
      await healthy(t);
      await t.clock.advance(3000);
      expect(t.at()).toEqual([0, 1000, 2000, 3000, 4000]);
      expect(t.logs.some((l) => l.msg.includes('failed definitely'))).toBe(false);
    }
  });

  it('a raw socket error a check did not wrap is classified by its code', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const t = setup(['ok', 'ok', () => Promise.reject(refused), 'ok']);
    await healthy(t);
    await t.clock.advance(1000);
    expect(t.monitor.lastResult?.error?.code).toBe('EHEALTH_UNHEALTHY');
    await t.clock.advance(100);
    expect(t.at()).toEqual([0, 1000, 2000, 2100]);
  });

  it('an exited process counts as `fall` failures at once', async () => {
    const t = setup(['ok', 'ok', 'exited'], { fall: 5 });
    await healthy(t);
    await t.clock.advance(1000);
    expect(t.monitor.state).toBe('UNHEALTHY');
    expect(t.changes.at(-1)?.[2]).toMatchObject({ consecutive: 5 });
    expect(stateLine(t, 'UNHEALTHY')?.fields).toMatchObject({ definite: 'exited' });
  });

  it('a reload may change fastIntervalMs; more than intervalMs is refused', async () => {
    const t = setup(['ok', 'ok', 'refused', 'refused', 'refused']);
    const base = { check: (() => Promise.resolve()) as HealthCheck };
    expect(() =>
      t.monitor.reconfigure({
        ...base,
        intervalMs: 1000,
        timeoutMs: 500,
        fall: 3,
        rise: 2,
        fastIntervalMs: 1001,
      }),
    ).toThrow(ConfigError);
    expect(() =>
      t.monitor.reconfigure({
        ...base,
        intervalMs: 1000,
        timeoutMs: 500,
        fall: 3,
        rise: 2,
        fastIntervalMs: 0,
      }),
    ).toThrow(/health.fastIntervalMs: must be a positive integer, got 0/);
    expect(
      () =>
        new HealthMonitor({
          ...base,
          intervalMs: 10,
          timeoutMs: 5,
          fall: 1,
          rise: 1,
          fastIntervalMs: 11,
          clock: t.clock,
          logger: recordingLogger([]),
        }),
    ).toThrow(/at most health.intervalMs \(10\), got 11/);
  });
});

// --- pid watch: real processes, real files ---------------------------------------------------

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-pidwatch-'));
  dirs.push(d);
  return d;
}

function sleeper(): ChildProcess & { pid: number } {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(c);
  if (c.pid === undefined) throw new Error('could not start sleep');
  return c as ChildProcess & { pid: number };
}

/** SIGKILL, and resolves once Node has reaped it (its /proc entry is gone then). */
function killAndReap(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

async function pidSetup(
  content: string | null,
  steps: Step[] = [],
  opts: Partial<HealthMonitorOptions> = {},
) {
  const dir = tempDir();
  const pidFile = path.join(dir, 'svc.pid');
  if (content !== null) fs.writeFileSync(pidFile, content);
  const t = setup(steps, { pidFile, rise: 1, fall: 3, ...opts });
  t.monitor.start();
  // The pid file is read for real (asynchronously): wait for the first verdict in real time.
  await waitFor('the first health verdict', () => t.monitor.state !== 'INITIALIZING', { timeoutMs: 5000 });
  return { ...t, pidFile };
}

describe('pid watch (health.pidFile)', () => {
  it('a running process passes; its exit is seen by the poll and is UNHEALTHY at once', async () => {
    const svc = sleeper();
    const t = await pidSetup(`${svc.pid}\n`);
    expect(t.monitor.state).toBe('HEALTHY');
    await killAndReap(svc);
    // Only the poll is due (100 ms); the next regular check would be at 1000.
    await t.clock.advance(100);
    await waitFor('UNHEALTHY after the watched process exited', () => t.monitor.state === 'UNHEALTHY', {
      timeoutMs: 5000,
    });
    expect(t.clock.now()).toBe(100);
    const detail = t.changes.at(-1)![2];
    expect(detail.consecutive).toBe(3);
    expect(detail.reason).toBe(
      `health.pidFile ${t.pidFile}: process ${svc.pid} is not running (no such process)`,
    );
    expect(stateLine(t, 'UNHEALTHY')?.fields).toMatchObject({ definite: 'exited' });
    expect(t.logs.some((l) => l.msg === `health.pidFile: process ${svc.pid} exited; checking at once`)).toBe(
      true,
    );
    // Verified before the check ran: the check itself was called only once (at start).
    expect(t.calls).toHaveLength(1);
  });

  it('a check in flight when the process exits is abandoned, and its signal aborted', async () => {
    const svc = sleeper();
    const t = await pidSetup(`${svc.pid}`, ['ok', 'hang'], { timeoutMs: 900 });
    await t.clock.advance(1000); // the hanging check starts at 1000
    await waitFor('the second check to start', () => t.calls.length === 2, { timeoutMs: 5000 });
    await killAndReap(svc);
    await t.clock.advance(100);
    await waitFor('UNHEALTHY', () => t.monitor.state === 'UNHEALTHY', { timeoutMs: 5000 });
    expect(t.calls[1]!.signal.aborted).toBe(true);
    expect(t.monitor.lastResult?.error?.message).toContain(`process ${svc.pid} is not running`);
  });

  it('a new process in the pid file recovers after `rise` successes and is watched in turn', async () => {
    const first = sleeper();
    const t = await pidSetup(`${first.pid}`);
    await killAndReap(first);
    await t.clock.advance(100);
    await waitFor('UNHEALTHY', () => t.monitor.state === 'UNHEALTHY', { timeoutMs: 5000 });
    const second = sleeper();
    fs.writeFileSync(t.pidFile, `${second.pid}\n`);
    await t.clock.advance(1000);
    await waitFor('HEALTHY with the new process', () => t.monitor.state === 'HEALTHY', { timeoutMs: 5000 });
    await killAndReap(second);
    await t.clock.advance(100);
    await waitFor('UNHEALTHY again', () => t.monitor.state === 'UNHEALTHY', { timeoutMs: 5000 });
    expect(t.monitor.lastResult?.error?.message).toContain(`process ${second.pid} is not running`);
  });

  it('a missing pid file is a health failure naming the file, not definite', async () => {
    const t = await pidSetup(null);
    expect(t.monitor.state).toBe('UNHEALTHY');
    expect(t.monitor.lastResult?.error?.message).toBe(`health.pidFile ${t.pidFile}: cannot be read: ENOENT`);
    expect(stateLine(t, 'UNHEALTHY')?.fields?.definite).toBeUndefined();
    expect(t.calls).toHaveLength(0);
  });

  it('a garbage pid file names the file and quotes what it holds', async () => {
    for (const [content, shown] of [
      ['not-a-pid\n', '"not-a-pid\\n"'],
      ['0', '"0"'],
      ['-1', '"-1"'],
      ['12 34', '"12 34"'],
      ['', '""'],
      ['9'.repeat(50), `"${'9'.repeat(40)}..."`],
    ] as const) {
      const t = await pidSetup(content);
      expect(t.monitor.lastResult?.error?.message).toBe(
        `health.pidFile ${t.pidFile}: expected a process id (an integer from 1 to 4194304), got ${shown}`,
      );
      expect(t.monitor.state).toBe('UNHEALTHY');
    }
  });

  it('a pid file naming a process that is not running is `fall` failures at once', async () => {
    const gone = sleeper();
    await killAndReap(gone);
    const t = await pidSetup(`${gone.pid}`, [], { rise: 1 });
    expect(t.monitor.state).toBe('UNHEALTHY');
    expect(t.changes.at(-1)?.[2]).toMatchObject({ consecutive: 3 });
    expect(stateLine(t, 'UNHEALTHY')?.fields).toMatchObject({ definite: 'exited' });
  });

  it('stop() ends the poll: a later exit changes nothing', async () => {
    const svc = sleeper();
    const t = await pidSetup(`${svc.pid}`);
    await t.monitor.stop();
    await killAndReap(svc);
    await t.clock.advance(1000);
    expect(t.monitor.state).toBe('HEALTHY');
    expect(t.logs.some((l) => l.msg.includes('exited; checking at once'))).toBe(false);
  });
});

describe('pid file and /proc parsing', () => {
  it('parsePid takes digits with white space around, nothing else', () => {
    expect(parsePid('123\n')).toBe(123);
    expect(parsePid('  42  ')).toBe(42);
    expect(parsePid('4194304')).toBe(4194304);
    for (const bad of ['', '0', '-5', '4194305', '1e3', '0x10', '12 13', '12abc', ' '.repeat(70) + '1']) {
      expect(parsePid(bad)).toBeUndefined();
    }
  });

  it('procState: this process runs (with a start time); a reaped child does not', async () => {
    const self = procState(process.pid);
    expect(self.alive).toBe(true);
    expect(self.alive && /^\d+$/.test(self.start ?? '')).toBe(true);
    const c = sleeper();
    await killAndReap(c);
    expect(procState(c.pid)).toEqual({ alive: false, why: 'no such process', zombie: false });
  });
});
