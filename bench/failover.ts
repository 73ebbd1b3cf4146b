/**
 * `npm run bench`: how fast hafc fails over, per fault class, measured with real processes.
 *
 * One 3-server ZooKeeper ensemble (harness/zk-ensemble) for the whole run. Every trial starts a
 * fresh HaCluster on it (its own cluster name, its own split-brain checker): two demo services,
 * `hafc init`, two real `hafc agent` processes, and a writing client (chaos/client.ts) that writes
 * to whichever service claims to be active. Once one node is active and the other standby, and
 * the client is writing, the trial injects one fault into the active node and measures from just
 * before the fault to the moment the other node's service TAKEs the shared resource (the
 * checker's own timestamps), and the client-visible outage: the longest span without an
 * accepted write from the client's last one before the fault until it writes again.
 *
 *   serviceCrash  kill -9 of the active demo service (health checks notice, the lock moves);
 *   serviceHang   the active service's /health and /role hang (its /write still answers);
 *   agentKill     kill -9 of the active agent (the standby waits for the session to expire);
 *   nodeFreeze    SIGSTOP of the active agent and its service until the standby has taken over
 *                 (past the session timeout), then SIGCONT;
 *   partition     the active node (agent and service in a network namespace of their own) loses
 *                 every packet to ZooKeeper, its peer and clients (nftables drop on its veth);
 *                 the shared resource stays reachable over a Unix socket, as shared storage on
 *                 another fabric would, so fencing is still what keeps it safe;
 *   zkLeaderLoss  kill -9 of the ZooKeeper leader: the figure is the time until some service
 *                 holds the resource again (0 when the active never let go), the outage the
 *                 client's; the server is restarted afterwards;
 *   cleanStop     SIGTERM of the active agent (it demotes its service and closes its session);
 *   switchover    hafc failover --wait (graceful; the figure: how long the resource was free);
 *   agentRestart  kill -9 of the active agent and an immediate restart: it resumes its session,
 *                 so the standby should never take over (failovers counted).
 *
 * Trials run interleaved (iteration 1 of each scenario, then iteration 2, ...) so slow drift on a
 * shared machine spreads over all scenarios; with `--profile both`, all of the default profile,
 * then all of the fast one. After each profile's trials one more cluster is left idle to measure
 * what an agent costs at rest: RSS, CPU seconds per idle hour (/proc/<pid>/stat), and ZooKeeper
 * requests (the servers' zk_packets_received) and writes (the leader's zxid) per second.
 *
 * Human progress goes to stderr. stdout gets the table (one row per fault class and profile,
 * with the issue's target and whether it was met), the overhead table, and last one line, the
 * JSON result (also on failure, then with "ok": false and "error"). Exit status: 0, or 1 on a
 * failure or any split-brain violation, 2 on bad arguments, 130 / 143 after SIGINT / SIGTERM.
 *
 *   node dist/bench/failover.js [--iterations N] [--out FILE] [--session-timeout-ms MS]
 *                               [--profile default|fast|off|both] [--scenarios a,b,...]
 *
 * This is a measurement tool: it asserts nothing about how fast anything is.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { WritingClient } from '../chaos/client.js';
import { mono } from '../chaos/cluster.js';
import { FAST_HEALTH, type HealthProfile } from '../harness/agent-config.js';
import { killAllDemoServices } from '../harness/demo-service-proc.js';
import { HaCluster } from '../harness/ha-cluster.js';
import { NetNs, netnsUnavailable, removeLeftoverNamespaces } from '../harness/netns.js';
import { SharedResource, type Violation } from '../harness/shared-resource.js';
import { waitFor } from '../harness/wait.js';
import { fourLetter, ZkEnsemble } from '../harness/zk-ensemble.js';
import { longestOutage } from './outage.js';
import { cpuSecondsPerHour, cpuTicks, parseMntr, parseZxid } from './overhead.js';
import {
  buildRow,
  FAULT_CLASSES,
  FIGURE,
  renderOverhead,
  renderTable,
  type FaultClass,
  type Overhead,
  type Row,
} from './report.js';
import { summarize } from './stats.js';

// --- arguments -------------------------------------------------------------------------------

type Scenario = FaultClass;
const SCENARIOS: readonly Scenario[] = FAULT_CLASSES;

const USAGE = `usage: node dist/bench/failover.js [options]

Measures hafc failover latency with real ZooKeeper, agent and service processes.

  --iterations N            trials per scenario and profile (default 5)
  --out FILE                also write the JSON result to FILE
  --session-timeout-ms MS   ZooKeeper session timeout of the agents (default 4000)
  --profile NAME            health profile: default (interval 200, fall 2, fastIntervalMs
                            left to its default, 50), fast (fastIntervalMs 25, pid watch on,
                            graceful fence deadline 100 ms instead of 1000),
                            off (fastIntervalMs 200: no fast path, as before it existed), or
                            both (default, then fast, in one run)
  --scenarios LIST          comma-separated scenarios to run (default all): ${SCENARIOS.join(',')}
  --idle-seconds S          how long the idle cluster is watched for the overhead (default 20)
  --agent-node-args ARGS    node options for every agent, space-separated, e.g.
                            "--lite-mode --max-semi-space-size=1" (memory experiments;
                            write it as --agent-node-args="--x --y")
  -h, --help                show this help

Progress goes to stderr; stdout gets the tables, then the JSON result as its last line.`;

type Profile = 'default' | 'fast' | 'off';
/** off: fastIntervalMs = intervalMs, no pid watch: detection as it was before the fast path. */
const PROFILES: Record<Profile, HealthProfile | undefined> = {
  default: undefined,
  fast: FAST_HEALTH,
  off: { fastIntervalMs: 200 },
};

