/**
 * `npm run bench:idle`: what an idle pair of agents costs at the PRODUCT defaults (health every
 * 1000 ms, session 10 s; only the keys a config must have are set), against a ZooKeeper started
 * with the product's tickTime (2000 ms), so the session layer's probe rate is the production one.
 *
 * Per agent kind (http against the demo service; shell with a check and a state hook), a 2-node
 * cluster is started, left to settle, then measured over a window: CPU (utime+stime from
 * /proc/<pid>/stat, tick-sampled; and the scheduler's exact runtime from schedstat, "run %") of
 * the active and the standby separately, their context switches (the main
 * thread's voluntary ones are the event loop's wake-ups; all threads' as well), RSS, and the
 * ZooKeeper server's packets received per second (every server of the ensemble summed). A table
 * on stderr, the JSON last on stdout. It asserts nothing: numbers for bench/README.md.
 *
 *   --seconds N           measurement window per kind (default 60)
 *   --agents LIST         http,shell (default both)
 *   --servers 1|3         ZooKeeper servers (default 1)
 *   --agent-node-args A   node options for every agent, e.g. "--lite-mode"
 *   --cpu-prof DIR        run the agents with --cpu-prof into DIR (written at their clean stop);
 *                         V8's sampler then wakes them ~1000 times a second: their CPU and wake-up
 *                         numbers are the profiler's, read the profiles for where the rest goes
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { AgentProc, hafcBin } from '../harness/agent-proc.js';
import { killAllDemoServices, startDemoService, type DemoServiceProc } from '../harness/demo-service-proc.js';
import { waitFor } from '../harness/wait.js';
import { fourLetter, ZkEnsemble } from '../harness/zk-ensemble.js';

const KINDS = ['http', 'shell'] as const;
type Kind = (typeof KINDS)[number];
/** The product's ZooKeeper tickTime (zoo.cfg's usual 2000): it sets the relay allowance G. */
const PRODUCT_TICK_MS = 2000;
const SETTLE_TIMEOUT_MS = 60_000;
/** After both roles are reached: start-up compilation and the first GCs are over. */
const WARMUP_MS = 5000;
const CLK_TCK = 100;

interface Options {
  seconds: number;
  kinds: Kind[];
  servers: 1 | 3;
  nodeArgs: string[];
  cpuProf: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string' },
      agents: { type: 'string' },
      servers: { type: 'string' },
      'agent-node-args': { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds ?? 60);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600)
    throw new Error(`--seconds must be an integer from 1 to 3600, got ${JSON.stringify(values.seconds)}`);
  const kinds = (values.agents ?? KINDS.join(',')).split(',').map((k) => k.trim());
  for (const k of kinds)
    if (!(KINDS as readonly string[]).includes(k))
      throw new Error(`--agents: unknown agent ${JSON.stringify(k)}; known: ${KINDS.join(', ')}`);
  const servers = Number(values.servers ?? 1);
  if (servers !== 1 && servers !== 3)
    throw new Error(`--servers must be 1 or 3, got ${JSON.stringify(values.servers)}`);
  const nodeArgs = (values['agent-node-args'] ?? '').split(' ').filter((a) => a !== '');
  const bad = nodeArgs.find((a) => !a.startsWith('--'));
  if (bad !== undefined)
    throw new Error(`--agent-node-args: every item must be a node option (--x), got ${JSON.stringify(bad)}`);
  return { seconds, kinds: kinds as Kind[], servers, nodeArgs, cpuProf: values['cpu-prof'] };
}

