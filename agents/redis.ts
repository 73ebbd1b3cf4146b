/**
 * The redis service agent: one Redis server of a replicated pair. Active = master; standby =
 * read-only replica (docs/redis.md).
 *
 * - check = PING, then ROLE. A reply that is not PONG, or an error reply (LOADING, NOAUTH, ...), is
 *   UNHEALTHY; no answer in time (or refused, reset) NOT_RESPONDING. A replica is also UNHEALTHY,
 *   hence not electable, while it lags more than maximumLagOnFailover bytes behind the master's
 *   offset: the master is asked at each check; once it cannot be reached, the last offset it
 *   answered stands (so a replica that was far behind when the master died stays unelectable).
 * - toActive = REPLICAOF NO ONE, confirmed by ROLE master; refused past the lag limit.
 * - toStandby (the demotion, under the lease deadline) = REPLICAOF of a placeholder (127.0.0.1:0,
 *   where nothing listens): a replica refuses writes from the moment it executes the command, with
 *   no pause to renew and nothing to undo, and keeps its data. Pointing it at the new active is
 *   follow()'s job, once that node is known. Not CLIENT PAUSE WRITE: a pause holds writes (the
 *   client sees no error) and lets them all through when it ends or is not renewed in time.
 * - follow(active) = REPLICAOF active's host and port, unless ROLE already says so.
 * - fenceGraceful(old) = the same demotion on the old master's address; its offset, read first,
 *   becomes the master offset the promotion is judged against.
 *
 * Every operation on a server has one deadline (requestTimeoutMs, connecting included); toStandby,
 * toActive, follow and fenceGraceful run one at a time (the controller may overlap a demotion with
 * a follow).
 */
import { readFileSync } from 'node:fs';
import { systemClock, type Clock } from '../src/clock.js';
import type { RedisServiceConfig } from '../src/config/types.js';
import { ConfigError, HookFailedError } from '../src/errors.js';
import { Mutex } from '../src/election/mutex.js';
import { validTargetHost, validTargetPort } from '../src/fencing/target.js';
import { HealthTimeoutError, HealthUnhealthyError } from '../src/health/errors.js';
import type { Logger } from '../src/log.js';
import type { FenceTarget, HookContext, ServiceAgent, ServiceRole } from '../src/service/agent.js';
import {
  parseInfo,
  parseRole,
  RedisConn,
  RedisNoAnswerError,
  RedisReplyError,
  type RoleReply,
} from './redis-conn.js';

/** Where a demoted server points until follow() knows the active: connecting there fails at once. */
export const PLACEHOLDER_HOST = '127.0.0.1';
export const PLACEHOLDER_PORT = 0;

/** The last master offset this agent saw, and from where. */
interface MasterSeen {
  address: string;
  offset: number;
  /** The replication id of the stream the offset counts (INFO's master_replid). */
  replid: string;
  at: number;
}

export class RedisAgent implements ServiceAgent {
  readonly kind = 'redis';
  readonly toStandbyTimeoutMs: number;
  /** REPLICAOF towards a live master returns at once; the sync itself goes on in the server. */
  readonly followTimeoutMs: number;
  readonly controlPort: number;
  readonly checkTarget: string;
  private readonly host: string;
  private readonly port: number;
  private readonly local: RedisConn;
  private readonly peers = new Map<string, RedisConn>();
  private readonly mutex = new Mutex();
  private readonly timeoutMs: number;
  private readonly maxLag: number;
  private password: string | undefined;
  private masterSeen: MasterSeen | undefined;
  private sampling: Promise<void> | undefined;

  constructor(
    private readonly cfg: RedisServiceConfig,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    if (cfg.address === undefined) {
      // validateConfig fills it in from node.host:node.port.
      throw new ConfigError(
        'service.address: missing (it defaults to node.host:node.port when read from a file)',
      );
    }
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(cfg.address);
    const port = m ? Number(m[3]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) {
      throw new ConfigError(`service.address: expected host:port, got ${JSON.stringify(cfg.address)}`);
    }
    this.host = (m[1] ?? m[2]) as string;
    this.port = port;
    this.timeoutMs = cfg.requestTimeoutMs;
    this.maxLag = cfg.maximumLagOnFailover;
    this.toStandbyTimeoutMs = cfg.requestTimeoutMs;
    this.followTimeoutMs = cfg.requestTimeoutMs * 3;
    this.controlPort = port;
    if (cfg.passwordFile !== undefined) this.password = readPassword(cfg.passwordFile);
    this.local = this.conn(this.host, this.port);
    this.checkTarget = `PING and ROLE on Redis ${this.local.address}`;
  }

