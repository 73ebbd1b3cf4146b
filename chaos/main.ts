/**
 * `npm run chaos -- --seed N --duration S [--agents 2|3] [--faults LIST] [--out DIR]`
 *
 * A seeded, replayable fault schedule against a real 3-server ZooKeeper and 2-3 real `hafc agent`
 * processes on demo services, a client writing with the epoch it was given, and a checker that
 * reads the services' own logs afterwards (chaos/checker.ts). Writes into --out: the schedule,
 * the services' event logs, the agents' logs, the client's operations, faults.json (when each
 * fault was really done and healed), report.json and timeline.html.
 *
 * Exit status: 0 no violation; 1 violations (the seed, the schedule and the replay command are
 * printed); 2 bad arguments; 3 the run itself broke (the harness, not hafc); 130/143 interrupted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { renderTimelineHtml, type TimelineModel } from '../src/cli/render/timeline-html.js';
import { removeLeftoverNamespaces, netnsUnavailable, NetNs } from '../harness/netns.js';
import { httpRequest } from '../harness/demo-service-proc.js';
import { check, type CheckResult, type QuietWindow, type ServiceEvent } from './checker.js';
import { ChaosCluster, mono } from './cluster.js';
import { WritingClient } from './client.js';
import { inject, type Heal } from './faults.js';
import {
  ACTIVE,
  FAULT_DOCS,
  FAULT_KINDS,
  formatSchedule,
  makeSchedule,
  type Fault,
  type FaultKind,
} from './schedule.js';
import {
  failovers,
  readAgentLog,
  roleSegments,
  withDownSpans,
  type AgentLine,
  type FaultSpan,
} from './timeline.js';

const USAGE = `usage: npm run chaos -- --seed N --duration S [options]

  --seed N            the schedule's seed (same seed + options = same schedule)
  --duration S        seconds of faults (all healed at the end)
  --agents 2|3        nodes (default 3)
  --faults LIST       comma-separated fault kinds (default: all)
  --max-concurrent N  faults in force at once (default 2)
  --mean-gap-ms MS    mean pause between two fault starts (default 2500)
  --session-timeout-ms MS   the agents' ZooKeeper session timeout (default 4000)
  --out DIR           where logs, report.json and timeline.html go (default .tmp/chaos/seed-N)
  --fencing noop      the checker's self-test: fence with 'true' (proves nothing), so a fault
                      that needs fencing must end in a violation the checker reports

fault kinds:
${FAULT_KINDS.map((k) => `  ${k.padEnd(17)} ${FAULT_DOCS[k]}`).join('\n')}`;

class UsageError extends Error {}

interface Options {
  seed: number;
  durationMs: number;
  agents: 2 | 3;
  faults: FaultKind[];
  maxConcurrent: number;
  meanGapMs: number;
  sessionTimeoutMs: number;
  out: string;
  noopFencing: boolean;
  /** The arguments as given, for the replay command. */
  argv: string[];
}

function intOpt(name: string, raw: string | undefined, min: number, max: number, dflt?: number): number {
  if (raw === undefined) {
    if (dflt === undefined) throw new UsageError(`--${name} is required`);
    return dflt;
  }
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function parseOptions(argv: string[]): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        seed: { type: 'string' },
        duration: { type: 'string' },
        agents: { type: 'string' },
        faults: { type: 'string' },
        'max-concurrent': { type: 'string' },
        'mean-gap-ms': { type: 'string' },
        'session-timeout-ms': { type: 'string' },
        out: { type: 'string' },
        fencing: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const seed = intOpt('seed', values.seed, 0, Number.MAX_SAFE_INTEGER);
  const agents = intOpt('agents', values.agents, 2, 3, 3) as 2 | 3;
  let faults: FaultKind[] = [...FAULT_KINDS];
  if (values.faults !== undefined) {
    faults = [];
    for (const f of values.faults
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      if (!(FAULT_KINDS as readonly string[]).includes(f)) {
        throw new UsageError(
          `--faults: unknown fault kind ${JSON.stringify(f)}; known: ${FAULT_KINDS.join(', ')}`,
        );
      }
      faults.push(f as FaultKind);
    }
    if (faults.length === 0) throw new UsageError('--faults: no fault kind given');
  }
  if (values.fencing !== undefined && values.fencing !== 'noop') {
    throw new UsageError(
      `--fencing: the only choice is noop (the checker's self-test), got ${JSON.stringify(values.fencing)}`,
    );
  }
  return {
    noopFencing: values.fencing === 'noop',
    seed,
    durationMs: intOpt('duration', values.duration, 1, 86_400) * 1000,
    agents,
    faults,
    maxConcurrent: intOpt('max-concurrent', values['max-concurrent'], 1, 6, 2),
    meanGapMs: intOpt('mean-gap-ms', values['mean-gap-ms'], 100, 600_000, 2500),
    sessionTimeoutMs: intOpt('session-timeout-ms', values['session-timeout-ms'], 2000, 30_000, 4000),
    out: path.resolve(values.out ?? path.join('.tmp', 'chaos', `seed-${seed}`)),
    argv,
  };
}