const progress = (text: string): void => void process.stderr.write(`[idle] ${text}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ProcSample {
  cpuTicks: number;
  sysTicks: number;
  /** Nanoseconds on a CPU, all threads (schedstat): exact, where the ticks are sampled. */
  runNs: number;
  mainSwitches: number;
  allSwitches: number;
  rssKiB: number;
}

function statusField(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
  if (!m) throw new Error(`no ${key} in a /proc status file`);
  return Number(m[1]);
}

function sampleProc(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(rest[11]) + Number(rest[12]);
  const sysTicks = Number(rest[12]);
  const switches = (text: string) =>
    statusField(text, 'voluntary_ctxt_switches') + statusField(text, 'nonvoluntary_ctxt_switches');
  const main = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  let all = 0;
  let runNs = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      all += switches(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      runNs += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return {
    cpuTicks,
    sysTicks,
    runNs,
    mainSwitches: statusField(main, 'voluntary_ctxt_switches'),
    allSwitches: all,
    rssKiB: statusField(main, 'VmRSS'),
  };
}

async function zkPackets(zk: ZkEnsemble): Promise<number> {
  let sum = 0;
  for (const s of zk.servers) {
    const srvr = await fourLetter(s.clientPort, 'srvr');
    const m = /^Received: (\d+)$/m.exec(srvr);
    if (!m) throw new Error(`no 'Received:' in srvr of ${s.clientPort}: ${srvr.slice(0, 200)}`);
    sum += Number(m[1]);
  }
  return sum;
}

/** The smallest config of each kind: everything not required takes the product default. */
function configYaml(
  kind: Kind,
  id: string,
  dir: string,
  zk: ZkEnsemble,
  svc: DemoServiceProc | null,
): string {
  const common = [
    'cluster: idle',
    `node: { id: ${id}, host: 127.0.0.1, port: ${svc?.port ?? 1} }`,
    `zookeeper: { connect: "${zk.connectString()}" }`,
    'control: { listen: "127.0.0.1:0" }',
    'log: { format: json }',
  ];
  if (kind === 'http') return [...common, `service: { agent: http, url: "${svc!.url}" }`].join('\n') + '\n';
  const roleFile = path.join(dir, `${id}.role`);
  fs.writeFileSync(roleFile, 'standby\n');
  const set = (role: string) => JSON.stringify(['/bin/sh', '-c', `echo ${role} > ${roleFile}`]);
  return (
    [
      ...common,
      'service:',
      '  agent: shell',
      `  toActive: ${set('active')}`,
      `  toStandby: ${set('standby')}`,
      `  state: ${JSON.stringify(['/bin/cat', roleFile])}`,
      `  check: ${JSON.stringify(['/bin/true'])}`,
      'fencing: { methods: [{ shell: "/bin/true" }] }',
    ].join('\n') + '\n'
  );
}

interface KindResult {
  kind: Kind;
  seconds: number;
  active: AgentResult;
  standby: AgentResult;
  zkPacketsPerSecond: number;
}

interface AgentResult {
  cpuPercent: number;
  /** The part of cpuPercent spent in the kernel (stime). */
  sysPercent: number;
  /**
   * CPU from the scheduler's own runtime (/proc/<pid>/task/<tid>/schedstat, ns): exact. cpuPercent
   * is the kernel's tick sampling (this kernel: HZ 250, no VIRT_CPU_ACCOUNTING): a 4 ms tick is
   * charged to whoever runs when it fires, which is coarse for bursts of well under a tick.
   */
  runPercent: number;
  mainWakeupsPerSecond: number;
  allThreadSwitchesPerSecond: number;
  rssKiB: number;
}

async function measureKind(kind: Kind, zk: ZkEnsemble, opts: Options): Promise<KindResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hafc-idle-${kind}-`));
  const services: DemoServiceProc[] = [];
  const agents: AgentProc[] = [];
  try {
    const files: string[] = [];
    for (const id of ['n1', 'n2']) {
      const svc = kind === 'http' ? await startDemoService({ id, writeIntervalMs: 0 }) : null;
      if (svc) services.push(svc);
      const file = path.join(dir, `${id}.yaml`);
      fs.writeFileSync(file, configYaml(kind, id, dir, zk, svc));
      files.push(file);
    }
    // A cluster of the previous kind is gone with its agents; init is idempotent.
    // Asynchronously: the ensemble's client ports are proxied from this very process.
    await promisify(execFile)(process.execPath, [hafcBin, 'init', '-c', files[0]!], {
      timeout: 20_000,
    }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`hafc init failed: ${err.stderr || err.message}`);
    });
    const nodeArgs = [
      ...opts.nodeArgs,
      ...(opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(opts.cpuProf)}`] : []),
    ];
    files.forEach((file, i) =>
      agents.push(
        AgentProc.start(
          `n${i + 1}`,
          file,
          { HAFC_RUNTIME_DIR: fs.mkdtempSync(path.join(dir, 'run-')) },
          { nodeArgs },
        ),
      ),
    );
    const pair = await waitFor(
      `${kind}: one agent active and the other standby`,
      () => {
        const active = agents.find((a) => a.role() === 'active');
        const standby = agents.find((a) => a.role() === 'standby');
        return active && standby ? { active, standby } : null;
      },
      { timeoutMs: SETTLE_TIMEOUT_MS },
    );
    await sleep(WARMUP_MS);
    progress(`${kind}: settled (${pair.active.id} active); measuring for ${opts.seconds} s`);
    const t0 = performance.now();
    const a0 = sampleProc(pair.active.pid);
    const s0 = sampleProc(pair.standby.pid);
    const z0 = await zkPackets(zk);
    await sleep(opts.seconds * 1000);
    const a1 = sampleProc(pair.active.pid);
    const s1 = sampleProc(pair.standby.pid);
    const z1 = await zkPackets(zk);
    const secs = (performance.now() - t0) / 1000;
    if (pair.active.role() !== 'active' || pair.standby.role() !== 'standby')
      throw new Error(`${kind}: the roles changed during the measurement`);
    const of = (x0: ProcSample, x1: ProcSample): AgentResult => ({
      cpuPercent: Math.round(((x1.cpuTicks - x0.cpuTicks) / CLK_TCK / secs) * 10000) / 100,
      sysPercent: Math.round(((x1.sysTicks - x0.sysTicks) / CLK_TCK / secs) * 10000) / 100,
      runPercent: Math.round(((x1.runNs - x0.runNs) / 1e9 / secs) * 10000) / 100,
      mainWakeupsPerSecond: Math.round(((x1.mainSwitches - x0.mainSwitches) / secs) * 10) / 10,
      allThreadSwitchesPerSecond: Math.round(((x1.allSwitches - x0.allSwitches) / secs) * 10) / 10,
      rssKiB: x1.rssKiB,
    });
    return {
      kind,
      seconds: Math.round(secs * 10) / 10,
      active: of(a0, a1),
      standby: of(s0, s1),
      zkPacketsPerSecond: Math.round(((z1 - z0) / secs) * 10) / 10,
    };
  } finally {
    // SIGTERM: a clean stop, so a --cpu-prof profile gets written.
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(services.map((s) => s.stop()));
  }
}

async function main(): Promise<number> {
  const result: Record<string, unknown> = {
    benchmark: 'hafc-idle',
    ok: false,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
  };
  let zk: ZkEnsemble | undefined;
  try {
    const opts = parseOptions(process.argv.slice(2));
    Object.assign(result, { seconds: opts.seconds, servers: opts.servers, agentNodeArgs: opts.nodeArgs });
    if (opts.cpuProf) fs.mkdirSync(opts.cpuProf, { recursive: true });
    zk = await ZkEnsemble.start({ servers: opts.servers, tickTimeMs: PRODUCT_TICK_MS });
    const kinds: KindResult[] = [];
    for (const kind of opts.kinds) kinds.push(await measureKind(kind, zk, opts));
    result.kinds = kinds;
    result.ok = true;
    const rows = kinds.flatMap((k) =>
      (['active', 'standby'] as const).map((role) => {
        const r = k[role];
        return `| ${k.kind.padEnd(5)} | ${role.padEnd(7)} | ${r.cpuPercent.toFixed(2).padStart(5)} | ${r.sysPercent.toFixed(2).padStart(5)} | ${r.runPercent.toFixed(2).padStart(5)} | ${String(r.mainWakeupsPerSecond).padStart(7)} | ${String(r.allThreadSwitchesPerSecond).padStart(7)} | ${String(r.rssKiB).padStart(6)} | ${String(k.zkPacketsPerSecond).padStart(6)} |`;
      }),
    );
    process.stderr.write(
      [
        '| agent | role    | CPU % | sys % | run % | wakes/s | ctxsw/s | RSS KiB | ZK pkt/s (both agents) |',
        '| ----- | ------- | ----: | ----: | ----: | ------: | ------: | ------: | ---------------------: |',
        ...rows,
        '',
      ].join('\n'),
    );
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    progress(`failed: ${String(result.error)}`);
  } finally {
    await killAllDemoServices();
    await zk?.stop();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  return result.ok ? 0 : 1;
}

process.exitCode = await main();
