import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HookFailedError, HookTimeoutError } from '../../../src/errors.js';
import {
  assertSucceeded,
  printable,
  runCommand,
  type CommandResult,
  type RunOptions,
} from '../../../src/exec/run.js';
import { FakeClock } from '../../support/fake-clock.js';
import { frozenFsForSuite } from '../../fixtures/hooks/frozen-fs.js';
import { hook, isGone, procState, strayFixtureProcesses } from '../../fixtures/hooks/paths.js';
import { waitFor } from '../../../harness/wait.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hafc-exec-'));
});
afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await waitFor('no fixture processes left', () => strayFixtureProcesses().length === 0, { timeoutMs: 5000 });
});

describe('runCommand: exit status and output', () => {
  it('captures stdout, stderr and a zero exit', async () => {
    const r = await runCommand([hook('exit-with.sh'), '0'], { timeoutMs: 5000 });
    expect(r).toMatchObject({
      exitCode: 0,
      signal: null,
      stdout: 'out:0\n',
      stderr: 'err:0\n',
      truncated: false,
      timedOut: false,
      aborted: false,
      killSignals: [],
    });
    expect(r.command).toBe(`${hook('exit-with.sh')} 0`);
    expect(() => assertSucceeded(r)).not.toThrow();
  });

  it('resolves (does not throw) for a non-zero exit; assertSucceeded names code, duration and stderr', async () => {
    const r = await runCommand([hook('exit-with.sh'), '3'], { timeoutMs: 5000, what: 'toActive hook' });
    expect(r.exitCode).toBe(3);
    expect(() => assertSucceeded(r)).toThrow(HookFailedError);
    expect(() => assertSucceeded(r)).toThrow(
      new RegExp(
        `^toActive hook \`${hook('exit-with.sh')} 3\` exited with code 3 after \\d+ ms; stderr: err:3$`,
      ),
    );
  });

  it('quotes stdout in the failure message when stderr is empty', async () => {
    const r = await runCommand('echo only-stdout; exit 5', { timeoutMs: 5000 });
    expect(() => assertSucceeded(r)).toThrow(/exited with code 5 after \d+ ms; stdout: only-stdout$/);
  });

  it('reports death by signal', async () => {
    const r = await runCommand('kill -SEGV $$', { timeoutMs: 5000 });
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGSEGV');
    expect(() => assertSucceeded(r)).toThrow(/was killed by signal SIGSEGV after \d+ ms; no output$/);
  });

  it('runs a string with /bin/sh -c, shell features included', async () => {
    const r = await runCommand('printf "%s\\n" a b c | wc -l | tr -d " "; echo "$((6 * 7))" >&2; exit 4', {
      timeoutMs: 5000,
    });
    expect(r.stdout).toBe('3\n');
    expect(r.stderr).toBe('42\n');
    expect(r.exitCode).toBe(4);
  });

  it('passes argv elements through unsplit and uninterpreted', async () => {
    const args = ['a b', "it's", '$HOME', '; echo pwned', '', '*'];
    const r = await runCommand([hook('print-args.sh'), ...args], { timeoutMs: 5000 });
    expect(r.stdout).toBe(args.map((a) => `<${a}>\n`).join(''));
    expect(r.command).toBe(`${hook('print-args.sh')} 'a b' 'it'\\''s' '$HOME' '; echo pwned' '' '*'`);
  });

  it('runs in the given cwd', async () => {
    const r = await runCommand('pwd', { timeoutMs: 5000, cwd: tmp });
    expect(r.stdout.trim()).toBe(tmp);
  });

  it('gives the hook EOF on stdin instead of hanging', async () => {
    const r = await runCommand('cat; echo done', { timeoutMs: 5000 });
    expect(r.stdout).toBe('done\n');
  });
});

