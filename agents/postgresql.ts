/**
 * The postgresql service agent: one PostgreSQL server per node, in streaming replication with the
 * active's (docs/postgresql.md).
 *
 * - check: one query on a fresh connection (agents/pg/db.ts): pg_is_in_recovery(), WAL positions
 *   and, on a standby, its lag. Refused = UNHEALTHY; connected but no answer in time =
 *   NOT_RESPONDING. A standby lagging past maximumLagOnFailover is UNHEALTHY, so not electable.
 * - toActive: start the server as a standby if it is down, refuse when it lags, set the managed
 *   settings (synchronous_standby_names, no default read-only), pg_promote(wait), then prove a
 *   write transaction commits.
 * - toStandby (the demotion, inside the lease): a server that provably cannot write (running in
 *   recovery, no promotion asked by us since the last stop, or not running) is left alone;
 *   anything else is stopped, `pg_ctl stop -m fast` then `-m immediate`, all within
 *   stopTimeoutMs. Stopping is the sure way: default_transaction_read_only is only a default any
 *   session may override.
 * - follow(active): streaming from the active already = done. Else stop, pg_rewind from the
 *   active (pg_basebackup into a fresh directory when the data directory is empty or rewind
 *   fails), write primary_conninfo and standby.signal, start, wait until it streams.
 * - fenceGraceful(old): connect to the old primary, make new transactions read-only, end its
 *   client sessions and have it shut itself down (fast); done once it refuses connections.
 *
 * Transitions and follow() are serialised by one mutex; toStandby and toActive first abort a
 * follow in flight (a re-clone may take minutes, a demotion must not wait for it).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock, type Clock } from '../src/clock.js';
import type { ServiceConfig } from '../src/config/types.js';
import { ConfigError, HookFailedError } from '../src/errors.js';
import { assertSucceeded, runCommand, terminationBoundMs, type CommandResult } from '../src/exec/run.js';
import { validTargetHost, validTargetPort } from '../src/fencing/target.js';
import { HealthTimeoutError, HealthUnhealthyError } from '../src/health/errors.js';
import type { Logger } from '../src/log.js';
import type { FenceTarget, HookContext, ServiceAgent, ServiceRole } from '../src/service/agent.js';
import { conninfo, editAutoConf } from './pg/auto-conf.js';
import { DbError, describeTarget, withDb, type DbTarget, type Query } from './pg/db.js';
import { formatLsn, maxLsn, parseLsn } from './pg/lsn.js';
import { clearZombieLocks, postmasterGone } from './pg/postmaster.js';

export type PostgresqlServiceConfig = Extract<ServiceConfig, { agent: 'postgresql' }>;

/** Two nodes: any one standby. What 3+ nodes need instead is in docs/postgresql.md. */
export const SYNC_STANDBY_NAMES = 'ANY 1 (*)';
/** Files of the node's own that pg_rewind and pg_basebackup would replace with the source's. */
const OWN_CONFIG_FILES = ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf'];
/** How long a freshly started standby may take to stream before follow() counts it as stuck. */
const STREAM_GRACE_MS = 15_000;
/** Kill graces for the tools: demotion has no room for the runner's 2 s default. */
const TOOL_GRACE = { killGraceMs: 100, abandonGraceMs: 200 };
const TOOL_BOUND_MS = terminationBoundMs(TOOL_GRACE);

interface LocalState {
  running: boolean;
  recovery?: boolean;
  /** host:port the WAL receiver streams from, when it does. */
  sender?: string;
}

export class PostgresqlAgent implements ServiceAgent {
  readonly kind = 'postgresql';
  readonly toStandbyTimeoutMs: number;
  readonly followTimeoutMs: number;
  readonly controlPort: number;
  readonly checkTarget: string;
  private readonly port: number;
  private readonly local: DbTarget;
  private readonly runAs: string[];
  /** The primary's highest WAL position this standby has seen it report (for the lag rule). */
  private primaryLastLsn: bigint | null = null;
  /** Set from the moment we ask for a promotion until a stop: then "in recovery" proves nothing. */
  private mayBeWritable = false;
  /** Since when the server, set up to follow the active, has not been streaming from it. */
  private notStreamingSince: number | null = null;
  /**
   * The last rejoin rewound the directory and it still did not stream (or start): the next one
   * re-clones. pg_rewind reports success when the two timelines carry the same id (both servers
   * promoted from one parent timeline), and such a standby never streams from the other.
   */
  private rewindDidNotHelp = false;
  private lock: Promise<void> = Promise.resolve();
  private followAc: AbortController | null = null;

