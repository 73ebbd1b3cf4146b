/**
 * Real PostgreSQL 15 servers for integration tests and the benchmark: a primary made by initdb
 * (data checksums on, so pg_rewind works) and standbys cloned from it with pg_basebackup -R, on
 * loopback, random free ports, one temp dir per group owned by the OS user the servers run as.
 *
 * PostgreSQL refuses to run as root. When this process is root (CI, the dev machines) every
 * server and tool runs as Debian's `postgres` user through `runuser -u`, and the group's temp dir
 * is chowned to it; otherwise as ourselves.
 *
 * Process hygiene as in zk-ensemble.ts, with one twist: a postmaster is started by pg_ctl, which
 * detaches it (own session), and later often by a hafc agent rather than by us, so it is never
 * our child. `track()` therefore reads each data directory's postmaster.pid and puts every
 * postmaster it finds into the shared registry (marker: its data directory, which is on its
 * command line) with a watchdog; the global teardown fails a run that leaks one. `stop()` takes
 * down every postgres process whose command line names the group's directory.
 */
import { execFile, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startWatchdog } from './watchdog.js';
import { waitFor } from './wait.js';
import { pidAlive, register, unregister } from './proc-registry.js';
import { freePorts } from './zk-ensemble.js';

const execFileP = promisify(execFile);

export const PG_BIN = process.env.HAFC_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const KEEP_DIRS = process.env.HAFC_KEEP_PG_DIRS === '1';

/** The OS user the servers run as: `postgres` when we are root, else none (ourselves). */
export function pgOsUser(): string | undefined {
  return process.getuid?.() === 0 ? 'postgres' : undefined;
}