  async check(_ctx: HookContext, signal: AbortSignal): Promise<void> {
    const where = `Redis ${this.local.address}`;
    let role: RoleReply;
    try {
      const pong = await this.local.call(['PING'], this.timeoutMs, signal);
      if (pong !== 'PONG')
        throw new HealthUnhealthyError(`${where} answered PING with ${JSON.stringify(pong)}`);
      role = parseRole(await this.local.call(['ROLE'], this.timeoutMs, signal));
    } catch (err) {
      throw healthError(where, err);
    }
    if (role.role === 'master') {
      // Our own stream is the history a replica must have: if this server restarts empty, its
      // agent still knows what it held (a restarted master must not be promoted again as is).
      const info = parseInfo(await this.runHealth(this.local, ['INFO', 'replication'], signal));
      const replid = info.get('master_replid');
      if (replid !== undefined) this.noteMaster(this.local.address, role.offset, replid);
      return;
    }
    if (role.role !== 'slave')
      throw new HealthUnhealthyError(`${where} is a ${role.name}, not a master or replica`);
    const tooFar = await this.lagProblem(role, signal);
    if (tooFar !== undefined) throw new HealthUnhealthyError(tooFar);
  }

  async state(_ctx: HookContext, signal: AbortSignal): Promise<ServiceRole | 'unknown'> {
    const role = await this.role(this.local, signal);
    if (role.role === 'master') return 'active';
    if (role.role === 'slave') return 'standby';
    return 'unknown';
  }

  toActive(ctx: HookContext, signal: AbortSignal): Promise<void> {
    return this.mutex.run(async () => {
      const t0 = this.clock.now();
      const before = await this.role(this.local, signal);
      if (before.role === 'master') {
        this.logger.info('Redis is already master', { address: this.local.address, epoch: ctx.epoch });
        return;
      }
      if (before.role === 'slave') {
        const tooFar = await this.lagProblem(before, signal);
        if (tooFar !== undefined) throw new HookFailedError(`refusing to promote: ${tooFar}`);
      }
      await this.expectOk(this.local, ['REPLICAOF', 'NO', 'ONE'], signal);
      const after = await this.role(this.local, signal);
      if (after.role !== 'master') {
        throw new HookFailedError(
          `REPLICAOF NO ONE on Redis ${this.local.address} answered OK but ROLE then says ${describeRole(after)}`,
        );
      }
      this.logger.info('Redis promoted to master', {
        address: this.local.address,
        offset: after.offset,
        epoch: ctx.epoch,
        durationMs: Math.round(this.clock.now() - t0),
      });
    });
  }

  toStandby(ctx: HookContext, signal: AbortSignal): Promise<void> {
    return this.mutex.run(async () => {
      let before: RoleReply;
      try {
        before = await this.role(this.local, signal);
      } catch (err) {
        // Nothing listens on our own port: no server, so no writes. Whatever starts there next
        // starts as its config says (a replica, docs/redis.md), and reconcile demotes a master.
        if (err instanceof HookFailedError && err.cause instanceof RedisNoAnswerError && err.cause.refused) {
          this.logger.warn('Redis is not running: nothing to demote', { address: this.local.address });
          return;
        }
        throw err;
      }
      // A replica already refuses writes; re-pointing it would only break its link to the active.
      if (before.role === 'slave') return;
      await this.demote(this.local, signal);
      this.logger.info('Redis demoted to a read-only replica', {
        address: this.local.address,
        epoch: ctx.epoch,
        reason: ctx.reason,
      });
    });
  }

  follow(active: FenceTarget, _ctx: HookContext, signal: AbortSignal): Promise<void> {
    return this.mutex.run(async () => {
      const host = validTargetHost(active);
      const port = validTargetPort(active);
      if (host === this.host && port === this.port) {
        throw new HookFailedError(`refusing to make Redis ${this.local.address} a replica of itself`);
      }
      const role = await this.role(this.local, signal);
      if (!(role.role === 'slave' && role.host === host && role.port === port)) {
        await this.expectOk(this.local, ['REPLICAOF', host, String(port)], signal);
        this.logger.info('Redis replicates from the active', {
          address: this.local.address,
          master: `${host}:${port}`,
          was: describeRole(role),
        });
      }
      await this.sampleMaster(host, port, signal);
    });
  }

