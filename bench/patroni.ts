/**
 * `npm run bench:patroni`: hafc versus Patroni on the same kind of PostgreSQL 15 pair, one
 * controller at a time (each setup gets a fresh pair with only its controller on it), all on one
 * ZooKeeper server, in one run. Both sides replicate synchronously and strictly (hafc's
 * `synchronous: true`; Patroni's synchronous_mode with synchronous_mode_strict): a commit is
 * acknowledged only once the standby has it, also right after a failover.
 *
 *   patroni-default  Patroni's defaults: ttl 30, loop_wait 10, retry_timeout 10,
 *                    primary_start_timeout 300 (a crashed primary is restarted in place);
 *   patroni-fast     the smallest values Patroni documents as accepted: ttl 20, loop_wait 1,
 *                    retry_timeout 3, and primary_start_timeout 0 (fail over on a crash);
 *   hafc-default     config/postgresql.yaml's settings (session 10 s, health 1 s x 3, ...);
 *   hafc-fast        the integration test's profile (session 4 s, health 200 ms x 2).
 *
 * Faults, on the current primary: crash (kill -9 of the postmaster and its backends), agentKill
 * (kill -9 of Patroni / of the hafc agent; restarted, as systemd would, once the other server is
 * promoted or after 120 s) and freeze (SIGSTOP of the server and its agent; SIGCONT once the other
 * server is promoted or after 120 s). Measured from the fault by harness/pg-checker.ts (a client
 * writing numbered rows to the server it sampled as primary) and bench/pg-probe.ts (a write to
 * each server every 20 ms): see TrialResult. Then idle CPU and RSS of the controllers' processes
 * over 10 s on a settled pair. A measurement tool: it asserts nothing about speed.
 *
 * Progress on stderr; stdout gets the tables, then one JSON line (also in --out FILE).
 *
 *   node dist/bench/patroni.js [--iterations N] [--only SETUP[,SETUP]] [--faults FAULT[,FAULT]]
 *                              [--out FILE]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { PgChecker } from '../harness/pg-checker.js';
import { KILL_POSTMASTER, PgHa } from '../harness/pg-cluster.js';
import {
  PATRONI_DEFAULT_TIMING,
  PATRONI_FAST_TIMING,
  PatroniPair,
  patroniAvailable,
  waitForSettledPair,
} from '../harness/patroni.js';
import { PG_BIN, pgAvailable, pgOsUser, type PgServer } from '../harness/postgres.js';
import { waitFor } from '../harness/wait.js';
import { ZkEnsemble } from '../harness/zk-ensemble.js';
import { PgProbe } from './pg-probe.js';
import {
  aggregate,
  FAULTS,
  ratios,
  renderTables,
  SETUPS,
  type Fault,
  type IdleCost,
  type Setup,
  type TrialResult,
} from './patroni-report.js';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '3' },
    only: { type: 'string' },
    faults: { type: 'string' },
    out: { type: 'string' },
  },
});
const iterations = Number(values.iterations);
if (!Number.isInteger(iterations) || iterations < 1) {
  throw new Error(`--iterations must be a positive integer, got ${JSON.stringify(values.iterations)}`);
}
const setups: Setup[] = values.only ? (values.only.split(',') as Setup[]) : [...SETUPS];
for (const s of setups) {
  if (!SETUPS.includes(s))
    throw new Error(`--only: unknown setup ${JSON.stringify(s)} (one of ${SETUPS.join(', ')})`);
}

// One fault at a time, to read one controller's logs for one fault (HAFC_KEEP_PG_DIRS=1).
const faults: Fault[] = values.faults ? (values.faults.split(',') as Fault[]) : [...FAULTS];
for (const f of faults) {
  if (!FAULTS.includes(f))
    throw new Error(`--faults: unknown fault ${JSON.stringify(f)} (one of ${FAULTS.join(', ')})`);
}

const FAULT_LIMIT_MS = 120_000;

const t00 = Date.now();
const progress = (s: string): void => {
  process.stderr.write(`[bench:patroni ${((Date.now() - t00) / 1000).toFixed(1).padStart(6)}s] ${s}\n`);
};

// --- the two kinds of rig behind one face ---------------------------------------------------

interface RigNode {
  id: string;
  server: PgServer;
  killAgent(): Promise<void>;
  startAgent(): void;
  freezeAgent(): void;
  thawAgent(): void;
  agentPids(): number[];
}

interface Rig {
  nodes: RigNode[];
  /** Waits until the pair is ready for a fault, by the controller's own standard too; the primary. */
  settled(timeoutMs: number): Promise<PgServer>;
  stop(): Promise<void>;
  describe(): string;
}

