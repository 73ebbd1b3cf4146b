/**
 * The hdfs-namenode service agent: drives an HDFS NameNode through HAServiceProtocol over Hadoop
 * IPC, as ZKFC does, on one long-lived connection (no JVM per call).
 *
 * - check = getServiceStatus then monitorHealth, ZKFC HealthMonitor's order and rules: a remote
 *   HealthCheckFailedException is UNHEALTHY; anything else (refused, reset, timeout, garbage, any
 *   other remote exception) is NOT_RESPONDING. Beyond ZKFC: a standby that says it is not ready
 *   to become active (safe mode), or a NameNode still INITIALIZING, is UNHEALTHY with its own
 *   reason, so it does not stand for election while it could not take over.
 * - toActive / toStandby = transitionToActive / transitionToStandby with REQUEST_BY_ZKFC. The
 *   NameNode accepts that source only with dfs.ha.automatic-failover.enabled=true (and refuses a
 *   plain user request then), so hafc and a manual `haadmin` cannot fight.
 * - fenceGraceful = transitionToStandby(REQUEST_BY_ZKFC) on the OLD active's RPC address, on a
 *   fresh connection with its own deadline, as ZKFC's graceful fence.
 * - optionally, the NameNode's HTTP /isActive (200 active, 405 otherwise) must agree with the IPC
 *   state, catching a NameNode whose RPC and HTTP views diverge.
 */
import type { Clock } from '../src/clock.js';
import { systemClock } from '../src/clock.js';
import { ConfigError, HookFailedError } from '../src/errors.js';
import { httpRequest } from '../src/exec/http.js';
import { validTargetHost } from '../src/fencing/target.js';
import { HaServiceClient, type HaServiceStatus } from '../src/hadoop/ha-service.js';
import { IpcRemoteError } from '../src/hadoop/ipc/errors.js';
import { HealthTimeoutError, HealthUnhealthyError } from '../src/health/errors.js';
import type { Logger } from '../src/log.js';
import type { FenceTarget, HookContext, ServiceAgent, ServiceRole } from '../src/service/agent.js';

/** Config keys the agent needs (service.* when the config schema learns this agent). */
export interface HdfsNameNodeConfig {
  agent: 'hdfs-namenode';
  /** host:port of this NameNode's RPC server (dfs.namenode.rpc-address, or servicerpc-address). */
  rpcAddress: string;
  /** The user the NameNode sees (SIMPLE authentication). @default 'hdfs' */
  user?: string;
  /** @default 5000 */
  connectTimeoutMs?: number;
  /** Deadline of each HAServiceProtocol call; ZKFC's ha.health-monitor.rpc-timeout.ms. @default 45000 */
  requestTimeoutMs?: number;
  /** Deadline of transitions; ZKFC's ha.failover-controller.new-active.rpc-timeout.ms. @default 60000 */
  transitionTimeoutMs?: number;
  /** Deadline of the graceful fence; ha.failover-controller.graceful-fence.rpc-timeout.ms. @default 5000 */
  gracefulFenceTimeoutMs?: number;
  /** e.g. http://nn1.example:9870; when set, check() also asks GET <url>/isActive. */
  httpUrl?: string;
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

export class HdfsNameNodeAgent implements ServiceAgent {
  readonly kind = 'hdfs-namenode';
  readonly toStandbyTimeoutMs: number;
  /** The RPC port: a peer's graceful fence must reach it (it travels in the breadcrumb). */
  readonly controlPort: number;
  readonly checkTarget: string;
  private readonly client: HaServiceClient;
  private readonly requestTimeoutMs: number;
  private readonly transitionTimeoutMs: number;
  private readonly fenceTimeoutMs: number;
  private readonly user: string;
  private readonly connectTimeoutMs: number;
  private readonly httpUrl: string | undefined;

