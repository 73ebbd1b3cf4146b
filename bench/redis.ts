/**
 * `npm run bench:redis`: hafc versus Redis Sentinel on the same kind of Redis pair, one controller
 * at a time (never both on a pair: each trial starts a fresh pair with only its controller).
 *
 *   hafc             two `hafc agent` processes (the redis agent, the fast profile the tests use:
 *                    session 4 s, health 200 ms x 2, graceful fence then kill by pid) on a
 *                    one-server ZooKeeper;
 *   hafc-fast        the same with health 200 ms x fall 1, timeout 150 (HAFC_FAST below);
 *   sentinel-default three redis-sentinel processes, quorum 2, down-after-milliseconds 30000 and
 *                    failover-timeout 180000 (Sentinel's defaults);
 *   sentinel-fast    the same with --fast-down-after-ms (default 100) and --fast-failover-timeout-ms
 *                    (default 1000).
 *
 * Faults, on the current master: crash (kill -9; a supervisor restarts it 200 ms later, as
 * systemd would) and freeze (SIGSTOP of the server alone, SIGCONT once the other server accepts a
 * write or after 60 s). Measured from just before the fault, by the split-brain checker of
 * harness/redis-checker.ts (a SET on each server every 20 ms, a client's numbered writes with
 * WAIT 1): failover time (fault -> the first write the other server accepts), the client's longest
 * run of failed writes, and writes accepted by the old master after the other was promoted (each
 * one is lost: the old master re-syncs from the new one). Then idle CPU (utime+stime over 10 s)
 * and RSS of the controllers' processes on a settled pair.
 *
 * Progress on stderr; stdout gets a table, then one JSON line (also in --out FILE).
 *
 *   node dist/bench/redis.js [--iterations N] [--only hafc,sentinel-fast,...] [--out FILE]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { RedisChecker, checkerNow } from '../harness/redis-checker.js';
import { RedisCluster } from '../harness/redis-cluster.js';
import { REDIS_SENTINEL, spawnRegistered, type RedisServer, type Spawned } from '../harness/redis.js';
import { waitFor } from '../harness/wait.js';
import { freePorts, ZkEnsemble } from '../harness/zk-ensemble.js';

type Mode = 'hafc' | 'hafc-fast' | 'sentinel-default' | 'sentinel-fast';
type Fault = 'crash' | 'freeze';
const MODES: Mode[] = ['hafc', 'hafc-fast', 'sentinel-default', 'sentinel-fast'];

/**
 * hafc-fast: about as aggressive as sentinel-fast's 100 ms down-after. One check (every 200 ms)
 * that gets no answer within 150 ms makes the master NOT_RESPONDING (timeoutMs must stay below
 * intervalMs x fall); the agent's calls have 300 ms, the graceful fence's first answer 100 ms.
 * On a busy host such a profile fails over on a stall of 150 ms, as Sentinel does on one of 100.
 */
const HAFC_FAST = {
  health: '{ intervalMs: 200, timeoutMs: 150, fall: 1, rise: 1, check: agent }',
  requestTimeoutMs: 300,
  gracefulFenceTimeoutMs: 100,
};
const FAULTS: Fault[] = ['crash', 'freeze'];

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '3' },
    only: { type: 'string' },
    out: { type: 'string' },
    'fast-down-after-ms': { type: 'string', default: '100' },
    'fast-failover-timeout-ms': { type: 'string', default: '1000' },
  },
});
const iterations = Number(values.iterations);
const modes = values.only ? (values.only.split(',') as Mode[]) : MODES;
for (const m of modes) if (!MODES.includes(m)) throw new Error(`--only: unknown mode ${JSON.stringify(m)}`);
const fastDownAfter = Number(values['fast-down-after-ms']);
const fastFailoverTimeout = Number(values['fast-failover-timeout-ms']);

const t00 = Date.now();
const progress = (s: string): void => {
  process.stderr.write(`[bench:redis ${((Date.now() - t00) / 1000).toFixed(1).padStart(6)}s] ${s}\n`);
};

// --- Sentinel ---------------------------------------------------------------------------------

class Sentinels {
  private constructor(
    readonly dir: string,
    readonly ports: number[],
    readonly procs: Spawned[],
  ) {}

