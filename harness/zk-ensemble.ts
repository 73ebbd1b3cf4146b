/**
 * Real ZooKeeper servers (Debian's 3.8 jars) for integration tests: 1 standalone server or a
 * 3-server ensemble on loopback, each behind a TcpProxy so tests can break client links. One
 * server of an ensemble can be made isolatable: its quorum links run through proxies too, so a
 * test can cut it off from the other two while its clients stay connected (`isolate()`).
 *
 * Process hygiene is the point of half this file: a JVM that outlives its test run holds ports and
 * CPU and poisons the next run on a 2-core box. Three independent nets catch them:
 *   1. every spawned pid is written to a registry directory; vitest's global setup kills leftovers
 *      of dead runs and its teardown fails the run if any pid of this run is still alive;
 *   2. a synchronous kill of all children on the test process's `exit`;
 *   3. a tiny `sh` watchdog per server holding a pipe from us: if this process dies in any way,
 *      even SIGKILL, the pipe hits EOF and the watchdog SIGKILLs the JVM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { trackChild } from './proc-registry.js';
import { TcpProxy } from './tcp-proxy.js';
import { startWatchdog } from './watchdog.js';
import { settlesWithin, waitFor } from './wait.js';

const JAVA = process.env.HAFC_TEST_JAVA ?? 'java';
const ZK_JAR = '/usr/share/java/zookeeper.jar';
const SLF4J_SIMPLE_JAR = '/usr/share/java/slf4j-simple.jar';
const MAIN_CLASS = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';
/** Set to 1 to keep each ensemble's temp dir (configs, data, server.log) after stop(). */
const KEEP_DIRS = process.env.HAFC_KEEP_ZK_DIRS === '1';

export interface EnsembleOptions {
  /** @default 3 */
  servers?: 1 | 3;
  /** ZooKeeper tickTime. @default 200 */
  tickTimeMs?: number;
  /**
   * Ticks a follower may go unheard (and the leader unheard by it) before the two drop each other:
   * how long a follower cut off from the leader keeps serving reads. @default 5
   */
  syncLimit?: number;
  /** Ticks a follower may take to connect to a leader and sync with it. @default 10 */
  initLimit?: number;
  /** The shortest session timeout the servers grant. @default 2 x tickTimeMs (ZooKeeper's own) */
  minSessionTimeoutMs?: number;
  /** @default 30000 */
  maxSessionTimeoutMs?: number;
  /**
   * Index (into `servers`) of the one server whose quorum links (peer and election ports, both
   * directions) run through TCP proxies, so `isolate()` can cut it off from the other two while
   * its clients stay connected. It is started last, after the others formed a quorum, so that it
   * is a follower (a restart() rejoins as follower too; only an election without it, e.g. after
   * the leader is killed, can make it the leader). 3-server ensembles only. @default none
   */
  isolatable?: number;
  /** Starts the JVMs with -Dzookeeper.enforceQuota=true. @default false */
  enforceQuota?: boolean;
  /** Deadline for the whole ensemble to serve (also used per restart()). @default 45000 */
  startTimeoutMs?: number;
}

/** Every option checked before anything starts: a typo must not surface as a JVM that never serves. */
function validateOptions(opts: EnsembleOptions): void {
  const count = opts.servers ?? 3;
  if (count !== 1 && count !== 3) {
    throw new Error(`ZkEnsemble: servers must be 1 or 3, got ${String(opts.servers)}`);
  }
  const positiveInt = (name: keyof EnsembleOptions): void => {
    const v = opts[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)) {
      throw new Error(`ZkEnsemble: ${name} must be a positive integer, got ${String(v)}`);
    }
  };
  for (const name of [
    'tickTimeMs',
    'syncLimit',
    'initLimit',
    'minSessionTimeoutMs',
    'maxSessionTimeoutMs',
    'startTimeoutMs',
  ] as const) {
    positiveInt(name);
  }
  const min = opts.minSessionTimeoutMs ?? 2 * (opts.tickTimeMs ?? 200);
  const max = opts.maxSessionTimeoutMs ?? 30_000;
  if (min > max) {
    throw new Error(
      `ZkEnsemble: minSessionTimeoutMs (${min}) must not exceed maxSessionTimeoutMs (${max})` +
        (opts.minSessionTimeoutMs === undefined ? ' (min defaults to 2 x tickTimeMs)' : ''),
    );
  }
  const iso = opts.isolatable;
  if (iso !== undefined) {
    if (count !== 3) {
      throw new Error(`ZkEnsemble: isolatable needs a 3-server ensemble, got servers=${count}`);
    }
    if (!Number.isInteger(iso) || iso < 0 || iso >= count) {
      throw new Error(`ZkEnsemble: isolatable must be a server index 0..${count - 1}, got ${String(iso)}`);
    }
  }
}

