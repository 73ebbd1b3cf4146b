/**
 * The http service agent: the managed service exposes a small control API (role, state, health)
 * at `service.url`. Every request is bounded by requestTimeoutMs and the caller's signal, and
 * reads at most 64 KiB of any answer.
 */
import { systemClock, type Clock } from '../src/clock.js';
import type { HttpServiceConfig } from '../src/config/types.js';
import { ConfigError, HookFailedError } from '../src/errors.js';
import { httpCall, snippet, type HttpCallResult } from '../src/exec/http.js';
import { targetHostPort } from '../src/fencing/target.js';
import type { Logger } from '../src/log.js';
import type { FenceTarget, HookContext, ServiceAgent, ServiceRole } from '../src/service/agent.js';

export class HttpAgent implements ServiceAgent {
  readonly kind = 'http';
  readonly toStandbyTimeoutMs: number;
  readonly controlPort: number;
  /** What check() asks, for health messages (see DescribesCheck in src/health/checks.ts). */
  readonly checkTarget: string;
  private readonly base: string;
  private readonly protocol: string;

  constructor(
    private readonly cfg: HttpServiceConfig,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.toStandbyTimeoutMs = cfg.requestTimeoutMs;
    this.base = cfg.url.replace(/\/+$/, '');
    this.checkTarget = `GET ${this.base}${cfg.healthPath}`;
    let parsed: URL;
    try {
      parsed = new URL(cfg.url);
    } catch {
      throw new ConfigError(`service.url: not a URL: ${JSON.stringify(cfg.url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ConfigError(
        `service.url: expected an http:// or https:// URL, got ${JSON.stringify(cfg.url)}`,
      );
    }
    this.protocol = parsed.protocol;
    const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
    this.controlPort = port;
  }

  async toActive(ctx: HookContext, signal: AbortSignal): Promise<void> {
    await this.postRole(
      this.base + this.cfg.rolePath,
      'active',
      ctx.epoch,
      ctx.reason,
      'toActive request',
      signal,
    );
  }

  async toStandby(ctx: HookContext, signal: AbortSignal): Promise<void> {
    await this.postRole(
      this.base + this.cfg.rolePath,
      'standby',
      ctx.epoch,
      ctx.reason,
      'toStandby request',
      signal,
    );
  }

  async check(_ctx: HookContext, signal: AbortSignal): Promise<void> {
    const url = this.base + this.cfg.healthPath;
    const r = await this.call('GET', url, undefined, 'health check', signal);
    expect2xx(r, 'health check', 'GET', url);
  }

  async state(_ctx: HookContext, signal: AbortSignal): Promise<ServiceRole | 'unknown'> {
    const url = this.base + this.cfg.statePath;
    const r = await this.call('GET', url, undefined, 'state request', signal);
    expect2xx(r, 'state request', 'GET', url);
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.body);
    } catch {
      return this.unknownState(url, r, 'the body is not JSON');
    }
    const role = (parsed as { role?: unknown } | null)?.role;
    if (role === 'active' || role === 'standby') return role;
    return this.unknownState(url, r, 'expected {"role": "active"|"standby"}');
  }

  /**
   * Asks the OLD active's service to demote. Its address comes from ZooKeeper, so it is checked
   * to be a plain host and port before it becomes part of a URL; anything else could point the
   * request at an arbitrary path or host.
   */
  async fenceGraceful(target: FenceTarget, ctx: HookContext, signal: AbortSignal): Promise<void> {
    // The old active's control API: its recorded control port, else its service address.
    const port = target.controlPort ?? target.port;
    const url = `${this.protocol}//${targetHostPort({ ...target, port })}${this.cfg.rolePath}`;
    await this.postRole(
      url,
      'standby',
      ctx.epoch,
      `fenced by ${ctx.nodeId}`,
      'graceful fence request',
      signal,
      this.cfg.gracefulFenceTimeoutMs,
    );
  }

  private async postRole(
    url: string,
    role: ServiceRole,
    epoch: bigint,
    reason: string,
    what: string,
    signal: AbortSignal,
    timeoutMs = this.cfg.requestTimeoutMs,
  ): Promise<void> {
    const r = await this.call(
      'POST',
      url,
      { role, epoch: epoch.toString(10), reason },
      what,
      signal,
      timeoutMs,
    );
    expect2xx(r, what, 'POST', url);
    this.logger.info(`${what} succeeded`, { url, status: r.status, durationMs: r.durationMs, epoch });
  }

  private call(
    method: 'GET' | 'POST',
    url: string,
    json: unknown,
    what: string,
    signal: AbortSignal,
    timeoutMs = this.cfg.requestTimeoutMs,
  ): Promise<HttpCallResult> {
    return httpCall({
      method,
      url,
      json,
      what,
      signal,
      timeoutMs,
      clock: this.clock,
    });
  }

  private unknownState(url: string, r: HttpCallResult, why: string): 'unknown' {
    this.logger.warn(`state request answered garbage (${why}); treating the state as unknown`, {
      url,
      status: r.status,
      body: snippet(r.body),
    });
    return 'unknown';
  }
}

function expect2xx(r: HttpCallResult, what: string, method: string, url: string): void {
  if (r.status >= 200 && r.status < 300) return;
  throw new HookFailedError(
    `${what} ${method} ${url} answered HTTP ${r.status} after ${r.durationMs} ms; body: ${snippet(r.body)}`,
  );
}
