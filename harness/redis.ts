/**
 * Real redis-server processes for tests and the benchmark (Debian's redis-server, installed by
 * scripts/setup.sh): each on a random loopback port in its own temp dir, with no persistence
 * (`save ""`, no AOF: a killed server comes back empty, the hardest case for a replica pair) and
 * diskless full syncs without Redis's default 5 s delay (so a rejoin takes milliseconds, not
 * seconds).
 *
 * Every server starts as a read-only replica of the placeholder 127.0.0.1:0 (nothing listens
 * there) unless told otherwise: the configuration docs/redis.md recommends, so that a server that
 * restarts never accepts a write before its agent has promoted it.
 *
 * Process hygiene is the zk-ensemble's: every server is in the shared registry (the global
 * teardown fails a run that leaks one), is killed on this process's exit, and has a watchdog that
 * kills it if this process dies by SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { startWatchdog } from './watchdog.js';
import { settlesWithin, waitFor } from './wait.js';
import { trackChild } from './proc-registry.js';
import { freePorts } from './zk-ensemble.js';

export const REDIS_SERVER = process.env.HAFC_REDIS_SERVER ?? '/usr/bin/redis-server';
export const REDIS_SENTINEL = process.env.HAFC_REDIS_SENTINEL ?? '/usr/bin/redis-sentinel';
/** Where a standby points until it knows the active: connecting there fails at once. */
export const PLACEHOLDER = { host: '127.0.0.1', port: 0 };

export function redisAvailable(): boolean {
  return fs.existsSync(REDIS_SERVER);
}

export interface Spawned {
  child: ChildProcess;
  exited: Promise<void>;
}

/** Spawns `program configFile`, registered under the config file's path (unique per process). */
export function spawnRegistered(program: string, configFile: string, logFile: string): Spawned {
  const out = fs.openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(program, [configFile], { stdio: ['ignore', out, out] });
  } finally {
    fs.closeSync(out);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${program} ${configFile}: no pid`);
  trackChild(child, configFile, `${program} ${configFile}`);
  const wd = startWatchdog(pid, configFile, `redis-${path.basename(path.dirname(configFile))}`);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      wd?.stdin?.end();
      resolve();
    });
  });
  child.on('error', () => {});
  return { child, exited };
}

export function lastLines(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(no log: ${String(err)})`;
  }
}

export interface RedisServerOptions {
  id: string;
  port: number;
  /** requirepass and masterauth. */
  password?: string;
  /** Start as a replica of this address. @default PLACEHOLDER */
  replicaOf?: { host: string; port: number } | null;
  /** More redis.conf lines. */
  extraConf?: string[];
}

export class RedisServer {
  readonly id: string;
  readonly port: number;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  private proc: Spawned | undefined;
  private frozen = false;