/** ZooKeeper's election protocol versions (QuorumCnxManager.PROTOCOL_VERSION_V1/V2). */
const ELECTION_PROTOCOL_V1 = -65536n;
const ELECTION_PROTOCOL_V2 = -65535n;

/**
 * Rewrites the first message on an election connection into the pre-3.5 form, the bare server id.
 * The modern form also carries the sender's own election address, and a receiver with the higher
 * id drops the connection and dials back to THAT address: the sender's real port, past any proxy.
 * Without the address the receiver dials the address in its own zoo.cfg instead, so the proxies
 * listed there stay the only path between the isolatable server and the others. ZooKeeper 3.8
 * still accepts the old form (QuorumCnxManager.handleConnection: a non-negative first long is the
 * id). Anything unexpected passes unchanged.
 */
export function bareIdElectionPreamble(head: Buffer): Buffer | null {
  if (head.length < 8) return null;
  const version = head.readBigInt64BE(0);
  if (version !== ELECTION_PROTOCOL_V1 && version !== ELECTION_PROTOCOL_V2) return head;
  if (head.length < 20) return null;
  const addressLength = head.readInt32BE(16);
  if (addressLength <= 0 || addressLength > 4096) return head;
  if (head.length < 20 + addressLength) return null;
  return Buffer.concat([head.subarray(8, 16), head.subarray(20 + addressLength)]);
}

export type ZkMode = 'leader' | 'follower' | 'standalone';

// ---------------------------------------------------------------------------------------------
// Process registry (harness/proc-registry.ts; re-exported for the modules that import it here)

export {
  entryAlive,
  killEntry,
  livePids,
  pidAlive,
  readRegistry,
  registryDir,
  unregister,
  type RegistryEntry,
} from './proc-registry.js';

// ---------------------------------------------------------------------------------------------
// Small helpers

/**
 * Ask for free loopback ports by binding port 0. All sockets are held until every port is known so
 * one call never returns the same port twice; the window before the JVM binds is covered by
 * start()'s retry on a bind failure.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/**
 * Send a ZooKeeper four-letter word and return the whole answer (the server closes after it).
 * Rejects on connection errors and when no complete answer arrives within the deadline: a frozen
 * server still completes the TCP handshake from the kernel backlog but never answers.
 */