/**
 * service.gracefulFenceTimeoutMs per profile (undefined: the agent's requestTimeoutMs, 1000).
 * After a node freeze the graceful fence can only time out, and that whole wait comes before the
 * kill -9; a demo service that is up answers in a few ms, so the fast profile allows 100.
 */
const GRACEFUL_FENCE_MS: Record<Profile, number | undefined> = {
  default: undefined,
  fast: 100,
  off: undefined,
};

interface Options {
  iterations: number;
  out: string | undefined;
  sessionTimeoutMs: number;
  profiles: Profile[];
  scenarios: Scenario[];
  idleSeconds: number;
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
        'idle-seconds': { type: 'string' },
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
  if (profile !== 'both' && !Object.hasOwn(PROFILES, profile)) {
    throw new UsageError(
      `--profile must be one of ${[...Object.keys(PROFILES), 'both'].join(', ')}, got ${JSON.stringify(profile)}`,
    );
  }
  const scenarios = (values.scenarios ?? SCENARIOS.join(',')).split(',').map((x) => x.trim());
  for (const sc of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(sc)) {
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
    profiles: profile === 'both' ? ['default', 'fast'] : [profile as Profile],
    // In the table's order, whatever order they were asked in.
    scenarios: SCENARIOS.filter((sc) => scenarios.includes(sc)),
    iterations: int('iterations', values.iterations, 5, 1, 1000),
    idleSeconds: int('idle-seconds', values['idle-seconds'], 20, 1, 3600),
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

// --- process hygiene -------------------------------------------------------------------------

/** A started cluster with its checker and its writing client. */
class Trial {
  private stopping: Promise<void> | undefined;
  /** Started by startClient(), once the cluster has settled. */
  client: WritingClient | undefined;

  private constructor(
    readonly resource: SharedResource,
    readonly cluster: HaCluster,
    private readonly socketFile: string | undefined,
  ) {}

  /** With `netns`: node nn1 runs in the first namespace, nn2 in the second. */
  static async start(
    ensemble: ZkEnsemble,
    name: string,
    sessionTimeoutMs: number,
    netns?: readonly [NetNs, NetNs],
  ): Promise<Trial> {
    const resource = await SharedResource.start();
    const socketFile = netns ? path.join(os.tmpdir(), `${name}.resource.sock`) : undefined;
    try {
      if (socketFile !== undefined) await resource.listenUnix(socketFile);
      const health = healthProfile;
      const cluster = await HaCluster.start({
        ensemble,
        resource,
        sessionTimeoutMs,
        cluster: name,
        ...(health !== undefined ? { health: () => health } : {}),
        gracefulFenceTimeoutMs,
        ...(agentNodeArgs.length > 0 ? { agentOptions: () => ({ nodeArgs: agentNodeArgs }) } : {}),
        ...(netns ? { netns: (id) => (id === 'nn1' ? netns[0] : netns[1]), resourcePath: socketFile } : {}),
      });
      const t = new Trial(resource, cluster, socketFile);
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
      if (socketFile !== undefined) fs.rmSync(socketFile, { force: true });
      throw err;
    }
  }

  /** Starts the client and waits until one of its writes has been accepted. */
  async startClient(): Promise<WritingClient> {
    const nodes = this.cluster.nodes;
    this.client = new WritingClient(() => nodes.map((n) => ({ node: n.id, url: n.service.url })));
    this.client.start();
    const c = this.client;
    await waitFor('the writing client to have a write accepted', () => c.ops.some((o) => o.status === 200), {
      timeoutMs: 10_000,
    });
    return c;
  }

  /** What went wrong, for an error message: agent log tails and the checker's history. */
  describe(): string {
    return `${this.cluster.describe()}\n--- shared resource history\n${this.resource.describeHistory()}`;
  }

  /** Idempotent: client, agents (SIGTERM, then SIGKILL), services, checker. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.client?.stop();
        await this.cluster.stop();
      } finally {
        await this.resource.close();
        if (this.socketFile !== undefined) fs.rmSync(this.socketFile, { force: true });
        // Counted once the cluster is gone, so nothing it did after the measurement is missed.
        violations.push(...this.resource.violations);
        live.delete(this);
      }
    })();
    return this.stopping;
  }
}

const live = new Set<Trial>();
/** The --profile in force for the trials running now. */
let healthProfile: HealthProfile | undefined;
let gracefulFenceTimeoutMs: number | undefined;
/** --agent-node-args. */
let agentNodeArgs: string[] = [];
/** Every split-brain violation any trial's checker saw, over the whole run. */
const violations: Violation[] = [];
/** The settings of the first generated agent config (every trial uses the same timings). */
let configSeen: Record<string, unknown> | undefined;
let ensemble: ZkEnsemble | undefined;
/** The two namespaces of the partition trials (made once per run), or why there are none. */
let namespaces: readonly [NetNs, NetNs] | undefined;
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
    for (const ns of namespaces ?? []) await ns.destroy();
    await ensemble?.stop().catch((err: unknown) => progress(`stopping ZooKeeper: ${String(err)}`));
  })();
  return cleaning;
}