async function startPatroni(setup: Setup, zk: ZkEnsemble, n: number): Promise<Rig> {
  const pair = await PatroniPair.start({
    ensemble: zk,
    scope: `bench-${n}`,
    timing: setup === 'patroni-fast' ? PATRONI_FAST_TIMING : PATRONI_DEFAULT_TIMING,
    synchronous: true,
  });
  progress(`${setup}: Patroni pair in ${pair.dir} (kept with HAFC_KEEP_PG_DIRS=1)`);
  return {
    nodes: pair.nodes.map((p) => ({
      id: p.id,
      server: p.server,
      killAgent: () => p.kill(),
      startAgent: () => p.start(),
      freezeAgent: () => p.freeze(),
      thawAgent: () => p.thaw(),
      agentPids: () => {
        const pid = p.pid();
        return pid === null ? [] : [pid];
      },
    })),
    // Not only streaming: Patroni must have written the standby into its /sync key, or it will
    // not promote it (PatroniPair.settled).
    settled: async (timeoutMs) => (await pair.settled(timeoutMs)).server,
    stop: () => pair.stop(),
    describe: () => pair.describe(),
  };
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** config/postgresql.yaml with only the addresses, paths and the test fence replaced. */
function hafcDefaultConfig(cluster: string, connect: string, server: PgServer): string {
  const doc = YAML.parse(fs.readFileSync(path.join(repoRoot, 'config/postgresql.yaml'), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  const user = pgOsUser();
  doc.cluster = cluster as never;
  doc.node = { ...doc.node, id: server.id, host: '127.0.0.1', port: server.port };
  doc.zookeeper = { ...doc.zookeeper, connect };
  const service: Record<string, unknown> = {
    ...doc.service,
    dataDir: server.dataDir,
    binDir: PG_BIN,
    logFile: server.logFile,
  };
  if (user === undefined) delete service.osUser;
  else service.osUser = user;
  doc.service = service;
  doc.fencing = { ...doc.fencing, methods: ['graceful', { shell: KILL_POSTMASTER }] };
  doc.control = { ...doc.control, listen: '127.0.0.1:0' };
  // JSON lines: the harness follows the agent's role in them.
  doc.log = { level: 'info', format: 'json' };
  return YAML.stringify(doc);
}

/**
 * hafc-fast's graceful fence deadline: the profile's health timeout. A frozen host's kernel
 * accepts the connection, so the agent's requestTimeoutMs (1000) would all be waited out first.
 */
const GRACEFUL_FENCE_FAST_MS = 300;

async function startHafc(setup: Setup, zk: ZkEnsemble, n: number): Promise<Rig> {
  const cluster = `bench-${n}`;
  const ha = await PgHa.start({
    ensemble: zk,
    cluster,
    synchronous: true,
    logLevel: 'info',
    ...(setup === 'hafc-default'
      ? { configYaml: (s: PgServer) => hafcDefaultConfig(cluster, zk.connectString(), s) }
      : { sessionTimeoutMs: 4000, gracefulFenceTimeoutMs: GRACEFUL_FENCE_FAST_MS }),
  });
  progress(`${setup}: hafc pair in ${ha.group.dir} (kept with HAFC_KEEP_PG_DIRS=1)`);
  return {
    nodes: ha.nodes.map((node) => ({
      id: node.id,
      server: node.server,
      killAgent: async () => {
        await node.agent?.kill('SIGKILL');
      },
      startAgent: () => {
        ha.startAgent(node.id);
      },
      freezeAgent: () => node.agent?.freeze(),
      thawAgent: () => node.agent?.thaw(),
      agentPids: () => (node.agent && !node.agent.hasExited() ? [node.agent.pid] : []),
    })),
    settled: (timeoutMs) =>
      waitForSettledPair(
        ha.nodes.map((x) => x.server),
        timeoutMs,
        () => ha.describe(),
      ),
    stop: async () => {
      // The agents log to pipes: with HAFC_KEEP_PG_DIRS=1 keep their logs and the servers' in a
      // directory of their own, as any vitest run's global setup deletes a dead pid's hafc-pg-*.
      if (process.env.HAFC_KEEP_PG_DIRS === '1') {
        const logDir = path.join(os.tmpdir(), `hafc-bench-logs-${process.pid}-${cluster}`);
        fs.mkdirSync(logDir, { recursive: true });
        for (const node of ha.nodes) {
          if (node.agent) fs.writeFileSync(path.join(logDir, `agent-${node.id}.log`), node.agent.rawLog());
          if (fs.existsSync(node.server.logFile))
            fs.copyFileSync(node.server.logFile, path.join(logDir, `${node.id}.log`));
        }
        progress(`${setup}: agent and server logs kept in ${logDir}`);
      }
      await ha.stop();
    },
    describe: () => ha.describe(),
  };
}

function startRig(setup: Setup, zk: ZkEnsemble, n: number): Promise<Rig> {
  return setup.startsWith('patroni') ? startPatroni(setup, zk, n) : startHafc(setup, zk, n);
}

// --- one trial -------------------------------------------------------------------------------

async function trial(rig: Rig, setup: Setup, fault: Fault, k: number): Promise<TrialResult> {
  const servers = rig.nodes.map((x) => x.server);
  const primary = await rig.settled(FAULT_LIMIT_MS);
  const old = rig.nodes.find((x) => x.server === primary)!;
  const other = rig.nodes.find((x) => x !== old)!;
  const checker = await PgChecker.start(servers, `rows_${k}`);
  const probe = await PgProbe.start(servers, primary, `probe_${k}`);
  try {
    await waitFor(
      '50 acknowledged client writes before the fault',
      () => checker.acknowledged().length >= 50,
      {
        timeoutMs: 30_000,
      },
    );
    const t0 = Date.now();
    if (fault === 'crash') old.server.kill9();
    else if (fault === 'agentKill') await old.killAgent();
    else {
      old.server.signalAll('SIGSTOP');
      old.freezeAgent();
    }
    const tFault = Date.now();
    // The other's promotion, or (a crash Patroni restarts in place) the old one writing again.
    const promoted = await waitFor(
      `${other.id} to be promoted, or ${old.id} to take writes again, after the ${fault}`,
      () =>
        checker.promotions.find((p) => p.node === other.id && p.at >= t0) ??
        (fault === 'crash' && probe.firstOk(old.id, tFault) ? ('in place' as const) : undefined),
      { timeoutMs: FAULT_LIMIT_MS, intervalMs: 10 },
    ).catch(() => undefined);
    if (fault === 'agentKill') old.startAgent();
    if (fault === 'freeze') {
      old.server.signalAll('SIGCONT');
      old.thawAgent();
    }
    const final = await waitForSettledPair(servers, FAULT_LIMIT_MS, () => rig.describe());
    // Long enough for a thawed or orphaned old primary to show what it still acknowledges.
    const settledAt = Date.now();
    await waitFor(
      `20 acknowledged client writes on ${final.id} after the pair settled`,
      () =>
        checker.writes.filter((w) => w.result === 'ok' && w.node === final.id && w.start >= settledAt)
          .length >= 20,
      { timeoutMs: 60_000 },
    );
    await probe.stop();
    await checker.stop();
    const promotion = typeof promoted === 'object' ? promoted : undefined;
    const firstOther = probe.firstOk(other.id, tFault);
    if (process.env.HAFC_BENCH_TRACE) {
      const rel = (t: number): number => t - t0;
      progress(
        `${setup} ${fault} #${k} trace (ms from the fault):\n` +
          checker.promotions.map((p) => `  promoted ${p.node} @${rel(p.at)}`).join('\n') +
          '\n' +
          checker.writes
            .filter((w) => w.end >= t0 - 50 && w.start <= t0 + 15_000)
            .map(
              (w) =>
                `  #${w.n} ${w.node} ${w.result} ${rel(w.start)}..${rel(w.end)}${w.error ? ` ${w.error}` : ''}`,
            )
            .join('\n'),
      );
    }
    const clientLost = await checker.missing(final);
    const probeLost = await probe.lost(final);
    return {
      setup,
      fault,
      promotedMs: promotion ? promotion.at - t0 : null,
      failoverMs: firstOther ? firstOther.doneAt - t0 : null,
      outageMs: checker.unavailableMsAfter(t0),
      staleWrites: promotion ? probe.okAfter(old.id, promotion.at).length : 0,
      ackedLost: clientLost.length + probeLost.length,
      checkerViolations: checker.violations.length,
      endedOn: final === other.server ? 'other' : 'same',
    };
  } finally {
    // Whatever happened, nothing stays stopped or dead for the next trial.
    old.server.signalAll('SIGCONT');
    old.thawAgent();
    if (old.agentPids().length === 0) old.startAgent();
    await probe.stop();
    await checker.stop();
  }
}

// --- idle cost -------------------------------------------------------------------------------

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function idle(rig: Rig): Promise<IdleCost> {
  await rig.settled(FAULT_LIMIT_MS);
  const pids = rig.nodes.flatMap((x) => x.agentPids());
  const before = pids.map(cpuTicks);
  const ms = 10_000;
  // A measurement window, not a synchronisation: the processes run undisturbed for 10 s.
  await new Promise((r) => setTimeout(r, ms));
  const ticks = pids.map(cpuTicks).reduce((s, v, i) => s + v - before[i]!, 0);
  const hz = 100; // USER_HZ on Linux
  return {
    cpuPercent: Math.round(((ticks / hz) * 1000 * 100 * 100) / ms) / 100,
    rssKiB: pids.map(rssKiB).reduce((a, b) => a + b, 0),
    processes: pids.length,
  };
}

// --- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!pgAvailable()) throw new Error(`PostgreSQL 15 is not installed in ${PG_BIN} (bash scripts/setup.sh)`);
  if (setups.some((s) => s.startsWith('patroni')) && !patroniAvailable()) {
    throw new Error('Patroni or python3-kazoo is not installed (bash scripts/setup.sh)');
  }
  // Patroni's ttl is its ZooKeeper session timeout; the server must grant 30 s.
  const zk = await ZkEnsemble.start({ servers: 1, maxSessionTimeoutMs: 60_000 });
  const results: TrialResult[] = [];
  const idleCost: Partial<Record<Setup, IdleCost>> = {};
  let n = 0;
  let k = 0;
  try {
    for (const setup of setups) {
      let rig: Rig | undefined;
      try {
        progress(`${setup}: starting a fresh pair`);
        rig = await startRig(setup, zk, ++n);
        idleCost[setup] = await idle(rig);
        progress(`${setup} idle: ${JSON.stringify(idleCost[setup])}`);
        for (let i = 0; i < iterations; i++) {
          for (const fault of faults) {
            let r: TrialResult;
            try {
              r = await trial(rig, setup, fault, ++k);
            } catch (err) {
              r = {
                setup,
                fault,
                promotedMs: null,
                failoverMs: null,
                outageMs: 0,
                staleWrites: 0,
                ackedLost: 0,
                checkerViolations: 0,
                endedOn: 'same',
                error: String(err).slice(0, 4000),
              };
              // A pair that did not settle is not trusted with the next trial.
              await rig.stop().catch(() => undefined);
              progress(`${setup}: a fresh pair after the failed trial`);
              rig = await startRig(setup, zk, ++n);
            }
            progress(`${setup} ${fault} #${i + 1}: ${JSON.stringify(r)}`);
            results.push(r);
          }
        }
      } finally {
        await rig?.stop();
      }
    }
  } finally {
    await zk.stop();
  }
  const rows = aggregate(results, setups);
  const rs = ratios(rows);
  const json = JSON.stringify({
    ok: true,
    patroni: {
      iterations,
      synchronous: 'strict on both sides',
      timing: { 'patroni-default': PATRONI_DEFAULT_TIMING, 'patroni-fast': PATRONI_FAST_TIMING },
      rows,
      ratios: rs,
      idle: idleCost,
      trials: results,
    },
  });
  process.stdout.write(`${renderTables(rows, idleCost, rs)}\n${json}\n`);
  if (values.out) fs.writeFileSync(values.out, json + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err) }) + '\n');
    process.exit(1);
  },
);