  static async start(
    master: RedisServer,
    downAfterMs: number,
    failoverTimeoutMs: number,
  ): Promise<Sentinels> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-sentinel-'));
    const ports = await freePorts(3);
    const procs = ports.map((port, i) => {
      const conf = path.join(dir, `sentinel-${i}.conf`);
      fs.writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'daemonize no',
          `dir ${dir}`,
          `sentinel monitor m 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds m ${downAfterMs}`,
          `sentinel failover-timeout m ${failoverTimeoutMs}`,
          'sentinel parallel-syncs m 1',
          '',
        ].join('\n'),
      );
      return spawnRegistered(REDIS_SENTINEL, conf, path.join(dir, `sentinel-${i}.log`));
    });
    const s = new Sentinels(dir, ports, procs);
    await waitFor(
      'each sentinel to know the replica and the two other sentinels',
      async () => {
        for (const port of ports) {
          const r = await command(port, ['SENTINEL', 'MASTER', 'm']);
          const f = new Map<string, string>();
          const arr = r as string[];
          for (let i = 0; i + 1 < arr.length; i += 2) f.set(arr[i]!, arr[i + 1]!);
          if (f.get('num-slaves') !== '1' || f.get('num-other-sentinels') !== '2') return false;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    return s;
  }

  pids(): number[] {
    return this.procs.map((p) => p.child.pid!).filter((p) => p !== undefined);
  }

  async stop(): Promise<void> {
    for (const p of this.procs) p.child.kill('SIGKILL');
    await Promise.all(this.procs.map((p) => p.exited));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function command(port: number, args: string[]): Promise<unknown> {
  const { Redis } = await import('ioredis');
  const c = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    commandTimeout: 1000,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call(args[0]!, ...args.slice(1));
  } finally {
    c.disconnect();
  }
}

// --- one trial ---------------------------------------------------------------------------------

interface TrialResult {
  mode: Mode;
  fault: Fault;
  failoverMs: number | null;
  outageMs: number;
  staleWrites: number;
  acked: number;
  ackedLost: number;
}

interface Rig {
  cluster: RedisCluster;
  sentinels?: Sentinels;
  stop(): Promise<void>;
}

async function startRig(mode: Mode, zk: ZkEnsemble, n: number): Promise<Rig> {
  if (mode === 'hafc' || mode === 'hafc-fast') {
    const cluster = await RedisCluster.start({
      ensemble: zk,
      cluster: `bench-${n}`,
      maxLag: 1_048_576,
      // A frozen master's kernel accepts the connection: the fence can only time out, and a
      // healthy server answers INFO in well under a millisecond.
      gracefulFenceTimeoutMs: 150,
      ...(mode === 'hafc-fast' ? HAFC_FAST : {}),
    });
    await cluster.settled(30_000);
    return { cluster, stop: () => cluster.stop() };
  }
  const cluster = await RedisCluster.start({ ensemble: zk, agents: false });
  const [r1, r2] = cluster.pair.servers;
  await r1.command(['REPLICAOF', 'NO', 'ONE']);
  await r2.command(['REPLICAOF', '127.0.0.1', String(r1.port)]);
  await cluster.settled(30_000);
  // A Sentinel deployment's files say what Sentinel last set (it rewrites them on each change):
  // a restarted master comes back as a master, as the Sentinel docs describe.
  for (const s of [r1, r2]) await s.command(['CONFIG', 'REWRITE']);
  const sentinels =
    mode === 'sentinel-default'
      ? await Sentinels.start(r1, 30_000, 180_000)
      : await Sentinels.start(r1, fastDownAfter, fastFailoverTimeout);
  return {
    cluster,
    sentinels,
    stop: async () => {
      await sentinels.stop();
      await cluster.stop();
    },
  };
}

async function trial(rig: Rig, mode: Mode, fault: Fault): Promise<TrialResult> {
  const { master, replica } = await rig.cluster.settled(120_000);
  const checker = new RedisChecker(rig.cluster.pair.servers).start();
  try {
    await waitFor('100 acknowledged writes before the fault', () => checker.acknowledged().length >= 100, {
      timeoutMs: 20_000,
    });
    const t0 = checkerNow();
    if (fault === 'crash') await master.kill('SIGKILL');
    else master.freeze();
    const limit = fault === 'crash' ? 120_000 : 60_000;
    const first = await waitFor(
      `${replica.id} to accept a write after the ${fault} of ${master.id}`,
      () => checker.events.find((e) => e.node === replica.id && e.result === 'OK' && e.sentAt > t0),
      { timeoutMs: limit, intervalMs: 10 },
    ).catch(() => undefined);
    if (master.isFrozen()) master.thaw();
    // Let a thawed old master show what it accepts before it is demoted (or killed).
    await new Promise((r) => setTimeout(r, 3000));
    const { master: now } = await rig.cluster.settled(120_000);
    const acked = checker.acknowledged();
    let ackedLost = 0;
    for (let i = 0; i < acked.length; i += 500) {
      const keys = acked.slice(i, i + 500);
      const vals = (await now.command(['MGET', ...keys], 5000)) as Array<string | null>;
      ackedLost += vals.filter((v) => v === null).length;
    }
    return {
      mode,
      fault,
      failoverMs: first ? Math.round(first.doneAt - t0) : null,
      outageMs: Math.round(checker.longestOutageMs(t0)),
      staleWrites: checker.violations().length,
      acked: acked.length,
      ackedLost,
    };
  } finally {
    await checker.stop();
  }
}

// --- idle cost ---------------------------------------------------------------------------------

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function idle(rig: Rig): Promise<{ cpuPercent: number; rssKiB: number; processes: number }> {
  const pids = rig.sentinels ? rig.sentinels.pids() : [...rig.cluster.agents.values()].map((a) => a.pid);
  await new Promise((r) => setTimeout(r, 3000));
  const before = pids.map(cpuTicks);
  const ms = 10_000;
  await new Promise((r) => setTimeout(r, ms));
  const ticks = pids.map(cpuTicks).reduce((s, v, i) => s + v - before[i]!, 0);
  const hz = 100; // USER_HZ on Linux
  return {
    cpuPercent: Math.round(((ticks / hz) * 1000 * 100 * 100) / ms) / 100,
    rssKiB: pids.map(rssKiB).reduce((a, b) => a + b, 0),
    processes: pids.length,
  };
}

// --- main --------------------------------------------------------------------------------------

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : Math.round((s[n / 2 - 1]! + s[n / 2]!) / 2);
};

async function main(): Promise<void> {
  const zk = await ZkEnsemble.start({ servers: 1 });
  const results: TrialResult[] = [];
  const idleCost: Record<string, unknown> = {};
  let n = 0;
  try {
    for (const mode of modes) {
      const rig = await startRig(mode, zk, ++n);
      try {
        idleCost[mode] = await idle(rig);
        progress(`${mode} idle: ${JSON.stringify(idleCost[mode])}`);
        for (let i = 0; i < iterations; i++) {
          for (const fault of FAULTS) {
            const r = await trial(rig, mode, fault);
            progress(`${mode} ${fault} #${i + 1}: ${JSON.stringify(r)}`);
            results.push(r);
          }
        }
      } finally {
        await rig.stop();
      }
    }
  } finally {
    await zk.stop();
  }
  const rows = modes.flatMap((mode) =>
    FAULTS.map((fault) => {
      const rs = results.filter((r) => r.mode === mode && r.fault === fault);
      return {
        mode,
        fault,
        trials: rs.length,
        failoverMsMedian: median(rs.flatMap((r) => (r.failoverMs === null ? [] : [r.failoverMs]))),
        failoverMsMax: Math.max(...rs.map((r) => r.failoverMs ?? Infinity)),
        outageMsMedian: median(rs.map((r) => r.outageMs)),
        staleWritesTotal: rs.reduce((s, r) => s + r.staleWrites, 0),
        ackedLostTotal: rs.reduce((s, r) => s + r.ackedLost, 0),
        noFailover: rs.filter((r) => r.failoverMs === null).length,
      };
    }),
  );
  const table = [
    '| controller | fault | trials | failover median (max) ms | client outage median ms | stale writes | acked lost |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.mode} | ${r.fault} | ${r.trials} | ${r.failoverMsMedian} (${r.failoverMsMax}) | ${r.outageMsMedian} | ${r.staleWritesTotal} | ${r.ackedLostTotal} |`,
    ),
    '',
    '| controller | processes | idle CPU % (all, 10 s) | RSS KiB (all) |',
    '| --- | --- | --- | --- |',
    ...Object.entries(idleCost).map(([m, v]) => {
      const c = v as { processes: number; cpuPercent: number; rssKiB: number };
      return `| ${m} | ${c.processes} | ${c.cpuPercent} | ${c.rssKiB} |`;
    }),
  ].join('\n');
  const json = JSON.stringify({
    ok: true,
    redis: {
      iterations,
      fastDownAfterMs: fastDownAfter,
      fastFailoverTimeoutMs: fastFailoverTimeout,
      rows,
      idle: idleCost,
      trials: results,
    },
  });
  process.stdout.write(`${table}\n${json}\n`);
  if (values.out) fs.writeFileSync(values.out, json + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err) }) + '\n');
    process.exit(1);
  },
);
