/**
 * `npm run bench`: how fast hafc fails over, measured with real processes.
 *
 * One 3-server ZooKeeper ensemble (test/support/zk-ensemble) for the whole run. Every trial starts
 * a fresh HaCluster on it (its own cluster name, its own split-brain checker): two demo services,
 * `hafc init`, and two real `hafc agent` processes. Once one node is active and the other standby,
 * the trial injects one fault into the active node and measures from just before the fault to the
 * moment the other node's service TAKEs the shared resource (the checker's own timestamps, as
 * failoverMs() in test/integration/failover.test.ts does):
 *
 *   serviceCrash  kill -9 of the active demo service (health checks notice, the lock moves);
 *   agentKill     kill -9 of the active agent (the standby waits for the ZooKeeper session to
 *                 expire, so this is dominated by sessionTimeoutMs);
 *   cleanStop     SIGTERM of the active agent (it demotes its service and closes its session at
 *                 once, so the standby need not wait for the session timeout);
 *   switchover    hafc failover --wait (graceful; handover as the CLI reports it);
 *   agentRestart  kill -9 of the active agent and an immediate restart: it resumes its session,
 *                 so the standby should never take over (failovers counted).
 *
 * Trials run interleaved (iteration 1 of each scenario, then iteration 2, ...) so slow drift on a
 * shared machine spreads over all scenarios. Afterwards one more cluster is started and left idle
 * to read the agents' resident memory (VmRSS from /proc/<pid>/status).
 *
 * Human progress goes to stderr; stdout gets exactly one line, the JSON result, always last (also
 * on failure, then with "ok": false and "error"). Exit status: 0, or 1 on a failure or any
 * split-brain violation, 2 on bad arguments, 130 / 143 after SIGINT / SIGTERM.
 *
 *   node dist/bench/failover.js [--iterations N] [--out FILE] [--session-timeout-ms MS]
 *                               [--profile default|fast] [--scenarios a,b,...]
 *
 * This is a measurement tool: it asserts nothing about how fast anything is.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { FAST_HEALTH, type HealthProfile } from '../harness/agent-config.js';
import { killAllDemoServices } from '../harness/demo-service-proc.js';
import { HaCluster } from '../harness/ha-cluster.js';
import { SharedResource, type Violation } from '../harness/shared-resource.js';
import { ZkEnsemble } from '../harness/zk-ensemble.js';

// --- arguments -------------------------------------------------------------------------------

type Scenario = 'serviceCrash' | 'agentKill' | 'cleanStop' | 'switchover' | 'agentRestart';
const SCENARIOS: Scenario[] = ['serviceCrash', 'agentKill', 'cleanStop', 'switchover', 'agentRestart'];

const USAGE = `usage: node dist/bench/failover.js [options]

Measures hafc failover latency with real ZooKeeper, agent and service processes.

  --iterations N            trials per scenario (default 5)
  --out FILE                also write the JSON result to FILE
  --session-timeout-ms MS   ZooKeeper session timeout of the agents (default 4000)
  --profile NAME            health profile: default (interval 200, fall 2, fastIntervalMs
                            left to its default, 50), fast (fastIntervalMs 25, pid watch on)
                            or off (fastIntervalMs 200: no fast path, as before it existed)
  --scenarios LIST          comma-separated scenarios to run (default all): ${SCENARIOS.join(',')}
  --agent-node-args ARGS    node options for every agent, space-separated, e.g.
                            "--lite-mode --max-semi-space-size=1" (memory experiments;
                            write it as --agent-node-args="--x --y")
  -h, --help                show this help

Progress goes to stderr; the JSON result is the last line on stdout.`;

type Profile = 'default' | 'fast' | 'off';
/** off: fastIntervalMs = intervalMs, no pid watch: detection as it was before the fast path. */
const PROFILES: Record<Profile, HealthProfile | undefined> = {
  default: undefined,
  fast: FAST_HEALTH,
  off: { fastIntervalMs: 200 },
};

