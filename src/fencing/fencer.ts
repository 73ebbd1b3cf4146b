/**
 * Fence before promote (docs/safety.md): the configured methods are tried in order until
 * one succeeds. Every attempt is bounded (attemptBoundMs: `timeoutMs`, plus for shell and ssh the
 * runner's kill and abandon graces), even when the method ignores its signal or its process
 * cannot be killed, so fencing can delay a promotion but never wedge the controller. Time is read
 * and waited on only through the Clock.
 *
 * `fence()` does not throw for a failed fence: the outcome lists every attempt with its reason,
 * which the controller turns into logs, its status and the Metrics interface (per method and
 * result; no metrics exporter is built yet).
 */
import { systemClock, type Clock } from '../clock.js';
import type { FenceMethodConfig } from '../config/types.js';
import { HookTimeoutError, errorMessage } from '../errors.js';
import { httpCall, snippet } from '../exec/http.js';
import { fenceEnv } from '../exec/hook-env.js';
import { assertSucceeded, runCommand, terminationBoundMs, type CommandResult } from '../exec/run.js';
import type { Logger } from '../log.js';
import type { FenceTarget, HookContext, ServiceAgent } from '../service/agent.js';
import { sshFenceArgv, sshVerifyArgv, type SshFenceConfig } from './ssh.js';

export interface FenceAttempt {
  /** The method's kind: graceful | shell | ssh | http (a bounded metrics label). */
  method: string;
  ok: boolean;
  durationMs: number;
  error?: string;
}

export interface FenceOutcome {
  ok: boolean;
  /** The method that fenced, when ok. */
  method?: string;
  attempts: FenceAttempt[];
}

/**
 * Slack past timeoutMs before an attempt is abandoned as hung. Shell and ssh attempts get the
 * runner's termination bound on top (kill grace + abandon grace), so the runner can finish
 * killing the process group, or give up on a process SIGKILL cannot end, and report what it did.
 */
const SETTLE_SLACK_MS = 250;

/** The longest one attempt of method `kind` may take with a `timeoutMs` budget. */
export function attemptBoundMs(kind: FenceMethodConfig['kind'], timeoutMs: number): number {
  return timeoutMs + SETTLE_SLACK_MS + (kind === 'shell' || kind === 'ssh' ? terminationBoundMs() : 0);
}

