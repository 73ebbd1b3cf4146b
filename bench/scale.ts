/**
 * `npm run bench:scale`: many clusters on one ZooKeeper ensemble, and a mass failure of actives.
 *
 * For each N in --clusters: N clusters x 2 agents on one 3-server ensemble. The agents are real
 * controllers (each its own ZooKeeper session, health monitor, elector, fencer) with in-memory
 * services, hosted two processes to a run: node a of every cluster in one (priority 10, so it
 * becomes active everywhere), node b in the other (bench/scale-worker.ts). Sharing a process is
 * what lets 400 agents run on a 2-core machine; the per-agent RSS and CPU below are the shared
 * process's divided by its agents, NOT what a lone `hafc agent` costs (bench/failover.ts reports
 * that one).
 *
 * Measured per N:
 * - cold start: from forking node a's process until every cluster has an active;
 * - at rest (10 s with everything settled): ZooKeeper requests per second per agent (the servers'
 *   zk_packets_received, summed), the hosting process's CPU per agent per idle hour, RSS per agent;
 * - mass failure: kill -9 of node a's process (every active at once). For each cluster, the time
 *   until its node b is active; median, p95, max, against the target session timeout + 1 s. The
 *   ensemble's load meanwhile (mntr every 250 ms: outstanding requests, max latency, packets/s).
 * A split-brain ledger follows every service's role: two actives of one cluster at once (a dead
 * process's services count as gone) is a violation and fails the run.
 *
 * Human progress on stderr; stdout gets one JSON line, last. Exit 0, or 1 on a failure or a
 * violation, 2 on bad arguments.
 *
 *   node dist/bench/scale.js [--clusters 10,50,200] [--session-timeout-ms 10000] [--tick-ms 2000]
 *                            [--out FILE]
 *
 * The defaults are hafc's session timeout and ZooKeeper's tickTime: what an operator runs. The
 * session layer's probe rates follow the servers' tick (see src/zk/session.ts), so the test
 * profile (4000 / 200) costs more requests per agent at rest.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ZkEnsemble, fourLetter } from '../harness/zk-ensemble.js';
import { waitFor } from '../harness/wait.js';
import { createLogger } from '../src/log.js';
import { ZkElectionStore } from '../src/zk/election-store.js';
import { clusterPaths } from '../src/zk/paths.js';
import { openSession } from '../src/zk/session.js';
import type { ParentMessage, WorkerMessage, WorkerSpec } from './scale-worker.js';

const HEALTH_INTERVAL_MS = 1000;
const IDLE_WINDOW_MS = 10_000;

interface Worker {
  node: string;
  proc: ChildProcess;
  dead: boolean;
  ready: Promise<void>;
}

interface ScaleResult {
  clusters: number;
  agents: number;
  coldStartMs: number;
  idle: {
    zkRequestsPerSecPerAgent: number;
    cpuSecondsPerIdleHourPerAgent: number;
    rssPerAgentBytes: number;
  };
  massFailure: {
    targetMs: number;
    recoveredClusters: number;
    medianMs: number;
    p95Ms: number;
    maxMs: number;
    ensemble: { maxOutstanding: number; maxLatencyMs: number; peakPacketsPerSec: number };
  };
  violations: string[];
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function mntr(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.split('\t');
    if (k && v !== undefined && /^-?\d+(\.\d+)?$/.test(v.trim())) out[k] = Number(v);
  }
  return out;
}

async function ensembleStats(zk: ZkEnsemble): Promise<Record<string, number>[]> {
  return Promise.all(
    zk.servers.map(async (s) => mntr(await fourLetter(s.clientPort, 'mntr', 2000).catch(() => ''))),
  );
}

const sum = (xs: Record<string, number>[], k: string): number => xs.reduce((a, x) => a + (x[k] ?? 0), 0);
const max = (xs: Record<string, number>[], k: string): number => Math.max(0, ...xs.map((x) => x[k] ?? 0));

async function initClusters(connect: string, names: string[]): Promise<void> {
  const s = await openSession({
    connect,
    sessionTimeoutMs: 10_000,
    requestTimeoutMs: 5000,
    logger: createLogger({ level: 'error' }),
  });
  try {
    for (const n of names) await new ZkElectionStore(s, clusterPaths('/hafc', n)).ensureLayout();
  } finally {
    await s.close();
  }
}

async function runScale(zk: ZkEnsemble, n: number, sessionTimeoutMs: number): Promise<ScaleResult> {
  const prefix = `s${n}x${Date.now().toString(36)}`;
  const clusters = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  await initClusters(zk.connectString(), clusters);
  const violations: string[] = [];
  const roles = new Map<string, Map<string, { role: string; at: number }>>();
  const workers = new Map<string, Worker>();
  const pendingDemotes = new Map<number, (ok: boolean) => void>();
  let nextDemote = 1;
  const statsWaiters = new Map<string, (m: Extract<WorkerMessage, { kind: 'stats' }>) => void>();

  const activeOf = (cluster: string): string[] =>
    [...(roles.get(cluster)?.entries() ?? [])]
      .filter(([node, r]) => r.role === 'active' && !workers.get(node)?.dead)
      .map(([node]) => node);

  const workerJs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scale-worker.js');
  const start = (node: string, priority: number): Worker => {
    const spec: WorkerSpec = {
      connect: zk.connectString(),
      sessionTimeoutMs,
      healthIntervalMs: HEALTH_INTERVAL_MS,
      node,
      priority,
      clusters,
    };
    const proc = fork(workerJs, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let ready!: () => void;
    let failed!: (err: Error) => void;
    const w: Worker = {
      node,
      proc,
      dead: false,
      ready: new Promise<void>((resolve, reject) => {
        ready = resolve;
        failed = reject;
      }),
    };
    // A worker that dies before it is ready (a bad config, a crash) fails the run at once.
    proc.on('exit', (code, signal) => {
      w.dead = true;
      failed(new Error(`worker ${node} exited (${signal ?? code}) before it was ready`));
    });
    proc.on('message', (m: WorkerMessage) => {
      if (m.kind === 'ready') ready();
      else if (m.kind === 'role') {
        const per = roles.get(m.cluster) ?? new Map<string, { role: string; at: number }>();
        roles.set(m.cluster, per);
        per.set(m.node, { role: m.role, at: m.at });
        const act = activeOf(m.cluster);
        if (act.length > 1) violations.push(`${m.cluster}: ${act.join(' and ')} active at ${m.at}`);
      } else if (m.kind === 'fence') {
        const target = workers.get(m.target);
        const reply = (ok: boolean) => proc.send({ kind: 'fenced', id: m.id, ok } satisfies ParentMessage);
        // A dead process's services died with it: nothing left to fence.
        if (!target || target.dead) reply(true);
        else {
          const id = nextDemote++;
          pendingDemotes.set(id, reply);
          target.proc.send({ kind: 'demote', id, cluster: m.cluster } satisfies ParentMessage);
        }
      } else if (m.kind === 'demoted') {
        pendingDemotes.get(m.id)?.(m.ok);
        pendingDemotes.delete(m.id);
      } else if (m.kind === 'stats') {
        statsWaiters.get(node)?.(m);
      }
    });
    workers.set(node, w);
    return w;
  };
  const stats = (w: Worker) =>
    withTimeout(
      new Promise<Extract<WorkerMessage, { kind: 'stats' }>>((resolve) => {
        statsWaiters.set(w.node, resolve);
        w.proc.send({ kind: 'stats' } satisfies ParentMessage);
      }),
      10_000,
      `worker ${w.node}'s stats`,
    );

  try {
    const t0 = Date.now();
    const a = start('a', 10);
    await withTimeout(a.ready, 120_000, "node a's worker to start its controllers");
    await waitFor(
      `every one of ${n} clusters active on node a`,
      () => clusters.every((c) => activeOf(c).includes('a')),
      { timeoutMs: 120_000, intervalMs: 50 },
    );
    const coldStartMs = Date.now() - t0;
    const b = start('b', 0);
    await withTimeout(b.ready, 120_000, "node b's worker to start its controllers");
    await waitFor(
      `node b standby in every one of ${n} clusters`,
      () => clusters.every((c) => roles.get(c)?.get('b')?.role === 'standby'),
      { timeoutMs: 120_000, intervalMs: 50 },
    );

    process.stderr.write(`  ${n} clusters settled (cold start ${coldStartMs} ms); idle window...\n`);
    const z0 = await ensembleStats(zk);
    const [sa0, sb0] = [await stats(a), await stats(b)];
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const z1 = await ensembleStats(zk);
    const [sa1, sb1] = [await stats(a), await stats(b)];
    const secs = (Date.now() - w0) / 1000;
    const agents = 2 * n;
    const packets = sum(z1, 'zk_packets_received') - sum(z0, 'zk_packets_received');
    const cpuMicros = sa1.cpuMicros - sa0.cpuMicros + (sb1.cpuMicros - sb0.cpuMicros);
    const idle = {
      zkRequestsPerSecPerAgent: Number((packets / secs / agents).toFixed(3)),
      cpuSecondsPerIdleHourPerAgent: Number((((cpuMicros / 1e6 / secs) * 3600) / agents).toFixed(2)),
      rssPerAgentBytes: Math.round((sa1.rssBytes + sb1.rssBytes) / agents),
    };

    for (const s of zk.servers) await fourLetter(s.clientPort, 'srst', 2000).catch(() => '');
    const load = { maxOutstanding: 0, maxLatencyMs: 0, peakPacketsPerSec: 0 };
    let lastPackets: { n: number; at: number } | null = null;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const z = await ensembleStats(zk);
        const now = Date.now();
        load.maxOutstanding = Math.max(load.maxOutstanding, max(z, 'zk_outstanding_requests'));
        load.maxLatencyMs = Math.max(load.maxLatencyMs, max(z, 'zk_max_latency'));
        const p = sum(z, 'zk_packets_received');
        if (lastPackets && now > lastPackets.at) {
          const rate = ((p - lastPackets.n) * 1000) / (now - lastPackets.at);
          if (rate >= 0) load.peakPacketsPerSec = Math.max(load.peakPacketsPerSec, Math.round(rate));
        }
        lastPackets = { n: p, at: now };
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    process.stderr.write(`  mass failure: kill -9 of the process hosting all ${n} actives\n`);
    const killedAt = Date.now();
    a.dead = true;
    a.proc.kill('SIGKILL');
    const targetMs = sessionTimeoutMs + 1000;
    await waitFor(
      `node b active in every one of ${n} clusters after the mass failure`,
      () => clusters.every((c) => activeOf(c).includes('b')),
      { timeoutMs: 5 * sessionTimeoutMs + 60_000, intervalMs: 50 },
    );
    sampling = false;
    await sampler;
    const times = clusters.map((c) => roles.get(c)!.get('b')!.at - killedAt).sort((x, y) => x - y);
    return {
      clusters: n,
      agents,
      coldStartMs,
      idle,
      massFailure: {
        targetMs,
        recoveredClusters: times.length,
        medianMs: percentile(times, 50),
        p95Ms: percentile(times, 95),
        maxMs: times.at(-1)!,
        ensemble: load,
      },
      violations,
    };
  } finally {
    for (const w of workers.values()) {
      if (w.dead) continue;
      w.proc.send({ kind: 'stop' } satisfies ParentMessage);
      const exited = await waitFor(`worker ${w.node} to stop`, () => w.dead, { timeoutMs: 30_000 }).catch(
        () => false,
      );
      if (exited === false) w.proc.kill('SIGKILL');
    }
  }
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        clusters: { type: 'string', default: '10,50,200' },
        // hafc's and ZooKeeper's defaults: what an operator runs (the test profile is 4000 / 200).
        'session-timeout-ms': { type: 'string', default: '10000' },
        'tick-ms': { type: 'string', default: '2000' },
        out: { type: 'string' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`bench/scale: ${(err as Error).message}\n`);
    return 2;
  }
  const sizes = args.clusters.split(',').map(Number);
  const sessionTimeoutMs = Number(args['session-timeout-ms']);
  const tickMs = Number(args['tick-ms']);
  if (
    sizes.some((s) => !Number.isInteger(s) || s < 1 || s > 500) ||
    !Number.isInteger(tickMs) ||
    tickMs < 10 ||
    !(sessionTimeoutMs >= 2 * tickMs)
  ) {
    process.stderr.write(
      `bench/scale: --clusters must be whole numbers 1-500 (got ${args.clusters}), --tick-ms >= 10 (got ` +
        `${args['tick-ms']}), --session-timeout-ms >= 2 x tick (got ${args['session-timeout-ms']})\n`,
    );
    return 2;
  }
  const zk = await ZkEnsemble.start({ servers: 3, tickTimeMs: tickMs });
  const results: ScaleResult[] = [];
  let error: string | undefined;
  try {
    for (const n of sizes) {
      process.stderr.write(`scale: ${n} clusters x 2 agents\n`);
      results.push(await runScale(zk, n, sessionTimeoutMs));
    }
  } catch (err) {
    error = (err as Error).message;
  } finally {
    await zk.stop();
  }
  const rows = results.map((r) => {
    const m = r.massFailure;
    return (
      `${String(r.clusters).padStart(8)}  ${String(r.coldStartMs).padStart(9)}  ` +
      `${r.idle.zkRequestsPerSecPerAgent.toFixed(2).padStart(9)}  ${r.idle.cpuSecondsPerIdleHourPerAgent.toFixed(1).padStart(10)}  ` +
      `${(r.idle.rssPerAgentBytes / 1e6).toFixed(2).padStart(8)}  ${String(m.medianMs).padStart(7)} ${String(m.p95Ms).padStart(7)} ${String(m.maxMs).padStart(7)}  ` +
      `${String(m.targetMs).padStart(7)}  ${String(m.ensemble.maxOutstanding).padStart(6)} ${String(m.ensemble.maxLatencyMs).padStart(6)} ${String(m.ensemble.peakPacketsPerSec).padStart(7)}  ${r.violations.length}`
    );
  });
  process.stderr.write(
    [
      '',
      'clusters  cold(ms)  zkreq/s/a  cpu-s/h/a  MB/agent  mass failure: med     p95     max   target  outst  maxlat  pkt/s  split',
      ...rows,
      '(agents share two processes: per-agent RSS/CPU are shares of those, not a lone agent)',
      '',
    ].join('\n'),
  );
  const violations = results.flatMap((r) => r.violations);
  const ok = error === undefined && violations.length === 0;
  const json = JSON.stringify({ ok, ...(error ? { error } : {}), sessionTimeoutMs, tickMs, results });
  if (args.out) fs.writeFileSync(args.out, `${json}\n`);
  process.stdout.write(`${json}\n`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/scale: ${String(err)}\n`);
    process.exit(1);
  },
);