interface Options {
  iterations: number;
  out: string | undefined;
  sessionTimeoutMs: number;
  profile: Profile;
  scenarios: Scenario[];
  agentNodeArgs: string[];
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        iterations: { type: 'string' },
        out: { type: 'string' },
        'session-timeout-ms': { type: 'string' },
        profile: { type: 'string' },
        scenarios: { type: 'string' },
        'agent-node-args': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const int = (name: string, raw: string | undefined, def: number, min: number, max: number): number => {
    if (raw === undefined) return def;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    }
    return Number(raw);
  };
  if (values.out === '') throw new UsageError('--out needs a file name');
  const profile = values.profile ?? 'default';
  if (!Object.hasOwn(PROFILES, profile)) {
    throw new UsageError(
      `--profile must be one of ${Object.keys(PROFILES).join(', ')}, got ${JSON.stringify(profile)}`,
    );
  }
  const scenarios = (values.scenarios ?? SCENARIOS.join(',')).split(',').map((x) => x.trim());
  for (const sc of scenarios) {
    if (!(SCENARIOS as string[]).includes(sc)) {
      throw new UsageError(
        `--scenarios: unknown scenario ${JSON.stringify(sc)}; known: ${SCENARIOS.join(', ')}`,
      );
    }
  }
  const agentNodeArgs = (values['agent-node-args'] ?? '').split(' ').filter((a) => a !== '');
  const notOption = agentNodeArgs.find((a) => !a.startsWith('--'));
  if (notOption !== undefined) {
    throw new UsageError(
      `--agent-node-args: every item must be a node option (--x), got ${JSON.stringify(notOption)}`,
    );
  }
  return {
    agentNodeArgs,
    profile: profile as Profile,
    scenarios: [...new Set(scenarios)] as Scenario[],
    iterations: int('iterations', values.iterations, 5, 1, 1000),
    out: values.out,
    // ZooKeeper negotiates within [2, 150] ticks of 200 ms (the ensemble's maxSessionTimeout: 30 s).
    sessionTimeoutMs: int('session-timeout-ms', values['session-timeout-ms'], 4000, 1000, 30_000),
  };
}

// --- output ----------------------------------------------------------------------------------

