/**
 * What the hdfs-namenode and yarn-resourcemanager agents share: a daemon driven through
 * HAServiceProtocol over Hadoop IPC, as ZKFC does, on one long-lived connection (no JVM per call).
 * Both daemons register the protocol under the same name (org.apache.hadoop.ha.HAServiceProtocol,
 * version 1): the NameNode on its RPC (or service RPC) address, the ResourceManager on its admin
 * address (yarn.resourcemanager.admin.address).
 *
 * - check = getServiceStatus then monitorHealth, ZKFC HealthMonitor's order and rules: a remote
 *   HealthCheckFailedException is UNHEALTHY; a refused or reset connection is UNHEALTHY and
 *   definite (the fast re-probe path); anything else (timeout, garbage, any other remote
 *   exception) is NOT_RESPONDING. Beyond ZKFC: a standby that says it is not ready
 *   to become active, or a daemon still INITIALIZING, is UNHEALTHY with its own reason, so it
 *   does not stand for election while it could not take over. Then the subclass's HTTP checks.
 * - toActive / toStandby = transitionToActive / transitionToStandby with the configured request
 *   source: REQUEST_BY_ZKFC (the NameNode's default) is accepted only with automatic failover
 *   enabled, and a plain user request is refused then, so hafc and a manual `haadmin` cannot
 *   fight. REQUEST_BY_USER is for a daemon with automatic failover off: the ResourceManager, which
 *   in Hadoop 3.4 refuses to start with automatic failover on and neither of its own electors.
 * - fenceGraceful = transitionToStandby on the OLD active's address, on a fresh connection with
 *   its own deadline, as ZKFC's graceful fence.
 */
import type { Clock } from '../src/clock.js';
import { systemClock } from '../src/clock.js';
import { ConfigError, HookFailedError } from '../src/errors.js';
import { httpRequest } from '../src/exec/http.js';
import { validTargetHost } from '../src/fencing/target.js';
import { HaServiceClient, type HaRequestSource, type HaServiceStatus } from '../src/hadoop/ha-service.js';
import { IpcRemoteError } from '../src/hadoop/ipc/errors.js';
import { definiteCause, HealthTimeoutError, HealthUnhealthyError } from '../src/health/errors.js';
import type { Logger } from '../src/log.js';
import type { FenceTarget, HookContext, ServiceAgent, ServiceRole } from '../src/service/agent.js';

/** The config keys both agents take (service.*; schema.ts declares them once for both). */
export interface HaServiceAgentConfig {
  /** host:port where the daemon serves HAServiceProtocol. */
  rpcAddress: string;
  /** The user the daemon sees (SIMPLE authentication). */
  user?: string;
  /** @default 5000 */
  connectTimeoutMs?: number;
  /** Deadline of each health call; ZKFC's ha.health-monitor.rpc-timeout.ms. @default 45000 */
  requestTimeoutMs?: number;
  /** Deadline of transitions; ZKFC's ha.failover-controller.new-active.rpc-timeout.ms. @default 60000 */
  transitionTimeoutMs?: number;
  /** Deadline of the graceful fence; ha.failover-controller.graceful-fence.rpc-timeout.ms. @default 5000 */
  gracefulFenceTimeoutMs?: number;
  /** The daemon's web address; when set, check() also asks the subclass's HTTP checks. */
  httpUrl?: string;
  /** REQUEST_BY_ZKFC or REQUEST_BY_USER on transitions. @default the profile's */
  requestSource?: 'zkfc' | 'user';
}

/** Which daemon an agent drives: for its messages and defaults. */
export interface HaDaemonProfile {
  kind: string;
  /** 'NameNode', 'ResourceManager': how messages name the daemon. */
  daemon: string;
  defaultUser: string;
  defaultSource: 'zkfc' | 'user';
}

const HEALTH_CHECK_FAILED = 'org.apache.hadoop.ha.HealthCheckFailedException';

