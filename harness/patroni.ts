/**
 * Real Patroni daemons on a pair of real PostgreSQL 15 servers, for the comparison benchmark
 * (bench/patroni.ts). Debian's `patroni` package with ZooKeeper as its DCS (through kazoo), the
 * test ensemble of harness/zk-ensemble.ts as that ZooKeeper. Patroni bootstraps the cluster
 * itself: the first node runs initdb, the second a pg_basebackup of it.
 *
 * Each daemon gets its own YAML in the pair's temp dir, a REST API on a random loopback port and
 * runs as the servers' OS user (PostgreSQL refuses root): a wrapper script execs setpriv, env and
 * patroni in turn, so the pid we spawn is Patroni's own (kill -9 and SIGSTOP hit Patroni, not a
 * runuser parent) and its command line names its config file (the cleanup marker).
 *
 * Patroni starts the postmaster detached from itself (it survives Patroni's death, which is what
 * an agent kill is about), so postmasters are tracked as harness/postgres.ts does, by their
 * postmaster.pid, and stop() takes down every postgres process under the pair's directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { killServersUnder, PG_BIN, pgOsUser, PgServer } from './postgres.js';
import { spawnRegistered, type Spawned } from './redis.js';
import { waitFor } from './wait.js';
import { freePorts, type ZkEnsemble } from './zk-ensemble.js';

export const PATRONI_BIN = process.env.HAFC_PATRONI ?? '/usr/bin/patroni';

export function patroniAvailable(): boolean {
  return fs.existsSync(PATRONI_BIN) && fs.existsSync('/usr/lib/python3/dist-packages/kazoo');
}

/** Patroni's cluster-wide timing (its "dynamic configuration"), in seconds as Patroni takes them. */
export interface PatroniTiming {
  ttl: number;
  loopWait: number;
  retryTimeout: number;
  /** How long a crashed primary may take to start again before Patroni fails over. */
  primaryStartTimeout: number;
}

/** Patroni's own defaults (patroni/config.py). */
export const PATRONI_DEFAULT_TIMING: PatroniTiming = {
  ttl: 30,
  loopWait: 10,
  retryTimeout: 10,
  primaryStartTimeout: 300,
};

/**
 * The smallest values Patroni documents as accepted ("minimum possible value": ttl 20, loop_wait
 * 1, retry_timeout 3; newer releases refuse smaller ones, 3.0.2 takes them silently), which keep
 * its rule loop_wait + 2 x retry_timeout <= ttl; and primary_start_timeout 0, which makes a
 * crashed primary fail over at once instead of being restarted in place.
 */
export const PATRONI_FAST_TIMING: PatroniTiming = {
  ttl: 20,
  loopWait: 1,
  retryTimeout: 3,
  primaryStartTimeout: 0,
};

/** Rejects timing Patroni documents as not accepted, naming the value. */
export function checkPatroniTiming(t: PatroniTiming): void {
  const ints: Array<[string, number, number]> = [
    ['ttl', t.ttl, 20],
    ['loop_wait', t.loopWait, 1],
    ['retry_timeout', t.retryTimeout, 3],
    ['primary_start_timeout', t.primaryStartTimeout, 0],
  ];
  for (const [name, v, min] of ints) {
    if (!Number.isInteger(v) || v < min) {
      throw new Error(`Patroni ${name} must be an integer >= ${min} (seconds), got ${JSON.stringify(v)}`);
    }
  }
  if (t.loopWait + 2 * t.retryTimeout > t.ttl) {
    throw new Error(
      `Patroni timing breaks loop_wait + 2 x retry_timeout <= ttl: ${t.loopWait} + 2 x ${t.retryTimeout} > ${t.ttl}`,
    );
  }
}

export interface PatroniNodeConfig {
  scope: string;
  name: string;
  /** The pair's directory: data dirs, sockets, logs. */
  dir: string;
  restPort: number;
  pgPort: number;
  zkConnect: string;
  timing: PatroniTiming;
  /** synchronous_mode (with synchronous_mode_strict, as hafc's `synchronous: true` is strict). */
  synchronous: boolean;
  maximumLagOnFailover: number;
}

