/**
 * The health checks a `health.check` config can name (docs/config.md): http, tcp,
 * command, or the service agent's own check.
 *
 * Contract of a HealthCheck, relied on by HealthMonitor:
 * - resolve = healthy; throw = not, with a message naming what was checked and what came back;
 * - a HealthUnhealthyError (EHEALTH_UNHEALTHY) when the service answered and the answer is bad,
 *   marked `definite` when the failure proves nothing serves (refused, reset, program missing),
 *   a HealthTimeoutError (EHEALTH_TIMEOUT) when it did not answer before `signal` aborted,
 *   a ConfigError (ECONFIG) only when the check can never work as set up;
 * - honour `signal`: once it aborts, stop reading, close sockets, kill children.
 * Nothing a remote end sends (garbage, megabytes, a half-written response) may crash the agent:
 * bodies are read to a fixed bound and decoded leniently.
 */
import net from 'node:net';
import { systemClock, type Clock } from '../clock.js';
import type { Command, HealthCheckConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { hookEnv } from '../exec/hook-env.js';
import { describeHttpError, httpRequest, type HttpResponse } from '../exec/http.js';
import { describeNetworkError } from '../exec/net-errors.js';
import { printable, runCommand } from '../exec/run.js';
import type { HookContext, ServiceAgent } from '../service/agent.js';
import { VERSION } from '../version.js';
import {
  HealthTimeoutError,
  HealthUnhealthyError,
  commandDefiniteCause,
  definiteCause,
  describeThrown,
  errorCode,
} from './errors.js';

/**
 * `description` names what is checked (URL, host:port, command); the monitor puts it in the
 * messages it writes itself, such as its own timeout.
 */
export type HealthCheck = ((signal: AbortSignal) => Promise<void>) & { readonly description?: string };

/**
 * Optional on a ServiceAgent: what its check() looks at (a URL, a command), so an agent check's
 * messages can name it. Not part of ServiceAgent itself (src/service/agent.ts), which only the
 * agents' owners change; the built-in agents have it.
 */
export interface DescribesCheck {
  readonly checkTarget?: string;
}

/** Most of a response body an http check reads; enough for any status page a regex looks at. */
export const MAX_HTTP_BODY_BYTES = 64 * 1024;

/** Output kept from a command check, only to quote its tail in the failure message. */
const MAX_COMMAND_OUTPUT_BYTES = 16 * 1024;

/**
 * Backstop for a command check when the caller gives no timeout. The monitor's abort signal is
 * the real deadline; this only bounds a check run on its own with a signal that never fires.
 */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

/** How much of an answer to quote in a message: enough to recognise, too little to flood a log. */
const QUOTE_CHARS = 200;

export interface CreateCheckOptions {
  /** Hard timeout handed to runCommand for a command check. @default 30000 */
  timeoutMs?: number;
  /** Measures the durations in messages; runs a command check's timeout. @default systemClock */
  clock?: Clock;
}

/** A short human name of the check, for log lines and messages. */
export function describeCheck(cfg: HealthCheckConfig, agent?: ServiceAgent & DescribesCheck): string {
  switch (cfg.kind) {
    case 'http':
      return `http check GET ${cfg.url}`;
    case 'tcp':
      return `tcp check ${formatHostPort(cfg.host, cfg.port)}`;
    case 'command':
      return `command check ${printable(cfg.command)}`;
    case 'agent':
      if (agent === undefined) return 'agent check';
      return agent.checkTarget !== undefined
        ? `agent check (${agent.kind}: ${agent.checkTarget})`
        : `agent check (${agent.kind})`;
  }
}

/**
 * Builds the check. Validates what it can now (URL, regex, kind) and throws a ConfigError
 * naming the key and the value, so a typo fails at start instead of as an endless "unhealthy".
 */
export function createCheck(
  cfg: HealthCheckConfig,
  agent: ServiceAgent & DescribesCheck,
  ctx: () => HookContext,
  opts: CreateCheckOptions = {},
): HealthCheck {
  const clock = opts.clock ?? systemClock;
  let check: (signal: AbortSignal) => Promise<void>;
  switch (cfg.kind) {
    case 'http':
      check = httpCheck(cfg, clock);
      break;
    case 'tcp':
      check = tcpCheck(cfg.host, cfg.port, clock);
      break;
    case 'command':
      check = commandCheck(cfg.command, ctx, opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS, clock);
      break;
    case 'agent':
      check = agentCheck(agent, ctx, describeCheck(cfg, agent), clock);
      break;
    default: {
      const kind = (cfg as { kind?: unknown }).kind;
      throw new ConfigError(`health.check: unknown check kind ${JSON.stringify(kind)}`);
    }
  }
  return Object.assign(check, { description: describeCheck(cfg, agent) });
}

function httpCheck(
  cfg: Extract<HealthCheckConfig, { kind: 'http' }>,
  clock: Clock,
): (signal: AbortSignal) => Promise<void> {
  let url: URL;
  try {
    url = new URL(cfg.url);
  } catch {
    throw new ConfigError(`health.check.http: ${JSON.stringify(cfg.url)} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`health.check.http: ${JSON.stringify(cfg.url)} must be an http:// or https:// URL`);
  }
  let bodyRe: RegExp | undefined;
  if (cfg.expectBodyMatches !== undefined) {
    try {
      bodyRe = new RegExp(cfg.expectBodyMatches);
    } catch (err) {
      throw new ConfigError(
        `health.check.expectBodyMatches: ${JSON.stringify(cfg.expectBodyMatches)} is not a valid regular expression: ${describeThrown(err)}`,
      );
    }
  }
  const what = describeCheck(cfg);
  const expected = cfg.expectStatus.join(', ');

  return async (signal) => {
    const started = clock.now();
    if (signal.aborted) throw timeoutError(what, signal, started, clock);
    let res: HttpResponse;
    try {
      // No redirect is followed (httpRequest never does): a health endpoint answers for itself,
      // and an expected 3xx (listed in expectStatus) must stay visible.
      res = await httpRequest({
        method: 'GET',
        url: cfg.url,
        signal,
        maxBodyBytes: MAX_HTTP_BODY_BYTES,
        headers: { 'user-agent': `hafc/${VERSION} health-check`, accept: '*/*' },
      });
    } catch (err) {
      if (signal.aborted) throw timeoutError(what, signal, started, clock, err);
      throw classifyRequestError(what, cfg.url, err);
    }

    if (!cfg.expectStatus.includes(res.status)) {
      res.discard();
      const text = res.statusText ? ` ${res.statusText}` : '';
      throw new HealthUnhealthyError(`${what}: answered ${res.status}${text}, expected ${expected}`);
    }
    if (bodyRe === undefined) {
      // The status alone decides: a body that never comes must not matter.
      res.discard();
      return;
    }

    let body: { body: string; truncated: boolean };
    try {
      body = await res.readBody();
    } catch (err) {
      if (signal.aborted) throw timeoutError(what, signal, started, clock, err);
      throw new HealthUnhealthyError(
        `${what}: answered ${res.status} but reading the body failed: ${describeHttpError(err, cfg.url)}`,
        { cause: err, definite: definiteCause(err) },
      );
    }
    // A pathological operator regex could still be slow; the 64 KiB bound caps how slow.
    if (!bodyRe.test(body.body)) {
      const scope = body.truncated ? `the first ${MAX_HTTP_BODY_BYTES} bytes of the body` : 'the body';
      throw new HealthUnhealthyError(
        `${what}: answered ${res.status} but ${scope} did not match /${bodyRe.source}/: ${quote(body.body)}`,
      );
    }
  };
}

function tcpCheck(host: string, port: number, clock: Clock): (signal: AbortSignal) => Promise<void> {
  const what = `tcp check ${formatHostPort(host, port)}`;
  return (signal) =>
    new Promise<void>((resolve, reject) => {
      const started = clock.now();
      if (signal.aborted) {
        reject(timeoutError(what, signal, started, clock));
        return;
      }
      const sock = net.connect({ host, port });
      const done = (err?: Error) => {
        signal.removeEventListener('abort', onAbort);
        sock.removeAllListeners('connect');
        // Keep a no-op error listener: destroy() can still emit one, and an unhandled
        // 'error' event would take the whole agent down.
        sock.removeAllListeners('error');
        sock.on('error', () => {});
        sock.destroy();
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => done(timeoutError(what, signal, started, clock));
      signal.addEventListener('abort', onAbort, { once: true });
      sock.once('connect', () => done());
      sock.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ETIMEDOUT') {
          done(new HealthTimeoutError(`${what}: connect timed out (${err.message})`, { cause: err }));
        } else {
          done(
            new HealthUnhealthyError(`${what}: connect failed: ${describeNetworkError(err, host)}`, {
              cause: err,
              definite: definiteCause(err),
            }),
          );
        }
      });
    });
}