  constructor(
    private readonly cfg: PostgresqlServiceConfig,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    if (cfg.port === undefined) throw new ConfigError('service.port: missing (node.port is its default)');
    this.port = cfg.port;
    this.controlPort = cfg.port;
    this.toStandbyTimeoutMs = cfg.stopTimeoutMs;
    this.followTimeoutMs = cfg.followTimeoutMs;
    let password: string | undefined;
    if (cfg.passwordFile !== undefined) {
      try {
        password = fs.readFileSync(cfg.passwordFile, 'utf8').split('\n')[0] ?? '';
      } catch (err) {
        throw new ConfigError(
          `service.passwordFile: cannot read ${JSON.stringify(cfg.passwordFile)}: ${(err as Error).message}`,
        );
      }
    }
    this.local = {
      host: cfg.host,
      port: cfg.port,
      user: cfg.user,
      database: cfg.database,
      ...(password !== undefined ? { password } : {}),
    };
    this.runAs = runAsPrefix(cfg.osUser);
    this.checkTarget = `PostgreSQL at ${describeTarget(this.local)}`;
  }

  // -------------------------------------------------------------------------------------------
  // Health and state

  async check(_ctx: HookContext, signal: AbortSignal): Promise<void> {
    const where = this.checkTarget;
    let row: PositionsRow;
    try {
      row = await withDb(
        this.local,
        { timeoutMs: this.cfg.requestTimeoutMs, signal, what: 'health check', clock: this.clock },
        async (q) => (await q<PositionsRow>(POSITIONS_SQL))[0]!,
      );
    } catch (err) {
      if (err instanceof DbError && (err.kind === 'timeout' || err.kind === 'aborted')) {
        throw new HealthTimeoutError(err.message, { cause: err });
      }
      throw new HealthUnhealthyError((err as Error).message, { cause: err });
    }
    if (!row.recovery) return;
    const lag = this.noteStandbyPositions(row);
    if (lag !== null && lag > BigInt(this.cfg.maximumLagOnFailover)) {
      throw new HealthUnhealthyError(
        `${where} is a standby ${lag} bytes of WAL behind the primary's last position it saw ` +
          `(${formatLsn(this.primaryLastLsn!)}); maximumLagOnFailover is ${this.cfg.maximumLagOnFailover}`,
      );
    }
  }