const startedAt = Date.now();
const progress = (text: string): void => {
  const t = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${t}s] ${text}\n`);
};

// --- statistics ------------------------------------------------------------------------------

interface Summary {
  min: number;
  median: number;
  p90: number;
  max: number;
  samples: number[];
}

/** Median: mean of the two middle values for an even count. p90: nearest rank. All in ms. */
function summarize(samples: number[]): Summary | null {
  if (samples.length === 0) return null;
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  const p90 = s[Math.max(0, Math.ceil(0.9 * n) - 1)]!;
  return { min: s[0]!, median: Math.round(median), p90, max: s[n - 1]!, samples: [...samples] };
}

// --- process hygiene -------------------------------------------------------------------------

/** A started cluster with its checker. */
class Trial {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly resource: SharedResource,
    readonly cluster: HaCluster,
  ) {}

  static async start(ensemble: ZkEnsemble, name: string, sessionTimeoutMs: number): Promise<Trial> {
    const resource = await SharedResource.start();
    try {
      const health = healthProfile;
      const cluster = await HaCluster.start({
        ensemble,
        resource,
        sessionTimeoutMs,
        cluster: name,
        ...(health !== undefined ? { health: () => health } : {}),
        ...(agentNodeArgs.length > 0 ? { agentOptions: () => ({ nodeArgs: agentNodeArgs }) } : {}),
      });
      const t = new Trial(resource, cluster);
      live.add(t);
      if (cleaning) {
        // Interrupted (or out of time) while this cluster was starting: cleanup() missed it.
        await t.stop();
        throw new Error('the benchmark is stopping');
      }
      configSeen ??= configFacts(cluster.nodes[0]!.configFile);
      return t;
    } catch (err) {
      await resource.close();
      throw err;
    }
  }

  /** What went wrong, for an error message: agent log tails and the checker's history. */
  describe(): string {
    return `${this.cluster.describe()}\n--- shared resource history\n${this.resource.describeHistory()}`;
  }

  /** Idempotent: agents (SIGTERM, then SIGKILL), services, checker. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.cluster.stop();
      } finally {
        await this.resource.close();
        // Counted once the cluster is gone, so nothing it did after the measurement is missed.
        violations.push(...this.resource.violations);
        live.delete(this);
      }
    })();
    return this.stopping;
  }
}

const live = new Set<Trial>();
/** The --profile in force for every trial. */
let healthProfile: HealthProfile | undefined;
/** --agent-node-args. */
let agentNodeArgs: string[] = [];
/** Every split-brain violation any trial's checker saw, over the whole run. */
const violations: Violation[] = [];
/** The settings of the first generated agent config (every trial uses the same ones). */
let configSeen: Record<string, unknown> | undefined;
let ensemble: ZkEnsemble | undefined;
/** /active and /standby answer times, measured on the idle cluster. */
let probes: Record<string, unknown> | null = null;
let cleaning: Promise<void> | undefined;

/** Rejected by the overall deadline or a signal; the measurement loop races against it. */
let abort: (err: Error) => void = () => {};
const aborted = new Promise<never>((_, reject) => {
  abort = reject;
});
aborted.catch(() => {});

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.allSettled([...live].map((t) => t.stop()));
    // A cluster whose start failed half-way leaves services nobody holds a handle to.
    await killAllDemoServices().catch(() => undefined);
    await ensemble?.stop().catch((err: unknown) => progress(`stopping ZooKeeper: ${String(err)}`));
  })();
  return cleaning;
}

// --- measurements ----------------------------------------------------------------------------

const DESCRIPTION: Record<Scenario, string> = {
  serviceCrash: 'kill -9 of the active demo service -> the other service takes the shared resource',
  agentKill: 'kill -9 of the active agent -> the other service takes the shared resource',
  cleanStop: 'SIGTERM of the active agent (clean demotion, session closed) -> the other takes over',
  switchover:
    'hafc failover --wait -> the other service takes the resource (samples: from starting the CLI, so they include its ~0.3 s start-up; handoverMs: old service standby -> new one active, as the CLI reports it)',
  agentRestart:
    'kill -9 of the active agent and an immediate restart -> the restarted agent resumes its session (samples: kill -> "decision: resumed"; failovers: takes of the resource by the standby within 1.5 session timeouts, target 0)',
};

/** Deadline for a new cluster to elect an active and a standby. */
const SETTLE_TIMEOUT_MS = 30_000;

interface TrialResult {
  failoverMs: number;
  /** switchover: what the CLI printed as the handover. */
  handoverMs?: number;
  /** agentRestart: how many times the standby took over (a failover that should not happen). */
  failovers?: number;
  /** How long nobody held the resource: from the release/disconnect of the old active. */
  gapMs: number | null;
  note?: string;
}

/** From `t0` (just before the fault) to the moment `node`'s service took the shared resource. */
function failoverMs(resource: SharedResource, node: string, t0: number): number {
  const take = resource.takes(node).find((e) => e.at >= t0);
  if (!take) throw new Error(`${node} never took the resource after the fault`);
  return Math.round(take.at - t0);
}

async function runTrial(
  zk: ZkEnsemble,
  scenario: Scenario,
  name: string,
  sessionTimeoutMs: number,
): Promise<TrialResult> {
  const trial = await Trial.start(zk, name, sessionTimeoutMs);
  try {
    const { active, standby } = await trial.cluster.settled(SETTLE_TIMEOUT_MS);
    const { resource, cluster } = trial;
    let note: string | undefined;
    if (scenario === 'switchover') return await switchoverTrial(trial, active, standby);
    if (scenario === 'agentRestart') return await restartTrial(trial, active, standby, sessionTimeoutMs);
    const t0 = resource.now();
    let fault: Promise<unknown>;
    let deadlineMs: number;
    switch (scenario) {
      case 'serviceCrash':
        fault = active.service.kill('SIGKILL');
        deadlineMs = 20_000;
        break;
      case 'agentKill':
        fault = active.agent!.kill('SIGKILL');
        deadlineMs = sessionTimeoutMs * 4 + 10_000;
        break;
      case 'cleanStop':
        fault = active.agent!.stop(15_000).then((code) => {
          if (code !== 0) note = `the stopped agent ${active.id} exited with code ${code}`;
        });
        deadlineMs = sessionTimeoutMs * 4 + 10_000;
        break;
    }
    const [, next] = await Promise.all([fault, cluster.waitForActive(deadlineMs, active.id)]);
    if (next.id !== standby.id) throw new Error(`${next.id} took over, expected ${standby.id}`);
    return {
      failoverMs: failoverMs(resource, standby.id, t0),
      gapMs: roundOrNull(resource.gapAfter(t0)),
      ...(note !== undefined ? { note } : {}),
    };
  } catch (err) {
    throw new Error(`${scenario} trial ${name} failed: ${(err as Error).message}\n${trial.describe()}`);
  } finally {
    await trial.stop();
  }
}

const roundOrNull = (n: number | null): number | null => (n === null ? null : Math.round(n));

type Node = Awaited<ReturnType<HaCluster['settled']>>['active'];

async function switchoverTrial(trial: Trial, active: Node, standby: Node): Promise<TrialResult> {
  const { cluster, resource } = trial;
  // The standby publishes its role a step after it took it: wait until a dry run finds it.
  const until = Date.now() + SETTLE_TIMEOUT_MS;
  while ((await cluster.hafcExit(['failover', '-c', active.configFile, '--dry-run'])).code !== 0) {
    if (Date.now() > until) throw new Error('no eligible switchover target appeared');
    await sleep(100);
  }
  const t0 = resource.now();
  const r = await cluster.hafcExit(['failover', '-c', active.configFile, '--wait', '--json']);
  if (r.code !== 0) throw new Error(`hafc failover exited ${r.code}: ${r.stdout}${r.stderr}`);
  const out = JSON.parse(r.stdout) as { to: string; handoverMs: number | null };
  if (out.to !== standby.id) throw new Error(`the switchover went to ${out.to}, expected ${standby.id}`);
  await cluster.waitForActive(10_000, active.id);
  return {
    failoverMs: failoverMs(resource, standby.id, t0),
    gapMs: roundOrNull(resource.gapAfter(t0)),
    ...(out.handoverMs !== null ? { handoverMs: out.handoverMs } : {}),
  };
}

async function restartTrial(
  trial: Trial,
  active: Node,
  standby: Node,
  sessionTimeoutMs: number,
): Promise<TrialResult> {
  const { cluster, resource } = trial;
  const t0 = resource.now();
  await active.agent!.kill('SIGKILL');
  const agent = cluster.startAgent(active.id);
  await agent.waitForLog('the resumed session', (l) => l.msg === 'decision: resumed', sessionTimeoutMs * 3);
  const resumedMs = Math.round(resource.now() - t0);
  // Past the point where the standby would have taken over without resumption.
  await sleep(Math.max(0, t0 + sessionTimeoutMs * 1.5 - resource.now()));
  return {
    failoverMs: resumedMs,
    gapMs: roundOrNull(resource.gapAfter(t0)),
    failovers: resource.takes(standby.id).filter((e) => e.at >= t0).length,
  };
}

interface Memory {
  rssKiB: number;
  hwmKiB: number;
}

/** VmRSS (resident now) and VmHWM (peak resident) from /proc/<pid>/status, in KiB. */
function memoryOf(pid: number): Memory {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`no ${key} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A fresh cluster left idle for a while (health probes and ZooKeeper pings keep running), then
 * each agent's memory sampled a few times; the median sample is reported.
 */