function log(msg: string): void {
  process.stderr.write(`chaos ${new Date().toISOString().slice(11, 23)} ${msg}\n`);
}

function sleepUntil(monoMs: number): Promise<void> {
  const ms = monoMs - mono();
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

/** One lock per thing a fault acts on, so a slow heal (a ZooKeeper restart) is not overtaken. */
class Locks {
  private readonly tails = new Map<string, Promise<void>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.tails.set(
      key,
      prev.then(() => mine),
    );
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

interface FaultRecord {
  id: string;
  kind: FaultKind;
  node: string | null;
  params: Fault['params'];
  plannedAtMs: number;
  plannedDurationMs: number;
  startMono: number | null;
  healedMono: number | null;
  /** ACTIVE when the node was chosen at the start: the one active then. */
  target?: string;
  skipped?: string;
  note?: string;
  error?: string;
}

/** The node whose service says it is active (the highest epoch if several do), if any. */
async function activeNode(c: ChaosCluster): Promise<string | null> {
  const answers = await Promise.all(
    c.nodes.map(async (n) => {
      try {
        const r = await httpRequest(`http://${n.host}:${n.port}/role`, 'GET', undefined, {}, 300);
        const b = r.body as { role?: unknown; epoch?: unknown };
        return b.role === 'active' && typeof b.epoch === 'string'
          ? { id: n.id, epoch: BigInt(b.epoch) }
          : null;
      } catch {
        return null;
      }
    }),
  );
  let best: { id: string; epoch: bigint } | null = null;
  for (const a of answers) if (a && (!best || a.epoch > best.epoch)) best = a;
  return best?.id ?? null;
}

function readEvents(file: string, node: string): ServiceEvent[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: ServiceEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (typeof o.mono !== 'number' || typeof o.pid !== 'number' || typeof o.event !== 'string') continue;
      out.push({
        node,
        pid: o.pid,
        mono: o.mono,
        event: o.event,
        ...(typeof o.epoch === 'string' ? { epoch: o.epoch } : {}),
        ...(typeof o.from === 'string' ? { from: o.from } : {}),
        ...(typeof o.to === 'string' ? { to: o.to } : {}),
        ...(typeof o.seq === 'string' ? { seq: o.seq } : {}),
      });
    } catch {
      // A line cut by kill -9.
    }
  }
  return out;
}

/** Spans in which no fault was in force, each opened by the heal that ended the last one. */
function quietWindows(records: FaultRecord[], endMono: number): QuietWindow[] {
  const spans = records
    .filter((r) => r.startMono !== null)
    .map((r) => ({ id: r.id, from: r.startMono!, to: r.healedMono ?? endMono }))
    .sort((a, b) => a.from - b.from);
  const out: QuietWindow[] = [];
  let coverEnd = -Infinity;
  let lastId = '';
  for (const s of spans) {
    if (s.from > coverEnd && coverEnd > -Infinity)
      out.push({ fromMono: coverEnd, toMono: s.from, after: lastId });
    if (s.to > coverEnd) {
      coverEnd = s.to;
      lastId = s.id;
    }
  }
  if (coverEnd > -Infinity)
    out.push({ fromMono: coverEnd, toMono: endMono, after: `${lastId} (the final heal)` });
  return out;
}