export function parseRpcAddress(value: string, key = 'service.rpcAddress'): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError(`${key}: expected host:port, got ${JSON.stringify(value)}`);
  }
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** An HTTP answer, body read (bounded by the caller's deadline). */
export interface HttpAnswer {
  url: string;
  status: number;
  body: string;
}

export abstract class HaServiceAgent implements ServiceAgent {
  readonly kind: string;
  readonly toStandbyTimeoutMs: number;
  /** The RPC port: a peer's graceful fence must reach it (it travels in the breadcrumb). */
  readonly controlPort: number;
  readonly checkTarget: string;
  protected readonly daemon: string;
  protected readonly client: HaServiceClient;
  protected readonly requestTimeoutMs: number;
  protected readonly httpUrl: string | undefined;
  private readonly transitionTimeoutMs: number;
  private readonly fenceTimeoutMs: number;
  private readonly user: string;
  private readonly connectTimeoutMs: number;
  private readonly rpcHost: string;
  private readonly source: HaRequestSource;

  constructor(
    profile: HaDaemonProfile,
    cfg: HaServiceAgentConfig,
    protected readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.kind = profile.kind;
    this.daemon = profile.daemon;
    const { host, port } = parseRpcAddress(cfg.rpcAddress);
    const positive = (key: string, v: number | undefined, dflt: number): number => {
      if (v === undefined) return dflt;
      if (!Number.isInteger(v) || v <= 0) {
        throw new ConfigError(
          `service.${key}: expected a positive integer of milliseconds, got ${JSON.stringify(v)}`,
        );
      }
      return v;
    };
    this.connectTimeoutMs = positive('connectTimeoutMs', cfg.connectTimeoutMs, 5000);
    this.requestTimeoutMs = positive('requestTimeoutMs', cfg.requestTimeoutMs, 45_000);
    this.transitionTimeoutMs = positive('transitionTimeoutMs', cfg.transitionTimeoutMs, 60_000);
    this.fenceTimeoutMs = positive('gracefulFenceTimeoutMs', cfg.gracefulFenceTimeoutMs, 5000);
    this.user = cfg.user ?? profile.defaultUser;
    if (this.user === '') throw new ConfigError('service.user: must not be empty');
    if (cfg.httpUrl !== undefined) {
      let u: URL;
      try {
        u = new URL(cfg.httpUrl);
      } catch {
        throw new ConfigError(`service.httpUrl: not a URL: ${JSON.stringify(cfg.httpUrl)}`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new ConfigError(
          `service.httpUrl: expected http:// or https://, got ${JSON.stringify(cfg.httpUrl)}`,
        );
      }
      this.httpUrl = cfg.httpUrl.replace(/\/+$/, '');
    }
    const source = cfg.requestSource ?? profile.defaultSource;
    if (source !== 'zkfc' && source !== 'user') {
      throw new ConfigError(`service.requestSource: expected zkfc or user, got ${JSON.stringify(source)}`);
    }
    this.source = source === 'zkfc' ? 'REQUEST_BY_ZKFC' : 'REQUEST_BY_USER';
    this.toStandbyTimeoutMs = this.transitionTimeoutMs;
    this.controlPort = port;
    this.rpcHost = host;
    this.client = new HaServiceClient({
      host,
      port,
      user: this.user,
      connectTimeoutMs: this.connectTimeoutMs,
      callTimeoutMs: this.requestTimeoutMs,
    });
    this.checkTarget = `HAServiceProtocol at ${this.client.address}`;
  }

  /** The daemon's HTTP view, checked against the RPC state; only called with httpUrl set. */
  protected abstract checkHttp(status: HaServiceStatus, signal: AbortSignal): Promise<void>;

  async check(_ctx: HookContext, signal: AbortSignal): Promise<void> {
    const where = `${this.daemon} ${this.client.address}`;
    let status: HaServiceStatus;
    try {
      status = await this.client.getServiceStatus({ signal });
      await this.client.monitorHealth({ signal });
    } catch (err) {
      throw healthError(where, err);
    }
    if (status.state === 'initializing') {
      throw new HealthUnhealthyError(
        `${where} is still initializing${status.notReadyReason ? `: ${status.notReadyReason}` : ''}`,
      );
    }
    if (status.state === 'standby' && status.readyToBecomeActive === false) {
      throw new HealthUnhealthyError(
        `${where} is not ready to become active: ${status.notReadyReason ?? '(no reason given)'}`,
      );
    }
    if (this.httpUrl !== undefined) await this.checkHttp(status, signal);
  }

  async toActive(ctx: HookContext, signal: AbortSignal): Promise<void> {
    await this.ownTransition('transitionToActive', ctx, signal);
  }

  async toStandby(ctx: HookContext, signal: AbortSignal): Promise<void> {
    await this.ownTransition('transitionToStandby', ctx, signal);
  }

  /**
   * A transition of our own daemon on a connection of its own, as ZKFC makes a new proxy for
   * each transition: a health call that times out destroys the health connection (so the next
   * check does not queue behind a hung one), and on a shared connection that killed the
   * transition in flight. A slow transitionToActive (seconds, on a loaded RM) was then answered
   * into a closed socket and counted as failed, over and over.
   */
  private async ownTransition(
    method: 'transitionToActive' | 'transitionToStandby',
    ctx: HookContext,
    signal: AbortSignal,
  ): Promise<void> {
    const own = new HaServiceClient({
      host: this.rpcHost,
      port: this.controlPort,
      user: this.user,
      connectTimeoutMs: Math.min(this.connectTimeoutMs, this.transitionTimeoutMs),
      callTimeoutMs: this.transitionTimeoutMs,
      pingIntervalMs: 0,
    });
    try {
      await this.transition(method, own, ctx, signal);
    } finally {
      own.close();
    }
  }

  async state(_ctx: HookContext, signal: AbortSignal): Promise<ServiceRole | 'unknown'> {
    let status: HaServiceStatus;
    try {
      status = await this.client.getServiceStatus({ signal });
    } catch (err) {
      throw new HookFailedError(
        `getServiceStatus on ${this.daemon} ${this.client.address}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (status.state === 'active' || status.state === 'standby') return status.state;
    this.logger.warn(`${this.daemon} reports a state that is neither active nor standby`, {
      address: this.client.address,
      state: status.state,
    });
    return 'unknown';
  }

  async fenceGraceful(target: FenceTarget, ctx: HookContext, signal: AbortSignal): Promise<void> {
    // The old active's RPC port: its recorded control port, else its node port.
    // Both come from ZooKeeper: checked to be a plain host and port before we connect.
    const port = target.controlPort ?? target.port;
    const host = validTargetHost(target);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new HookFailedError(
        `fence target ${JSON.stringify(target.id)}: invalid RPC port ${JSON.stringify(port)}`,
      );
    }
    const peer = new HaServiceClient({
      host,
      port,
      user: this.user,
      connectTimeoutMs: Math.min(this.connectTimeoutMs, this.fenceTimeoutMs),
      callTimeoutMs: this.fenceTimeoutMs,
      pingIntervalMs: 0,
    });
    try {
      await this.transition(
        'transitionToStandby',
        peer,
        { ...ctx, reason: `fenced by ${ctx.nodeId}` },
        signal,
        this.fenceTimeoutMs,
      );
    } finally {
      peer.close();
    }
  }

  /** Ends the daemon connection (the controller's shutdown). */
  close(): void {
    this.client.close();
  }

  /**
   * GET httpUrl + path within the request timeout (and `signal`). A transport failure is
   * NOT_RESPONDING (as an unanswered RPC is); what the answer means is the caller's to judge.
   */
  protected async httpGet(path: string, signal: AbortSignal): Promise<HttpAnswer> {
    const url = `${this.httpUrl}${path}`;
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ac.abort(), this.requestTimeoutMs);
    try {
      const r = await httpRequest({ method: 'GET', url, signal: ac.signal });
      return { url, status: r.status, body: (await r.readBody()).body };
    } catch (err) {
      throw new HealthTimeoutError(`GET ${url}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** GET /isActive (Hadoop's IsActiveServlet: 200 active, 405 not) must agree with the RPC state. */
  protected async checkIsActive(status: HaServiceStatus, signal: AbortSignal): Promise<void> {
    const r = await this.httpGet('/isActive', signal);
    if (r.status !== 200 && r.status !== 405) {
      throw new HealthUnhealthyError(
        `GET ${r.url} answered HTTP ${r.status}; expected 200 (active) or 405 (not active)`,
      );
    }
    const httpActive = r.status === 200;
    if (httpActive !== (status.state === 'active')) {
      throw new HealthUnhealthyError(
        `${this.daemon} ${this.client.address} says ${status.state} over RPC but GET ${r.url} says ${httpActive ? 'active' : 'not active'}`,
      );
    }
  }

  private async transition(
    method: 'transitionToActive' | 'transitionToStandby',
    client: HaServiceClient,
    ctx: HookContext,
    signal: AbortSignal,
    timeoutMs = this.transitionTimeoutMs,
  ): Promise<void> {
    const t0 = this.clock.now();
    try {
      await client[method](this.source, { signal, timeoutMs });
    } catch (err) {
      throw new HookFailedError(
        `${method}(${this.source}) on ${this.daemon} ${client.address} failed after ${Math.round(this.clock.now() - t0)} ms: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.logger.info(`${method} succeeded`, {
      address: client.address,
      durationMs: Math.round(this.clock.now() - t0),
      epoch: ctx.epoch,
      reason: ctx.reason,
    });
  }
}

/**
 * ZKFC HealthMonitor's split (only HealthCheckFailedException means "answered, and unhealthy";
 * anything else is not responding), with one exception of ours: a refused or reset connection is
 * proof that nothing serves on the port (the daemon died), so it is UNHEALTHY and definite, and
 * the monitor re-probes at fastIntervalMs instead of waiting `fall` whole intervals (ZKFC acts on
 * one failed check; hafc still wants `fall` of them, but fast).
 */
function healthError(where: string, err: unknown): Error {
  if (err instanceof IpcRemoteError && err.exceptionClassName === HEALTH_CHECK_FAILED) {
    return new HealthUnhealthyError(`${where} reports itself unhealthy: ${err.errorMsg.split('\n')[0]}`, {
      cause: err,
    });
  }
  const definite = definiteCause(err);
  if (definite === 'refused' || definite === 'reset') {
    return new HealthUnhealthyError(`${where} is not serving: ${(err as Error).message}`, {
      cause: err,
      definite,
    });
  }
  return new HealthTimeoutError(
    `${where} did not answer the health check usably: ${(err as Error).message}`,
    { cause: err },
  );
}
