/**
 * `npm run bench:hadoop`: hafc versus Hadoop's own ZKFC (DFSZKFailoverController from the same
 * cached jars) in ONE run on the SAME real NameNode pair (harness/hadoop.ts) and ZooKeeper
 * (harness/zk-ensemble.ts, one server, tickTime 2000 as ZooKeeper ships, so the shortest session
 * it grants is 4000 ms).
 *
 * Four controller setups run one after another, never two at once: ZKFC at its defaults, hafc at
 * the config `hafc import-hadoop` writes for this pair (hafc's defaults), ZKFC at its fastest
 * accepted settings, hafc's fast profile. Between setups every controller is stopped and both
 * NameNodes are put back to standby. Each setup gets the same faults on whichever NameNode is
 * active:
 *
 *   nnKill   kill -9 of the active NameNode;
 *   ctlKill  kill -9 of the active NameNode's controller (ZKFC or hafc agent);
 *   nnHang   SIGSTOP of the active NameNode, left stopped until the other one is active.
 *
 * Failover time is from just before the fault until the other NameNode says it is active
 * (getServiceStatus over our IPC client, polled every 20 ms). Throughout the run both NameNodes
 * are sampled every 50 ms and a sample in which both say active is counted. Both controllers fence
 * with the same STONITH script (kill -9 of the NameNode on the target port, or proof that it is
 * gone), after their graceful transitionToStandby. At rest, each setup's two controller processes
 * are read from /proc for 10 s: CPU seconds used and resident memory.
 *
 *   node dist/bench/hadoop.js [--iterations N] [--out FILE] [--only SETUPS] [--scenarios LIST]
 *
 * Progress on stderr; stdout gets the table, then the JSON result as the last line. Exit 0, or 1
 * when a step failed or two actives were seen. A measurement tool: it asserts nothing about speed.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { parse as parseYaml, stringify } from 'yaml';
import { AgentProc, hafcBin } from '../harness/agent-proc.js';
import { hadoopAvailable, HadoopHaPair, HADOOP_VERSION, type NameNodeProc } from '../harness/hadoop.js';
import { waitFor } from '../harness/wait.js';
import { ZkEnsemble } from '../harness/zk-ensemble.js';
import { ZkfcProc } from '../harness/zkfc.js';
import { HaServiceClient } from '../src/hadoop/ha-service.js';

const run = promisify(execFile);
const SCENARIOS = ['nnKill', 'ctlKill', 'nnHang'] as const;
type Scenario = (typeof SCENARIOS)[number];
const TICK_MS = 2000;
const FAST_SESSION_MS = 2 * TICK_MS;
const REST_WINDOW_MS = 10_000;
const FAILOVER_DEADLINE_MS = 150_000;

/** ZKFC's fastest accepted settings: the shortest session the server grants, quick health RPCs. */
const ZKFC_FAST = {
  'ha.zookeeper.session-timeout.ms': String(FAST_SESSION_MS),
  'ha.health-monitor.check-interval.ms': '200',
  'ha.health-monitor.rpc-timeout.ms': '300',
  'ha.failover-controller.graceful-fence.rpc-timeout.ms': '1000',
};

const USAGE = `usage: node dist/bench/hadoop.js [--iterations N] [--out FILE] [--only SETUP[,SETUP]]
                                  [--scenarios SCENARIO[,SCENARIO]]
  setups: zkfc-default, hafc-default, zkfc-fast, hafc-fast (all by default)
  scenarios: ${SCENARIOS.join(', ')} (all by default; nnHang at ZKFC's defaults takes ~70 s each)`;

const startedAt = Date.now();
const progress = (text: string): void => {
  process.stderr.write(
    `[bench:hadoop ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${text}\n`,
  );
};

interface Rest {
  cpuSeconds: number;
  rssKiB: number;
}

interface SetupResult {
  name: string;
  settings: Record<string, unknown>;
  samples: Record<Scenario, number[]>;
  rest: Rest[];
}

// --- /proc ----------------------------------------------------------------------------------