  async state(_ctx: HookContext, signal: AbortSignal): Promise<ServiceRole | 'unknown'> {
    try {
      const recovery = await withDb(
        this.local,
        { timeoutMs: this.cfg.requestTimeoutMs, signal, what: 'state query', clock: this.clock },
        async (q) => (await q<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r,
      );
      return recovery ? 'standby' : 'active';
    } catch (err) {
      // Down, or starting up / shutting down: it accepts no writes.
      if (err instanceof DbError && (err.kind === 'refused' || isNotAccepting(err))) return 'standby';
      throw new HookFailedError(`state query: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Remembers the primary's position; the lag in bytes, or null while there is nothing to judge by. */
  private noteStandbyPositions(row: PositionsRow): bigint | null {
    this.primaryLastLsn = maxLsn(this.primaryLastLsn, parseLsn(row.primary_end));
    const have = maxLsn(maxLsn(parseLsn(row.received), parseLsn(row.flushed)), parseLsn(row.replayed));
    if (this.primaryLastLsn === null || have === null) return null;
    const lag = this.primaryLastLsn - have;
    return lag > 0n ? lag : 0n;
  }

  // -------------------------------------------------------------------------------------------
  // Transitions

  async toStandby(ctx: HookContext, signal: AbortSignal): Promise<void> {
    const deadline = this.clock.now() + this.cfg.stopTimeoutMs;
    // No promotion asked since the last stop: a server that is down or in recovery cannot write,
    // and a follow() in flight never makes it writable, so it may go on (rejoining takes long).
    if (!this.mayBeWritable) {
      const probeMs = Math.max(50, Math.min(this.cfg.requestTimeoutMs, this.cfg.stopTimeoutMs / 4));
      const st = await this.probe(signal, probeMs).catch(() => null);
      if (st && (!st.running || st.recovery === true)) {
        this.logger.info('to-standby: the server already refuses writes', {
          running: st.running,
          epoch: ctx.epoch,
        });
        return;
      }
    }
    this.followAc?.abort(new Error('to-standby'));
    await this.exclusive(signal, async () => {
      await this.stopServer(deadline, signal, 'to-standby');
      this.mayBeWritable = false;
    });
  }

  async toActive(ctx: HookContext, signal: AbortSignal): Promise<void> {
    const t0 = this.clock.now();
    const deadline = t0 + this.cfg.stopTimeoutMs + 4000;
    this.followAc?.abort(new Error('to-active'));
    await this.exclusive(signal, async () => {
      let st = await this.probe(signal, this.cfg.requestTimeoutMs);
      if (!st.running) {
        if (!this.hasDataDir()) {
          throw new HookFailedError(
            `to-active: ${this.cfg.dataDir} holds no database; it cannot become the primary`,
          );
        }
        // Up read-only first, so its position can be judged before it may write.
        await this.writeStandbyFiles(undefined);
        await this.startServer(deadline, signal);
        st = await this.probe(signal, this.cfg.requestTimeoutMs);
      }
      if (st.recovery) {
        const row = await this.db(
          signal,
          'to-active positions',
          async (q) => (await q<PositionsRow>(POSITIONS_SQL))[0]!,
        );
        const lag = row.recovery ? this.noteStandbyPositions(row) : null;
        if (lag !== null && lag > BigInt(this.cfg.maximumLagOnFailover)) {
          throw new HookFailedError(
            `to-active refused: ${this.checkTarget} is ${lag} bytes of WAL behind the primary's last ` +
              `position it saw (${formatLsn(this.primaryLastLsn!)}); maximumLagOnFailover is ${this.cfg.maximumLagOnFailover}`,
          );
        }
        await this.applyManagedSettings(signal);
        this.mayBeWritable = true;
        await this.promote(deadline, signal);
      } else {
        this.mayBeWritable = true;
        await this.applyManagedSettings(signal);
      }
      await this.waitWritable(deadline, signal);
      this.logger.info('to-active: the server accepts writes', {
        durationMs: Math.round(this.clock.now() - t0),
        epoch: ctx.epoch,
        synchronous: this.cfg.synchronous,
      });
    });
  }

  /**
   * A write transaction that commits, without waiting for a synchronous standby (there may be
   * none yet): proves the server is out of recovery and takes writes.
   */
  private async waitWritable(deadline: number, signal: AbortSignal): Promise<void> {
    let last = '';
    while (this.clock.now() < deadline) {
      try {
        await this.db(signal, 'write test', async (q) => {
          await q('BEGIN READ WRITE');
          await q("SET LOCAL synchronous_commit = 'local'");
          await q('SELECT txid_current()');
          await q('COMMIT');
        });
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        last = (err as Error).message;
      }
      await this.clock.sleep(50, signal);
    }
    throw new HookFailedError(
      `to-active: ${this.checkTarget} did not accept a write transaction in time: ${last}`,
    );
  }

  /**
   * The settings a primary must have: no default read-only (a fence of this server as an old
   * primary leaves it on), and synchronous_standby_names as configured. follow() writes them into
   * postgresql.auto.conf already, so normally nothing changes here. When something does, the
   * reload is done and seen in force BEFORE the promotion: a commit on the new primary must never
   * be acknowledged under the old setting.
   */
  private async applyManagedSettings(signal: AbortSignal): Promise<void> {
    const want = this.cfg.synchronous ? SYNC_STANDBY_NAMES : '';
    const current = async (): Promise<boolean> => {
      const [row] = await this.db(signal, 'settings', (q) =>
        q<{ s: string; ro: string }>(
          "SELECT current_setting('synchronous_standby_names') AS s, current_setting('default_transaction_read_only') AS ro",
        ),
      );
      return row!.s === want && row!.ro === 'off';
    };
    if (await current()) return;
    await this.db(signal, 'ALTER SYSTEM', async (q) => {
      await q('ALTER SYSTEM RESET default_transaction_read_only');
      await q(
        this.cfg.synchronous
          ? `ALTER SYSTEM SET synchronous_standby_names = '${SYNC_STANDBY_NAMES}'`
          : 'ALTER SYSTEM RESET synchronous_standby_names',
      );
      await q('SELECT pg_reload_conf()');
    });
    const by = this.clock.now() + this.cfg.requestTimeoutMs * 2;
    while (!(await current())) {
      if (this.clock.now() > by) {
        throw new HookFailedError('to-active: the reloaded settings did not take effect in time');
      }
      await this.clock.sleep(20, signal);
    }
  }

  /**
   * pg_promote without waiting, then asked again every few hundred ms until it is out of
   * recovery. Observed on 15: a configuration reload shortly before a promotion can leave the
   * startup process sleeping out wal_retrieve_retry_interval (5 s) after it logged the request;
   * a repeated request wakes it.
   */
  private async promote(deadline: number, signal: AbortSignal): Promise<void> {
    let asked = -Infinity;
    let last = '';
    while (this.clock.now() < deadline) {
      try {
        const recovery = await this.db(signal, 'pg_promote', async (q) => {
          const [row] = await q<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
          if (!row!.r) return false;
          if (this.clock.now() - asked >= 300) {
            asked = this.clock.now();
            await q('SELECT pg_promote(false)');
          }
          return true;
        });
        if (!recovery) return;
      } catch (err) {
        if (signal.aborted) throw err;
        last = (err as Error).message;
      }
      await this.clock.sleep(25, signal);
    }
    throw new HookFailedError(
      `to-active: ${this.checkTarget} did not leave recovery in time${last ? `: ${last}` : ''}`,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Following the active

  async follow(active: FenceTarget, ctx: HookContext, signal: AbortSignal): Promise<void> {
    const host = validTargetHost(active);
    const port = validTargetPort(active);
    const source = `${host}:${port}`;
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.followAc = ac;
    try {
      await this.exclusive(ac.signal, () => this.followLocked(host, port, source, ctx, ac.signal));
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (this.followAc === ac) this.followAc = null;
    }
  }

  private async followLocked(
    host: string,
    port: number,
    source: string,
    ctx: HookContext,
    signal: AbortSignal,
  ): Promise<void> {
    const deadline = this.clock.now() + this.cfg.followTimeoutMs;
    const st = await this.probe(signal, this.cfg.requestTimeoutMs).catch((err: unknown) => {
      this.logger.warn('follow: the local server does not answer', { error: (err as Error).message });
      return { running: true } as LocalState;
    });
    if (st.running && st.recovery) {
      if (st.sender === source) {
        this.notStreamingSince = null;
        return;
      }
      const [row] = await this.db(signal, 'primary_conninfo', (q) =>
        q<{ c: string }>("SELECT current_setting('primary_conninfo') AS c"),
      );
      if (pointsAt(row!.c, host, port)) {
        // Set up for this source and (re)connecting: a primary that just promoted, or restarted.
        // Only if it cannot stream for a while (diverged timelines) is it rewound.
        this.notStreamingSince ??= this.clock.now();
        if (this.clock.now() - this.notStreamingSince < STREAM_GRACE_MS) return;
      }
    }
    const remote: DbTarget = { ...this.local, host, port };
    // Nothing is stopped or rewritten unless the source can be followed right now: a standby
    // that is down or diverged is better left as it is than stopped while the active is away.
    await this.checkSource(remote, source, signal);
    if (st.running) await this.stopServer(this.clock.now() + this.cfg.stopTimeoutMs, signal, 'follow');
    this.mayBeWritable = false;
    // Before the rewind (its crash recovery starts a postgres) and before a re-clone swaps the
    // directory, which would take the postmaster.pid that names the zombie with it.
    this.clearZombieLocks('follow');
    let rewound = false;
    if (!this.hasDataDir()) {
      await this.clone(remote, deadline, signal);
    } else if (this.rewindDidNotHelp) {
      this.logger.warn('follow: the last rewind did not make it stream; re-cloning with pg_basebackup');
      await this.clone(remote, deadline, signal);
    } else {
      rewound = await this.rewind(remote, deadline, signal).then(
        () => true,
        (err: unknown) => {
          if (signal.aborted) throw err;
          this.logger.warn('follow: pg_rewind failed; re-cloning with pg_basebackup', {
            error: (err as Error).message,
          });
          return false;
        },
      );
      if (!rewound) await this.clone(remote, deadline, signal);
    }
    await this.writeStandbyFiles(remote, ctx.nodeId);
    this.notStreamingSince = this.clock.now();
    // Set before the start: a start that fails or hangs after a rewind counts as the rewind not
    // helping too. An abort (a demotion or promotion) does not.
    this.rewindDidNotHelp = rewound;
    try {
      await this.startServer(Math.min(deadline, this.clock.now() + this.cfg.startTimeoutMs), signal);
      const streamBy = Math.min(deadline, this.clock.now() + STREAM_GRACE_MS);
      for (;;) {
        const now = await this.probe(signal, this.cfg.requestTimeoutMs).catch(() => null);
        if (now?.running && now.recovery && now.sender === source) break;
        if (this.clock.now() >= streamBy) {
          throw new HookFailedError(
            `follow: started as a standby of ${source} but it does not stream from it yet`,
          );
        }
        await this.clock.sleep(100, signal);
      }
    } catch (err) {
      if (signal.aborted) this.rewindDidNotHelp = false;
      throw err;
    }
    this.rewindDidNotHelp = false;
    this.logger.info('follow: streaming from the active', { source, epoch: ctx.epoch });
  }

  private async checkSource(remote: DbTarget, source: string, signal: AbortSignal): Promise<void> {
    const recovery = await withDb(
      remote,
      { timeoutMs: this.cfg.requestTimeoutMs, signal, what: 'follow: source check', clock: this.clock },
      async (q) => (await q<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r,
    ).catch((err: unknown) => {
      throw new HookFailedError(`follow: cannot follow ${source} now: ${(err as Error).message}`, {
        cause: err,
      });
    });
    if (recovery) throw new HookFailedError(`follow: ${source} is still in recovery, not a primary yet`);
  }

  /** pg_rewind from the active; its own config files kept, the source's not taken. */
  private async rewind(remote: DbTarget, deadline: number, signal: AbortSignal): Promise<void> {
    // A just-promoted primary writes its new timeline to pg_control at its end-of-recovery
    // checkpoint, which is asynchronous; before it, pg_rewind sees one timeline and does nothing.
    await withDb(
      remote,
      {
        timeoutMs: Math.max(this.cfg.requestTimeoutMs, 30_000),
        signal,
        what: 'CHECKPOINT',
        clock: this.clock,
      },
      (q) => q('CHECKPOINT'),
    );
    const saved = this.saveOwnConfig(this.cfg.dataDir);
    try {
      const r = await this.tool(
        'pg_rewind',
        ['-D', this.cfg.dataDir, `--source-server=${this.connString(remote)}`],
        deadline,
        signal,
        'pg_rewind',
      );
      assertSucceeded(r);
      this.logger.info('follow: pg_rewind done', {
        durationMs: r.durationMs,
        output: lastLine(r.stdout + r.stderr),
      });
    } finally {
      this.restoreOwnConfig(this.cfg.dataDir, saved);
    }
  }

  /** pg_basebackup into a fresh sibling directory, then swapped in; the old one is removed. */
  private async clone(remote: DbTarget, deadline: number, signal: AbortSignal): Promise<void> {
    const dir = this.cfg.dataDir;
    const fresh = `${dir}.hafc-clone`;
    fs.rmSync(fresh, { recursive: true, force: true });
    const saved = this.saveOwnConfig(dir);
    const r = await this.tool(
      'pg_basebackup',
      ['-D', fresh, '-d', this.connString(remote), '-X', 'stream', '-c', 'fast', '--no-password'],
      deadline,
      signal,
      'pg_basebackup',
    );
    try {
      assertSucceeded(r);
    } catch (err) {
      fs.rmSync(fresh, { recursive: true, force: true });
      throw err;
    }
    const old = `${dir}.hafc-old`;
    fs.rmSync(old, { recursive: true, force: true });
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(fresh, dir);
    this.restoreOwnConfig(dir, saved);
    fs.rmSync(old, { recursive: true, force: true });
    this.logger.info('follow: re-cloned with pg_basebackup', { durationMs: r.durationMs });
  }

  /** primary_conninfo (absent: none, for a start before promotion) and standby.signal. */
  private async writeStandbyFiles(remote: DbTarget | undefined, nodeId?: string): Promise<void> {
    const dir = this.cfg.dataDir;
    const auto = path.join(dir, 'postgresql.auto.conf');
    const text = fs.existsSync(auto) ? fs.readFileSync(auto, 'utf8') : '';
    const set: Record<string, string | undefined> = {
      default_transaction_read_only: undefined,
      synchronous_standby_names: this.cfg.synchronous ? SYNC_STANDBY_NAMES : undefined,
    };
    if (remote) {
      set.primary_conninfo = conninfo({
        host: remote.host,
        port: remote.port,
        user: remote.user,
        password: remote.password,
        application_name: nodeId,
      });
    }
    this.writeOwned(auto, editAutoConf(text, set));
    for (const f of ['recovery.signal', 'promote.signal']) fs.rmSync(path.join(dir, f), { force: true });
    this.writeOwned(path.join(dir, 'standby.signal'), '');
  }

  // -------------------------------------------------------------------------------------------
  // Fencing

  async fenceGraceful(target: FenceTarget, ctx: HookContext, signal: AbortSignal): Promise<void> {
    const remote: DbTarget = { ...this.local, host: validTargetHost(target), port: validTargetPort(target) };
    const where = `old primary ${target.id} at ${describeTarget(remote)}`;
    const deadline = this.clock.now() + this.cfg.stopTimeoutMs + this.cfg.gracefulFenceTimeoutMs;
    const opts = { timeoutMs: this.cfg.requestTimeoutMs, signal, what: 'graceful fence', clock: this.clock };
    const first = { ...opts, timeoutMs: this.cfg.gracefulFenceTimeoutMs };
    const verdict = await withDb(remote, first, async (q) => {
      const [row] = await q<{ r: boolean; dir: string }>(
        "SELECT pg_is_in_recovery() AS r, current_setting('data_directory') AS dir",
      );
      if (row!.r) return 'standby' as const;
      await q('ALTER SYSTEM SET default_transaction_read_only = on');
      await q('SELECT pg_reload_conf()');
      await q(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
      );
      if (!/^[A-Za-z0-9_./-]+$/.test(row!.dir)) {
        throw new HookFailedError(
          `graceful fence of ${where}: its data directory ${JSON.stringify(row!.dir)} cannot be named in a shell command`,
        );
      }
      // SIGINT to the postmaster = fast shutdown; it ends this session too, hence no await of success.
      await q(`COPY (SELECT 1) TO PROGRAM 'kill -INT "$(head -n 1 ${row!.dir}/postmaster.pid)"'`).catch(
        () => undefined,
      );
      return 'stopping' as const;
    }).catch((err: unknown) => {
      throw new HookFailedError(`graceful fence of ${where}: ${(err as Error).message}`, { cause: err });
    });
    if (verdict === 'standby') {
      this.logger.info('graceful fence: the old primary is in recovery already', { target: target.id });
      return;
    }
    let last = '';
    while (this.clock.now() < deadline) {
      if (signal.aborted) break;
      try {
        await withDb(remote, opts, (q) => q('SELECT 1'));
        last = 'it still accepts connections';
      } catch (err) {
        if (err instanceof DbError && (err.kind === 'refused' || isNotAccepting(err))) {
          this.logger.info('graceful fence: the old primary shut down', {
            target: target.id,
            epoch: ctx.epoch,
          });
          return;
        }
        last = (err as Error).message;
      }
      await this.clock.sleep(50, signal);
    }
    throw new HookFailedError(`graceful fence of ${where}: asked it to shut down, but ${last}`);
  }

  // -------------------------------------------------------------------------------------------
  // The server process

  private async probe(signal: AbortSignal, timeoutMs: number): Promise<LocalState> {
    try {
      const row = await withDb(
        this.local,
        { timeoutMs, signal, what: 'probe', clock: this.clock },
        async (q) => (await q<PositionsRow>(POSITIONS_SQL))[0]!,
      );
      if (row.recovery) this.noteStandbyPositions(row);
      return { running: true, recovery: row.recovery, ...(row.sender ? { sender: row.sender } : {}) };
    } catch (err) {
      if (err instanceof DbError && err.kind === 'refused' && !(await this.postmasterRunning(signal))) {
        return { running: false };
      }
      throw err;
    }
  }

  /** pg_ctl status: 0 running, 3 not running (4: no data directory, also not running). */
  private async postmasterRunning(signal: AbortSignal): Promise<boolean> {
    if (!fs.existsSync(path.join(this.cfg.dataDir, 'postmaster.pid'))) return false;
    if (postmasterGone(this.cfg.dataDir)) return false;
    const r = await this.tool(
      'pg_ctl',
      ['-D', this.cfg.dataDir, 'status'],
      this.clock.now() + 5000,
      signal,
      'pg_ctl status',
    );
    if (r.exitCode === 3 || r.exitCode === 4) return false;
    return true;
  }

  private clearZombieLocks(why: string): void {
    const r = clearZombieLocks(this.cfg.dataDir);
    if (r.removed.length > 0) {
      this.logger.info(`${why}: removed the lock files of an exited (zombie) postmaster`, {
        files: r.removed,
      });
    } else if (r.kept !== undefined) {
      this.logger.warn(`${why}: an exited (zombie) postmaster's lock files are left in place`, {
        reason: r.kept,
      });
    }
  }

  private async startServer(deadline: number, signal: AbortSignal): Promise<void> {
    this.clearZombieLocks('pg_ctl start');
    const waitS = Math.max(1, Math.floor((deadline - this.clock.now() - TOOL_BOUND_MS) / 1000));
    const r = await this.tool(
      'pg_ctl',
      [
        '-D',
        this.cfg.dataDir,
        '-l',
        this.cfg.logFile ?? '/dev/null',
        '-w',
        '-t',
        String(waitS),
        '-o',
        `-p ${this.port}`,
        'start',
      ],
      deadline,
      signal,
      'pg_ctl start',
    );
    assertSucceeded(r);
  }

  /** fast, then immediate for whatever time is left; throws only if both fail. */
  private async stopServer(deadline: number, signal: AbortSignal, why: string): Promise<void> {
    if (!(await this.postmasterRunning(signal))) return;
    const total = deadline - this.clock.now();
    const fastBy = this.clock.now() + Math.max(TOOL_BOUND_MS + 200, total * 0.5);
    const stop = (mode: string, by: number): Promise<CommandResult> => {
      const waitS = Math.max(1, Math.ceil((by - this.clock.now()) / 1000));
      return this.tool(
        'pg_ctl',
        ['-D', this.cfg.dataDir, '-m', mode, '-w', '-t', String(waitS), 'stop'],
        by,
        signal,
        `pg_ctl stop -m ${mode}`,
      );
    };
    const fast = await stop('fast', fastBy);
    if (fast.exitCode === 0 || !(await this.postmasterRunning(signal))) {
      this.logger.info(`${why}: server stopped (fast)`, { durationMs: fast.durationMs });
      return;
    }
    this.logger.warn(`${why}: fast shutdown did not finish; stopping immediately`, {
      output: lastLine(fast.stderr),
    });
    const immediate = await stop('immediate', Math.max(deadline, this.clock.now() + TOOL_BOUND_MS + 200));
    if (immediate.exitCode === 0 || !(await this.postmasterRunning(signal))) {
      this.logger.info(`${why}: server stopped (immediate)`, { durationMs: immediate.durationMs });
      return;
    }
    assertSucceeded(immediate);
  }

  private tool(
    name: string,
    args: string[],
    deadline: number,
    signal: AbortSignal,
    what: string,
  ): Promise<CommandResult> {
    const timeoutMs = Math.max(50, Math.round(deadline - this.clock.now() - TOOL_BOUND_MS));
    return runCommand([...this.runAs, path.join(this.cfg.binDir, name), ...args], {
      timeoutMs,
      signal,
      what,
      clock: this.clock,
      ...TOOL_GRACE,
      env: this.local.password !== undefined ? { PGPASSWORD: this.local.password } : {},
    });
  }

  private db<T>(
    signal: AbortSignal,
    what: string,
    fn: (q: Query) => Promise<T>,
    deadline?: number,
  ): Promise<T> {
    const timeoutMs =
      deadline !== undefined ? Math.max(100, deadline - this.clock.now()) : this.cfg.requestTimeoutMs;
    return withDb(this.local, { timeoutMs, signal, what, clock: this.clock }, fn).catch((err: unknown) => {
      throw err instanceof HookFailedError
        ? err
        : new HookFailedError((err as Error).message, { cause: err });
    });
  }

  private connString(remote: DbTarget): string {
    return conninfo({ host: remote.host, port: remote.port, user: remote.user, dbname: remote.database });
  }

  private hasDataDir(): boolean {
    return fs.existsSync(path.join(this.cfg.dataDir, 'PG_VERSION'));
  }

  private saveOwnConfig(dir: string): Map<string, Buffer> {
    const saved = new Map<string, Buffer>();
    for (const f of OWN_CONFIG_FILES) {
      try {
        saved.set(f, fs.readFileSync(path.join(dir, f)));
      } catch {
        // Not there (an empty directory, or config kept elsewhere): nothing to keep.
      }
    }
    return saved;
  }

  private restoreOwnConfig(dir: string, saved: Map<string, Buffer>): void {
    for (const [f, content] of saved) this.writeOwned(path.join(dir, f), content);
  }

  /** Writes a file in the data directory, owned like the directory (we may run as root). */
  private writeOwned(file: string, content: string | Buffer): void {
    fs.writeFileSync(file, content, { mode: 0o600 });
    if (process.getuid?.() !== 0) return;
    const st = fs.statSync(path.dirname(file));
    fs.chownSync(file, st.uid, st.gid);
  }

  /** Runs `fn` alone (transitions and follow never overlap); gives up waiting on `signal`. */
  private async exclusive<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const prev = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((r) => (release = r));
    try {
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted)
          return reject(new HookFailedError('aborted while waiting for another service call'));
        const onAbort = (): void =>
          reject(new HookFailedError('aborted while waiting for another service call'));
        signal.addEventListener('abort', onAbort, { once: true });
        void prev.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
      return await fn();
    } finally {
      // Released only once the previous holder is done, even if we gave up waiting for it.
      void prev.then(release);
    }
  }
}