export function fourLetter(port: number, cmd: string, timeoutMs = 2000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const socket = net.connect({ port, host: '127.0.0.1' });
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(
      () =>
        finish(new Error(`four-letter word '${cmd}' to 127.0.0.1:${port}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(cmd));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => finish(null));
    socket.on('close', () => finish(null));
    socket.on('error', (err) =>
      finish(new Error(`four-letter word '${cmd}' to 127.0.0.1:${port}: ${err.message}`)),
    );
  });
}

function parseMode(srvr: string): ZkMode | null {
  const m = /^Mode: (\w+)/m.exec(srvr);
  const mode = m?.[1];
  return mode === 'leader' || mode === 'follower' || mode === 'standalone' ? mode : null;
}

function tail(file: string, lines = 25): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch (err) {
    return `(no log: ${String(err)})`;
  }
}

// ---------------------------------------------------------------------------------------------
// One server

interface ServerSpec {
  index: number;
  dir: string;
  clientPort: number;
  peerPort: number;
  electionPort: number;
  jvmProps: string[];
  startTimeoutMs: number;
}

export class ZkServer {
  /** 0-based position in `ZkEnsemble.servers`; the ZooKeeper myid is index + 1. */
  readonly index: number;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly electionPort: number;
  readonly proxy: TcpProxy;
  readonly dir: string;
  readonly dataDir: string;
  readonly configFile: string;
  readonly logFile: string;

  private child: ChildProcess | undefined;
  private watchdog: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private frozen = false;
  private readonly jvmProps: string[];
  private readonly startTimeoutMs: number;

  /** @internal built by ZkEnsemble, which writes the config files first. */
  constructor(spec: ServerSpec, proxy: TcpProxy) {
    this.index = spec.index;
    this.clientPort = spec.clientPort;
    this.peerPort = spec.peerPort;
    this.electionPort = spec.electionPort;
    this.proxy = proxy;
    this.dir = spec.dir;
    this.dataDir = path.join(spec.dir, 'data');
    this.configFile = path.join(spec.dir, 'zoo.cfg');
    this.logFile = path.join(spec.dir, 'server.log');
    this.jvmProps = spec.jvmProps;
    this.startTimeoutMs = spec.startTimeoutMs;
  }

  get name(): string {
    return `zk${this.index + 1}`;
  }

  pid(): number | undefined {
    return this.isRunning() ? this.child?.pid : undefined;
  }

  isRunning(): boolean {
    const c = this.child;
    return c !== undefined && c.pid !== undefined && c.exitCode === null && c.signalCode === null;
  }

  isFrozen(): boolean {
    return this.frozen && this.isRunning();
  }

  /** Last lines of this server's log, for failure messages. */
  logTail(lines = 25): string {
    return tail(this.logFile, lines);
  }

  /** @internal */
  spawnProcess(): void {
    if (this.isRunning()) throw new Error(`${this.name} is already running (pid ${this.child?.pid})`);
    const args = [
      '-Xmx256m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      // No hsperfdata files left in /tmp by killed JVMs.
      '-XX:-UsePerfData',
      '-Djava.net.preferIPv4Stack=true',
      `-Dzookeeper.log.dir=${this.dir}`,
      ...this.jvmProps,
      '-cp',
      [ZK_JAR, SLF4J_SIMPLE_JAR, this.dir].join(':'),
      MAIN_CLASS,
      this.configFile,
    ];
    fs.appendFileSync(
      this.logFile,
      `\n==== hafc harness: starting ${this.name} at ${new Date().toISOString()}\n`,
    );
    const logFd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(JAVA, args, { stdio: ['ignore', logFd, logFd] });
    } finally {
      fs.closeSync(logFd);
    }
    this.child = child;
    this.frozen = false;
    const pid = child.pid;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        this.watchdog?.kill('SIGKILL');
        this.watchdog = undefined;
        resolve();
      });
      // A failed spawn (e.g. no java) has no pid and may never emit 'exit'.
      child.once('error', (err) => {
        try {
          fs.appendFileSync(this.logFile, `hafc harness: spawn failed: ${err.message}\n`);
        } catch {
          // The temp dir may already be gone; the failure still surfaces as a start timeout.
        }
        if (pid === undefined) resolve();
      });
    });
    if (pid === undefined) return;
    trackChild(child, this.configFile, [JAVA, ...args].join(' '));
    this.watchdog = startWatchdog(pid, this.configFile, 'hafc-zk-watchdog');
  }

  /** Send `signal` (default SIGKILL) and resolve once the process has exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.isRunning()) return;
    try {
      child.kill(signal);
      // A stopped JVM keeps any catchable signal pending until it runs again.
      if (this.frozen && signal !== 'SIGKILL' && signal !== 'SIGSTOP') child.kill('SIGCONT');
    } catch {
      // Exited meanwhile.
    }
    await this.waitExit(timeoutMs, `${this.name} (pid ${child.pid}) to exit after ${signal}`);
    this.frozen = false;
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.isRunning()) return;
    if (this.frozen) {
      // Nothing graceful can happen in a stopped JVM.
      await this.kill('SIGKILL');
      return;
    }
    this.child?.kill('SIGTERM');
    if (!(await settlesWithin(this.exited, graceMs))) await this.kill('SIGKILL');
  }

  freeze(): void {
    if (!this.isRunning()) throw new Error(`${this.name} is not running: cannot freeze`);
    this.child?.kill('SIGSTOP');
    this.frozen = true;
  }

  thaw(): void {
    if (!this.isRunning()) throw new Error(`${this.name} is not running: cannot thaw`);
    this.child?.kill('SIGCONT');
    this.frozen = false;
  }

  /** Start this server again with the same ports and data; resolves once it answers `ruok`. */
  async restart(timeoutMs = this.startTimeoutMs): Promise<void> {
    if (this.isRunning()) await this.stop();
    this.spawnProcess();
    await this.waitAnswering(timeoutMs);
  }

  /** @internal resolves when the server process answers `ruok`; fails fast if it exits. */
  async waitAnswering(timeoutMs: number): Promise<void> {
    const died = this.exited.then(() => {
      throw new Error(`${this.name} exited while starting:\n${this.logTail()}`);
    });
    died.catch(() => {});
    try {
      await Promise.race([
        waitFor(
          `${this.name} (127.0.0.1:${this.clientPort}) to answer ruok with imok`,
          async () => (await fourLetter(this.clientPort, 'ruok', 1000)) === 'imok',
          { timeoutMs, intervalMs: 100 },
        ),
        died,
      ]);
    } catch (err) {
      if (err instanceof Error && err.message.includes('exited while starting')) throw err;
      throw new Error(`${String(err)}\n--- ${this.name} log tail ---\n${this.logTail()}`);
    }
  }

  /** The server's role according to `srvr`; null if it is down, frozen or not serving. */
  async mode(timeoutMs = 1000): Promise<ZkMode | null> {
    if (!this.isRunning()) return null;
    try {
      return parseMode(await fourLetter(this.clientPort, 'srvr', timeoutMs));
    } catch {
      return null;
    }
  }

  /** @internal */
  exitedPromise(): Promise<void> {
    return this.exited;
  }

  private async waitExit(timeoutMs: number, what: string): Promise<void> {
    if (!(await settlesWithin(this.exited, timeoutMs)))
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The ensemble

let ensembleCounter = 0;

/** The two proxies in front of one server's quorum ports, used by the other side of a cut. */
interface QuorumProxies {
  peer: TcpProxy;
  election: TcpProxy;
}

export class ZkEnsemble {
  readonly servers: ZkServer[];
  readonly root: string;
  /** The index given as `isolatable`, if any. */
  readonly isolatable: number | undefined;
  /** Wall time start() took until the quorum served, in ms. */
  startupMs = 0;
  private stopping: Promise<void> | undefined;
  private readonly quorumProxies: QuorumProxies[];

  private constructor(
    root: string,
    servers: ZkServer[],
    isolatable: number | undefined,
    quorumProxies: QuorumProxies[],
  ) {
    this.root = root;
    this.servers = servers;
    this.isolatable = isolatable;
    this.quorumProxies = quorumProxies;
  }

  static async start(opts: EnsembleOptions = {}): Promise<ZkEnsemble> {
    validateOptions(opts);
    for (const file of [ZK_JAR, SLF4J_SIMPLE_JAR]) {
      if (!fs.existsSync(file)) {
        throw new Error(`${file} is missing: install Debian's zookeeper and libslf4j-java packages`);
      }
    }
    const began = Date.now();
    const attempts = 3;
    for (let attempt = 1; ; attempt++) {
      const ensemble = await ZkEnsemble.create(opts);
      try {
        await ensemble.startAll(opts.startTimeoutMs ?? 45_000);
        ensemble.startupMs = Date.now() - began;
        return ensemble;
      } catch (err) {
        const bindRace = ensemble.servers.some(
          (s) => !s.isRunning() && /BindException|Address already in use/.test(s.logTail(200)),
        );
        await ensemble.stop();
        // Someone grabbed a port between our probe and the JVM's bind: try again with new ports.
        if (!bindRace || attempt >= attempts) throw err;
      }
    }
  }

  private static async create(opts: EnsembleOptions): Promise<ZkEnsemble> {
    const count = opts.servers ?? 3;
    const tickTime = opts.tickTimeMs ?? 200;
    const maxSessionTimeout = opts.maxSessionTimeoutMs ?? 30_000;
    const startTimeoutMs = opts.startTimeoutMs ?? 45_000;
    const isolatable = opts.isolatable;
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `hafc-zk-${process.pid}-${++ensembleCounter}-`));
    const ports = await freePorts(count * 3);
    const jvmProps = [
      // Lets a follower give up on a frozen peer's election port quickly (default 5 s).
      '-Dzookeeper.cnxTimeout=1000',
      // Restarted servers may have a txn log without a snapshot; fine for throwaway data.
      '-Dzookeeper.snapshot.trust.empty=true',
      '-Dzookeeper.admin.enableServer=false',
      ...(opts.enforceQuota ? ['-Dzookeeper.enforceQuota=true'] : []),
    ];
    const specs: ServerSpec[] = [];
    for (let i = 0; i < count; i++) {
      specs.push({
        index: i,
        dir: path.join(root, `zk${i + 1}`),
        clientPort: ports[i * 3]!,
        peerPort: ports[i * 3 + 1]!,
        electionPort: ports[i * 3 + 2]!,
        jvmProps,
        startTimeoutMs,
      });
    }
    const servers: ZkServer[] = [];
    const quorumProxies: QuorumProxies[] = [];
    const allProxies = (): TcpProxy[] => [
      ...servers.map((s) => s.proxy),
      ...quorumProxies.flatMap((q) => [q.peer, q.election]),
    ];
    try {
      if (isolatable !== undefined) {
        for (const spec of specs) {
          quorumProxies.push({
            peer: await TcpProxy.start(spec.peerPort),
            election: await TcpProxy.start(spec.electionPort, {
              rewriteClientPreamble: bareIdElectionPreamble,
            }),
          });
        }
      }
      // Each server reads only its own zoo.cfg, so the isolatable one can find the others behind
      // proxies while they find it behind proxies, and the two others talk to each other directly.
      const serverLines = (self: number): string[] =>
        count === 1
          ? []
          : specs.map((t) => {
              const q = quorumProxies[t.index];
              const viaProxy =
                q !== undefined && self !== t.index && (self === isolatable || t.index === isolatable);
              const [peer, election] = viaProxy
                ? [q.peer.port, q.election.port]
                : [t.peerPort, t.electionPort];
              return `server.${t.index + 1}=127.0.0.1:${peer}:${election}`;
            });
      for (const spec of specs) {
        fs.mkdirSync(path.join(spec.dir, 'data'), { recursive: true });
        fs.writeFileSync(path.join(spec.dir, 'data', 'myid'), `${spec.index + 1}\n`);
        fs.writeFileSync(
          path.join(spec.dir, 'zoo.cfg'),
          [
            `tickTime=${tickTime}`,
            `initLimit=${opts.initLimit ?? 10}`,
            `syncLimit=${opts.syncLimit ?? 5}`,
            `dataDir=${path.join(spec.dir, 'data')}`,
            `clientPort=${spec.clientPort}`,
            `clientPortAddress=127.0.0.1`,
            ...(opts.minSessionTimeoutMs === undefined
              ? []
              : [`minSessionTimeout=${opts.minSessionTimeoutMs}`]),
            `maxSessionTimeout=${maxSessionTimeout}`,
            `maxClientCnxns=0`,
            `4lw.commands.whitelist=*`,
            `admin.enableServer=false`,
            // Throwaway data: skip fsync and the 64 MB log preallocation, both slow on a busy disk.
            `forceSync=no`,
            `preAllocSize=1024`,
            `autopurge.purgeInterval=0`,
            // Static membership: a server must never adopt another's view of where its peers are.
            ...(count === 1 ? [] : ['reconfigEnabled=false']),
            ...serverLines(spec.index),
            '',
          ].join('\n'),
        );
        fs.writeFileSync(
          path.join(spec.dir, 'simplelogger.properties'),
          [
            'org.slf4j.simpleLogger.defaultLogLevel=info',
            'org.slf4j.simpleLogger.showDateTime=true',
            'org.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS',
            'org.slf4j.simpleLogger.showThreadName=true',
            'org.slf4j.simpleLogger.showShortLogName=true',
            // Every four-letter probe would otherwise log a line.
            'org.slf4j.simpleLogger.log.org.apache.zookeeper.server.command=warn',
            '',
          ].join('\n'),
        );
        servers.push(new ZkServer(spec, await TcpProxy.start(spec.clientPort)));
      }
    } catch (err) {
      await Promise.all(allProxies().map((p) => p.close()));
      fs.rmSync(root, { recursive: true, force: true });
      throw err;
    }
    return new ZkEnsemble(root, servers, isolatable, quorumProxies);
  }

  private async startAll(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const remaining = (): number => Math.max(1, deadline - Date.now());
    const spawned: ZkServer[] = [];
    const anyExit = (): Promise<never> => {
      const p = Promise.race(
        spawned.map((s) =>
          s.exitedPromise().then(() => {
            throw new Error(`${s.name} exited during ensemble start`);
          }),
        ),
      ) as Promise<never>;
      p.catch(() => {});
      return p;
    };
    const iso = this.isolatable === undefined ? undefined : this.servers[this.isolatable]!;
    try {
      for (const s of this.servers) {
        if (s !== iso) {
          s.spawnProcess();
          spawned.push(s);
        }
      }
      if (iso !== undefined) {
        // ZooKeeper's election favours the highest server id; joining an established quorum, the
        // isolatable server follows whoever leads, whatever its id.
        await Promise.race([this.waitServing(remaining(), false), anyExit()]);
        iso.spawnProcess();
        spawned.push(iso);
      }
      await Promise.race([this.waitServing(remaining(), true), anyExit()]);
      if (iso !== undefined) {
        const mode = await iso.mode();
        if (mode !== 'follower') {
          throw new Error(`the isolatable server ${iso.name} came up as ${String(mode)}, not follower`);
        }
      }
    } catch (err) {
      throw new Error(`ZooKeeper ensemble did not start: ${(err as Error).message}\n${this.logTails()}`);
    }
  }

  /**
   * Cuts (on=true) or heals (on=false) every quorum link of the isolatable server: peer and election
   * connections in both directions go silent (nothing arrives, nothing is closed, new connections
   * hang), as in a network partition. Its client port stays reachable. After syncLimit x tickTime
   * it stops serving and the other two go on as a quorum; healed, it rejoins as a follower (a
   * connection that lost bytes while silent is reset, so the servers see a clean reconnect) after
   * up to several seconds of election back-off. waitForQuorum() waits for every running server,
   * this one included: use it after healing, not while cut off.
   */
  isolate(index: number, on: boolean): void {
    if (this.isolatable === undefined) {
      throw new Error(
        `ZkEnsemble.isolate(${index}): this ensemble was started without the isolatable option`,
      );
    }
    if (index !== this.isolatable) {
      throw new Error(
        `ZkEnsemble.isolate(${index}): only server index ${this.isolatable} (zk${this.isolatable + 1}) is isolatable`,
      );
    }
    for (const q of this.quorumProxies) {
      q.peer.setBlackhole(on);
      q.election.setBlackhole(on);
    }
  }

  /** Whether `isolate(index, true)` is in force. */
  isIsolated(index: number): boolean {
    return index === this.isolatable && this.quorumProxies.some((q) => q.election.isBlackholed);
  }

  /** Client connect string through the proxies of the given servers only (indexes into `servers`). */
  connectStringFor(indexes: readonly number[]): string {
    if (indexes.length === 0) throw new Error('ZkEnsemble.connectStringFor: no server index given');
    const seen = new Set<number>();
    for (const i of indexes) {
      if (!Number.isInteger(i) || i < 0 || i >= this.servers.length) {
        throw new Error(
          `ZkEnsemble.connectStringFor: server index ${String(i)} is not in 0..${this.servers.length - 1}`,
        );
      }
      if (seen.has(i)) throw new Error(`ZkEnsemble.connectStringFor: server index ${i} is listed twice`);
      seen.add(i);
    }
    return indexes.map((i) => `127.0.0.1:${this.servers[i]!.proxy.port}`).join(',');
  }

  /** Client connect string through every server's proxy (the one tests should normally use). */
  connectString(): string {
    return this.servers.map((s) => `127.0.0.1:${s.proxy.port}`).join(',');
  }

  /** Client connect string straight to the servers' client ports, bypassing the proxies. */
  directConnectString(): string {
    return this.servers.map((s) => `127.0.0.1:${s.clientPort}`).join(',');
  }

  /**
   * Resolves when a majority of servers serve with exactly one leader (or the standalone server
   * serves), and every running, unfrozen server reports a mode: a restarted server has rejoined.
   */
  async waitForQuorum(timeoutMs = 30_000): Promise<void> {
    try {
      await this.waitServing(timeoutMs, false);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.logTails()}`);
    }
  }

  private async waitServing(timeoutMs: number, requireAll: boolean): Promise<void> {
    const n = this.servers.length;
    const majority = Math.floor(n / 2) + 1;
    let status = 'not probed yet';
    try {
      await waitFor(
        `${requireAll ? 'all' : 'a quorum of'} ${n} ZooKeeper server(s) to serve (srvr reports a mode)`,
        async () => {
          const modes = await Promise.all(this.servers.map((s) => (s.isFrozen() ? 'frozen' : s.mode())));
          status = this.servers.map((s, i) => `${s.name}=${modes[i] ?? 'down'}`).join(' ');
          const serving = modes.filter((m) => m === 'leader' || m === 'follower' || m === 'standalone');
          const leaders = modes.filter((m) => m === 'leader' || m === 'standalone').length;
          const unservingLive = this.servers.filter((s, i) => s.isRunning() && modes[i] === null).length;
          return requireAll
            ? serving.length === n && leaders === 1
            : serving.length >= majority && leaders === 1 && unservingLive === 0;
        },
        { timeoutMs, intervalMs: 100 },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last status: ${status}`);
    }
  }

  /** Index (into `servers`) of the current leader, or of the standalone server. */
  async leaderIndex(timeoutMs = 15_000): Promise<number> {
    return waitFor(
      'exactly one ZooKeeper server to report Mode: leader (or standalone)',
      async () => {
        const modes = await Promise.all(this.servers.map((s) => (s.isFrozen() ? null : s.mode())));
        const leaders = modes.flatMap((m, i) => (m === 'leader' || m === 'standalone' ? [i] : []));
        return leaders.length === 1 ? leaders[0] : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  logTails(lines = 25): string {
    return this.servers.map((s) => `--- ${s.name} (${s.logFile}) ---\n${s.logTail(lines)}`).join('\n');
  }

  /** Kill every server (SIGTERM, SIGKILL after a short grace), close proxies, delete temp dirs. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const results = await Promise.allSettled(this.servers.map((s) => s.stop(1500)));
      await Promise.all(
        [...this.servers.map((s) => s.proxy), ...this.quorumProxies.flatMap((q) => [q.peer, q.election])].map(
          (p) => p.close(),
        ),
      );
      if (!KEEP_DIRS) fs.rmSync(this.root, { recursive: true, force: true });
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) {
        throw new Error(`ZkEnsemble.stop: ${failed.map((f) => String(f.reason)).join('; ')}`);
      }
    })();
    return this.stopping;
  }
}
