/**
 * Real Hadoop daemons for integration tests: an HDFS NameNode HA pair (nn1, nn2) sharing an edits
 * directory on the local disk, from the jars scripts/setup-hadoop.sh caches. Each NameNode gets
 * its own conf dir (dfs.ha.namenode.id set in it: both listen on 127.0.0.1, so Hadoop cannot
 * tell them apart by address), random free ports, and `dfs.ha.automatic-failover.enabled=true`,
 * which is what makes a NameNode accept transitions only with request source REQUEST_BY_ZKFC (a
 * user's must be forced).
 *
 * What it took on Java 17 (Hadoop 3.4.1 from Maven): no --add-opens flags for the NameNode; the
 * jar set resolved under Hadoop's own dependency management (else jackson-core is too old and
 * the NameNode dies in SlowPeerTracker); reload4j added by hand (else it logs nothing); and empty
 * webapps/<name> directories on the classpath (HttpServer2 refuses to start without them).
 *
 * Process hygiene is the zk-ensemble's: every JVM goes into the shared registry (the global
 * teardown fails a run that leaks one), is killed on this process's exit, and has a watchdog that
 * kills it if this process dies by SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { trackChild } from './proc-registry.js';
import { freePorts } from './zk-ensemble.js';
import { startWatchdog } from './watchdog.js';
import { waitFor } from './wait.js';

export const HADOOP_VERSION = process.env.HAFC_HADOOP_VERSION ?? '3.4.1';
const JAVA = process.env.HAFC_TEST_JAVA ?? 'java';
const KEEP_DIRS = process.env.HAFC_KEEP_HADOOP_DIRS === '1';
/** Must match LAYOUT in scripts/setup-hadoop.sh. */
const CACHE_LAYOUT = 2;

/** Where setup-hadoop.sh put the jars. */
export function hadoopHome(): string {
  return (
    process.env.HAFC_HADOOP_HOME ?? path.join(os.homedir(), '.cache', 'hafc', `hadoop-${HADOOP_VERSION}`)
  );
}

/** Whether the cached jars are complete; integration tests are gated on it. */
export function hadoopAvailable(): boolean {
  return fs.existsSync(path.join(hadoopHome(), `.complete-${CACHE_LAYOUT}`));
}

function classpath(confDir: string, home: string): string {
  return [confDir, path.join(home, 'classpath'), path.join(home, 'lib', '*')].join(':');
}