const CLK_TCK = 100;

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** CPU seconds used over the window and the median RSS, for each pid. */
async function atRest(pids: number[]): Promise<Rest[]> {
  const cpu0 = pids.map(cpuSeconds);
  const rss: number[][] = pids.map(() => []);
  const end = Date.now() + REST_WINDOW_MS;
  while (Date.now() < end) {
    pids.forEach((p, i) => rss[i]!.push(rssKiB(p)));
    await new Promise((r) => setTimeout(r, 1000));
  }
  return pids.map((p, i) => {
    const s = [...rss[i]!].sort((a, b) => a - b);
    return { cpuSeconds: +(cpuSeconds(p) - cpu0[i]!).toFixed(2), rssKiB: s[Math.floor(s.length / 2)]! };
  });
}

// --- controllers ------------------------------------------------------------------------------

interface Controller {
  name: string;
  settings: Record<string, unknown>;
  start(nn: NameNodeProc): Promise<void>;
  kill(nn: NameNodeProc): Promise<void>;
  pid(nn: NameNodeProc): number;
  /** A position in the controller's log, for waitStandby. */
  mark(nn: NameNodeProc): number;
  /** Waits until the controller of `nn` has put it in the election as standby, after `mark`. */
  waitStandby(nn: NameNodeProc, mark: number): Promise<void>;
  stopAll(): Promise<void>;
  /** Log tails, for a failure message. */
  describe(): string;
}

async function zkfcController(
  pair: HadoopHaPair,
  name: string,
  extra: Record<string, string>,
): Promise<Controller> {
  const procs = await ZkfcProc.prepare(pair, name, extra);
  const of = (nn: NameNodeProc): ZkfcProc => procs.find((p) => p.nn === nn)!;
  return {
    name,
    settings: extra,
    start: (nn) => of(nn).start(),
    kill: (nn) => of(nn).kill('SIGKILL'),
    pid: (nn) => of(nn).pid!,
    mark: (nn) => of(nn).logSize(),
    waitStandby: (nn, mark) =>
      of(nn).waitForLog('its NameNode in standby', /to standby state/, mark, 120_000),
    stopAll: async () => {
      await Promise.all(procs.map((p) => p.kill('SIGTERM')));
    },
    describe: () => procs.map((p) => `--- ZKFC of ${p.nn.id}\n${p.logTail(40)}`).join('\n'),
  };
}

async function hafcController(
  dir: string,
  name: string,
  imported: Map<string, Record<string, unknown>>,
  change: (cfg: Record<string, unknown>) => void,
): Promise<Controller> {
  const files = new Map<string, string>();
  let settings: Record<string, unknown> = {};
  for (const [id, base] of imported) {
    const cfg = structuredClone(base);
    change(cfg);
    // Fixed ports would clash with other runs on this machine; the bench needs no HTTP.
    cfg.control = { listen: '127.0.0.1:0' };
    cfg.log = { level: 'info', format: 'json' };
    const file = path.join(dir, `${name}-${id}.yaml`);
    fs.writeFileSync(file, stringify(cfg));
    files.set(id, file);
    settings = { zookeeper: cfg.zookeeper, health: cfg.health, service: cfg.service, fencing: cfg.fencing };
  }
  await run(process.execPath, [hafcBin, 'init', '-c', [...files.values()][0]!], { timeout: 30_000 });
  const agents = new Map<string, AgentProc>();
  const marked = new Map<string, AgentProc | undefined>();
  return {
    name,
    settings,
    start: async (nn) => {
      const runDir = path.join(dir, `run-${name}-${nn.id}`);
      fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
      agents.set(nn.id, AgentProc.start(nn.id, files.get(nn.id)!, { HAFC_RUNTIME_DIR: runDir }));
    },
    kill: async (nn) => {
      await agents.get(nn.id)?.kill('SIGKILL');
    },
    pid: (nn) => agents.get(nn.id)!.pid,
    mark: (nn) => {
      const agent = agents.get(nn.id);
      marked.set(nn.id, agent);
      return agent?.logs().length ?? 0;
    },
    // A mark taken on an agent since replaced counts from the new agent's first line.
    waitStandby: (nn, mark) => {
      const agent = agents.get(nn.id)!;
      const from = marked.get(nn.id) === agent ? mark : 0;
      return agent
        .waitForLog('role standby', (l) => /^role \w+ -> standby$/.test(l.msg), 120_000, from)
        .then(() => undefined);
    },
    stopAll: async () => {
      await Promise.all([...agents.values()].map((a) => a.stop()));
    },
    describe: () =>
      [...agents.values()]
        .map((a) => `--- hafc agent ${a.id}\n${a.rawOutput().split('\n').slice(-40).join('\n')}`)
        .join('\n'),
  };
}