async function main(): Promise<number> {
  let opts: Options | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`chaos: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const o = opts;
  const wantNetns = o.faults.some((f) => f === 'partition' || f === 'net-degrade');
  if (wantNetns) {
    const why = netnsUnavailable();
    if (why) {
      process.stderr.write(`chaos: faults partition/net-degrade need network namespaces: ${why}\n`);
      return 2;
    }
  }
  const replay = `npm run chaos -- ${o.argv.join(' ')}`;
  const nodes = Array.from({ length: o.agents }, (_, i) => `nn${i + 1}`);
  const schedule = makeSchedule({
    seed: o.seed,
    durationMs: o.durationMs,
    nodes,
    faults: o.faults,
    netnsNode: wantNetns ? nodes[nodes.length - 1]! : null,
    shellNodes: o.agents === 3 ? ['nn2'] : [],
    sessionTimeoutMs: o.sessionTimeoutMs,
    maxConcurrent: o.maxConcurrent,
    meanGapMs: o.meanGapMs,
  });
  fs.rmSync(o.out, { recursive: true, force: true });
  fs.mkdirSync(o.out, { recursive: true });
  const printed = formatSchedule(schedule);
  fs.writeFileSync(path.join(o.out, 'schedule.txt'), `${printed}\n`);
  fs.writeFileSync(path.join(o.out, 'schedule.json'), JSON.stringify(schedule, null, 2));
  process.stderr.write(`${printed}\nreplay: ${replay}\n`);

  const left = await removeLeftoverNamespaces();
  if (left.length) log(`removed leftover namespaces of dead runs: ${left.join(', ')}`);
  const runId = ((o.seed ^ process.pid) >>> 0).toString(16).slice(-6).padStart(6, '0');
  let ns: NetNs | null = null;
  let cluster: ChaosCluster | null = null;
  let client: WritingClient | null = null;
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = sig;
    log(`${sig}: healing and stopping`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const records: FaultRecord[] = schedule.faults.map((f) => ({
    id: f.id,
    kind: f.kind,
    node: f.node,
    params: f.params,
    plannedAtMs: f.atMs,
    plannedDurationMs: f.durationMs,
    startMono: null,
    healedMono: null,
  }));
  const wallMinusMono = Date.now() - mono();
  let t0 = 0;
  let endMono = 0;
  let runError: string | null = null;
  try {
    if (wantNetns) ns = await NetNs.create(runId);
    log(
      `starting ZooKeeper and ${o.agents} nodes${ns ? ` (${nodes[nodes.length - 1]} in namespace ${ns.name})` : ''}`,
    );
    cluster = await ChaosCluster.start({
      nodes: o.agents,
      outDir: o.out,
      sessionTimeoutMs: o.sessionTimeoutMs,
      netns: ns,
      noopFencing: o.noopFencing,
      log,
    });
    const c = cluster;
    log(`promised bound for an active after a heal: ${c.boundMs} ms`);
    // The first active: the run means nothing without one.
    const firstDeadline = mono() + 60_000;
    while (
      !c.nodes.some((n) => readEvents(n.eventLog, n.id).some((e) => e.event === 'role' && e.to === 'active'))
    ) {
      if (mono() > firstDeadline) throw new Error('no node became active within 60 s of the start');
      if (interrupted) throw new Error(`interrupted by ${interrupted}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    client = new WritingClient(() => c.nodes.map((n) => ({ node: n.id, url: `http://${n.host}:${n.port}` })));
    client.start();
    t0 = mono();
    const locks = new Locks();
    const tasks = schedule.faults.map(async (planned, i) => {
      const rec = records[i]!;
      // In short steps, so an interrupted run does not wait out the rest of its schedule.
      while (!interrupted && mono() < t0 + planned.atMs) {
        await sleepUntil(Math.min(t0 + planned.atMs, mono() + 200));
      }
      if (interrupted) return;
      let f = planned;
      if (planned.node === ACTIVE) {
        const node = (await activeNode(c)) ?? c.nodes[0]!.id;
        f = { ...planned, node };
        rec.node = node;
        rec.target = ACTIVE;
      }
      const key = f.node ?? (f.kind === 'zk-load' ? 'zk-load' : 'zookeeper');
      await locks.run(key, async () => {
        if (interrupted) return;
        let heal: Heal | null = null;
        rec.startMono = mono();
        try {
          const r = await inject(c, f);
          if ('skipped' in r) {
            rec.skipped = r.skipped;
            rec.startMono = null;
            log(`${f.id} ${f.kind} skipped: ${r.skipped}`);
            return;
          }
          heal = r.heal;
          if (r.note) rec.note = r.note;
          log(`${f.id} ${f.kind}${f.node ? ` ${f.node}` : ''} ${r.note ?? ''}`.trimEnd());
        } catch (err) {
          rec.error = `inject: ${(err as Error).message}`;
          log(`${f.id} ${f.kind} could not be done: ${(err as Error).message}`);
        }
        // Interruption ends the wait early: heal at once.
        while (!interrupted && mono() < t0 + f.atMs + f.durationMs) {
          await sleepUntil(Math.min(t0 + f.atMs + f.durationMs, mono() + 200));
        }
        try {
          await heal?.();
        } catch (err) {
          rec.error = `${rec.error ? `${rec.error}; ` : ''}heal: ${(err as Error).message}`;
          log(`${f.id} ${f.kind} heal failed: ${(err as Error).message}`);
        }
        rec.healedMono = mono();
      });
    });
    await Promise.all(tasks);
    log('every fault healed; making sure nothing is left broken');
    await c.healAll();
    const healed = mono();
    // Watch for as long as the promise allows, and a little more to see the active hold.
    const until = healed + c.boundMs + 2000;
    while (mono() < until && !interrupted) {
      await sleepUntil(Math.min(until, mono() + 200));
    }
    endMono = mono();
  } catch (err) {
    runError = (err as Error).stack ?? String(err);
    log(`the run broke: ${runError}`);
    endMono = mono();
  } finally {
    await client?.stop();
    if (cluster) {
      try {
        await cluster.healAll();
      } catch (err) {
        log(`final heal: ${(err as Error).message}`);
      }
      await cluster.stop();
    }
    await ns?.destroy();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  // --- the verdict ---------------------------------------------------------------------------
  const events = cluster ? cluster.nodes.flatMap((n) => readEvents(n.eventLog, n.id)) : [];
  // A fault that started but whose heal never ran still counts as in force until the end.
  const quiet = quietWindows(records, endMono);
  const result: CheckResult = check({
    events,
    ops: client?.ops ?? [],
    quiet,
    boundMs: cluster?.boundMs ?? 0,
    agentExits: cluster?.agentExits ?? [],
    endMono,
  });
  const done = records.filter((r) => r.startMono !== null).length;
  const toWall = (m: number): number => m + wallMinusMono;

  const agentLogs = new Map<string, AgentLine[]>();
  for (const n of cluster?.nodes ?? []) agentLogs.set(n.id, readAgentLog(n.agentLog));
  const spans: FaultSpan[] = records
    .filter((r) => r.startMono !== null)
    .map((r) => ({
      id: r.id,
      label: `${r.id} ${r.kind}${Object.keys(r.params).length ? ` ${Object.values(r.params).join(' ')}` : ''}`,
      lane: r.kind === 'zk-load' ? null : r.node,
      from: toWall(r.startMono!),
      to: toWall(r.healedMono ?? endMono),
    }));
  const startWall = toWall(t0 || endMono) - 5000;
  const endWall = toWall(endMono);
  const verdict = result.violations.length === 0 && runError === null ? 'PASS' : runError ? 'BROKEN' : 'FAIL';
  const model: TimelineModel = {
    title: `hafc chaos seed ${o.seed}: ${verdict}`,
    subtitle: `${done} faults done of ${schedule.faults.length} scheduled, ${result.activations} activations, ${result.ackedWrites} acknowledged writes, ${result.violations.length} violations`,
    startMs: startWall,
    endMs: endWall,
    lanes: [...agentLogs].map(([id, lines]) => ({
      id,
      segments: withDownSpans(
        roleSegments(lines, endWall),
        (cluster?.agentLives ?? [])
          .filter((l) => l.node === id)
          .map((l) => ({ from: toWall(l.fromMono), to: l.toMono === null ? null : toWall(l.toMono) })),
        endWall,
      ).filter((s) => s.to >= startWall),
    })),
    faults: spans,
    failovers: failovers(agentLogs, spans).filter((f) => f.phases.every((p) => p.to >= startWall)),
    violations: result.violations.map((v) => ({
      at: toWall(v.atMono),
      ...(v.toMono !== undefined ? { to: toWall(v.toMono) } : {}),
      lane: v.node,
      text: `${v.kind}: ${v.detail}`,
    })),
    markers: (cluster?.agentExits ?? []).map((x) => ({ at: toWall(x.atMono), lane: x.node, text: x.detail })),
    notes: [`replay: ${replay}`, `bound after a heal: ${cluster?.boundMs ?? '?'} ms`],
  };
  fs.writeFileSync(path.join(o.out, 'timeline.html'), renderTimelineHtml(model));
  fs.writeFileSync(
    path.join(o.out, 'client.jsonl'),
    (client?.ops ?? []).map((op) => JSON.stringify(op)).join('\n') + '\n',
  );
  const report = {
    seed: o.seed,
    verdict,
    replay,
    options: { ...o, argv: undefined },
    boundMs: cluster?.boundMs ?? null,
    faultsScheduled: schedule.faults.length,
    faultsDone: done,
    faultsSkipped: records.filter((r) => r.skipped).length,
    faultErrors: records.filter((r) => r.error).map((r) => ({ id: r.id, kind: r.kind, error: r.error })),
    byKind: Object.fromEntries(
      FAULT_KINDS.map((k) => [k, records.filter((r) => r.kind === k && r.startMono !== null).length]),
    ),
    activations: result.activations,
    ackedWrites: result.ackedWrites,
    clientOps: client?.ops.length ?? 0,
    clientAcks: result.clientAcks,
    restarts: cluster?.restarts ?? null,
    recoveries: result.recoveries,
    maxRecoveryMs: Math.max(0, ...result.recoveries.map((r) => r.ms ?? Infinity)),
    // The longest spans with no active service, and the faults in force during each.
    longestNoActive: result.gaps.slice(0, 10).map((g) => ({
      ms: Math.round(g.ms),
      atS: Number(((g.fromMono - t0) / 1000).toFixed(3)),
      faults: records
        .filter(
          (r) =>
            r.startMono !== null &&
            r.startMono <= g.toMono &&
            (r.healedMono ?? endMono) >= g.fromMono - 30_000,
        )
        .map((r) => `${r.id} ${r.kind}${r.node ? ` ${r.node}` : ''}`),
    })),
    noActiveTotalMs: Math.round(result.gaps.reduce((s, g) => s + g.ms, 0)),
    violations: result.violations,
    runError,
    faults: records,
  };
  fs.writeFileSync(path.join(o.out, 'faults.json'), JSON.stringify(records, null, 2));
  fs.writeFileSync(path.join(o.out, 'report.json'), JSON.stringify(report, null, 2));

  const summary =
    `chaos seed ${o.seed}: ${verdict}: ${done}/${schedule.faults.length} faults, ${result.activations} activations, ` +
    `${result.ackedWrites} acknowledged writes (${result.clientAcks} seen by the client), ` +
    `slowest recovery after a heal ${report.maxRecoveryMs.toFixed(0)} ms (bound ${cluster?.boundMs} ms), ` +
    `no active for ${(report.noActiveTotalMs / 1000).toFixed(1)} s in all (longest ${report.longestNoActive[0]?.ms ?? 0} ms), ` +
    `${result.violations.length} violations; ${path.join(o.out, 'timeline.html')}`;
  if (verdict !== 'PASS') {
    const byKind = new Map<string, number>();
    for (const v of result.violations) byKind.set(v.kind, (byKind.get(v.kind) ?? 0) + 1);
    const shown = result.violations.slice(0, 20);
    const lines = shown.map(
      (v, i) => `  ${i + 1}. [${v.kind}] +${((v.atMono - t0) / 1000).toFixed(3)} s ${v.detail}`,
    );
    process.stderr.write(
      `\n${summary}\n${runError ? `run error: ${runError}\n` : ''}` +
        (result.violations.length
          ? `violations by kind: ${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}` +
            `${result.violations.length > shown.length ? ` (the first ${shown.length} below; all in report.json)` : ''}\n`
          : '') +
        `${lines.join('\n')}\n\n` +
        `seed: ${o.seed}\n${printed}\nreplay with: ${replay}\n`,
    );
  } else {
    process.stderr.write(`${summary}\n`);
  }
  process.stdout.write(
    `${JSON.stringify({ seed: o.seed, verdict, faults: done, violations: result.violations.length, out: o.out })}\n`,
  );
  if (interrupted) return interrupted === 'SIGINT' ? 130 : 143;
  return verdict === 'PASS' ? 0 : verdict === 'FAIL' ? 1 : 3;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(3);
  },
);
