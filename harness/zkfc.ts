/**
 * Hadoop's own failover controller, DFSZKFailoverController (`hdfs zkfc`), from the same cached
 * jars as harness/hadoop.ts, for the hafc-versus-ZKFC benchmark. One ZKFC runs per NameNode with
 * that NameNode's conf dir plus the given properties (ZKFC finds its local NameNode through
 * dfs.ha.namenode.id, which the pair's per-NameNode conf dirs set); each gets its own ZKFC RPC
 * port (dfs.ha.zkfc.port), since both NameNodes live on 127.0.0.1. `hdfs zkfc -formatZK` is
 * formatZK() here. The JVM runs with the harness's flags (small heap, serial GC, C1 only), the
 * same as the NameNodes'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseHadoopXml } from '../src/hadoop/conf/xml.js';
import { runHadoopTool, spawnJava, type HadoopHaPair, type NameNodeProc, type Spawned } from './hadoop.js';
import { waitFor } from './wait.js';
import { freePorts } from './zk-ensemble.js';

export const ZKFC_CLASS = 'org.apache.hadoop.hdfs.tools.DFSZKFailoverController';

function xml(props: Record<string, string>): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const body = Object.entries(props)
    .map(([k, v]) => `  <property><name>${esc(k)}</name><value>${esc(v)}</value></property>`)
    .join('\n');
  return `<?xml version="1.0"?>\n<configuration>\n${body}\n</configuration>\n`;
}

function readProps(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of parseHadoopXml(fs.readFileSync(file, 'utf8'), file)) out[p.name] = p.value;
  return out;
}

/** A copy of `nn`'s conf dir with `extra` added to hdfs-site.xml, under the pair's directory. */
export function zkfcConfDir(
  pair: HadoopHaPair,
  nn: NameNodeProc,
  tag: string,
  extra: Record<string, string>,
): string {
  const dir = path.join(pair.dir, `zkfc-${tag}-${nn.id}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(nn.confDir, 'core-site.xml'), path.join(dir, 'core-site.xml'));
  const site = { ...readProps(path.join(nn.confDir, 'hdfs-site.xml')), ...extra };
  fs.writeFileSync(path.join(dir, 'hdfs-site.xml'), xml(site));
  return dir;
}

export class ZkfcProc {
  private proc: Spawned | undefined;

  private constructor(
    readonly nn: NameNodeProc,
    readonly confDir: string,
    readonly logFile: string,
    private readonly pairDir: string,
  ) {}

  /** ZKFC conf dirs for both NameNodes (free ZKFC ports), and `-formatZK -force` once. */
  static async prepare(
    pair: HadoopHaPair,
    tag: string,
    extra: Record<string, string>,
  ): Promise<[ZkfcProc, ZkfcProc]> {
    const ports = await freePorts(2);
    const procs = pair.nameNodes.map(
      (nn, i) =>
        new ZkfcProc(
          nn,
          zkfcConfDir(pair, nn, tag, { ...extra, 'dfs.ha.zkfc.port': String(ports[i]) }),
          path.join(pair.dir, 'logs', `zkfc-${tag}-${nn.id}.log`),
          pair.dir,
        ),
    ) as [ZkfcProc, ZkfcProc];
    const r = await runHadoopTool({
      dir: pair.dir,
      confDir: procs[0].confDir,
      mainClass: ZKFC_CLASS,
      args: ['-formatZK', '-force', '-nonInteractive'],
      timeoutMs: 60_000,
    });
    if (r.code !== 0)
      throw new Error(`zkfc -formatZK exited ${r.code}:\n${r.output.split('\n').slice(-20).join('\n')}`);
    return procs;
  }

  get pid(): number | undefined {
    return this.isRunning() ? this.proc?.child.pid : undefined;
  }

  isRunning(): boolean {
    const c = this.proc?.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Bytes of the log so far: pass to waitForLog to look only at what comes after. */
  logSize(): number {
    return fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch (err) {
      return `(no log: ${String(err)})`;
    }
  }

  /** Starts the daemon and waits until its health monitor and elector are running. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.isRunning()) throw new Error(`ZKFC of ${this.nn.id} is already running`);
    const from = this.logSize();
    this.proc = spawnJava(this.pairDir, this.confDir, ZKFC_CLASS, [], this.logFile);
    await this.waitForLog(
      'its health monitor to report the NameNode',
      /entered state: SERVICE_/,
      from,
      timeoutMs,
    );
  }

  /** Waits for a log line matching `re` written after byte offset `from`. */
  async waitForLog(what: string, re: RegExp, from: number, timeoutMs: number): Promise<void> {
    const proc = this.proc;
    await waitFor(
      `ZKFC of ${this.nn.id} to log ${what}`,
      () => {
        if (!this.isRunning() || proc !== this.proc) {
          throw new Error(`ZKFC of ${this.nn.id} exited; log:\n${this.logTail()}`);
        }
        const text = fs.readFileSync(this.logFile, 'utf8');
        return re.test(text.slice(from));
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.isRunning()) return;
    proc.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 15_000)));
    if ((await Promise.race([proc.exited, t])) === 'timeout') {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    clearTimeout(timer);
  }
}