// --- measurements ----------------------------------------------------------------------------

const DESCRIPTION: Record<Scenario, string> = {
  serviceCrash: 'kill -9 of the active demo service -> the other service takes the shared resource',
  serviceHang:
    "the active service's /health and /role hang (POST /fault hang) -> the other service takes the resource",
  agentKill: 'kill -9 of the active agent -> the other service takes the shared resource',
  nodeFreeze:
    'SIGSTOP of the active agent and its service, SIGCONT once the other service has taken the resource',
  partition:
    'the active node (agent + service in a network namespace) drops every packet on its veth -> the other takes over; healed afterwards',
  zkLeaderLoss:
    'kill -9 of the ZooKeeper leader -> some service holds the resource again (samples: 0 when the active never let go; activeChanged per trial)',
  cleanStop: 'SIGTERM of the active agent (clean demotion, session closed) -> the other takes over',
  switchover:
    'hafc failover --wait -> the other service takes the resource (samples: from starting the CLI, so they include its ~0.3 s start-up; gapMs: old service releases -> new one takes; handoverMs: as the CLI reports it)',
  agentRestart:
    'kill -9 of the active agent and an immediate restart -> the restarted agent resumes its session (samples: kill -> "decision: resumed"; failovers: takes of the resource by the standby within 1.5 session timeouts, target 0)',
};

/** Deadline for a new cluster to elect an active and a standby. */
const SETTLE_TIMEOUT_MS = 30_000;
/** Deadline for the client to have a write accepted again once the resource has a new holder. */
const CLIENT_RECOVERY_MS = 10_000;

interface TrialResult {
  failoverMs: number;
  /** switchover: what the CLI printed as the handover. */
  handoverMs?: number;
  /** agentRestart: how many times the standby took over (a failover that should not happen). */
  failovers?: number;
  /** zkLeaderLoss: whether the resource ended with another holder than before. */
  activeChanged?: boolean;
  /** How long nobody held the resource: from the release/disconnect of the old active. */
  gapMs: number | null;
  /** The client's longest span without an accepted write around the fault. */
  outageMs: number | null;
  /** The client had not written again by the end of the trial (outageMs a lower bound). */
  outageOpen?: boolean;
  note?: string;
}