/** One Patroni daemon's YAML. */
export function patroniConfigYaml(c: PatroniNodeConfig): string {
  checkPatroniTiming(c.timing);
  const hosts = c.zkConnect.split(',').filter((h) => h !== '');
  if (hosts.length === 0)
    throw new Error(`Patroni zookeeper hosts: empty connect string ${JSON.stringify(c.zkConnect)}`);
  const pg = `127.0.0.1:${c.pgPort}`;
  const doc = {
    scope: c.scope,
    namespace: '/hafc-bench-patroni/',
    name: c.name,
    log: { level: 'INFO' },
    restapi: { listen: `127.0.0.1:${c.restPort}`, connect_address: `127.0.0.1:${c.restPort}` },
    zookeeper: { hosts },
    bootstrap: {
      dcs: {
        ttl: c.timing.ttl,
        loop_wait: c.timing.loopWait,
        retry_timeout: c.timing.retryTimeout,
        primary_start_timeout: c.timing.primaryStartTimeout,
        maximum_lag_on_failover: c.maximumLagOnFailover,
        synchronous_mode: c.synchronous,
        synchronous_mode_strict: c.synchronous,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          // The same server settings harness/postgres.ts gives hafc's pairs.
          parameters: {
            wal_level: 'replica',
            max_wal_senders: 10,
            max_replication_slots: 10,
            wal_keep_size: '256MB',
            hot_standby: 'on',
            wal_receiver_status_interval: '1s',
            max_connections: 60,
            fsync: 'off',
            full_page_writes: 'on',
          },
        },
      },
      initdb: ['data-checksums', { encoding: 'UTF8' }, { auth: 'trust' }],
    },
    postgresql: {
      listen: pg,
      connect_address: pg,
      data_dir: path.join(c.dir, c.name),
      bin_dir: PG_BIN,
      pgpass: path.join(c.dir, `pgpass-${c.name}`),
      authentication: {
        superuser: { username: 'postgres' },
        replication: { username: 'postgres' },
        rewind: { username: 'postgres' },
      },
      pg_hba: [
        'local all all trust',
        'host all all 127.0.0.1/32 trust',
        'host replication all 127.0.0.1/32 trust',
      ],
      parameters: {
        unix_socket_directories: c.dir,
        shared_buffers: '32MB',
        logging_collector: 'on',
        log_directory: c.dir,
        log_filename: `${c.name}.log`,
        log_line_prefix: '%m [%p] ',
      },
    },
    watchdog: { mode: 'off' },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
  return YAML.stringify(doc);
}

export class PatroniNode {
  proc: Spawned | null = null;
  readonly server: PgServer;
  readonly configFile: string;
  readonly logFile: string;

  constructor(
    readonly id: string,
    private readonly dir: string,
    private readonly wrapper: string,
    readonly restPort: number,
    pgPort: number,
  ) {
    this.server = new PgServer(id, pgPort, dir);
    this.configFile = path.join(dir, `patroni-${id}.yml`);
    this.logFile = path.join(dir, `patroni-${id}.out`);
  }

  start(): void {
    if (this.proc !== null) throw new Error(`Patroni ${this.id} is already running (pid ${this.pid()})`);
    const p = spawnRegistered(this.wrapper, this.configFile, this.logFile);
    this.proc = p;
    void p.exited.then(() => {
      if (this.proc === p) this.proc = null;
    });
  }

  pid(): number | null {
    return this.proc?.child.pid ?? null;
  }