describe('runCommand: spawn failures resolve as failed results', () => {
  it('a missing executable', async () => {
    const r = await runCommand(['/nonexistent/hafc-hook', 'x'], { timeoutMs: 5000, what: 'toStandby hook' });
    expect(r.exitCode).toBeNull();
    expect(r.spawnError).toMatch(/^ENOENT/);
    expect(r.stderr).toMatch(/^toStandby hook `\/nonexistent\/hafc-hook x` could not be started: ENOENT/);
    expect(() => assertSucceeded(r)).toThrow(HookFailedError);
    expect(() => assertSucceeded(r)).toThrow(/could not be started: ENOENT/);
  });

  it('a file without the execute bit', async () => {
    const r = await runCommand([hook('not-executable.sh')], { timeoutMs: 5000 });
    expect(r.spawnError).toMatch(/^EACCES/);
  });

  it('an empty argv', async () => {
    const r = await runCommand([], { timeoutMs: 5000 });
    expect(r.spawnError).toBe('empty command');
    expect(() => assertSucceeded(r)).toThrow(/could not be started: empty command/);
  });

  it('a missing cwd', async () => {
    const r = await runCommand('true', { timeoutMs: 5000, cwd: join(tmp, 'nope') });
    expect(r.spawnError).toMatch(/ENOENT/);
  });
});