interface PositionsRow {
  recovery: boolean;
  current: string | null;
  received: string | null;
  replayed: string | null;
  primary_end: string | null;
  flushed: string | null;
  sender: string | null;
}

const POSITIONS_SQL = `SELECT pg_is_in_recovery() AS recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current,
  pg_last_wal_receive_lsn()::text AS received,
  pg_last_wal_replay_lsn()::text AS replayed,
  r.latest_end_lsn::text AS primary_end,
  r.flushed_lsn::text AS flushed,
  CASE WHEN r.status = 'streaming' THEN r.sender_host || ':' || r.sender_port END AS sender
  FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true`;

/** 57P03 cannot_connect_now (starting up, shutting down), 57P01 admin_shutdown. */
function isNotAccepting(err: DbError): boolean {
  return err.sqlState === '57P03' || err.sqlState === '57P01';
}

/** Whether a libpq connection string names this host and port. */
export function pointsAt(conn: string, host: string, port: number): boolean {
  const value = (key: string): string | undefined =>
    new RegExp(`(?:^|\\s)${key}\\s*=\\s*(?:'((?:[^'\\\\]|\\\\.)*)'|(\\S+))`)
      .exec(conn)
      ?.slice(1)
      .find((v) => v !== undefined);
  return value('host') === host && Number(value('port') ?? 5432) === port;
}

function runAsPrefix(osUser: string | undefined): string[] {
  if (osUser === undefined) return [];
  if (process.getuid?.() === 0) return ['runuser', '-u', osUser, '--'];
  const me = os.userInfo().username;
  if (me === osUser) return [];
  throw new ConfigError(
    `service.osUser: the agent runs as ${JSON.stringify(me)}, not root, so it cannot run the PostgreSQL tools as ${JSON.stringify(osUser)}`,
  );
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