  /** kill -9 of Patroni alone (its postmaster lives on). */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p === null) return;
    p.child.kill('SIGCONT');
    p.child.kill('SIGKILL');
    await p.exited;
  }

  freeze(): void {
    this.proc?.child.kill('SIGSTOP');
  }

  thaw(): void {
    this.proc?.child.kill('SIGCONT');
  }

  /** Patroni's own view of its member (GET /patroni on its REST API), or null if it does not answer. */
  async restStatus(timeoutMs = 1000): Promise<Record<string, unknown> | null> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.restPort}/patroni`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      // 503 is a replica's or a starting member's answer, with the same body.
      return (await res.json()) as Record<string, unknown>;
    } catch {
      return null;
    }
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no Patroni log)';
    }
  }
}

export interface PatroniPairOptions {
  ensemble: ZkEnsemble;
  scope: string;
  timing: PatroniTiming;
  synchronous: boolean;
  /** @default 1048576 (Patroni's default) */
  maximumLagOnFailover?: number;
  /** Bootstrap deadline. @default 120000 */
  timeoutMs?: number;
}

export class PatroniPair {
  readonly nodes: PatroniNode[] = [];
  private tracker: NodeJS.Timeout | undefined;

  private constructor(
    readonly dir: string,
    private readonly synchronous: boolean,
    private readonly timing: PatroniTiming,
  ) {}

  static async start(opts: PatroniPairOptions): Promise<PatroniPair> {
    checkPatroniTiming(opts.timing);
    // Short: the unix socket path (dir + /.s.PGSQL.NNNNN) must fit in 107 bytes.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-patroni-'));
    const pair = new PatroniPair(dir, opts.synchronous, opts.timing);
    try {
      const user = pgOsUser();
      const wrapper = path.join(dir, 'run-patroni.sh');
      // PATH without pyenv shims: Patroni's python must be Debian's, where psycopg2 and kazoo are.
      const env = `env HOME=${dir} PATH=/usr/bin:/bin`;
      const asUser = user === undefined ? '' : `setpriv --reuid=${user} --regid=${user} --init-groups `;
      fs.writeFileSync(wrapper, `#!/bin/sh\nexec ${asUser}${env} ${PATRONI_BIN} "$1"\n`, { mode: 0o755 });
      const [rest1, rest2, pg1, pg2] = await freePorts(4);
      const ids = ['pg1', 'pg2'];
      const rests = [rest1!, rest2!];
      const pgs = [pg1!, pg2!];
      for (let i = 0; i < 2; i++) {
        const node = new PatroniNode(ids[i]!, dir, wrapper, rests[i]!, pgs[i]!);
        fs.writeFileSync(
          node.configFile,
          patroniConfigYaml({
            scope: opts.scope,
            name: node.id,
            dir,
            restPort: node.restPort,
            pgPort: node.server.port,
            zkConnect: opts.ensemble.connectString(),
            timing: opts.timing,
            synchronous: opts.synchronous,
            maximumLagOnFailover: opts.maximumLagOnFailover ?? 1_048_576,
          }),
        );
        pair.nodes.push(node);
      }
      if (user !== undefined) fs.chownSync(dir, ...uidGid(user));
      for (const f of fs.readdirSync(dir)) {
        if (user !== undefined) fs.chownSync(path.join(dir, f), ...uidGid(user));
      }
      pair.tracker = setInterval(() => pair.track(), 250);
      pair.tracker.unref();
      const timeoutMs = opts.timeoutMs ?? 120_000;
      const [first, second] = pair.nodes;
      // The first alone, so that it is the one that runs initdb and takes the leader key.
      first!.start();
      await waitFor(
        `Patroni ${first!.id} to bootstrap a primary`,
        async () => (await first!.server.role()) === 'primary',
        { timeoutMs, intervalMs: 200 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${pair.describe()}`);
      });
      second!.start();
      await pair.settled(timeoutMs);
      return pair;
    } catch (err) {
      await pair.stop();
      throw err;
    }
  }

  node(id: string): PatroniNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no Patroni node ${id}`);
    return n;
  }

  other(id: string): PatroniNode {
    return this.nodes.find((x) => x.id !== id)!;
  }

  track(): void {
    for (const n of this.nodes) n.server.track();
  }

  /**
   * Waits for one primary whose standby streams from it, and for Patroni to have named that
   * standby its synchronous standby in ZooKeeper (the /sync key).
   *
   * The second half is Patroni's own idea of a settled pair and the bench must wait for it: in
   * synchronous_mode Patroni promotes only the leader or a member the /sync key names, and the
   * leader writes a standby into /sync only after it has seen it replicate synchronously (on
   * 3.0.2 a loop, a 2 s sleep, a second look). A standby that already streams, even one
   * PostgreSQL already lists as synchronous, is for a few seconds not electable. A fault in that
   * window (the bench started one right after a rejoin) leaves the pair without a primary for as
   * long as the fault lasts, the replica logging "following a different leader because i am not
   * the healthiest node" every loop_wait: issue 11's "Patroni did not fail over".
   */
  async settled(timeoutMs: number): Promise<PatroniNode> {
    const primary = await waitForSettledPair(
      this.nodes.map((n) => n.server),
      timeoutMs,
      () => this.describe(),
    ).then((s) => this.node(s.id));
    if (!this.synchronous) return primary;
    const standby = this.other(primary.id);
    // Held for a loop_wait and a second, so that each Patroni has run a loop on the settled
    // pair. A glance is not enough: after a crash restarted in place the leader named the
    // standby and 30 ms later took it out again ("Updating synchronous privilege temporarily
    // from ['pg2'] to []"), its walreceiver restarting for the new timeline.
    const holdMs = (this.timing.loopWait + 1) * 1000;
    let since: number | null = null;
    await waitFor(
      `Patroni ${primary.id} to name ${standby.id} its synchronous standby for ${holdMs} ms (sync_standby in ${standby.id}'s GET /patroni)`,
      async () => {
        const [p, s, from] = await Promise.all([
          primary.restStatus(),
          standby.restStatus(),
          standby.server.streamingFrom(),
        ]);
        const ok =
          (p?.role === 'master' || p?.role === 'primary') &&
          s?.role === 'replica' &&
          s.sync_standby === true &&
          from === `127.0.0.1:${primary.server.port}`;
        if (!ok) since = null;
        else since ??= Date.now();
        return since !== null && Date.now() - since >= holdMs;
      },
      { timeoutMs, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.describe()}`);
    });
    return primary;
  }

  describe(): string {
    return this.nodes
      .map(
        (n) =>
          `--- Patroni ${n.id} (pid ${n.pid()}):\n${n.logTail()}\n--- ${n.id} server log:\n${n.server.logTail(15)}`,
      )
      .join('\n');
  }

  async stop(): Promise<void> {
    if (this.tracker) clearInterval(this.tracker);
    this.track();
    await Promise.all(this.nodes.map((n) => n.kill()));
    await killServersUnder(
      this.dir,
      this.nodes.map((n) => n.server),
    );
    if (process.env.HAFC_KEEP_PG_DIRS !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function uidGid(user: string): [number, number] {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  const f = line?.split(':');
  if (!f || f.length < 4) throw new Error(`no OS user ${JSON.stringify(user)} in /etc/passwd`);
  return [Number(f[2]), Number(f[3])];
}

/** One server answers primary and every other one streams from it; both sides of the bench. */
export async function waitForSettledPair(
  servers: PgServer[],
  timeoutMs: number,
  describe: () => string = () => '',
): Promise<PgServer> {
  let primary: PgServer | undefined;
  try {
    return await waitFor(
      'one primary with its standby streaming from it',
      async () => {
        const roles = await Promise.all(servers.map((s) => s.role()));
        const primaries = servers.filter((_, i) => roles[i] === 'primary');
        if (primaries.length !== 1) return undefined;
        primary = primaries[0]!;
        for (const s of servers) {
          if (s === primary) continue;
          if ((await s.streamingFrom()) !== `127.0.0.1:${primary.port}`) return undefined;
        }
        return primary;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message} (last primary seen: ${primary?.id ?? 'none'})\n${describe()}`);
  }
}