/** GET /active on the active agent and /standby on the standby, `n` times each, one at a time. */
async function measureProbes(active: Node, standby: Node, n: number): Promise<Record<string, unknown>> {
  const portOf = async (node: Node): Promise<number> => {
    const l = await node.agent!.waitForLog('its HTTP address', (x) =>
      String(x.msg).startsWith('HTTP listening on'),
    );
    return Number(/:(\d+)$/.exec(String(l.address))![1]);
  };
  const probe = (port: number, path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const t = performance.now();
      const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t));
      });
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error(`GET ${path} took over 5 s`)));
    });
  const out: Record<string, unknown> = {
    unit: 'ms',
    requests: n,
    note: 'one request at a time, a new TCP connection each',
  };
  for (const [name, node, path] of [
    ['active', active, '/active'],
    ['standby', standby, '/standby'],
  ] as const) {
    const port = await portOf(node);
    const xs: number[] = [];
    for (let i = 0; i < n; i++) xs.push(await probe(port, path));
    const s = summarize(xs.map((x) => Math.round(x * 100) / 100))!;
    out[name] = { path, min: s.min, median: s.median, p90: s.p90, max: s.max };
  }
  return out;
}

async function measureRss(
  zk: ZkEnsemble,
  name: string,
  sessionTimeoutMs: number,
): Promise<{ standbyKiB: number; activeKiB: number; standbyHwmKiB: number; activeHwmKiB: number }> {
  const trial = await Trial.start(zk, name, sessionTimeoutMs);
  try {
    const { active, standby } = await trial.cluster.settled(SETTLE_TIMEOUT_MS);
    await sleep(3000);
    const a: Memory[] = [];
    const s: Memory[] = [];
    for (let i = 0; i < 5; i++) {
      a.push(memoryOf(active.agent!.pid));
      s.push(memoryOf(standby.agent!.pid));
      await sleep(200);
    }
    // Still the same roles: the numbers belong to what they are labelled.
    if (trial.resource.holder()?.node !== active.id || standby.agent!.role() !== 'standby') {
      throw new Error('the roles changed while the memory was being sampled');
    }
    const med = (xs: number[]): number => summarize(xs)!.median;
    probes = await measureProbes(active, standby, 200);
    return {
      standbyKiB: med(s.map((m) => m.rssKiB)),
      activeKiB: med(a.map((m) => m.rssKiB)),
      standbyHwmKiB: Math.max(...s.map((m) => m.hwmKiB)),
      activeHwmKiB: Math.max(...a.map((m) => m.hwmKiB)),
    };
  } catch (err) {
    throw new Error(`memory measurement failed: ${(err as Error).message}\n${trial.describe()}`);
  } finally {
    await trial.stop();
  }
}