  constructor(
    cfg: HdfsNameNodeConfig,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
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
    this.user = cfg.user ?? 'hdfs';
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
    this.toStandbyTimeoutMs = this.transitionTimeoutMs;
    this.controlPort = port;
    this.client = new HaServiceClient({
      host,
      port,
      user: this.user,
      connectTimeoutMs: this.connectTimeoutMs,
      callTimeoutMs: this.requestTimeoutMs,
    });
    this.checkTarget = `HAServiceProtocol at ${this.client.address}`;
  }

  async check(_ctx: HookContext, signal: AbortSignal): Promise<void> {
    const where = `NameNode ${this.client.address}`;
    let status: HaServiceStatus;
    try {
      status = await this.client.getServiceStatus({ signal });
      await this.client.monitorHealth({ signal });
    } catch (err) {
      throw healthError(where, err);
    }
    if (status.state === 'initializing') {
      throw new HealthUnhealthyError(`${where} is still initializing`);
    }
    if (status.state === 'standby' && status.readyToBecomeActive === false) {
      throw new HealthUnhealthyError(
        `${where} is not ready to become active: ${status.notReadyReason ?? '(no reason given)'}`,
      );
    }
    if (this.httpUrl !== undefined) await this.checkHttp(status, signal);
  }

  async toActive(ctx: HookContext, signal: AbortSignal): Promise<void> {
    await this.transition('transitionToActive', this.client, ctx, signal);
  }

  async toStandby(ctx: HookContext, signal: AbortSignal): Promise<void> {
    await this.transition('transitionToStandby', this.client, ctx, signal);
  }

  async state(_ctx: HookContext, signal: AbortSignal): Promise<ServiceRole | 'unknown'> {
    let status: HaServiceStatus;
    try {
      status = await this.client.getServiceStatus({ signal });
    } catch (err) {
      throw new HookFailedError(
        `getServiceStatus on NameNode ${this.client.address}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (status.state === 'active' || status.state === 'standby') return status.state;
    this.logger.warn('NameNode reports a state that is neither active nor standby', {
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

  /** Ends the NameNode connection (the controller's shutdown). */
  close(): void {
    this.client.close();
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
      await client[method]('REQUEST_BY_ZKFC', { signal, timeoutMs });
    } catch (err) {
      throw new HookFailedError(
        `${method}(REQUEST_BY_ZKFC) on NameNode ${client.address} failed after ${Math.round(this.clock.now() - t0)} ms: ${(err as Error).message}`,
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

  private async checkHttp(status: HaServiceStatus, signal: AbortSignal): Promise<void> {
    const url = `${this.httpUrl}/isActive`;
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ac.abort(), this.requestTimeoutMs);
    let httpActive: boolean;
    try {
      const r = await httpRequest({ method: 'GET', url, signal: ac.signal });
      r.discard();
      if (r.status !== 200 && r.status !== 405) {
        throw new HealthUnhealthyError(
          `GET ${url} answered HTTP ${r.status}; expected 200 (active) or 405 (not active)`,
        );
      }
      httpActive = r.status === 200;
    } catch (err) {
      if (err instanceof HealthUnhealthyError) throw err;
      throw new HealthTimeoutError(`GET ${url}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
    if (httpActive !== (status.state === 'active')) {
      throw new HealthUnhealthyError(
        `NameNode ${this.client.address} says ${status.state} over RPC but GET ${url} says ${httpActive ? 'active' : 'not active'}`,
      );
    }
  }
}

/** ZKFC HealthMonitor's split: only HealthCheckFailedException means "answered, and unhealthy". */
function healthError(where: string, err: unknown): Error {
  if (err instanceof IpcRemoteError && err.exceptionClassName === HEALTH_CHECK_FAILED) {
    return new HealthUnhealthyError(`${where} reports itself unhealthy: ${err.errorMsg.split('\n')[0]}`, {
      cause: err,
    });
  }
  return new HealthTimeoutError(
    `${where} did not answer the health check usably: ${(err as Error).message}`,
    {
      cause: err,
    },
  );
}