describe('runCommand: timeouts kill the whole process group', () => {
  it('SIGTERM, then SIGKILL after the grace, reaches a grandchild that ignores SIGTERM', async () => {
    const pidFile = join(tmp, 'pids-timeout');
    const r = await runCommand([hook('hang-with-grandchild.sh'), pidFile], {
      timeoutMs: 400,
      killGraceMs: 400,
      what: 'toActive hook',
    });
    expect(r.timedOut).toBe(true);
    expect(r.aborted).toBe(false);
    expect(r.killSignals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(r.signal).toBe('SIGTERM'); // the shell itself died of the first signal
    expect(r.durationMs).toBeGreaterThanOrEqual(780);
    expect(r.durationMs).toBeLessThan(5000);
    const [hookPid, grandchildPid] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    expect(hookPid).toBeGreaterThan(0);
    expect(grandchildPid).toBeGreaterThan(0);
    await waitFor('hook and grandchild gone', () => isGone(hookPid!) && isGone(grandchildPid!), {
      timeoutMs: 2000,
    });
    expect(() => assertSucceeded(r)).toThrow(HookTimeoutError);
    expect(() => assertSucceeded(r)).toThrow(
      `toActive hook \`${hook('hang-with-grandchild.sh')} ${pidFile}\` timed out after 400 ms and was killed (SIGTERM, then SIGKILL); no output`,
    );
  });

  it('stops at SIGTERM when the group obeys it, without waiting out the grace', async () => {
    const r = await runCommand([hook('sleep-forever.sh')], { timeoutMs: 300, killGraceMs: 10_000 });
    expect(r.timedOut).toBe(true);
    expect(r.killSignals).toEqual(['SIGTERM']);
    expect(r.durationMs).toBeLessThan(3000);
    expect(() => assertSucceeded(r)).toThrow(
      /timed out after 300 ms and was killed \(SIGTERM\); stderr: sleeping$/,
    );
  });

  it('does not kill what a hook left running after it exited in time, nor wait for it', async () => {
    const pidFile = join(tmp, 'daemon-pid');
    const r = await runCommand([hook('daemonize.sh'), pidFile], { timeoutMs: 5000 });
    const daemon = Number(readFileSync(pidFile, 'utf8'));
    try {
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('started\n');
      expect(r.durationMs).toBeLessThan(2000);
      expect(isGone(daemon)).toBe(false);
    } finally {
      process.kill(daemon, 'SIGKILL');
    }
    await waitFor('daemon gone', () => isGone(daemon));
  });
});

describe('runCommand: abort kills at once', () => {
  it('SIGKILLs the whole group without SIGTERM or grace, grandchild included', async () => {
    const pidFile = join(tmp, 'pids-abort');
    const ac = new AbortController();
    const p = runCommand([hook('hang-with-grandchild.sh'), pidFile], {
      timeoutMs: 30_000,
      // Were the grace waited for, the run would take 10 s.
      killGraceMs: 10_000,
      signal: ac.signal,
      what: 'toStandby hook',
    });
    await waitFor('pid file', () => existsSync(pidFile));
    ac.abort();
    const r = await p;
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(r.abandoned).toBe(false);
    expect(r.killSignals).toEqual(['SIGKILL']);
    expect(r.signal).toBe('SIGKILL');
    expect(r.durationMs).toBeLessThan(1000);
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    await waitFor('hook and grandchild gone', () => pids.every(isGone), { timeoutMs: 2000 });
    expect(() => assertSucceeded(r)).toThrow(HookFailedError);
    expect(() => assertSucceeded(r)).toThrow(
      /^toStandby hook `.*` was aborted after \d+ ms and killed \(SIGKILL\); no output$/,
    );
  });

  it('an abort during the SIGTERM grace of a timeout escalates to SIGKILL at once', async () => {
    // A fake clock makes "during the grace" exact: the timeout fires only when we advance it.
    const clock = new FakeClock();
    const ready = join(tmp, 'ignore-term-ready');
    const ac = new AbortController();
    const p = runCommand([hook('ignore-term.sh'), ready], {
      timeoutMs: 1000,
      killGraceMs: 60_000,
      signal: ac.signal,
      clock,
    });
    await waitFor('the hook to ignore SIGTERM', () => existsSync(ready));
    await clock.advance(1000); // timeout: SIGTERM, which the hook ignores
    await clock.advance(500);
    ac.abort();
    const r = await p;
    expect(r).toMatchObject({ timedOut: true, aborted: true, abandoned: false, signal: 'SIGKILL' });
    expect(r.killSignals).toEqual(['SIGTERM', 'SIGKILL']);
    // Measured on the clock it was given, not on the wall.
    expect(r.durationMs).toBe(1500);
    expect(strayFixtureProcesses()).toEqual([]);
  });

  it('does not start anything when the signal is already aborted', async () => {
    const pidFile = join(tmp, 'pids-never');
    const r = await runCommand([hook('hang-with-grandchild.sh'), pidFile], {
      timeoutMs: 30_000,
      signal: AbortSignal.abort(),
    });
    expect(r.aborted).toBe(true);
    expect(existsSync(pidFile)).toBe(false);
  });
});

describe('runCommand: time comes from the Clock', () => {
  it('the timeout fires when the given clock says so, and durations are on that clock', async () => {
    const clock = new FakeClock();
    const realStart = performance.now();
    let settled = false;
    const p = runCommand([hook('sleep-forever.sh')], { timeoutMs: 30_000, clock }).finally(() => {
      settled = true;
    });
    await waitFor('the hook to start', () => strayFixtureProcesses().length > 0);
    await clock.advance(29_999);
    expect(settled).toBe(false);
    await clock.advance(1);
    const r = await p;
    expect(r).toMatchObject({ timedOut: true, killSignals: ['SIGTERM'], durationMs: 30_000 });
    // Thirty fake seconds, a fraction of a real one: no real timer decided anything.
    expect(performance.now() - realStart).toBeLessThan(5000);
  });
});

/**
 * A hook in uninterruptible sleep survives SIGKILL. A REAL one: a write to a frozen filesystem.
 * The runner must give up on it within its bound and say so, not wait for an exit that may
 * never come.
 */
// A runner that waits for the exit would hang here: fail in seconds, and afterAll still thaws.
describe('runCommand: a hook that SIGKILL cannot end', { timeout: 10_000 }, () => {
  const fixture = frozenFsForSuite();

  /** Runs `write-to.sh` on the frozen filesystem; thaws in all cases, then waits for it to die. */
  async function runFrozen(opts: Omit<RunOptions, 'timeoutMs'> & { timeoutMs?: number }) {
    const file = join(fixture.current.dir, 'blocked');
    fixture.current.freeze();
    let r: CommandResult | undefined;
    try {
      r = await runCommand([hook('write-to.sh'), file], { timeoutMs: 30_000, ...opts });
      // Checked before the thaw: the runner's claim that the process is still there is true.
      expect(r.pid).toBeGreaterThan(0);
      expect(isGone(r.pid!)).toBe(false);
      return { r, cmd: `${hook('write-to.sh')} ${file}` };
    } finally {
      fixture.current.thaw();
      const pid = r?.pid;
      if (pid !== undefined) {
        await waitFor(`the abandoned hook (pid ${pid}) to die once thawed`, () => isGone(pid), {
          timeoutMs: 5000,
        });
      }
    }
  }

  it('after a timeout: SIGTERM, SIGKILL, then gives up after the abandon grace and says why', async () => {
    const { r, cmd } = await runFrozen({
      timeoutMs: 300,
      killGraceMs: 300,
      abandonGraceMs: 500,
      what: 'toActive hook',
    });
    expect(r).toMatchObject({
      timedOut: true,
      aborted: false,
      abandoned: true,
      exitCode: null,
      signal: null,
      killSignals: ['SIGTERM', 'SIGKILL'],
    });
    expect(r.procState).toMatch(/^D /);
    // 300 + 300 + 500 and not much more: the bound holds.
    expect(r.durationMs).toBeGreaterThanOrEqual(1080);
    expect(r.durationMs).toBeLessThan(2500);
    expect(() => assertSucceeded(r)).toThrow(HookTimeoutError);
    expect(() => assertSucceeded(r)).toThrow(
      `toActive hook \`${cmd}\` timed out after 300 ms and did not die after SIGKILL (pid ${r.pid}, state ${r.procState}); stopped waiting for it after ${r.durationMs} ms, it may still be running; no output`,
    );
  });

  it('after an abort: SIGKILL at once, gives up after the abandon grace alone', async () => {
    const ac = new AbortController();
    const pending = runFrozen({ signal: ac.signal, killGraceMs: 10_000, abandonGraceMs: 500 });
    await waitFor('the hook to block on the frozen filesystem', () =>
      strayFixtureProcesses().some((pid) => procState(pid) === 'D'),
    );
    ac.abort();
    const { r } = await pending;
    expect(r).toMatchObject({ timedOut: false, aborted: true, abandoned: true, killSignals: ['SIGKILL'] });
    expect(r.procState).toMatch(/^D /);
    expect(() => assertSucceeded(r)).toThrow(HookFailedError);
    expect(() => assertSucceeded(r)).toThrow(
      /^command `.*` was aborted and did not die after SIGKILL \(pid \d+, state D \(disk sleep\)\); stopped waiting for it after \d+ ms, it may still be running; no output$/,
    );
  });
});

describe('runCommand: bounded output', () => {
  it('keeps the head and a short tail of megabytes of output, and memory stays bounded', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const size = 200 * 1024 * 1024;
    gc();
    const before = process.memoryUsage();
    const used = (m: NodeJS.MemoryUsage) => m.heapUsed + m.arrayBuffers;
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, used(process.memoryUsage()) - used(before));
    }, 2);
    const r = await runCommand([hook('big-output.sh'), String(size), '7'], { timeoutMs: 30_000 });
    clearInterval(sampler);
    gc();
    const retained = used(process.memoryUsage()) - used(before);

    expect(r.exitCode).toBe(7);
    expect(r.truncated).toBe(true);
    expect(r.stdoutBytes).toBe(size + 'THE END\n'.length);
    expect(Buffer.byteLength(r.stdout)).toBeLessThan(64 * 1024 + 100);
    expect(r.stdout.startsWith('xxxx')).toBe(true);
    expect(r.stdout).toMatch(/\n\[\.\.\. hafc: \d+ bytes omitted \.\.\.\]\nx+THE END\n$/);
    // The error a hook dies with is usually its last words: they survive truncation.
    expect(r.stderr.startsWith('first error line\n')).toBe(true);
    expect(r.stderr.endsWith('eeeeTHE END\n')).toBe(true);
    expect(() => assertSucceeded(r)).toThrow(/exited with code 7 after \d+ ms; stderr: \.\.\.e+THE END$/);
    // Not proportional to the 200 MB printed: what is kept is 128 KiB, what is garbage is freed.
    expect(retained).toBeLessThan(16 * 1024 * 1024);
    expect(peak).toBeLessThan(size / 2);
  });

  it('honours maxOutputBytes and leaves short output alone', async () => {
    const r = await runCommand('printf 0123456789abcdefghij', { timeoutMs: 5000, maxOutputBytes: 12 });
    expect(r.truncated).toBe(true);
    expect(r.stdout).toBe('012345678\n[... hafc: 8 bytes omitted ...]\nhij');
    const short = await runCommand('printf 0123456789', { timeoutMs: 5000, maxOutputBytes: 12 });
    expect(short).toMatchObject({ truncated: false, stdout: '0123456789' });
  });
});

describe('printable', () => {
  it('shows strings as given and quotes argv elements a shell would split', () => {
    expect(printable('a | b')).toBe('a | b');
    expect(printable(['/bin/x', '--flag=1', 'two words'])).toBe("/bin/x --flag=1 'two words'");
    expect(printable('x'.repeat(400))).toBe('x'.repeat(300) + '...');
  });
});