function commandCheck(
  command: Command,
  ctx: () => HookContext,
  timeoutMs: number,
  clock: Clock,
): (signal: AbortSignal) => Promise<void> {
  const what = `command check ${printable(command)}`;
  return async (signal) => {
    const started = clock.now();
    if (signal.aborted) throw timeoutError(what, signal, started, clock);
    const res = await runCommand(command, {
      env: hookEnv(ctx()),
      timeoutMs,
      maxOutputBytes: MAX_COMMAND_OUTPUT_BYTES,
      signal,
      what: 'health check',
      clock,
    });
    const name = `command check ${res.command}`;
    if (res.timedOut || res.aborted || signal.aborted) {
      const limit = res.timedOut ? `${timeoutMs} ms` : 'the deadline';
      if (res.abandoned) {
        // A check stuck on a hung mount: say so, it is what the operator has to go and fix.
        const state = res.procState !== undefined ? `, state ${res.procState}` : '';
        throw new HealthTimeoutError(
          `${name}: did not finish within ${limit} and did not die after SIGKILL (pid ${res.pid ?? '?'}${state}); it may still be running`,
        );
      }
      throw new HealthTimeoutError(
        `${name}: did not finish within ${limit} and was killed (ran ${Math.round(res.durationMs)} ms)`,
      );
    }
    // Not fatal: a script on a mount that is briefly away must not end monitoring for good.
    const definite = commandDefiniteCause(res);
    if (res.spawnError !== undefined) {
      throw new HealthUnhealthyError(`${name}: could not be started: ${res.spawnError}`, { definite });
    }
    if (res.exitCode === 0) return;
    const how =
      res.exitCode !== null ? `exited ${res.exitCode}` : `was killed by ${res.signal ?? 'a signal'}`;
    const output = res.stderr.trim() !== '' ? res.stderr : res.stdout;
    const tail = output.trim() !== '' ? `; output: ${quote(output, true)}` : '';
    throw new HealthUnhealthyError(`${name}: ${how}${tail}`, { definite });
  };
}