  private constructor(private readonly opts: RedisServerOptions) {
    this.id = opts.id;
    this.port = opts.port;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `hafc-redis-${opts.id}-`));
    this.configFile = path.join(this.dir, 'redis.conf');
    this.logFile = path.join(this.dir, 'redis.log');
    const replicaOf = opts.replicaOf === undefined ? PLACEHOLDER : opts.replicaOf;
    const lines = [
      `port ${opts.port}`,
      'bind 127.0.0.1',
      'daemonize no',
      `dir ${this.dir}`,
      `logfile ${this.logFile}`,
      'save ""',
      'appendonly no',
      'repl-diskless-sync yes',
      'repl-diskless-sync-delay 0',
      ...(opts.password ? [`requirepass ${opts.password}`, `masterauth ${opts.password}`] : []),
      ...(replicaOf ? [`replicaof ${replicaOf.host} ${replicaOf.port}`] : []),
      ...(opts.extraConf ?? []),
    ];
    fs.writeFileSync(this.configFile, lines.join('\n') + '\n');
  }

  static async start(opts: RedisServerOptions): Promise<RedisServer> {
    const s = new RedisServer(opts);
    await s.restart();
    return s;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  pid(): number | undefined {
    return this.isRunning() ? this.proc?.child.pid : undefined;
  }

  isRunning(): boolean {
    const c = this.proc?.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  isFrozen(): boolean {
    return this.frozen && this.isRunning();
  }

  /**
   * (Re)starts it with the same config (what systemd's Restart= would do); resolves on PONG, or
   * with `listening` as soon as it answers anything (a LOADING error included).
   */
  async restart(timeoutMs = 15_000, until: 'pong' | 'listening' = 'pong'): Promise<void> {
    if (this.isRunning()) await this.kill('SIGKILL');
    fs.appendFileSync(
      this.logFile,
      `\n==== hafc harness: starting ${this.id} at ${new Date().toISOString()}\n`,
    );
    const proc = spawnRegistered(REDIS_SERVER, this.configFile, this.logFile);
    this.proc = proc;
    this.frozen = false;
    const died = proc.exited.then(() => {
      throw new Error(`redis ${this.id} exited while starting:\n${lastLines(this.logFile)}`);
    });
    died.catch(() => {});
    await Promise.race([
      waitFor(`redis ${this.id} (${this.address}) to answer PING`, () => this.answers(until), {
        timeoutMs,
        intervalMs: 50,
      }),
      died,
    ]);
  }

  /** One command on a fresh connection, bounded; throws what the server said or why it did not. */
  async command(args: string[], timeoutMs = 1000): Promise<unknown> {
    const c = this.client({ connectTimeout: timeoutMs, commandTimeout: timeoutMs });
    try {
      await c.connect();
      return await c.call(args[0]!, ...args.slice(1));
    } finally {
      c.disconnect();
    }
  }

  private async answers(until: 'pong' | 'listening'): Promise<boolean> {
    try {
      return String(await this.command(['PING'], 500)) === 'PONG';
    } catch (err) {
      return until === 'listening' && /LOADING/.test(String(err));
    }
  }

  async ping(): Promise<string | null> {
    try {
      return String(await this.command(['PING'], 500));
    } catch {
      return null;
    }
  }

  /** ROLE's first element ("master" / "slave"), or null when it does not answer. */
  async role(timeoutMs = 1000): Promise<string | null> {
    try {
      const r = (await this.command(['ROLE'], timeoutMs)) as unknown[];
      return String(r[0]);
    } catch {
      return null;
    }
  }

  /** An ioredis client for this server that never queues or resends a command (lazy: connect()). */
  client(more: RedisOptions = {}): Redis {
    const c = new Redis({
      host: '127.0.0.1',
      port: this.port,
      ...(this.opts.password ? { password: this.opts.password } : {}),
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...more,
    });
    c.on('error', () => {});
    return c;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 10_000): Promise<void> {
    const p = this.proc;
    if (!p || !this.isRunning()) return;
    try {
      p.child.kill(signal);
      if (this.frozen && signal !== 'SIGKILL' && signal !== 'SIGSTOP') p.child.kill('SIGCONT');
    } catch {
      // Exited meanwhile.
    }
    if (!(await settlesWithin(p.exited, timeoutMs)))
      throw new Error(`timed out after ${timeoutMs} ms waiting for redis ${this.id} to exit after ${signal}`);
    this.frozen = false;
  }

  freeze(): void {
    if (!this.isRunning()) throw new Error(`redis ${this.id} is not running: cannot freeze`);
    this.proc?.child.kill('SIGSTOP');
    this.frozen = true;
  }

  thaw(): void {
    if (!this.isRunning()) throw new Error(`redis ${this.id} is not running: cannot thaw`);
    this.proc?.child.kill('SIGCONT');
    this.frozen = false;
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    if (process.env.HAFC_KEEP_REDIS_DIRS !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface RedisPairOptions {
  password?: string;
  /** Make r2 a replica of r1 (else both start as replicas of the placeholder). @default false */
  replicate?: boolean;
  extraConf?: string[];
}

/** Two servers on loopback; with `replicate`, r1 is a master and r2 its replica, in sync. */
export class RedisPair {
  private constructor(readonly servers: [RedisServer, RedisServer]) {}

  static async start(opts: RedisPairOptions = {}): Promise<RedisPair> {
    const [p1, p2] = (await freePorts(2)) as [number, number];
    const common = { password: opts.password, extraConf: opts.extraConf };
    const r1 = await RedisServer.start({
      id: 'r1',
      port: p1,
      ...common,
      replicaOf: opts.replicate ? null : undefined,
    });
    let r2: RedisServer;
    try {
      r2 = await RedisServer.start({
        id: 'r2',
        port: p2,
        ...common,
        replicaOf: opts.replicate ? { host: '127.0.0.1', port: p1 } : undefined,
      });
    } catch (err) {
      await r1.stop();
      throw err;
    }
    const pair = new RedisPair([r1, r2]);
    if (opts.replicate) await pair.waitInSync(r2);
    return pair;
  }

  get r1(): RedisServer {
    return this.servers[0];
  }

  get r2(): RedisServer {
    return this.servers[1];
  }

  server(id: string): RedisServer {
    const s = this.servers.find((x) => x.id === id);
    if (!s) throw new Error(`no redis server ${id}`);
    return s;
  }

  /** Waits until `replica`'s link to its master is up. */
  async waitInSync(replica: RedisServer, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `redis ${replica.id} to be a replica with its master link up`,
      async () => {
        const r = (await replica.command(['ROLE'])) as unknown[];
        return r[0] === 'slave' && r[3] === 'connected';
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}
