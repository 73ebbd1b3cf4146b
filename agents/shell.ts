/**
 * The shell service agent: the managed service is driven by operator-supplied hooks
 * (docs/hooks.md). Every hook gets hookEnv() and `hookTimeoutMs`; its output goes to the
 * log, bounded by the runner.
 */
import { systemClock, type Clock } from '../src/clock.js';
import type { ShellServiceConfig } from '../src/config/types.js';
import { ConfigError, errorMessage } from '../src/errors.js';
import { HealthUnhealthyError, commandDefiniteCause } from '../src/health/errors.js';
import { hookEnv } from '../src/exec/hook-env.js';
import { assertSucceeded, printable, runCommand, type CommandResult } from '../src/exec/run.js';
import type { Logger } from '../src/log.js';
import type { HookContext, ServiceAgent, ServiceRole } from '../src/service/agent.js';
import type { Command } from '../src/config/types.js';

/** How much of an unparseable `state` output we quote in the warning. */
const STATE_QUOTE_CHARS = 100;

export class ShellAgent implements ServiceAgent {
  readonly kind = 'shell';
  readonly toStandbyTimeoutMs: number;
  /**
   * Present only when a state hook is configured, so the controller can tell "cannot ask" (no
   * method) from "asked, got no clear answer" ('unknown').
   */
  readonly state?: (ctx: HookContext, signal: AbortSignal) => Promise<ServiceRole | 'unknown'>;
  /** What check() runs, for health messages (see DescribesCheck in src/health/checks.ts). */
  readonly checkTarget?: string;
  // Deliberately no fenceGraceful: asking a shell-managed service on another host to demote is
  // what the `shell` fencing method is for.

  constructor(
    private readonly cfg: ShellServiceConfig,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.toStandbyTimeoutMs = cfg.hookTimeoutMs;
    if (cfg.check !== undefined) this.checkTarget = printable(cfg.check);
    const stateCmd = cfg.state;
    if (stateCmd !== undefined) this.state = (ctx, signal) => this.queryState(stateCmd, ctx, signal);
  }

  async toActive(ctx: HookContext, signal: AbortSignal): Promise<void> {
    await this.run(this.cfg.toActive, 'toActive hook', ctx, signal, 'info');
  }

  async toStandby(ctx: HookContext, signal: AbortSignal): Promise<void> {
    await this.run(this.cfg.toStandby, 'toStandby hook', ctx, signal, 'info');
  }

  async check(ctx: HookContext, signal: AbortSignal): Promise<void> {
    if (this.cfg.check === undefined) {
      throw new ConfigError(
        'health.check is "agent" but service.check is not set: the shell agent has no check command to run',
      );
    }
    const r = await this.exec(this.cfg.check, 'check hook', ctx, signal, 'debug');
    try {
      assertSucceeded(r);
    } catch (err) {
      // A check program that is not there is proof, not a bad answer: marked so the health
      // monitor re-probes at health.fastIntervalMs. Any other failure keeps the runner's error.
      const definite = commandDefiniteCause(r);
      if (definite === undefined) throw err;
      throw new HealthUnhealthyError(errorMessage(err), { cause: err, definite });
    }
  }

  private async queryState(
    cmd: Command,
    ctx: HookContext,
    signal: AbortSignal,
  ): Promise<ServiceRole | 'unknown'> {
    // A state hook that fails or hangs is an error (we could not ask); only an answer we cannot
    // read is 'unknown'.
    const r = await this.run(cmd, 'state hook', ctx, signal, 'debug');
    const answer = r.stdout.trim().toLowerCase();
    if (answer === 'active' || answer === 'standby') return answer;
    const shown =
      r.stdout.length > STATE_QUOTE_CHARS ? r.stdout.slice(0, STATE_QUOTE_CHARS) + '...' : r.stdout;
    this.logger.warn('state hook printed neither "active" nor "standby"; treating the state as unknown', {
      command: r.command,
      output: shown,
    });
    return 'unknown';
  }

  private async run(
    cmd: Command,
    what: string,
    ctx: HookContext,
    signal: AbortSignal,
    level: 'info' | 'debug',
  ): Promise<CommandResult> {
    const r = await this.exec(cmd, what, ctx, signal, level);
    assertSucceeded(r);
    return r;
  }

  /** Runs and logs the hook; the caller decides what its failure means. */
  private async exec(
    cmd: Command,
    what: string,
    ctx: HookContext,
    signal: AbortSignal,
    level: 'info' | 'debug',
  ): Promise<CommandResult> {
    const r = await runCommand(cmd, {
      env: hookEnv(ctx),
      timeoutMs: this.cfg.hookTimeoutMs,
      signal,
      what,
      clock: this.clock,
    });
    const ok = r.exitCode === 0 && !r.timedOut && !r.aborted && !r.abandoned;
    // A failing check is the health monitor's news (it logs the state change with the reason);
    // a failing transition hook is ours.
    const failLevel = level === 'debug' ? 'debug' : 'warn';
    this.logger[ok ? level : failLevel](`${what} ${ok ? 'succeeded' : 'failed'}`, {
      command: r.command,
      exitCode: r.exitCode,
      signal: r.signal,
      timedOut: r.timedOut,
      aborted: r.aborted,
      ...(r.abandoned ? { abandoned: true, pid: r.pid, procState: r.procState } : {}),
      durationMs: r.durationMs,
      epoch: ctx.epoch,
      stdout: r.stdout,
      stderr: r.stderr,
      truncated: r.truncated,
    });
    return r;
  }
}
