/**
 * `npm run demo`: hafc failing over for real, narrated for someone who has never seen it.
 *
 * Starts a 3-server ZooKeeper ensemble, two copies of the demo service (nn1, nn2) that both report
 * to a split-brain checker (SharedResource), and one `hafc agent` process per service. Then:
 *   act 1: kill -9 the active SERVICE; the standby's agent takes the lock, fences, promotes;
 *   act 2: kill -9 the new active's AGENT; the standby waits for the ZooKeeper session to expire,
 *          fences the old service gracefully (it is told to stand by) and takes over.
 * Ends with the failover times, the epochs and the checker's verdict. Exit 0 only if all is well.
 *
 * HAFC_DEMO_LOGS=1 keeps the agents' raw logs (and the services' stdout) in a directory printed at
 * the end.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { agentConfigYaml } from '../harness/agent-config.js';
import { repoRoot, startDemoService, type DemoServiceProc } from '../harness/demo-service-proc.js';
import { SharedResource, type HistoryEvent } from '../harness/shared-resource.js';
import { ZkEnsemble } from '../harness/zk-ensemble.js';

// --- output ----------------------------------------------------------------------------------

const COLOR = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
const paint =
  (code: string) =>
  (s: string): string =>
    COLOR ? `\x1b[${code}m${s}\x1b[0m` : s;
const bold = paint('1');
const dim = paint('2');
const red = paint('1;31');
const green = paint('32');
const yellow = paint('33');
const cyan = paint('36');
const magenta = paint('35');

const say = (text = ''): void => void process.stdout.write(text + '\n');
const heading = (text: string): void => say('\n' + bold(cyan(`== ${text}`)));
const note = (text: string): void => say(dim(`   ${text}`));
const ms = (n: number): string => `${Math.round(n)} ms`;
const secs = (n: number): string => `${(n / 1000).toFixed(2)} s`;

class DemoError extends Error {}

// --- settings --------------------------------------------------------------------------------

const CLUSTER = 'demo';
const SESSION_TIMEOUT_MS = 4000;
const KEEP_LOGS = process.env.HAFC_DEMO_LOGS === '1';
/** Whole-run guard: the demo should take well under a minute; something is stuck past this. */
const OVERALL_DEADLINE_MS = 120_000;

/** STONITH for the demo: SIGKILL the target's service by the pid file the demo keeps up to date. */
const KILL_BY_PIDFILE =
  'p=$(cat "$HAFC_DEMO_DIR/$HAFC_TARGET_ID.pid") || exit 1; kill -9 "$p" 2>/dev/null; ' +
  'for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || exit 0; sleep 0.1; done; exit 1';

const ROOT = repoRoot();
const HAFC = path.join(ROOT, 'dist', 'src', 'cli', 'entry.js');

// --- waiting ---------------------------------------------------------------------------------

const sleep = (n: number): Promise<void> => new Promise((r) => setTimeout(r, n));

/** Polls `probe` until it returns something truthy; fails after `timeoutMs` naming `what`. */
async function until<T>(
  what: string,
  probe: () => T | null | undefined | false,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) throw new DemoError(`timed out after ${ms(timeoutMs)} waiting for ${what}`);
    await sleep(20);
  }
}

// --- the agent processes ---------------------------------------------------------------------

type LogLine = Record<string, unknown> & { msg: string; time?: string };

class AgentProc {
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  readonly exited: Promise<void>;
  exitInfo: string | undefined;
  private readonly child: ChildProcess;
  private readonly watchdog: ChildProcess;