function jvmArgs(dir: string, confDir: string, home: string): string[] {
  return [
    // Small and quick to start: two of these share a 2-core machine with ZooKeeper and the tests.
    '-Xmx256m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.net.preferIPv4Stack=true',
    // Jersey 1 (WebHDFS, the ResourceManager's web services) defines classes through
    // ClassLoader.defineClass by reflection; Java 17 refuses that without this (HTTP 500 and an
    // InaccessibleObjectException in the daemon's log).
    '--add-opens=java.base/java.lang=ALL-UNNAMED',
    `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`,
    `-Dhadoop.log.dir=${path.join(dir, 'logs')}`,
    '-cp',
    classpath(confDir, home),
  ];
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface Spawned {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a JVM with `home`'s jars (default: the HDFS set); every one is registered and watched. */
export function spawnJava(
  dir: string,
  confDir: string,
  mainClass: string,
  args: string[],
  logFile: string,
  home: string = hadoopHome(),
): Spawned {
  const out = fs.openSync(logFile, 'a');
  const argv = [...jvmArgs(dir, confDir, home), mainClass, ...args];
  const child = spawn(JAVA, argv, {
    stdio: ['pipe', out, out],
    env: {
      ...process.env,
      HADOOP_CONF_DIR: confDir,
      HADOOP_USER_NAME: process.env.HADOOP_USER_NAME ?? 'hafc',
    },
  });
  fs.closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${JAVA} ${mainClass}: no pid`);
  // The conf dir path is unique to this pair and node: a recycled pid never matches it.
  trackChild(child, confDir, `${mainClass} ${args.join(' ')}`);
  const wd = startWatchdog(pid, confDir, `hadoop-${path.basename(confDir)}`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      wd?.stdin?.end();
      resolve({ code, signal });
    });
  });
  child.on('error', () => {});
  return { child, exited };
}

/** Runs a Hadoop main class to completion (format, bootstrapStandby, haadmin, a shell). */
export async function runHadoopTool(opts: {
  dir: string;
  confDir: string;
  mainClass: string;
  args: string[];
  input?: string;
  timeoutMs?: number;
  /** The jar set. @default hadoopHome() */
  home?: string;
}): Promise<{ code: number | null; output: string }> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const logFile = path.join(
    opts.dir,
    'logs',
    `tool-${Date.now()}-${Math.random().toString(36).slice(2)}.log`,
  );
  const { child, exited } = spawnJava(opts.dir, opts.confDir, opts.mainClass, opts.args, logFile, opts.home);
  child.stdin?.on('error', () => {});
  child.stdin?.end(opts.input ?? '');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  const result = await Promise.race([exited, deadline]);
  clearTimeout(timer);
  const output = fs.readFileSync(logFile, 'utf8');
  if (result === 'timeout') {
    child.kill('SIGKILL');
    await exited;
    throw new Error(
      `${opts.mainClass} ${opts.args.join(' ')} did not finish within ${timeoutMs} ms; output:\n${lastLines(output)}`,
    );
  }
  return { code: result.code, output };
}

/** Whether every thread of `pid` is in state T (stopped) or t (traced). */
function allThreadsStopped(pid: number): boolean {
  const tasks = fs.readdirSync(`/proc/${pid}/task`);
  return tasks.every((tid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state === 'T' || state === 't';
    } catch {
      return true; // the thread ended
    }
  });
}

export function lastLines(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Configuration

export function xmlConf(props: Record<string, string>): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const body = Object.entries(props)
    .map(([k, v]) => `  <property><name>${esc(k)}</name><value>${esc(v)}</value></property>`)
    .join('\n');
  return `<?xml version="1.0"?>\n<configuration>\n${body}\n</configuration>\n`;
}

export const LOG4J = `log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
`;

export type NameNodeId = 'nn1' | 'nn2';

export interface HadoopPairOptions {
  /** The nameservice id. @default 'ns1' */
  nameservice?: string;
  /** dfs.ha.automatic-failover.enabled. @default true */
  automaticFailover?: boolean;
  /** Extra hdfs-site.xml properties for both NameNodes. */
  hdfsSite?: Record<string, string>;
  /** Deadline for each daemon start and each setup tool. @default 90000 */
  startTimeoutMs?: number;
  /** Also start one DataNode (random ports, its own dirs), so files can be written. @default false */
  dataNode?: boolean;
}

/**
 * One Hadoop daemon JVM: started from its own conf dir, ready once its log shows `readyLine`,
 * killed, frozen (SIGSTOP) and thawed. The NameNodes, the DataNode and the ResourceManagers.
 */
export class JavaDaemon {
  private proc: Spawned | undefined;
  private frozen = false;

  constructor(
    /** For messages: nn1, dn, rm2. */
    readonly id: string,
    private readonly kind: string,
    private readonly mainClass: string,
    /** A log line (from this start on) that says the daemon is up. */
    private readonly readyLine: string,
    readonly confDir: string,
    readonly logFile: string,
    private readonly baseDir: string,
    private readonly startTimeoutMs: number,
    private readonly home: string = hadoopHome(),
  ) {}

  pid(): number | undefined {
    return this.isRunning() ? this.proc?.child.pid : undefined;
  }

  isRunning(): boolean {
    const c = this.proc?.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  logTail(lines = 30): string {
    try {
      return lastLines(fs.readFileSync(this.logFile, 'utf8'), lines);
    } catch (err) {
      return `(no log: ${String(err)})`;
    }
  }

  /** Starts the daemon and waits until its log says it is ready. */
  async start(): Promise<void> {
    if (this.isRunning()) throw new Error(`${this.id} is already running (pid ${this.pid()})`);
    const startedAt = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    this.proc = spawnJava(this.baseDir, this.confDir, this.mainClass, [], this.logFile, this.home);
    this.frozen = false;
    const proc = this.proc;
    let exited = false;
    await waitFor(
      `${this.id} (${this.kind}) to log "${this.readyLine}"`,
      () => {
        if (exited || !this.isRunning() || proc !== this.proc) {
          exited = true;
          return 'exited';
        }
        const log = fs.readFileSync(this.logFile, 'utf8').slice(startedAt);
        return log.includes(this.readyLine) ? 'ready' : undefined;
      },
      { timeoutMs: this.startTimeoutMs, intervalMs: 100 },
    )
      .catch((err: unknown) => {
        throw new Error(`${String(err)}\n${this.id} log:\n${this.logTail()}`);
      })
      .then((r) => {
        if (r === 'exited') throw new Error(`${this.id} exited during start; log:\n${this.logTail()}`);
      });
  }

  /** Sends `signal` and, for a killing signal, waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.isRunning()) return;
    if (this.frozen) proc.child.kill('SIGCONT');
    proc.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 15_000)));
    const r = await Promise.race([proc.exited, t]);
    clearTimeout(timer);
    if (r === 'timeout') {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    this.frozen = false;
  }

  /**
   * SIGSTOP: the kernel still accepts connections for it, but nothing answers. Resolves once every
   * thread is stopped: kill() returns before a thread busy on another core has stopped, and such a
   * thread can still answer a call.
   */
  async freeze(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) throw new Error(`${this.id} is not running; cannot freeze it`);
    process.kill(pid, 'SIGSTOP');
    this.frozen = true;
    await waitFor(`every thread of ${this.id} (pid ${pid}) to be stopped`, () => allThreadsStopped(pid), {
      timeoutMs: 5000,
      intervalMs: 5,
    });
  }

  thaw(): void {
    const pid = this.pid();
    if (pid === undefined || !this.frozen) return;
    process.kill(pid, 'SIGCONT');
    this.frozen = false;
  }
}

export class NameNodeProc extends JavaDaemon {
  /** @internal built by HadoopHaPair. */
  constructor(
    override readonly id: NameNodeId,
    readonly rpcPort: number,
    readonly httpPort: number,
    confDir: string,
    logFile: string,
    pairDir: string,
    startTimeoutMs: number,
  ) {
    super(
      id,
      `NameNode, rpc 127.0.0.1:${rpcPort}`,
      'org.apache.hadoop.hdfs.server.namenode.NameNode',
      // It takes HA calls from here on, as a standby.
      'Starting services required for standby state',
      confDir,
      logFile,
      pairDir,
      startTimeoutMs,
    );
  }

  get rpcAddress(): string {
    return `127.0.0.1:${this.rpcPort}`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }
}

/** An HDFS HA pair: nn1 formatted, nn2 bootstrapped from it, both running as standby. */
export class HadoopHaPair {
  readonly nameservice: string;
  /** A conf dir for clients and tools (no dfs.ha.namenode.id), e.g. haadmin. */
  readonly clientConfDir: string;

  /** Present with `dataNode: true`. */
  dataNode: JavaDaemon | undefined;

  private constructor(
    readonly dir: string,
    readonly nn1: NameNodeProc,
    readonly nn2: NameNodeProc,
    nameservice: string,
    private readonly startTimeoutMs: number,
  ) {
    this.nameservice = nameservice;
    this.clientConfDir = path.join(dir, 'conf-client');
  }

  get nameNodes(): NameNodeProc[] {
    return [this.nn1, this.nn2];
  }

  static async start(opts: HadoopPairOptions = {}): Promise<HadoopHaPair> {
    if (!hadoopAvailable()) {
      throw new Error(`Hadoop jars not found in ${hadoopHome()}; run scripts/setup-hadoop.sh`);
    }
    const ns = opts.nameservice ?? 'ns1';
    const startTimeoutMs = opts.startTimeoutMs ?? 90_000;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hafc-hadoop-${process.pid}-`));
    fs.mkdirSync(path.join(dir, 'logs'));
    fs.writeFileSync(path.join(dir, 'log4j.properties'), LOG4J);
    const [rpc1, rpc2, http1, http2, dnData, dnHttp, dnIpc] = (await freePorts(7)) as number[] as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const shared = path.join(dir, 'shared-edits');
    fs.mkdirSync(shared);
    const site = (id: NameNodeId | undefined): Record<string, string> => ({
      'dfs.nameservices': ns,
      [`dfs.ha.namenodes.${ns}`]: 'nn1,nn2',
      ...(id ? { 'dfs.ha.namenode.id': id } : {}),
      [`dfs.namenode.rpc-address.${ns}.nn1`]: `127.0.0.1:${rpc1}`,
      [`dfs.namenode.rpc-address.${ns}.nn2`]: `127.0.0.1:${rpc2}`,
      [`dfs.namenode.http-address.${ns}.nn1`]: `127.0.0.1:${http1}`,
      [`dfs.namenode.http-address.${ns}.nn2`]: `127.0.0.1:${http2}`,
      [`dfs.client.failover.proxy.provider.${ns}`]:
        'org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider',
      'dfs.namenode.name.dir': `file://${path.join(dir, `name-${id ?? 'client'}`)}`,
      'dfs.namenode.shared.edits.dir': `file://${shared}`,
      'dfs.ha.automatic-failover.enabled': String(opts.automaticFailover ?? true),
      'dfs.ha.fencing.methods': 'shell(/bin/true)',
      // Few or no blocks: leave safe mode at once instead of after 30 s.
      'dfs.namenode.safemode.extension': '0',
      'dfs.replication': '1',
      'dfs.permissions.enabled': 'false',
      // The standby tails the shared edits every 2 min by default; a failover test wants it now.
      'dfs.ha.tail-edits.period': '1s',
      ...opts.hdfsSite,
    });
    const writeConf = (name: string, id: NameNodeId | undefined): string => {
      const confDir = path.join(dir, name);
      fs.mkdirSync(confDir);
      fs.writeFileSync(
        path.join(confDir, 'core-site.xml'),
        xmlConf({
          'fs.defaultFS': `hdfs://${ns}`,
          'hadoop.tmp.dir': path.join(dir, `tmp-${id ?? 'client'}`),
          // A client retrying a dead NameNode for minutes would hide what a test measures.
          'ipc.client.connect.max.retries': '1',
          'ipc.client.connect.retry.interval': '200',
        }),
      );
      fs.writeFileSync(path.join(confDir, 'hdfs-site.xml'), xmlConf(site(id)));
      return confDir;
    };
    const clientConf = writeConf('conf-client', undefined);
    const make = (id: NameNodeId, rpc: number, http: number): NameNodeProc =>
      new NameNodeProc(
        id,
        rpc,
        http,
        writeConf(`conf-${id}`, id),
        path.join(dir, 'logs', `${id}.log`),
        dir,
        startTimeoutMs,
      );
    const pair = new HadoopHaPair(
      dir,
      make('nn1', rpc1, http1),
      make('nn2', rpc2, http2),
      ns,
      startTimeoutMs,
    );
    try {
      await pair.tool(pair.nn1.confDir, 'org.apache.hadoop.hdfs.server.namenode.NameNode', [
        '-format',
        '-nonInteractive',
        '-force',
      ]);
      await pair.nn1.start();
      // Copies nn1's image over nn1's HTTP server, so nn1 must be up first.
      await pair.tool(pair.nn2.confDir, 'org.apache.hadoop.hdfs.server.namenode.NameNode', [
        '-bootstrapStandby',
        '-nonInteractive',
        '-force',
      ]);
      await pair.nn2.start();
      if (opts.dataNode) {
        const dnConf = path.join(dir, 'conf-dn');
        fs.cpSync(clientConf, dnConf, { recursive: true });
        fs.writeFileSync(
          path.join(dnConf, 'hdfs-site.xml'),
          xmlConf({
            ...site(undefined),
            'dfs.datanode.data.dir': `file://${path.join(dir, 'dn-data')}`,
            'dfs.datanode.address': `127.0.0.1:${dnData}`,
            'dfs.datanode.http.address': `127.0.0.1:${dnHttp}`,
            'dfs.datanode.ipc.address': `127.0.0.1:${dnIpc}`,
            // WebHDFS redirects a client to the DataNode by this name: the loopback address.
            'dfs.datanode.hostname': '127.0.0.1',
            // Tell both NameNodes about new blocks at once (the standby needs them to take over).
            'dfs.blockreport.incremental.intervalMsec': '0',
            'dfs.heartbeat.interval': '1',
          }),
        );
        pair.dataNode = new JavaDaemon(
          'dn',
          'DataNode',
          'org.apache.hadoop.hdfs.server.datanode.DataNode',
          'Successfully sent block report',
          dnConf,
          path.join(dir, 'logs', 'dn.log'),
          dir,
          startTimeoutMs,
        );
        await pair.dataNode.start();
        // The first report went to one NameNode; the standby must have one too.
        await waitFor(
          'the DataNode to send a block report to both NameNodes',
          () =>
            (fs.readFileSync(pair.dataNode!.logFile, 'utf8').match(/Successfully sent block report/g)
              ?.length ?? 0) >= 2,
          { timeoutMs: startTimeoutMs, intervalMs: 100 },
        );
      }
      return pair;
    } catch (err) {
      await pair.stop();
      throw err;
    }
  }

  /** Runs a setup tool and fails with its output when it exits non-zero. */
  private async tool(confDir: string, mainClass: string, args: string[]): Promise<void> {
    const r = await runHadoopTool({
      dir: this.dir,
      confDir,
      mainClass,
      args,
      timeoutMs: this.startTimeoutMs,
    });
    if (r.code !== 0) {
      throw new Error(`${mainClass} ${args.join(' ')} exited ${r.code}; output:\n${lastLines(r.output)}`);
    }
  }

  /** `hdfs haadmin ARGS` with the real Hadoop client (a JVM per call: for tests only). */
  haadmin(args: string[], input?: string): Promise<{ code: number | null; output: string }> {
    return runHadoopTool({
      dir: this.dir,
      confDir: this.clientConfDir,
      mainClass: 'org.apache.hadoop.hdfs.tools.DFSHAAdmin',
      args,
      ...(input !== undefined ? { input } : {}),
      timeoutMs: this.startTimeoutMs,
    });
  }

  /** `hdfs dfs ARGS` (FsShell) through the nameservice: the client finds the active itself. */
  dfs(args: string[], input?: string): Promise<{ code: number | null; output: string }> {
    return runHadoopTool({
      dir: this.dir,
      confDir: this.clientConfDir,
      mainClass: 'org.apache.hadoop.fs.FsShell',
      args,
      ...(input !== undefined ? { input } : {}),
      timeoutMs: this.startTimeoutMs,
    });
  }

  /**
   * Writes `data` to `file` over WebHDFS on `nn` (no JVM): the NameNode redirects the PUT to the
   * DataNode. Throws with the answer when `nn` is not the active one (a standby says 403).
   */
  async webhdfsPut(nn: NameNodeProc, file: string, data: string): Promise<void> {
    const url = `${nn.httpUrl}/webhdfs/v1${file}?op=CREATE&overwrite=true&user.name=hafc`;
    const first = await fetch(url, {
      method: 'PUT',
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
    });
    const location = first.headers.get('location');
    if (first.status !== 307 || !location) {
      throw new Error(`WebHDFS CREATE ${file} on ${nn.id}: HTTP ${first.status} ${await first.text()}`);
    }
    // node:http, not fetch: the DataNode answers a PUT with "100 Continue" unasked, which undici
    // takes for a bad response.
    const put = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(location, { method: 'PUT', timeout: 15_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`PUT ${location}: no answer within 15 s`)));
      req.on('error', reject);
      req.end(data);
    });
    if (put.status !== 201) {
      throw new Error(`WebHDFS write of ${file} to the DataNode: HTTP ${put.status} ${put.body}`);
    }
  }

  /** Reads `file` over WebHDFS on `nn` (redirected to the DataNode). */
  async webhdfsCat(nn: NameNodeProc, file: string): Promise<string> {
    const r = await fetch(`${nn.httpUrl}/webhdfs/v1${file}?op=OPEN&user.name=hafc`, {
      signal: AbortSignal.timeout(15_000),
    });
    const body = await r.text();
    if (r.status !== 200) throw new Error(`WebHDFS OPEN ${file} on ${nn.id}: HTTP ${r.status} ${body}`);
    return body;
  }

  async stop(): Promise<void> {
    await this.dataNode?.kill('SIGKILL');
    await Promise.all(this.nameNodes.map((nn) => nn.kill('SIGKILL')));
    if (!KEEP_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