function agentCheck(
  agent: ServiceAgent,
  ctx: () => HookContext,
  what: string,
  clock: Clock,
): (signal: AbortSignal) => Promise<void> {
  return async (signal) => {
    const started = clock.now();
    if (signal.aborted) throw timeoutError(what, signal, started, clock);
    try {
      await agent.check(ctx(), signal);
    } catch (err) {
      if (signal.aborted) throw timeoutError(what, signal, started, clock, err);
      const code = errorCode(err);
      // Setup errors pass through unchanged so the monitor can tell them from a bad answer.
      if (code === 'ECONFIG') throw err;
      if (code === 'EHOOKTIMEOUT' || code === 'EHEALTH_TIMEOUT') {
        throw new HealthTimeoutError(`${what}: ${describeThrown(err)}`, { cause: err });
      }
      throw new HealthUnhealthyError(`${what}: ${describeThrown(err)}`, {
        cause: err,
        definite: definiteCause(err),
      });
    }
  };
}

function timeoutError(
  what: string,
  signal: AbortSignal,
  started: number,
  clock: Clock,
  cause?: unknown,
): HealthTimeoutError {
  const elapsed = Math.round(clock.now() - started);
  const reason = signal.aborted && signal.reason !== undefined ? `: ${describeThrown(signal.reason)}` : '';
  return new HealthTimeoutError(`${what}: no answer after ${elapsed} ms, aborted${reason}`, {
    cause: cause ?? signal.reason,
  });
}

/** No answer at all: a timeout when the kernel gave up connecting, unhealthy otherwise. */
function classifyRequestError(what: string, url: string, err: unknown): Error {
  const cause = describeHttpError(err, url);
  if (errorCode(err) === 'ETIMEDOUT') return new HealthTimeoutError(`${what}: ${cause}`, { cause: err });
  return new HealthUnhealthyError(`${what}: request failed: ${cause}`, {
    cause: err,
    definite: definiteCause(err),
  });
}

function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Quotes remote text for a message: JSON-escaped so control bytes cannot forge log lines, and
 * cut so megabytes of output cannot flood one. `tail` keeps the end, where errors usually are.
 */
function quote(text: string, tail = false): string {
  const t = text.trim();
  if (t.length <= QUOTE_CHARS) return JSON.stringify(t);
  return tail
    ? `...${JSON.stringify(t.slice(-QUOTE_CHARS))}`
    : `${JSON.stringify(t.slice(0, QUOTE_CHARS))}...`;
}