/** From `t0` (just before the fault) to the moment `node`'s service took the shared resource. */
function failoverMs(resource: SharedResource, node: string, t0: number): number {
  const take = resource.takes(node).find((e) => e.at >= t0);
  if (!take) throw new Error(`${node} never took the resource after the fault`);
  return Math.round(take.at - t0);
}

const roundOrNull = (n: number | null): number | null => (n === null ? null : Math.round(n));

type Node = Awaited<ReturnType<HaCluster['settled']>>['active'];

/**
 * The fault's moment on both clocks: the checker's (performance.now) and the client's
 * (CLOCK_MONOTONIC). Both are monotonic, so one offset converts the checker's times.
 */
interface Fault {
  t0: number;
  t0Mono: number;
}

function faultNow(resource: SharedResource): Fault {
  return { t0: resource.now(), t0Mono: mono() };
}

/**
 * Waits until the client has a write accepted after `sinceMono` (it found the active again),
 * then measures its outage around the fault.
 */
async function clientOutage(
  client: WritingClient,
  f: Fault,
  sinceMono: number,
): Promise<{ outageMs: number | null; outageOpen?: boolean }> {
  try {
    await waitFor(
      'the writing client to have a write accepted after the failover',
      () => client.ops.some((o) => o.status === 200 && o.doneMono > sinceMono),
      { timeoutMs: CLIENT_RECOVERY_MS, intervalMs: 10 },
    );
  } catch {
    // Reported as an open outage (a lower bound) rather than failing the trial: the failover
    // itself was measured, and "the client could not write for 10 s" is the finding.
  }
  const o = longestOutage(client.ops, f.t0Mono, mono());
  if (o === null) return { outageMs: null };
  return o.recovered ? { outageMs: o.ms } : { outageMs: o.ms, outageOpen: true };
}

async function runTrial(
  zk: ZkEnsemble,
  scenario: Scenario,
  name: string,
  sessionTimeoutMs: number,
): Promise<TrialResult> {
  const netns = scenario === 'partition' ? namespaces : undefined;
  if (scenario === 'partition' && netns === undefined) throw new Error('partition trial without namespaces');
  const trial = await Trial.start(zk, name, sessionTimeoutMs, netns);
  try {
    const { active, standby } = await trial.cluster.settled(SETTLE_TIMEOUT_MS);
    const client = await trial.startClient();
    const { resource, cluster } = trial;
    const offset = (at: number, f: Fault): number => at - f.t0 + f.t0Mono;
    let note: string | undefined;
    if (scenario === 'switchover') return await switchoverTrial(trial, client, active, standby);
    if (scenario === 'agentRestart') {
      return await restartTrial(trial, client, active, standby, sessionTimeoutMs);
    }
    if (scenario === 'zkLeaderLoss') return await leaderLossTrial(trial, client, zk, sessionTimeoutMs);
    const sessionDeadline = sessionTimeoutMs * 4 + 10_000;
    let heal: () => Promise<void> = async () => {};
    const f = faultNow(resource);
    let fault: Promise<unknown>;
    let deadlineMs: number;
    switch (scenario) {
      case 'serviceCrash':
        fault = active.service.kill('SIGKILL');
        deadlineMs = 20_000;
        break;
      case 'serviceHang':
        fault = active.service.setHang(true);
        deadlineMs = 20_000;
        break;
      case 'agentKill':
        fault = active.agent!.kill('SIGKILL');
        deadlineMs = sessionDeadline;
        break;
      case 'nodeFreeze': {
        const agent = active.agent!;
        agent.freeze();
        active.service.freeze();
        fault = Promise.resolve();
        // A fencing kill -9 may have ended the service already; SIGCONT to it is then a no-op.
        heal = async () => {
          agent.thaw();
          active.service.thaw();
        };
        deadlineMs = sessionDeadline;
        break;
      }
      case 'partition': {
        const ns = active.netns!;
        fault = ns.setLoss(100);
        heal = () => ns.heal();
        deadlineMs = sessionDeadline;
        break;
      }
      case 'cleanStop':
        fault = active.agent!.stop(15_000).then((code) => {
          if (code !== 0) note = `the stopped agent ${active.id} exited with code ${code}`;
        });
        deadlineMs = sessionDeadline;
        break;
    }
    let next: Node;
    try {
      [, next] = await Promise.all([fault, cluster.waitForActive(deadlineMs, active.id)]);
    } finally {
      await heal();
    }
    if (next.id !== standby.id) throw new Error(`${next.id} took over, expected ${standby.id}`);
    const ms = failoverMs(resource, standby.id, f.t0);
    return {
      failoverMs: ms,
      gapMs: roundOrNull(resource.gapAfter(f.t0)),
      ...(await clientOutage(client, f, offset(f.t0 + ms, f))),
      ...(note !== undefined ? { note } : {}),
    };
  } catch (err) {
    throw new Error(`${scenario} trial ${name} failed: ${(err as Error).message}\n${trial.describe()}`);
  } finally {
    await trial.stop();
  }
}