  constructor(
    readonly id: string,
    configFile: string,
    env: Record<string, string>,
  ) {
    const child = spawn(process.execPath, [HAFC, 'agent', '-c', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.child = child;
    if (child.pid === undefined) throw new DemoError(`cannot start the agent of ${id}`);
    // If the demo itself is killed without running any handler, this watchdog's stdin (a pipe
    // from us) hits EOF and it kills the agent: no orphans holding ZooKeeper sessions.
    this.watchdog = spawn('/bin/sh', ['-c', `cat >/dev/null; kill -9 ${child.pid} 2>/dev/null`], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.watchdog.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal !== null ? `signal ${signal}` : `exit code ${code}`;
        resolve();
      });
      child.once('error', (err) => {
        this.exitInfo = `spawn error: ${err.message}`;
        resolve();
      });
    });
    let buf = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (this.raw.length < 200_000) this.raw.push(line);
        try {
          const obj = JSON.parse(line) as unknown;
          if (typeof obj === 'object' && obj !== null && typeof (obj as LogLine).msg === 'string') {
            this.lines.push(obj as LogLine);
          }
        } catch {
          // not JSON (a crash trace): kept in raw only
        }
      }
    });
    child.stdout!.resume();
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The latest role from the controller's `role a -> b` lines. */
  role(): string {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const m = /^role \w+ -> (\w+)$/.exec(this.lines[i]!.msg);
      if (m) return m[1]!;
    }
    return 'init';
  }

  private alive(): void {
    if (this.exitInfo !== undefined) {
      throw new DemoError(
        `the agent of ${this.id} exited (${this.exitInfo}); its last log lines:\n` +
          this.raw.slice(-15).join('\n'),
      );
    }
  }

  async waitForRole(role: string, timeoutMs: number): Promise<void> {
    await until(
      `the agent of ${this.id} to become ${role} (it is ${this.role()})`,
      () => {
        this.alive();
        return this.role() === role;
      },
      timeoutMs,
    );
  }

  async waitForLog(what: string, pred: (l: LogLine) => boolean, from: number, timeoutMs: number) {
    return until(
      `the agent of ${this.id} to log ${what}`,
      () => {
        this.alive();
        return this.lines.slice(from).find(pred);
      },
      timeoutMs,
    );
  }

  kill9(): Promise<void> {
    if (this.exitInfo === undefined) this.child.kill('SIGKILL');
    return this.exited;
  }

  /** SIGTERM (the agent demotes its service if active), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitInfo === undefined) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    this.watchdog.kill('SIGKILL');
  }

  /** Synchronous last resort, for process 'exit'. */
  killNow(): void {
    if (this.exitInfo === undefined) this.child.kill('SIGKILL');
    this.watchdog.kill('SIGKILL');
  }
}

// --- the cast --------------------------------------------------------------------------------

interface Node {
  id: string;
  service: DemoServiceProc;
  /** Every incarnation of the service, for the role lines of a killed one. */
  incarnations: DemoServiceProc[];
  configFile: string;
  agent: AgentProc | undefined;
}

const state: {
  ensemble?: ZkEnsemble;
  resource?: SharedResource;
  nodes: Node[];
  dir?: string;
  logDir?: string;
} = { nodes: [] };

function node(id: string): Node {
  const n = state.nodes.find((x) => x.id === id);
  if (n === undefined) throw new DemoError(`no node ${id}`);
  return n;
}

function other(id: string): Node {
  const n = state.nodes.find((x) => x.id !== id);
  if (n === undefined) throw new DemoError(`no node other than ${id}`);
  return n;
}

function configYaml(id: string, port: number, connect: string): string {
  return agentConfigYaml({
    cluster: CLUSTER,
    id,
    port,
    connect,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    healthIntervalMs: 300,
    healthTimeoutMs: 400,
    fencingMethods: ['- graceful', `- shell: ${JSON.stringify(KILL_BY_PIDFILE)}`],
    // Debug, so the timeline can show each failed probe before the health verdict.
    logLevel: 'debug',
  });
}

async function startService(id: string, port?: number): Promise<DemoServiceProc> {
  const svc = await startDemoService({
    id,
    resourcePort: state.resource!.port,
    // Same port on a restart: the agent's config points at it.
    ...(port !== undefined ? { args: ['--port', String(port)] } : {}),
  });
  fs.writeFileSync(path.join(state.dir!, `${id}.pid`), String(svc.pid));
  return svc;
}