/** Whether the server binaries (and, as root, the postgres user) are there; tests gate on it. */
export function pgAvailable(): boolean {
  if (!fs.existsSync(path.join(PG_BIN, 'postgres')) || !fs.existsSync(path.join(PG_BIN, 'pg_rewind'))) {
    return false;
  }
  const user = pgOsUser();
  if (user === undefined) return true;
  try {
    execFileSync('id', ['-u', user], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** argv run as the servers' OS user. */
export function asPgUser(argv: string[]): string[] {
  const user = pgOsUser();
  return user === undefined ? argv : ['runuser', '-u', user, '--', ...argv];
}

async function pgTool(tool: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const [file, ...rest] = asPgUser([path.join(PG_BIN, tool), ...args]);
  try {
    const r = await execFileP(file!, rest, {
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    } as never);
    return `${String(r.stdout)}${String(r.stderr)}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${tool} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

function chownToPgUser(p: string): void {
  const user = pgOsUser();
  if (user === undefined) return;
  execFileSync('chown', ['-R', `${user}:${user}`, p]);
}

// ---------------------------------------------------------------------------------------------
// Process tracking

const tracked = new Map<number, { marker: string; watchdog: ChildProcess | undefined }>();

process.on('exit', () => {
  for (const [pid, t] of tracked) {
    if (!pidAlive(pid, t.marker)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** Every process (pid) whose parent is `ppid`. */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Pids of live processes whose command line contains `text`. */
function pidsWithCmdline(text: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(text) && /postgres/.test(cmd)) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One server

export interface PgQueryOptions {
  timeoutMs?: number;
}

export class PgServer {
  readonly dataDir: string;
  readonly logFile: string;

  constructor(
    readonly id: string,
    readonly port: number,
    private readonly groupDir: string,
  ) {
    this.dataDir = path.join(groupDir, id);
    this.logFile = path.join(groupDir, `${id}.log`);
  }

  /** The postmaster's pid from postmaster.pid, when it is alive. */
  pid(): number | null {
    try {
      const pid = Number(fs.readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && pidAlive(pid, this.dataDir) ? pid : null;
    } catch {
      return null;
    }
  }

  /** Registers the running postmaster (if any, and new) for cleanup. */
  track(): void {
    const pid = this.pid();
    if (pid === null || tracked.has(pid)) return;
    register(pid, this.dataDir, `postgres -D ${this.dataDir}`);
    tracked.set(pid, { marker: this.dataDir, watchdog: startWatchdog(pid, this.dataDir, `pg-${this.id}`) });
  }

  async start(): Promise<void> {
    await pgTool('pg_ctl', [
      '-D',
      this.dataDir,
      '-l',
      this.logFile,
      '-w',
      '-t',
      '30',
      '-o',
      `-p ${this.port}`,
      'start',
    ]);
    this.track();
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (this.pid() === null) return;
    await pgTool('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '30', 'stop']);
  }

  /** kill -9 of the whole server: the postmaster and every backend, as a crash would. */
  kill9(): void {
    const pid = this.pid();
    if (pid === null) return;
    const kids = childrenOf(pid);
    for (const p of [pid, ...kids]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** SIGSTOP / SIGCONT of every process of the server (the postmaster's group of children). */
  signalAll(sig: 'SIGSTOP' | 'SIGCONT'): void {
    const pid = this.pid();
    if (pid === null) return;
    for (const p of [pid, ...childrenOf(pid)]) {
      try {
        process.kill(p, sig);
      } catch {
        // gone
      }
    }
  }

  client(opts: PgQueryOptions = {}): pg.Client {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: this.port,
      user: 'postgres',
      database: 'postgres',
      connectionTimeoutMillis: opts.timeoutMs ?? 2000,
      query_timeout: opts.timeoutMs ?? 2000,
    });
    c.on('error', () => {});
    return c;
  }

  /** One query on a fresh connection; rejects on any failure or past the timeout. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
    opts: PgQueryOptions = {},
  ): Promise<R[]> {
    const c = this.client(opts);
    const timeoutMs = opts.timeoutMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    const hard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
        reject(new Error(`query on ${this.id} timed out after ${timeoutMs} ms: ${sql}`));
      }, timeoutMs + 500);
    });
    try {
      return await Promise.race([
        (async () => {
          await c.connect();
          const r = await c.query<R>(sql, params);
          return r.rows;
        })(),
        hard,
      ]);
    } finally {
      clearTimeout(timer);
      void c.end().catch(() => {});
    }
  }

  /** 'primary' | 'standby' from pg_is_in_recovery(), or null when it does not answer. */
  async role(timeoutMs = 1000): Promise<'primary' | 'standby' | null> {
    try {
      const rows = await this.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r', [], { timeoutMs });
      return rows[0]?.r ? 'standby' : 'primary';
    } catch {
      return null;
    }
  }

  /** The sender host:port this standby streams from, or null. */
  async streamingFrom(): Promise<string | null> {
    try {
      const rows = await this.query<{ h: string; p: number }>(
        "SELECT sender_host AS h, sender_port AS p FROM pg_stat_wal_receiver WHERE status = 'streaming'",
      );
      return rows[0] ? `${rows[0].h}:${rows[0].p}` : null;
    } catch {
      return null;
    }
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A primary and its standbys

export interface PgGroupOptions {
  /** Servers, the first the primary. @default 2 */
  nodes?: number;
  /** Ids. @default pg1, pg2, ... */
  ids?: string[];
  /** Extra postgresql.conf lines for every server. */
  conf?: string[];
  /** Leave the standbys as empty directories (to test bootstrapping by the agent). */
  noStandbys?: boolean;
}

const BASE_CONF = [
  "listen_addresses = '127.0.0.1'",
  'wal_level = replica',
  'max_wal_senders = 10',
  'max_replication_slots = 10',
  "wal_keep_size = '256MB'",
  'hot_standby = on',
  // The standby reports its positions every second, so the primary's view of it is fresh.
  "wal_receiver_status_interval = '1s'",
  'shared_buffers = 32MB',
  'max_connections = 60',
  // Speed on a shared 2-core machine; a process crash (what the tests inject) loses nothing
  // the kernel has, so acknowledged-write checks still mean what they say.
  'fsync = off',
  'full_page_writes = on',
  "log_line_prefix = '%m [%p] '",
];

export class PgGroup {
  readonly servers: PgServer[] = [];
  private tracker: NodeJS.Timeout | undefined;

  private constructor(readonly dir: string) {}

  static async start(opts: PgGroupOptions = {}): Promise<PgGroup> {
    // Short: the unix socket path (dir + /.s.PGSQL.NNNNN) must fit in 107 bytes.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hafc-pg-${process.pid}-`));
    chownToPgUser(dir);
    const g = new PgGroup(dir);
    try {
      const n = opts.nodes ?? 2;
      const ports = await freePorts(n);
      const ids = opts.ids ?? Array.from({ length: n }, (_, i) => `pg${i + 1}`);
      for (let i = 0; i < n; i++) g.servers.push(new PgServer(ids[i]!, ports[i]!, dir));
      const primary = g.servers[0]!;
      await pgTool('initdb', [
        '-D',
        primary.dataDir,
        '--data-checksums',
        '-A',
        'trust',
        '-U',
        'postgres',
        '-E',
        'UTF8',
      ]);
      fs.appendFileSync(
        path.join(primary.dataDir, 'postgresql.conf'),
        [
          '',
          '# hafc test harness',
          ...BASE_CONF,
          `unix_socket_directories = '${dir}'`,
          ...(opts.conf ?? []),
          '',
        ].join('\n'),
      );
      await primary.start();
      for (const s of g.servers.slice(1)) {
        if (opts.noStandbys) {
          fs.mkdirSync(s.dataDir, { mode: 0o700 });
          chownToPgUser(s.dataDir);
          continue;
        }
        await g.clone(s, primary);
        await s.start();
      }
      g.tracker = setInterval(() => g.track(), 250);
      g.tracker.unref();
      for (const s of g.servers.slice(1)) {
        if (opts.noStandbys) break;
        await waitFor(`${s.id} to stream from ${primary.id}`, () => s.streamingFrom(), { timeoutMs: 20_000 });
      }
      return g;
    } catch (err) {
      await g.stop();
      throw err;
    }
  }

  /** pg_basebackup -R of `from` into `s`'s (absent) data dir. */
  async clone(s: PgServer, from: PgServer): Promise<void> {
    await pgTool('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(from.port),
      '-U',
      'postgres',
      '-D',
      s.dataDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
  }

  server(id: string): PgServer {
    const s = this.servers.find((x) => x.id === id);
    if (!s) throw new Error(`no server ${id}`);
    return s;
  }

  track(): void {
    for (const s of this.servers) s.track();
  }

  describe(): string {
    return this.servers.map((s) => `--- ${s.id} (port ${s.port}) log:\n${s.logTail()}`).join('\n');
  }

  async stop(): Promise<void> {
    if (this.tracker) clearInterval(this.tracker);
    this.track();
    await killServersUnder(this.dir, this.servers);
    if (!KEEP_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Takes down `servers` (immediate shutdown) and then every postgres process whose command line
 * names `dir`, and forgets the tracked postmasters under it. Shared with harness/patroni.ts,
 * whose servers Patroni starts.
 */
export async function killServersUnder(dir: string, servers: PgServer[]): Promise<void> {
  // SIGCONT first: a stopped postmaster cannot act on SIGQUIT.
  for (const s of servers) s.signalAll('SIGCONT');
  await Promise.all(servers.map((s) => s.stop('immediate').catch(() => undefined)));
  const deadline = Date.now() + 5000;
  for (;;) {
    const left = pidsWithCmdline(dir);
    for (const p of left) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (left.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const [pid, t] of tracked) {
    if (!t.marker.startsWith(dir + path.sep)) continue;
    if (pidAlive(pid, t.marker)) continue;
    t.watchdog?.stdin?.end();
    tracked.delete(pid);
    unregister(pid);
  }
}