  fenceGraceful(target: FenceTarget, ctx: HookContext, signal: AbortSignal): Promise<void> {
    return this.mutex.run(async () => {
      const host = validTargetHost(target);
      const port = validTargetPort({ ...target, port: target.controlPort ?? target.port });
      const peer = this.conn(host, port);
      try {
        const info = parseInfo(
          await this.run(peer, ['INFO', 'replication'], signal, this.cfg.gracefulFenceTimeoutMs),
        );
        const role = parseRole(await this.run(peer, ['ROLE'], signal));
        if (role.role === 'master') {
          const replid = info.get('master_replid');
          if (replid !== undefined) this.noteMaster(peer.address, role.offset, replid);
          await this.demote(peer, signal);
        }
        this.logger.info('old master fenced: it is a read-only replica', {
          target: peer.address,
          was: describeRole(role),
          epoch: ctx.epoch,
        });
      } finally {
        peer.close();
      }
    });
  }

  /** Closes every connection (shutdown); a later call opens new ones. */
  close(): void {
    this.local.close();
    for (const p of this.peers.values()) p.close();
  }

  /** REPLICAOF the placeholder, then confirmed: a replica, and a read-only one. */
  private async demote(conn: RedisConn, signal: AbortSignal): Promise<void> {
    await this.expectOk(conn, ['REPLICAOF', PLACEHOLDER_HOST, String(PLACEHOLDER_PORT)], signal);
    const info = parseInfo(await this.run(conn, ['INFO', 'replication'], signal));
    if (info.get('role') !== 'slave' || info.get('slave_read_only') !== '1') {
      throw new HookFailedError(
        `after REPLICAOF on Redis ${conn.address} INFO says role ${info.get('role') ?? '?'}, ` +
          `slave_read_only ${info.get('slave_read_only') ?? '?'}; it may still accept writes (replica-read-only must be yes)`,
      );
    }
  }

  /**
   * Why this replica must not be promoted, or undefined, judged by the last offset seen from a
   * master (asked at each check, read by the graceful fence, our own while we were master). Never
   * having seen one (a cold start) leaves nothing to judge by.
   */
  private async lagProblem(
    role: Extract<RoleReply, { role: 'slave' }>,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const info = parseInfo(await this.runHealth(this.local, ['INFO', 'replication'], signal));
    const ours = Number(info.get('slave_repl_offset') ?? info.get('master_repl_offset'));
    // In the background: a master that hangs must not make its replica's check (or promotion)
    // wait; the offset it gave last (at most one interval ago) is what counts meanwhile.
    if (role.port !== PLACEHOLDER_PORT && this.sampling === undefined) {
      this.sampling = this.sampleMaster(role.host, role.port).finally(() => (this.sampling = undefined));
    }
    const seen = this.masterSeen;
    if (seen === undefined || !Number.isFinite(ours)) return undefined;
    const ago = Math.round(this.clock.now() - seen.at);
    const master = `master ${seen.address} (its offset ${seen.offset}, seen ${ago} ms ago`;
    const limit = `the limit, service.maximumLagOnFailover, is ${this.maxLag}`;
    // Offsets compare only within one replication history: a server that restarted empty (or
    // was re-cloned from elsewhere) has a new one, and none of the master's stream.
    const sameHistory =
      seen.replid === info.get('master_replid') || seen.replid === info.get('master_replid2');
    // Refused whatever the limit: such a server may hold nothing at all, and a peer that holds
    // the stream may be about to take over. Restarting this agent forgets the stream it saw (an
    // operator accepting the loss, e.g. after both servers lost their data).
    if (!sameHistory) {
      return (
        `replica Redis ${this.local.address} shares no replication history with ${master}, ` +
        `replication id ${seen.replid}): it may lack all of it (restarted empty?); restart this agent to accept that`
      );
    }
    const lag = seen.offset - ours;
    if (lag <= this.maxLag) return undefined;
    return `replica Redis ${this.local.address} lags ${lag} bytes behind ${master}; ours ${ours}); ${limit}`;
  }