export class Fencer {
  constructor(
    private readonly methods: readonly FenceMethodConfig[],
    private readonly timeoutMs: number,
    private readonly agent: ServiceAgent,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(`Fencer: timeoutMs must be a positive number, got ${String(timeoutMs)}`);
    }
  }

  async fence(target: FenceTarget, ctx: HookContext, signal?: AbortSignal): Promise<FenceOutcome> {
    const attempts: FenceAttempt[] = [];
    const log = this.logger.child({ target: target.id, targetAddress: target.address, epoch: ctx.epoch });
    if (this.methods.length === 0) {
      log.error('cannot fence: no fencing methods are configured');
      return { ok: false, attempts };
    }
    for (const m of this.methods) {
      if (signal?.aborted) break;
      const attempt = await this.attempt(m, target, ctx, signal);
      attempts.push(attempt);
      if (attempt.ok) {
        log.info(`fenced ${target.id} by method ${m.kind}`, {
          method: m.kind,
          durationMs: attempt.durationMs,
        });
        return { ok: true, method: m.kind, attempts };
      }
      log.warn(`fencing method ${m.kind} failed`, {
        method: m.kind,
        durationMs: attempt.durationMs,
        error: attempt.error,
      });
    }
    log.error(
      signal?.aborted
        ? `fencing ${target.id} was aborted`
        : `fencing ${target.id} failed by every method (${attempts.length} tried)`,
      { attempts },
    );
    return { ok: false, attempts };
  }

  private async attempt(
    m: FenceMethodConfig,
    target: FenceTarget,
    ctx: HookContext,
    outer: AbortSignal | undefined,
  ): Promise<FenceAttempt> {
    const started = this.clock.now();
    const elapsed = () => Math.round(this.clock.now() - started);
    // The attempt's own deadline, on the clock. The agent gets it (with the caller's signal) as
    // one signal; our runners get the time left as their own timeout instead (see run()).
    const deadline = new AbortController();
    const cancelDeadline = this.clock.setTimer(this.timeoutMs, () =>
      deadline.abort(new Error(`fencing attempt timed out after ${this.timeoutMs} ms`)),
    );
    const signal = outer ? AbortSignal.any([outer, deadline.signal]) : deadline.signal;
    let cancelHard = (): void => {};
    const hung = new Promise<never>((_, reject) => {
      cancelHard = this.clock.setTimer(attemptBoundMs(m.kind, this.timeoutMs), () =>
        reject(
          new HookTimeoutError(
            `fencing method ${m.kind} did not finish within ${this.timeoutMs} ms and was abandoned`,
          ),
        ),
      );
    });
    try {
      await Promise.race([this.run(m, target, ctx, signal, outer, started), hung]);
      return { method: m.kind, ok: true, durationMs: elapsed() };
    } catch (err) {
      let error = errorMessage(err);
      if (outer?.aborted) error = `aborted: ${error}`;
      else if (deadline.signal.aborted && !(err instanceof HookTimeoutError)) {
        error = `timed out after ${this.timeoutMs} ms: ${error}`;
      }
      return { method: m.kind, ok: false, durationMs: elapsed(), error };
    } finally {
      cancelDeadline();
      cancelHard();
    }
  }

  private async run(
    m: FenceMethodConfig,
    target: FenceTarget,
    ctx: HookContext,
    signal: AbortSignal,
    outer: AbortSignal | undefined,
    started: number,
  ): Promise<void> {
    // Our own runners (commands, http) get the attempt's time as their own timeout and only the
    // caller's signal, so a timeout is reported as one (and a process group is killed as on a
    // hook timeout) rather than as a bare abort. `signal` (outer + timeout) is for the agent.
    switch (m.kind) {
      case 'graceful': {
        if (!this.agent.fenceGraceful) {
          throw new Error(`graceful fencing not supported by the ${this.agent.kind} agent`);
        }
        await this.agent.fenceGraceful(target, ctx, signal);
        return;
      }
      case 'shell': {
        const r = await runCommand(m.command, {
          env: fenceEnv(ctx, target),
          timeoutMs: this.remaining(started),
          signal: outer,
          what: 'shell fencing command',
          clock: this.clock,
        });
        this.logOutput(r.command, r.exitCode, r.stdout, r.stderr);
        assertSucceeded(r);
        return;
      }
      case 'ssh':
        await this.ssh(m, target, ctx, outer, started);
        return;
      case 'http': {
        const body = {
          action: 'fence',
          cluster: ctx.cluster,
          fencedBy: ctx.nodeId,
          epoch: ctx.epoch,
          reason: ctx.reason,
          target: {
            id: target.id,
            host: target.host,
            port: target.port,
            address: target.address,
            epoch: target.epoch,
          },
        };
        let url = m.url;
        if (m.method === 'GET') {
          // No body on GET: the same facts go in the query string, encoded, never raw.
          const u = new URL(m.url);
          u.searchParams.set('cluster', ctx.cluster);
          u.searchParams.set('fencedBy', ctx.nodeId);
          u.searchParams.set('epoch', ctx.epoch.toString(10));
          u.searchParams.set('target', target.id);
          u.searchParams.set('targetAddress', target.address);
          u.searchParams.set('targetEpoch', target.epoch.toString(10));
          url = u.toString();
        }
        const r = await httpCall({
          method: m.method,
          url,
          json: m.method === 'GET' ? undefined : body,
          timeoutMs: this.remaining(started),
          signal: outer,
          what: 'http fencing request',
          clock: this.clock,
        });
        if (!m.expectStatus.includes(r.status)) {
          throw new Error(
            `http fencing request ${m.method} ${m.url} answered HTTP ${r.status}, expected ${m.expectStatus.join(' or ')}; body: ${snippet(r.body)}`,
          );
        }
        return;
      }
      default: {
        const never: never = m;
        throw new Error(`unknown fencing method ${JSON.stringify((never as { kind?: unknown }).kind)}`);
      }
    }
  }

  private async ssh(
    m: SshFenceConfig,
    target: FenceTarget,
    ctx: HookContext,
    signal: AbortSignal | undefined,
    started: number,
  ): Promise<void> {
    const env = fenceEnv(ctx, target);
    const kill = await runCommand(sshFenceArgv(m, target, this.timeoutMs), {
      env,
      timeoutMs: this.remaining(started),
      signal,
      what: 'ssh fencing command',
      clock: this.clock,
    });
    this.logOutput(kill.command, kill.exitCode, kill.stdout, kill.stderr);
    const clean = (r: CommandResult) =>
      !r.timedOut && !r.aborted && !r.abandoned && r.spawnError === undefined;
    if (!(clean(kill) && kill.exitCode === 1)) {
      assertSucceeded(kill); // throws unless fuser killed something (exit 0)
      return;
    }
    // fuser found nothing to kill: fenced only if the port is verifiably closed.
    const verify = await runCommand(sshVerifyArgv(m, target, this.timeoutMs), {
      env,
      timeoutMs: this.remaining(started),
      signal,
      what: 'ssh fencing verification',
      clock: this.clock,
    });
    this.logOutput(verify.command, verify.exitCode, verify.stdout, verify.stderr);
    if (clean(verify) && verify.exitCode === 1) return;
    if (clean(verify) && verify.exitCode === 0) {
      throw new Error(
        `ssh fencing: nothing was killed on ${target.host} but port ${target.port} still accepts connections`,
      );
    }
    assertSucceeded(verify); // any other outcome: we could not tell, so not fenced
    throw new Error(`ssh fencing verification \`${verify.command}\` did not confirm the port is closed`);
  }

  /** Time left of the attempt, so a method with several steps stays within one timeout. */
  private remaining(started: number): number {
    return Math.max(1, Math.round(this.timeoutMs - (this.clock.now() - started)));
  }

  private logOutput(command: string, exitCode: number | null, stdout: string, stderr: string): void {
    this.logger.info('fencing command finished', { command, exitCode, stdout, stderr });
  }
}