/** The timing settings the agents actually ran with, read back from a generated config. */
function configFacts(configFile: string): Record<string, unknown> {
  const cfg = parseYaml(fs.readFileSync(configFile, 'utf8')) as {
    zookeeper?: { sessionTimeoutMs?: number; requestTimeoutMs?: number; onConnectionLoss?: string };
    health?: Record<string, unknown>;
    election?: Record<string, unknown>;
    fencing?: { timeoutMs?: number; methods?: unknown[] };
  };
  return {
    sessionTimeoutMs: cfg.zookeeper?.sessionTimeoutMs ?? null,
    zkRequestTimeoutMs: cfg.zookeeper?.requestTimeoutMs ?? null,
    onConnectionLoss: cfg.zookeeper?.onConnectionLoss ?? null,
    health: cfg.health ?? null,
    election: cfg.election ?? null,
    fencing: {
      timeoutMs: cfg.fencing?.timeoutMs ?? null,
      methods: (cfg.fencing?.methods ?? []).map((m) =>
        typeof m === 'string' ? m : Object.keys(m as object)[0],
      ),
    },
  };
}

// --- main ------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let opts: Options | 'help';
  const result: Record<string, unknown> = {
    benchmark: 'hafc-failover',
    ok: false,
    date: new Date(startedAt).toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    cpus: os.cpus().length,
  };
  const emit = (): void => {
    result.durationMs ??= Date.now() - startedAt;
    process.stdout.write(JSON.stringify(result) + '\n');
  };

  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    result.error = err.message;
    emit();
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const { iterations, sessionTimeoutMs, scenarios } = opts;
  healthProfile = PROFILES[opts.profile];
  agentNodeArgs = opts.agentNodeArgs;
  Object.assign(result, {
    iterations,
    profile: opts.profile,
    scenarios,
    agentNodeArgs,
    config: { sessionTimeoutMs },
  });

  const samples: Record<Scenario, TrialResult[]> = {
    serviceCrash: [],
    agentKill: [],
    cleanStop: [],
    switchover: [],
    agentRestart: [],
  };
  const notes: string[] = [];
  let agentRss: Record<string, unknown> | null = null;
  const fill = (): void => {
    for (const sc of scenarios) {
      const lat = summarize(samples[sc].map((r) => r.failoverMs));
      result[sc] = {
        description: DESCRIPTION[sc],
        unit: 'ms',
        ...(lat ?? { samples: [] }),
        gapMs: samples[sc].map((r) => r.gapMs),
        ...(sc === 'agentKill' ? { sessionTimeoutMs } : {}),
        ...(sc === 'switchover'
          ? {
              handoverMs: summarize(
                samples[sc].flatMap((r) => (r.handoverMs !== undefined ? [r.handoverMs] : [])),
              ),
            }
          : {}),
        ...(sc === 'agentRestart' ? { failovers: samples[sc].map((r) => r.failovers ?? 0) } : {}),
      };
    }
    result.agentRss = agentRss;
    result.httpProbes = probes;
    result.splitBrain = {
      violations: violations.length,
      details: violations.slice(0, 10).map((v) => `[${v.kind}] ${v.detail}`),
    };
    if (notes.length) result.notes = notes;
  };

  // A stuck step should never be possible (every wait has a deadline), but the whole run gets one too.
  const overallMs = 120_000 + iterations * scenarios.length * (sessionTimeoutMs * 4 + 30_000);
  const guard = setTimeout(
    () => abort(new Error(`the whole benchmark took longer than ${overallMs} ms`)),
    overallMs,
  );
  let exitCode = 0;
  try {
    await Promise.race([
      (async () => {
        progress('starting a 3-server ZooKeeper ensemble');
        ensemble = await ZkEnsemble.start({ servers: 3 });
        progress(`ZooKeeper up in ${ensemble.startupMs} ms; ${iterations} iteration(s) per scenario`);
        let seq = 0;
        const name = (): string => `bench-${process.pid}-${++seq}`;
        for (let i = 1; i <= iterations; i++) {
          for (const sc of scenarios) {
            const before = violations.length;
            const r = await runTrial(ensemble, sc, name(), sessionTimeoutMs);
            samples[sc].push(r);
            if (r.note) notes.push(`${sc} #${i}: ${r.note}`);
            const seen = violations.length - before;
            progress(
              `${sc.padEnd(12)} ${i}/${iterations}: ${sc === 'agentRestart' ? 'resumed after' : 'failover'} ${r.failoverMs} ms` +
                (r.handoverMs !== undefined ? ` (handover ${r.handoverMs} ms)` : '') +
                (r.failovers !== undefined ? ` (${r.failovers} failover(s))` : '') +
                ` (resource free ${r.gapMs ?? '?'} ms)` +
                (seen ? ` - ${seen} SPLIT-BRAIN VIOLATION(S)` : ''),
            );
          }
        }
        const rssName = name();
        progress('measuring the agents\u2019 memory on an idle cluster');
        const rss = await measureRss(ensemble, rssName, sessionTimeoutMs);
        agentRss = { unit: 'KiB', source: '/proc/<pid>/status VmRSS (median of 5) and VmHWM', ...rss };
        progress(`agent RSS: standby ${rss.standbyKiB} KiB, active ${rss.activeKiB} KiB`);
      })(),
      aborted,
    ]);
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0];
    process.stderr.write(`\nbenchmark failed: ${(err as Error).message}\n`);
    exitCode = interrupted ? interruptExit : 1;
  } finally {
    clearTimeout(guard);
    progress('cleaning up');
    await cleanup();
  }
  // After cleanup: the checkers of clusters stopped by it have counted their violations too.
  fill();
  result.ok = exitCode === 0 && violations.length === 0;
  if (violations.length) {
    result.error ??= `the split-brain checker saw ${violations.length} violation(s)`;
    progress(`SPLIT BRAIN: the checker saw ${violations.length} violation(s)`);
    if (exitCode === 0) exitCode = 1;
  }
  result.config = { ...(result.config as object), ...configSeen, zkServers: 3 };
  result.durationMs = Date.now() - startedAt;

  if (opts.out) {
    try {
      fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
      fs.writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');
      progress(`wrote ${opts.out}`);
    } catch (err) {
      process.stderr.write(`cannot write ${opts.out}: ${(err as Error).message}\n`);
      exitCode = 1;
    }
  }
  if (exitCode === 0) progress('done');
  emit();
  return exitCode;
}

let interrupted = false;
let interruptExit = 130;
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.on(sig, () => {
    // A second signal: leave at once; the 'exit' hooks of the support code SIGKILL the children.
    if (interrupted) process.exit(code);
    interrupted = true;
    interruptExit = code;
    progress(`${sig}: stopping every process this benchmark started`);
    abort(new Error(`interrupted by ${sig}`));
  });
}

// process.exit() rather than waiting for the event loop: a measurement abandoned by abort() may
// still hold timers. Writes to a pipe or file are synchronous on Linux, so the JSON line is out.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    void cleanup().finally(() => process.exit(1));
  },
);