  /** Asks the master for its offset; a master that does not answer leaves the last one seen. */
  private async sampleMaster(host: string, port: number, signal?: AbortSignal): Promise<void> {
    const key = `${host}:${port}`;
    let peer = this.peers.get(key);
    if (peer === undefined) {
      for (const p of this.peers.values()) p.close();
      this.peers.clear();
      peer = this.conn(host, port);
      this.peers.set(key, peer);
    }
    try {
      const info = parseInfo(await peer.call(['INFO', 'replication'], this.timeoutMs, signal));
      const offset = Number(info.get('master_repl_offset'));
      const replid = info.get('master_replid');
      if (info.get('role') === 'master' && Number.isFinite(offset) && replid !== undefined) {
        this.noteMaster(peer.address, offset, replid);
      }
    } catch (err) {
      this.logger.debug('the master did not answer INFO; judging lag by its last offset seen', {
        master: peer.address,
        error: (err as Error).message,
      });
    }
  }

  private noteMaster(address: string, offset: number, replid: string): void {
    this.masterSeen = { address, offset, replid, at: this.clock.now() };
  }

  private async role(conn: RedisConn, signal: AbortSignal): Promise<RoleReply> {
    return parseRole(await this.run(conn, ['ROLE'], signal));
  }

  private async expectOk(conn: RedisConn, args: string[], signal: AbortSignal): Promise<void> {
    const reply = await this.run(conn, args, signal);
    if (reply !== 'OK' && !(typeof reply === 'string' && reply.startsWith('OK'))) {
      throw new HookFailedError(
        `${args.join(' ')} on Redis ${conn.address} answered ${JSON.stringify(reply)}`,
      );
    }
  }

  /** A call whose failure is a HookFailedError (transitions, fencing, state). */
  private async run(
    conn: RedisConn,
    args: string[],
    signal: AbortSignal,
    timeoutMs = this.timeoutMs,
  ): Promise<unknown> {
    try {
      return await conn.call(args, timeoutMs, signal);
    } catch (err) {
      throw new HookFailedError((err as Error).message, { cause: err });
    }
  }

  /** A call whose failure is a health verdict. */
  private async runHealth(conn: RedisConn, args: string[], signal: AbortSignal): Promise<unknown> {
    try {
      return await conn.call(args, this.timeoutMs, signal);
    } catch (err) {
      throw healthError(`Redis ${conn.address}`, err);
    }
  }

  private conn(host: string, port: number): RedisConn {
    return new RedisConn({
      host,
      port,
      ...(this.cfg.username !== undefined ? { username: this.cfg.username } : {}),
      password: () => this.currentPassword(),
      clock: this.clock,
    });
  }

  /** Read again at each new connection, so a changed file needs no restart; the last good one stays. */
  private currentPassword(): string | undefined {
    const file = this.cfg.passwordFile;
    if (file === undefined) return undefined;
    try {
      this.password = readPassword(file);
    } catch (err) {
      this.logger.warn('could not read service.passwordFile again; using the password read before', {
        error: (err as Error).message,
      });
    }
    return this.password;
  }
}

function readPassword(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError(`service.passwordFile: ${JSON.stringify(file)} cannot be read (${code})`);
  }
  const line = (text.split('\n')[0] ?? '').replace(/\r$/, '');
  if (line === '') {
    throw new ConfigError(
      `service.passwordFile: ${JSON.stringify(file)} has an empty first line; it must hold the password`,
    );
  }
  return line;
}

function describeRole(r: RoleReply): string {
  if (r.role === 'master') return `master (offset ${r.offset})`;
  if (r.role === 'slave') return `replica of ${r.host}:${r.port} (link ${r.state})`;
  return r.name;
}

/** An answer is a verdict (UNHEALTHY); no answer is NOT_RESPONDING. */
function healthError(where: string, err: unknown): Error {
  if (err instanceof HealthUnhealthyError || err instanceof HealthTimeoutError) return err;
  if (err instanceof RedisReplyError) {
    const loading = /\bLOADING\b/.test(err.message);
    return new HealthUnhealthyError(
      loading ? `${where} is loading its dataset: ${err.message}` : err.message,
      {
        cause: err,
      },
    );
  }
  return new HealthTimeoutError(`${where} did not answer: ${(err as Error).message}`, { cause: err });
}