async function switchoverTrial(
  trial: Trial,
  client: WritingClient,
  active: Node,
  standby: Node,
): Promise<TrialResult> {
  const { cluster, resource } = trial;
  // The standby publishes its role a step after it took it: wait until a dry run finds it.
  const until = Date.now() + SETTLE_TIMEOUT_MS;
  while ((await cluster.hafcExit(['failover', '-c', active.configFile, '--dry-run'])).code !== 0) {
    if (Date.now() > until) throw new Error('no eligible switchover target appeared');
    await sleep(100);
  }
  const f = faultNow(resource);
  const r = await cluster.hafcExit(['failover', '-c', active.configFile, '--wait', '--json']);
  if (r.code !== 0) throw new Error(`hafc failover exited ${r.code}: ${r.stdout}${r.stderr}`);
  const out = JSON.parse(r.stdout) as { to: string; handoverMs: number | null };
  if (out.to !== standby.id) throw new Error(`the switchover went to ${out.to}, expected ${standby.id}`);
  await cluster.waitForActive(10_000, active.id);
  const ms = failoverMs(resource, standby.id, f.t0);
  return {
    failoverMs: ms,
    gapMs: roundOrNull(resource.gapAfter(f.t0)),
    ...(out.handoverMs !== null ? { handoverMs: out.handoverMs } : {}),
    ...(await clientOutage(client, f, f.t0Mono + ms)),
  };
}

async function restartTrial(
  trial: Trial,
  client: WritingClient,
  active: Node,
  standby: Node,
  sessionTimeoutMs: number,
): Promise<TrialResult> {
  const { cluster, resource } = trial;
  const f = faultNow(resource);
  await active.agent!.kill('SIGKILL');
  const agent = cluster.startAgent(active.id);
  await agent.waitForLog('the resumed session', (l) => l.msg === 'decision: resumed', sessionTimeoutMs * 3);
  const resumedMs = Math.round(resource.now() - f.t0);
  // Past the point where the standby would have taken over without resumption: an observation
  // window, not a synchronisation.
  await sleep(Math.max(0, f.t0 + sessionTimeoutMs * 1.5 - resource.now()));
  return {
    failoverMs: resumedMs,
    gapMs: roundOrNull(resource.gapAfter(f.t0)),
    failovers: resource.takes(standby.id).filter((e) => e.at >= f.t0).length,
    ...(await clientOutage(client, f, mono())),
  };
}

/**
 * kill -9 of the ensemble's leader. The active may well stay active (its session moves to a
 * surviving server); the figure is how long no service held the resource, 0 if none let go. The
 * trial watches until a session timeout after the fault has passed (a demotion for a lost lease
 * comes before that) and the resource has a holder, then restarts the server.
 */