function hafc(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [HAFC, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        reject(
          new DemoError(
            `hafc ${args.join(' ')} failed (${err.killed ? `killed after ${ms(timeoutMs)}` : `exit ${String(err.code)}`}): ` +
              `${String(stderr).trim() || String(stdout).trim() || err.message}`,
          ),
        );
      } else resolve(String(stdout).trim());
    });
  });
}

// --- the timeline ----------------------------------------------------------------------------

interface Row {
  at: number;
  who: string;
  text: string;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** The innermost cause of a nested error message ("a: b: connect ECONNREFUSED ..." -> the last part). */
function cause(v: unknown): string {
  const text = str(v ?? '?');
  const i = text.lastIndexOf(': ');
  return i >= 0 ? text.slice(i + 2) : text;
}

/** A human sentence for the agent log lines worth showing; null for the rest. */
function describeAgentLine(l: LogLine): string | null {
  const m = l.msg;
  const epoch = l.epoch !== undefined && l.epoch !== null ? `, epoch ${str(l.epoch)}` : '';
  if (/^health check failed \(\d+\/\d+/.test(m))
    return `health probe failed: ${cause(l.error ?? l.reason)} ${dim(m.slice(20))}`;
  if (/^health [A-Z_]+ -> [A-Z_]+$/.test(m)) {
    const bad = !m.endsWith('-> HEALTHY');
    return `health ${m.slice(7)}${bad ? `: ${cause(l.reason)}` : ''}`;
  }
  if (/^role \w+ -> \w+$/.test(m)) return `${bold(m)}${epoch} ${dim(`(${str(l.reason)})`)}`;
  if (m === 'leaving the election') return 'left the election, giving up the lock';
  if (m === 'acquired the lock') return `acquired the ZooKeeper lock${epoch}`;
  if (m === 'fencing the previous active')
    return `fencing the previous active ${str(l.target)} (its epoch ${str(l.targetEpoch)})`;
  if (/^fencing method \S+ failed$/.test(m)) return `${m}: ${cause(l.error ?? l.reason)}`;
  if (m.startsWith('fenced ')) return bold(m);
  if (m === 'service -> active' || m === 'service -> standby') {
    return `${m}${typeof l.durationMs === 'number' ? ` (hook took ${ms(l.durationMs)})` : ''}`;
  }
  if (m.startsWith('service -> ')) return `${m}: ${cause(l.error)}`;
  if (m === 'ZooKeeper session gone' || m.startsWith('lease expired')) return m;
  if (m === 'not promoted' || m.startsWith('activation abandoned')) return red(`${m}: ${str(l.reason)}`);
  return null;
}

function buildTimeline(
  t0Wall: number,
  t0Perf: number,
  marks: Map<string, number>,
  untilMs: number,
  what: string,
): Row[] {
  const rows: Row[] = [{ at: 0, who: 'demo', text: yellow(what) }];
  for (const n of state.nodes) {
    const a = n.agent;
    if (a === undefined) continue;
    for (const l of a.lines.slice(marks.get(n.id) ?? 0)) {
      const text = describeAgentLine(l);
      if (text === null || typeof l.time !== 'string') continue;
      rows.push({ at: Date.parse(l.time) - t0Wall, who: `${n.id} agent`, text });
    }
    for (const svc of n.incarnations) {
      for (const e of svc.roleEvents()) {
        const at = Date.parse(e.time) - t0Wall;
        if (at < -5) continue;
        rows.push({
          at,
          who: `${n.id} service`,
          text: `${e.from} -> ${e.to}, epoch ${e.epoch}${e.reason ? ` (${e.reason})` : ''}`,
        });
      }
    }
  }
  for (const e of state.resource!.history) {
    if (e.at < t0Perf) continue;
    const text =
      e.kind === 'take'
        ? green(`${e.node} is now the active (took it with epoch ${e.epoch})`)
        : e.kind === 'release'
          ? `${e.node} let go (epoch ${e.epoch})`
          : `${e.node}'s connection closed: it is no longer active`;
    rows.push({ at: e.at - t0Perf, who: 'checker', text });
  }
  // Some transitions are logged by two components of an agent; show each once.
  const seen = new Set<string>();
  return rows
    .filter((r) => r.at <= untilMs + 500)
    .sort((a, b) => a.at - b.at)
    .filter((r) => {
      const key = `${r.who}|${r.text}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

function printTimeline(rows: Row[]): void {
  const width = Math.max(...rows.map((r) => r.who.length));
  for (const r of rows) {
    const t = `+${String(Math.max(0, Math.round(r.at))).padStart(5)} ms`;
    say(`   ${yellow(t)}  ${magenta(r.who.padEnd(width))}  ${r.text}`);
  }
}

// --- the story -------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = Date.now();
  say(bold('hafc demo: automatic failover of a service, coordinated through ZooKeeper'));
  say(
    '\nhafc runs one small sidecar ("agent") next to each copy of a service. The agents watch their\n' +
      "service's health and compete for a lock in ZooKeeper; whoever holds it makes its service\n" +
      'the single "active" copy, after first fencing the previous active. Every promotion carries\n' +
      'an epoch, a number that only grows, so a stale active can be told apart.',
  );

  if (!fs.existsSync(HAFC)) throw new DemoError(`${HAFC} is missing: run \`npm run build\` first`);
  state.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-demo-'));

  // ---- 1. what is running
  heading('1. Setting the stage');
  say('Starting a 3-server ZooKeeper ensemble on this machine (takes a few seconds)...');
  const ensemble = await ZkEnsemble.start({ servers: 3, startTimeoutMs: 40_000 }).catch((err: unknown) => {
    throw new DemoError(`cannot start ZooKeeper: ${err instanceof Error ? err.message : String(err)}`);
  });
  state.ensemble = ensemble;
  const modes = await Promise.all(ensemble.servers.map((s) => s.mode().catch(() => null)));
  for (const [i, s] of ensemble.servers.entries()) {
    say(`   ${s.name}  127.0.0.1:${s.clientPort}  ${dim(modes[i] ?? '?')}`);
  }
  const connect = ensemble.directConnectString();

  const resource = await SharedResource.start();
  state.resource = resource;
  say(
    `\nStarting the split-brain checker on 127.0.0.1:${resource.port}: each service tells it when it\n` +
      'becomes active or stops being active, so we can prove there are never two actives.',
  );

  say('\nStarting two copies of the demo service (a tiny HTTP server with /role and /health):');
  for (const id of ['nn1', 'nn2']) {
    const service = await startService(id);
    const configFile = path.join(state.dir, `${id}.yaml`);
    fs.writeFileSync(configFile, configYaml(id, service.port, connect));
    state.nodes.push({ id, service, incarnations: [service], configFile, agent: undefined });
    say(`   ${id}  ${service.url}  pid ${service.pid}  ${dim('(starts as standby)')}`);
  }

  say(`\nAgent configs in ${state.dir} (nn1.yaml, nn2.yaml), in short:`);
  note(`zookeeper: ${connect}, session timeout ${SESSION_TIMEOUT_MS} ms`);
  note('health: GET /health every 300 ms; 2 failures = unhealthy, 1 success = healthy again');
  note('service: agent "http" (POST /role {role, epoch} to promote/demote)');
  note('fencing: 1) graceful (tell the old active to stand by), 2) shell: kill -9 its pid');

  const initOut = await hafc(['init', '-c', node('nn1').configFile], 20_000);
  say(`\n$ hafc init -c nn1.yaml\n   ${initOut}`);

  const env = { HAFC_DEMO_DIR: state.dir };
  say('\nStarting the agent of nn1 (`hafc agent -c nn1.yaml`); with nobody else around it wins.');
  const nn1 = node('nn1');
  nn1.agent = new AgentProc('nn1', nn1.configFile, env);
  const first = await resourceHolder('nn1', 20_000);
  await nn1.agent.waitForRole('active', 10_000);
  say('Starting the agent of nn2; the lock is taken, so it waits as the standby.');
  const nn2 = node('nn2');
  nn2.agent = new AgentProc('nn2', nn2.configFile, env);
  await nn2.agent.waitForRole('standby', 15_000);
  for (const n of state.nodes) say(`   agent ${n.id}  pid ${n.agent!.pid}  role ${bold(n.agent!.role())}`);

  // ---- 2. who is active
  heading('2. Who is active?');
  const ev = nn1.service.roleEvents().find((e) => e.to === 'active');
  if (ev === undefined) throw new DemoError('nn1 holds the resource but logged no role change to active');
  say(
    `The service ${bold(first.node)} says: role ${ev.from} -> ${green('active')}, epoch ${bold(ev.epoch)}` +
      (ev.reason ? ` ${dim(`(${ev.reason})`)}` : ''),
  );
  say(`The split-brain checker agrees: holder ${first.node}, epoch ${first.epoch}.`);
  note('(the epoch is the ZooKeeper transaction id that created the lock znode, so every new');
  note(' activation gets a bigger one; the service refuses promotions and writes with older epochs)');
  await sleep(800); // let the active serve a few writes before the drama

  // ---- 3. kill the active service
  heading('3. Act one: the active service dies');
  const a1 = await failServiceAct(first.node);

  // The killed service comes back (as a process supervisor would restart it) and becomes the
  // standby again, so there is somebody to fail over to in act two.
  const victim = node(first.node);
  say(
    `\nRestarting the ${victim.id} service (same port), as systemd would; its agent notices it is healthy:`,
  );
  const mark = victim.agent!.lines.length;
  victim.service = await startService(victim.id, victim.service.port);
  victim.incarnations.push(victim.service);
  await victim.agent!.waitForLog('role -> standby', (l) => /^role \w+ -> standby$/.test(l.msg), mark, 15_000);
  say(`   ${victim.id}: service pid ${victim.service.pid}, agent role ${bold(victim.agent!.role())}`);
  await sleep(500);

  // ---- 4. kill the active's agent
  heading("4. Act two: the active's agent dies (its service keeps running)");
  const a2 = await failAgentAct(a1.newActive);

  // ---- 5. summary
  heading('5. Summary');
  const takes = resource.takes();
  const epochs = takes.map((e) => e.epoch);
  const increasing = epochs.every((e, i) => i === 0 || e > epochs[i - 1]!);
  say(
    `   act one (service killed):  failover in ${bold(secs(a1.failoverMs))}  ${dim('(detection + fencing + promotion)')}`,
  );
  say(
    `   act two (agent killed):    failover in ${bold(secs(a2.failoverMs))}  ${dim(`(mostly the ${SESSION_TIMEOUT_MS / 1000} s session expiry)`)}`,
  );
  say(
    `   activations: ${takes.map((e) => `${e.node}@${e.epoch}`).join(' -> ')}  ` +
      (increasing ? green('epochs strictly increasing') : red('EPOCHS NOT INCREASING')),
  );
  say(
    `   writes by the active: ${resource.acceptedWrites} accepted, ${resource.rejectedWrites} rejected as stale`,
  );
  const v = resource.violations.length;
  if (v === 0) say(`   split-brain checker: ${green(bold('0 violations'))} - never two actives`);
  else {
    say(red(`   SPLIT-BRAIN CHECKER: ${v} VIOLATION(S)!`));
    for (const x of resource.violations) say(red(`     [${x.kind}] ${x.detail}`));
  }
  if (!increasing) throw new DemoError(`epochs are not strictly increasing: ${epochs.join(', ')}`);
  if (v > 0) throw new DemoError(`the split-brain checker saw ${v} violation(s)`);
  say(dim(`\n(${secs(Date.now() - t0)} in all; cleaning up)`));
}

async function resourceHolder(id: string, timeoutMs: number, after = -1): Promise<HistoryEvent> {
  const r = state.resource!;
  return until(
    `${id} to become active (take the shared resource); checker history:\n${r.describeHistory()}`,
    () => {
      const h = r.holder();
      if (h === null || h.node !== id) return undefined;
      return r.history.filter((e) => e.kind === 'take' && e.node === id && e.at > after).at(-1);
    },
    timeoutMs,
  );
}

function marks(): Map<string, number> {
  return new Map(state.nodes.map((n) => [n.id, n.agent?.lines.length ?? 0]));
}

interface ActResult {
  newActive: string;
  failoverMs: number;
}

/**
 * Kills something at t=0, waits until `standby` is the active (per the checker and its agent),
 * prints the timeline and returns the failover time (kill -> the new active's take).
 */
async function killAndWatch(
  what: string,
  kill: () => Promise<unknown>,
  standby: Node,
  timeoutMs: number,
): Promise<{ m: Map<string, number>; tWall: number; failoverMs: number }> {
  say(bold(yellow(`\n${what}...`)));
  const m = marks();
  const tWall = Date.now();
  const tPerf = performance.now();
  await kill();
  const take = await resourceHolder(standby.id, timeoutMs, tPerf);
  await standby.agent!.waitForLog(
    '"service -> active"',
    (l) => l.msg === 'service -> active',
    m.get(standby.id)!,
    5_000,
  );
  const failoverMs = take.at - tPerf;
  await sleep(300); // the last log lines of the story
  say(dim('\n   time since the kill, and who said what:'));
  printTimeline(buildTimeline(tWall, tPerf, m, failoverMs, what.replace(/\s*\(.*$/, '')));
  return { m, tWall, failoverMs };
}

function fencingSummary(agent: AgentProc, from: number): string {
  const lines = agent.lines.slice(from);
  const fenced = lines.find((l) => l.msg.startsWith('fenced '));
  const failed = lines
    .filter((l) => /^fencing method \S+ failed$/.test(l.msg))
    .map((l) => l.msg.split(' ')[2]);
  if (fenced === undefined) return 'without fencing anyone (nothing to fence)';
  const method = str(fenced.method ?? fenced.msg.split(' ').at(-1));
  return failed.length > 0
    ? `fenced ${str(fenced.target)} by method ${method} (${failed.join(', ')} could not reach it, so it fell back)`
    : `fenced ${str(fenced.target)} by method ${method}`;
}

async function failServiceAct(activeId: string): Promise<ActResult> {
  const active = node(activeId);
  const standby = other(activeId);
  say(
    `The ${activeId} service is the active. Its agent probes it every 300 ms; the agent of ${standby.id}\n` +
      'is the standby, watching the lock in ZooKeeper.',
  );
  const { m, failoverMs } = await killAndWatch(
    `Killing the active service ${activeId} (kill -9 ${active.service.pid})`,
    () => active.service.kill('SIGKILL'),
    standby,
    20_000,
  );
  const left = active.agent!.lines.slice(m.get(activeId)).some((l) => l.msg === 'leaving the election');
  say(
    `\nWhat happened: ${
      left
        ? `the agent of ${activeId} saw its service stop answering (2 failed probes) and gave up the lock`
        : `the agent of ${activeId} lost the lock`
    };\nthe agent of ${standby.id} took it, ${fencingSummary(standby.agent!, m.get(standby.id)!)},\n` +
      'then promoted its own service with a new, higher epoch.',
  );
  say(`${bold('Failover time')} (kill -> ${standby.id} active): ${bold(green(ms(failoverMs)))}`);
  return { newActive: standby.id, failoverMs };
}

async function failAgentAct(activeId: string): Promise<ActResult> {
  const active = node(activeId);
  const standby = other(activeId);
  const secsTimeout = SESSION_TIMEOUT_MS / 1000;
  say(
    `Now ${activeId} is the active. This time we kill its AGENT, not the service: the service is\n` +
      'fine and keeps serving as the active. The standby cannot tell "agent dead" from "network\n' +
      `slow", so it must wait until ZooKeeper expires the dead agent's session (~${secsTimeout} s), which\n` +
      'deletes its lock. Then it fences the old service (here gracefully: the service is told to\n' +
      'stand by with the new epoch, and then refuses the old one) before promoting its own.',
  );
  const { m, tWall, failoverMs } = await killAndWatch(
    `Killing the agent of ${activeId} (kill -9 ${active.agent!.pid})`,
    () => active.agent!.kill9(),
    standby,
    SESSION_TIMEOUT_MS + 15_000,
  );
  const demoted = active.service.roleEvents().find((e) => e.to === 'standby' && Date.parse(e.time) >= tWall);
  say(
    `\nWhat happened: for ~${secsTimeout} s the ${activeId} service stayed active without its agent (no harm:\n` +
      `nobody else was active). Once the session expired, the agent of ${standby.id} took the lock,\n` +
      `${fencingSummary(standby.agent!, m.get(standby.id)!)}` +
      (demoted
        ? ` (the ${activeId} service logged "${demoted.from} -> ${demoted.to}, epoch ${demoted.epoch}")`
        : '') +
      `,\nand promoted ${standby.id}.`,
  );
  say(`${bold('Failover time')} (kill -> ${standby.id} active): ${bold(green(ms(failoverMs)))}`);
  return { newActive: standby.id, failoverMs };
}

// --- cleanup ---------------------------------------------------------------------------------

let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (KEEP_LOGS && state.dir !== undefined) {
      try {
        state.logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-demo-logs-'));
        for (const n of state.nodes) {
          if (n.agent)
            fs.writeFileSync(path.join(state.logDir, `agent-${n.id}.log`), n.agent.raw.join('\n') + '\n');
          n.incarnations.forEach((s, i) =>
            fs.writeFileSync(
              path.join(state.logDir!, `service-${n.id}-${i + 1}.log`),
              s.stdout().join('\n') + '\n',
            ),
          );
          fs.copyFileSync(n.configFile, path.join(state.logDir, `${n.id}.yaml`));
        }
        if (state.resource) {
          fs.writeFileSync(path.join(state.logDir, 'checker.log'), state.resource.log.join('\n') + '\n');
        }
      } catch (err) {
        process.stderr.write(`demo: could not keep the logs: ${String(err)}\n`);
      }
    }
    const quietly = (p: Promise<unknown>): Promise<unknown> => p.catch(() => undefined);
    await Promise.all(state.nodes.map((n) => (n.agent ? quietly(n.agent.stop()) : undefined)));
    await Promise.all(state.nodes.flatMap((n) => n.incarnations.map((s) => quietly(s.stop()))));
    if (state.resource) await quietly(state.resource.close());
    if (state.ensemble) await quietly(state.ensemble.stop());
    if (state.dir !== undefined) fs.rmSync(state.dir, { recursive: true, force: true });
    if (state.logDir !== undefined) say(`\nRaw logs kept in ${state.logDir}`);
  })();
  return cleaning;
}

process.on('exit', () => {
  // Last resort if we are leaving without cleanup() having finished (the services and ZooKeeper
  // have their own exit hooks in their helpers).
  for (const n of state.nodes) n.agent?.killNow();
});

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    say(yellow(`\n${sig}: stopping everything...`));
    void cleanup().finally(() => process.exit(130));
  });
}

async function run(): Promise<number> {
  const guard = setTimeout(() => {
    say(red(`\nFAILED: the demo did not finish within ${ms(OVERALL_DEADLINE_MS)}`));
    void cleanup().finally(() => process.exit(1));
  }, OVERALL_DEADLINE_MS);
  try {
    await main();
    say(green(bold('\nDemo finished: hafc kept exactly one active through both failures.')));
    return 0;
  } catch (err) {
    if (interrupted) return 130;
    // The message says what failed and, for a deadline, what was awaited; a stack adds nothing.
    const msg = err instanceof Error ? err.message : String(err);
    say(red(`\nFAILED: ${msg}`));
    return 1;
  } finally {
    clearTimeout(guard);
    await cleanup();
  }
}

process.exitCode = await run();