// --- the run ---------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      iterations: { type: 'string' },
      out: { type: 'string' },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const iterations = Number(values.iterations ?? '1');
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 50) {
    process.stderr.write(
      `--iterations: expected an integer from 1 to 50, got ${JSON.stringify(values.iterations)}\n${USAGE}\n`,
    );
    return 2;
  }
  const scenarios = (values.scenarios ?? SCENARIOS.join(',')).split(',').map((x) => x.trim());
  for (const sc of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(sc)) {
      process.stderr.write(`--scenarios: unknown scenario ${JSON.stringify(sc)}\n${USAGE}\n`);
      return 2;
    }
  }
  if (!hadoopAvailable()) {
    process.stderr.write('the Hadoop jars are not cached: run bash scripts/setup-hadoop.sh\n');
    return 1;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-bench-hadoop-'));
  const result: Record<string, unknown> = {
    ok: false,
    hadoop: HADOOP_VERSION,
    node: process.version,
    date: new Date().toISOString(),
    cpus: os.cpus().length,
    iterations,
    zookeeper: { servers: 1, tickTimeMs: TICK_MS },
  };
  const setups: SetupResult[] = [];
  const doubleActive: string[] = [];
  let zk: ZkEnsemble | undefined;
  let pair: HadoopHaPair | undefined;
  let current: Controller | undefined;
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  const clients = new Map<string, HaServiceClient>();
  try {
    zk = await ZkEnsemble.start({ servers: 1, tickTimeMs: TICK_MS, maxSessionTimeoutMs: 40_000 });
    // STONITH for both controllers: kill -9 whatever NameNode listens on the target port (pid files
    // kept by this bench), or succeed when it is already gone. hafc sets target_port for it too.
    const fence = path.join(dir, 'fence-nn.sh');
    fs.writeFileSync(
      fence,
      `#!/bin/sh\nf="${dir}/nn-\${target_port:?}.pid"\n[ -f "$f" ] || exit 1\npid=$(cat "$f")\nkill -9 "$pid" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null\n`,
      { mode: 0o755 },
    );
    progress('starting the NameNode pair');
    pair = await HadoopHaPair.start({
      hdfsSite: {
        'ha.zookeeper.quorum': zk.connectString(),
        'dfs.ha.fencing.methods': `shell(${fence} $target_port)`,
      },
    });
    const p = pair;
    const writePid = (nn: NameNodeProc): void =>
      fs.writeFileSync(path.join(dir, `nn-${nn.rpcPort}.pid`), String(nn.pid()));
    p.nameNodes.forEach(writePid);
    for (const nn of p.nameNodes) {
      clients.set(
        nn.id,
        new HaServiceClient({
          host: '127.0.0.1',
          port: nn.rpcPort,
          user: 'hafc',
          connectTimeoutMs: 500,
          callTimeoutMs: 500,
        }),
      );
    }
    const stateOf = async (nn: NameNodeProc): Promise<string> => {
      try {
        return (await clients.get(nn.id)!.getServiceStatus({ timeoutMs: 500 })).state;
      } catch {
        return 'unreachable';
      }
    };
    sampler = (async () => {
      const sampleClients = p.nameNodes.map(
        (nn) =>
          new HaServiceClient({
            host: '127.0.0.1',
            port: nn.rpcPort,
            user: 'hafc',
            connectTimeoutMs: 500,
            callTimeoutMs: 500,
          }),
      );
      while (sampling) {
        const states = await Promise.all(
          sampleClients.map((c) =>
            c.getServiceStatus({ timeoutMs: 500 }).then(
              (s) => s.state,
              () => 'unreachable',
            ),
          ),
        );
        if (states.every((s) => s === 'active'))
          doubleActive.push(`${new Date().toISOString()} (${current?.name ?? '-'})`);
        await new Promise((r) => setTimeout(r, 50));
      }
      sampleClients.forEach((c) => c.close());
    })();

    // hafc's configs, as the import writes them for this very pair.
    const imp = await run(
      process.execPath,
      [hafcBin, 'import-hadoop', '--conf-dir', p.clientConfDir, '--out', path.join(dir, 'imported')],
      {
        timeout: 30_000,
      },
    );
    progress(`hafc import-hadoop: ${imp.stdout.trim().split('\n').length} files`);
    const imported = new Map<string, Record<string, unknown>>();
    for (const nn of p.nameNodes) {
      imported.set(
        nn.id,
        parseYaml(fs.readFileSync(path.join(dir, 'imported', `hdfs-${p.nameservice}-${nn.id}.yaml`), 'utf8')),
      );
    }

    const active = async (not?: NameNodeProc): Promise<NameNodeProc> =>
      waitFor(
        `exactly one NameNode${not ? ` other than ${not.id}` : ''} to be active`,
        async () => {
          const s = await Promise.all(p.nameNodes.map(stateOf));
          const act = p.nameNodes.filter((_, i) => s[i] === 'active');
          return act.length === 1 && act[0] !== not ? act[0] : undefined;
        },
        { timeoutMs: FAILOVER_DEADLINE_MS, intervalMs: 20 },
      );

    const makers: [string, () => Promise<Controller>][] = [
      ['zkfc-default', () => zkfcController(p, 'zkfc-default', {})],
      ['hafc-default', () => hafcController(dir, 'hafc-default', imported, () => {})],
      ['zkfc-fast', () => zkfcController(p, 'zkfc-fast', ZKFC_FAST)],
      [
        'hafc-fast',
        () =>
          hafcController(dir, 'hafc-fast', imported, (cfg) => {
            // hafc's fast profile (harness/agent-config.ts) on the same session as ZKFC's fastest.
            cfg.cluster = `${String(cfg.cluster)}-fast`;
            // hold, as ZKFC does: with demote, a 4 s session leaves no lease for a 2 s to-standby
            // deadline (4000 - relay 1250 - margin 1000 - 2000 < 1000), and the agent refuses.
            Object.assign(cfg.zookeeper as object, {
              sessionTimeoutMs: FAST_SESSION_MS,
              onConnectionLoss: 'hold',
            });
            cfg.health = { intervalMs: 200, timeoutMs: 300, fall: 2, rise: 1, check: 'agent' };
            Object.assign(cfg.service as object, {
              requestTimeoutMs: 300,
              transitionTimeoutMs: 2000,
              gracefulFenceTimeoutMs: 1000,
            });
          }),
      ],
    ];
    const only = values.only?.split(',');
    for (const [name, make] of makers) {
      if (only !== undefined && !only.includes(name)) continue;
      progress(`${name}: starting`);
      const ctl = await make();
      current = ctl;
      const setup: SetupResult = {
        name,
        settings: ctl.settings,
        samples: { nnKill: [], ctlKill: [], nnHang: [] },
        rest: [],
      };
      setups.push(setup);
      const marks = p.nameNodes.map((nn) => ctl.mark(nn));
      await Promise.all(p.nameNodes.map((nn) => ctl.start(nn)));
      const first = await active();
      const other = p.nameNodes.find((n) => n !== first)!;
      await ctl.waitStandby(other, marks[p.nameNodes.indexOf(other)]!);
      progress(`${name}: ${first.id} active; at rest for ${REST_WINDOW_MS / 1000} s`);
      setup.rest = await atRest(p.nameNodes.map((nn) => ctl.pid(nn)));
      for (let i = 0; i < iterations; i++) {
        for (const scenario of SCENARIOS) {
          if (!scenarios.includes(scenario)) continue;
          const a = await active();
          const b = p.nameNodes.find((n) => n !== a)!;
          const t0 = performance.now();
          if (scenario === 'nnKill') await a.kill('SIGKILL');
          else if (scenario === 'ctlKill') await ctl.kill(a);
          else await a.freeze();
          await active(a);
          const ms = Math.round(performance.now() - t0);
          setup.samples[scenario].push(ms);
          progress(`${name} ${scenario} #${i + 1}: ${b.id} active after ${ms} ms`);
          const mark = ctl.mark(a);
          if (scenario === 'ctlKill') await ctl.start(a);
          else {
            // A hung NameNode was killed by the fencing (STONITH); if not, it goes now.
            await a.kill('SIGKILL');
            await a.start();
            writePid(a);
          }
          await ctl.waitStandby(a, mark);
        }
      }
      progress(`${name}: stopping`);
      await ctl.stopAll();
      current = undefined;
      // Back to two standbys for the next controller.
      for (const nn of p.nameNodes) {
        await clients.get(nn.id)!.transitionToStandby('REQUEST_BY_ZKFC', { timeoutMs: 10_000 });
      }
    }
    result.ok = doubleActive.length === 0;
    if (doubleActive.length > 0) result.error = 'both NameNodes said active in some samples';
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    progress(`failed: ${String(result.error)}`);
    if (current !== undefined) progress(current.describe());
    if (pair !== undefined) for (const nn of pair.nameNodes) progress(`--- ${nn.id}\n${nn.logTail(15)}`);
  } finally {
    sampling = false;
    await sampler;
    await current?.stopAll().catch(() => undefined);
    clients.forEach((c) => c.close());
    await pair?.stop().catch(() => undefined);
    await zk?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  result.doubleActiveSamples = doubleActive;
  result.setups = setups;
  process.stdout.write(`${table(setups)}\n${JSON.stringify(result)}\n`);
  if (values.out) fs.writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  return result.ok ? 0 : 1;
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function table(setups: SetupResult[]): string {
  const by = new Map(setups.map((s) => [s.name, s]));
  const fmt = (v: number | undefined): string => (v === undefined ? '-' : String(Math.round(v)));
  const ratio = (z: number | undefined, h: number | undefined): string =>
    z === undefined || h === undefined || h === 0 ? '-' : `${(z / h).toFixed(1)}x`;
  const rows: string[][] = [['', 'zkfc-default', 'hafc-default', 'ratio', 'zkfc-fast', 'hafc-fast', 'ratio']];
  for (const sc of SCENARIOS) {
    const m = (n: string) => median(by.get(n)?.samples[sc] ?? []);
    rows.push([
      `${sc} (ms, median)`,
      fmt(m('zkfc-default')),
      fmt(m('hafc-default')),
      ratio(m('zkfc-default'), m('hafc-default')),
      fmt(m('zkfc-fast')),
      fmt(m('hafc-fast')),
      ratio(m('zkfc-fast'), m('hafc-fast')),
    ]);
  }
  const rest = (n: string, f: (r: Rest) => number) => {
    const r = by.get(n)?.rest ?? [];
    return r.length ? r.reduce((a, x) => a + f(x), 0) / r.length : undefined;
  };
  const restRow = (
    label: string,
    f: (r: Rest) => number,
    unit: (v: number | undefined) => string,
  ): string[] => [
    label,
    unit(rest('zkfc-default', f)),
    unit(rest('hafc-default', f)),
    ratio(rest('zkfc-default', f), rest('hafc-default', f)),
    unit(rest('zkfc-fast', f)),
    unit(rest('hafc-fast', f)),
    ratio(rest('zkfc-fast', f), rest('hafc-fast', f)),
  ];
  rows.push(
    restRow(
      `CPU s / ${REST_WINDOW_MS / 1000} s at rest`,
      (r) => r.cpuSeconds,
      (v) => (v === undefined ? '-' : v.toFixed(2)),
    ),
  );
  rows.push(
    restRow(
      'RSS MiB at rest',
      (r) => r.rssKiB / 1024,
      (v) => (v === undefined ? '-' : v.toFixed(0)),
    ),
  );
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
    )
    .join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:hadoop: ${String(err)}\n`);
    process.exit(1);
  },
);