async function leaderLossTrial(
  trial: Trial,
  client: WritingClient,
  zk: ZkEnsemble,
  sessionTimeoutMs: number,
): Promise<TrialResult> {
  const { resource } = trial;
  const before = resource.holder()?.node;
  const idx = await zk.leaderIndex(10_000);
  const server = zk.servers[idx]!;
  const f = faultNow(resource);
  try {
    await server.kill('SIGKILL');
    await zk.waitForQuorum(60_000);
    await waitFor(
      'a session timeout to pass since the leader was killed, with a service holding the resource',
      () => resource.now() >= f.t0 + sessionTimeoutMs && resource.holder() !== null,
      { timeoutMs: sessionTimeoutMs * 4 + 20_000, intervalMs: 20 },
    );
    const firstLoss = resource.history.find((e) => e.at >= f.t0 && e.kind !== 'take');
    const retake = firstLoss && resource.history.find((e) => e.at > firstLoss.at && e.kind === 'take');
    const ms = retake ? Math.round(retake.at - f.t0) : 0;
    return {
      failoverMs: ms,
      gapMs: roundOrNull(resource.gapAfter(f.t0)),
      activeChanged: resource.holder()?.node !== before,
      ...(await clientOutage(client, f, f.t0Mono + ms)),
      note: `killed ${server.name}`,
    };
  } finally {
    // The next trials need all three servers again.
    if (!server.isRunning()) await server.restart();
    await zk.waitForQuorum(60_000);
  }
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

// USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux architecture Node supports.
const CLK_TCK = 100;

interface IdleResult {
  overhead: Overhead;
  memory: { standbyKiB: number; activeKiB: number; standbyHwmKiB: number; activeHwmKiB: number };
  probes: Record<string, unknown>;
  raw: Record<string, unknown>;
}

/**
 * A fresh cluster, settled, then left alone (no client) for `idleSeconds`: health probes and
 * the session layer's ZooKeeper traffic keep running, nothing else uses this ensemble meanwhile.
 * Memory is sampled through the window; CPU, ZooKeeper packets and the leader's zxid are taken
 * at both ends of it.
 */
async function measureIdle(
  zk: ZkEnsemble,
  name: string,
  sessionTimeoutMs: number,
  profile: string,
  idleSeconds: number,
): Promise<IdleResult> {
  const trial = await Trial.start(zk, name, sessionTimeoutMs);
  try {
    const { active, standby } = await trial.cluster.settled(SETTLE_TIMEOUT_MS);
    // Start-up work (hafc init, the first election, the lock's breadcrumb) out of the window.
    await sleep(3000);
    const pids = [active.agent!.pid, standby.agent!.pid];
    const ticks = (): number[] => pids.map((p) => cpuTicks(fs.readFileSync(`/proc/${p}/stat`, 'utf8')));
    const packets = async (): Promise<number> => {
      const xs = await Promise.all(zk.servers.map((s) => fourLetter(s.clientPort, 'mntr', 2000)));
      return xs.reduce((a, x) => a + (parseMntr(x).zk_packets_received ?? 0), 0);
    };
    const leader = zk.servers[await zk.leaderIndex(10_000)]!;
    const zxid = async (): Promise<{ epoch: number; counter: number }> =>
      parseZxid(await fourLetter(leader.clientPort, 'srvr', 2000));
    const t0 = performance.now();
    const [c0, p0, z0] = [ticks(), await packets(), await zxid()];
    const a: Memory[] = [];
    const s: Memory[] = [];
    const samples = 5;
    for (let i = 0; i < samples; i++) {
      await sleep((idleSeconds * 1000) / samples);
      a.push(memoryOf(active.agent!.pid));
      s.push(memoryOf(standby.agent!.pid));
    }
    const [c1, p1, z1] = [ticks(), await packets(), await zxid()];
    const windowMs = performance.now() - t0;
    if (z1.epoch !== z0.epoch) throw new Error('the ZooKeeper leader changed during the idle window');
    // Still the same roles: the numbers belong to what they are labelled.
    if (trial.resource.holder()?.node !== active.id || standby.agent!.role() !== 'standby') {
      throw new Error('the roles changed while the idle cluster was watched');
    }
    const med = (xs: number[]): number => summarize(xs)!.median;
    const secs = windowMs / 1000;
    const overhead: Overhead = {
      profile,
      idleSeconds: Math.round(secs),
      rssKiB: { active: med(a.map((m) => m.rssKiB)), standby: med(s.map((m) => m.rssKiB)) },
      cpuSecondsPerIdleHour: {
        active: round2(cpuSecondsPerHour(c1[0]! - c0[0]!, CLK_TCK, windowMs)),
        standby: round2(cpuSecondsPerHour(c1[1]! - c0[1]!, CLK_TCK, windowMs)),
      },
      zkRequestsPerSecPerAgent: round2((p1 - p0) / secs / 2),
      zkWritesPerSecPerAgent: round2((z1.counter - z0.counter) / secs / 2),
    };
    const probes = await measureProbes(active, standby, 200);
    return {
      overhead,
      probes,
      memory: {
        standbyKiB: overhead.rssKiB.standby,
        activeKiB: overhead.rssKiB.active,
        standbyHwmKiB: Math.max(...s.map((m) => m.hwmKiB)),
        activeHwmKiB: Math.max(...a.map((m) => m.hwmKiB)),
      },
      raw: {
        windowMs: Math.round(windowMs),
        cpuTicks: { active: c1[0]! - c0[0]!, standby: c1[1]! - c0[1]!, perSecond: CLK_TCK },
        zkPacketsReceived: p1 - p0,
        leaderZxidDelta: z1.counter - z0.counter,
      },
    };
  } catch (err) {
    throw new Error(`idle measurement failed: ${(err as Error).message}\n${trial.describe()}`);
  } finally {
    await trial.stop();
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

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

/** The two namespaces of the partition trials, or why they cannot be had here. */
async function makeNamespaces(): Promise<string | null> {
  const why = netnsUnavailable();
  if (why !== null) return why;
  await removeLeftoverNamespaces();
  const made: NetNs[] = [];
  try {
    for (const i of [1, 2])
      made.push(await NetNs.create(((process.pid * 4 + i) >>> 0).toString(16).slice(-6)));
  } catch (err) {
    for (const ns of made) await ns.destroy();
    return `cannot make a network namespace: ${(err as Error).message}`;
  }
  namespaces = [made[0]!, made[1]!];
  return null;
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
  const { iterations, sessionTimeoutMs, scenarios, profiles } = opts;
  agentNodeArgs = opts.agentNodeArgs;
  Object.assign(result, {
    iterations,
    profiles,
    scenarios,
    agentNodeArgs,
    config: { sessionTimeoutMs },
  });

  const samples = new Map<string, TrialResult[]>();
  const seen = new Map<string, number>();
  const key = (p: Profile, sc: Scenario): string => `${p}/${sc}`;
  const notes: string[] = [];
  const idle: Partial<Record<Profile, IdleResult>> = {};
  let noNetns: string | null = null;
  const fill = (): Row[] => {
    const rows: Row[] = [];
    const perProfile: Record<string, Record<string, unknown>> = {};
    for (const p of profiles) {
      const out: Record<string, unknown> = {};
      for (const sc of scenarios) {
        const trials = samples.get(key(p, sc)) ?? [];
        const unavailable = sc === 'partition' && noNetns !== null ? noNetns : undefined;
        const row = buildRow(
          p,
          sc,
          trials.map((r) => ({
            failoverMs: sc === 'switchover' ? (r.gapMs ?? r.failoverMs) : r.failoverMs,
            outageMs: r.outageMs,
            ...(r.outageOpen ? { outageOpen: true } : {}),
            ...(r.failovers !== undefined ? { failovers: r.failovers } : {}),
          })),
          seen.get(key(p, sc)) ?? 0,
          sessionTimeoutMs,
          unavailable,
        );
        rows.push(row);
        out[sc] = {
          description: DESCRIPTION[sc],
          figure: FIGURE[sc],
          unit: 'ms',
          ...(unavailable !== undefined ? { unavailable } : {}),
          ...(summarize(trials.map((r) => r.failoverMs)) ?? { samples: [] }),
          gapMs: trials.map((r) => r.gapMs),
          outageMs: trials.map((r) => r.outageMs),
          outageOpen: trials.map((r) => r.outageOpen === true),
          target: row.target,
          met: row.met,
          violations: row.violations,
          ...(sc === 'agentKill' || sc === 'nodeFreeze' || sc === 'partition' ? { sessionTimeoutMs } : {}),
          ...(sc === 'switchover'
            ? {
                handoverMs: summarize(
                  trials.flatMap((r) => (r.handoverMs !== undefined ? [r.handoverMs] : [])),
                ),
              }
            : {}),
          ...(sc === 'agentRestart' ? { failovers: trials.map((r) => r.failovers ?? 0) } : {}),
          ...(sc === 'zkLeaderLoss' ? { activeChanged: trials.map((r) => r.activeChanged ?? false) } : {}),
        };
      }
      const id = idle[p];
      out.overhead = id ? { ...id.overhead, raw: id.raw } : null;
      out.agentRss = id
        ? { unit: 'KiB', source: '/proc/<pid>/status VmRSS (median of 5) and VmHWM', ...id.memory }
        : null;
      out.httpProbes = id?.probes ?? null;
      perProfile[p] = out;
    }
    result.profiles = perProfile;
    result.splitBrain = {
      violations: violations.length,
      details: violations.slice(0, 10).map((v) => `[${v.kind}] ${v.detail}`),
    };
    if (notes.length) result.notes = notes;
    return rows;
  };

  // A stuck step should never be possible (every wait has a deadline), but the whole run gets one too.
  const perTrialMs = sessionTimeoutMs * 4 + 90_000;
  const overallMs =
    120_000 +
    profiles.length * (iterations * scenarios.length * perTrialMs + opts.idleSeconds * 1000 + 60_000);
  const guard = setTimeout(
    () => abort(new Error(`the whole benchmark took longer than ${overallMs} ms`)),
    overallMs,
  );
  let exitCode = 0;
  try {
    await Promise.race([
      (async () => {
        if (scenarios.includes('partition')) {
          noNetns = await makeNamespaces();
          if (noNetns !== null) progress(`partition NOT RUN: ${noNetns}`);
        }
        progress('starting a 3-server ZooKeeper ensemble');
        ensemble = await ZkEnsemble.start({ servers: 3 });
        progress(`ZooKeeper up in ${ensemble.startupMs} ms; ${iterations} iteration(s) per scenario`);
        let seq = 0;
        const name = (): string => `bench-${process.pid}-${++seq}`;
        for (const p of profiles) {
          healthProfile = PROFILES[p];
          gracefulFenceTimeoutMs = GRACEFUL_FENCE_MS[p];
          for (let i = 1; i <= iterations; i++) {
            for (const sc of scenarios) {
              if (sc === 'partition' && noNetns !== null) continue;
              const before = violations.length;
              const r = await runTrial(ensemble, sc, name(), sessionTimeoutMs);
              const k = key(p, sc);
              samples.set(k, [...(samples.get(k) ?? []), r]);
              if (r.note) notes.push(`${p} ${sc} #${i}: ${r.note}`);
              const saw = violations.length - before;
              seen.set(k, (seen.get(k) ?? 0) + saw);
              progress(
                `${p.padEnd(7)} ${sc.padEnd(12)} ${i}/${iterations}: ${sc === 'agentRestart' ? 'resumed after' : 'failover'} ${r.failoverMs} ms` +
                  (r.handoverMs !== undefined ? ` (handover ${r.handoverMs} ms)` : '') +
                  (r.failovers !== undefined ? ` (${r.failovers} failover(s))` : '') +
                  ` (resource free ${r.gapMs ?? '-'} ms, client outage ${r.outageMs ?? '?'} ms${r.outageOpen ? ' and not over' : ''})` +
                  (saw ? ` - ${saw} SPLIT-BRAIN VIOLATION(S)` : ''),
              );
            }
          }
          progress(`${p}: watching an idle cluster for ${opts.idleSeconds} s`);
          const id = await measureIdle(ensemble, name(), sessionTimeoutMs, p, opts.idleSeconds);
          idle[p] = id;
          progress(
            `${p}: agent RSS standby ${id.memory.standbyKiB} KiB, active ${id.memory.activeKiB} KiB; ` +
              `ZK ${id.overhead.zkRequestsPerSecPerAgent} req/s, ${id.overhead.zkWritesPerSecPerAgent} writes/s per agent`,
          );
        }
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
  const rows = fill();
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
  const overheads = profiles.flatMap((p) => (idle[p] ? [idle[p].overhead] : []));
  const legend = scenarios.map((sc) => `  ${sc}: ${FIGURE[sc]}`).join('\n');
  process.stdout.write(
    `\nFailover per fault class (session timeout ${sessionTimeoutMs} ms; ${iterations} trial(s) each; ` +
      `met? = every trial within the target, no split brain)\n\n${renderTable(rows)}\n\n` +
      `The failover column measures:\n${legend}\n  outage: the writing client's longest span without an accepted write\n\n` +
      (overheads.length ? `Agent overhead at rest\n\n${renderOverhead(overheads)}\n\n` : ''),
  );
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
