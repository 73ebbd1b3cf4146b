/**
 * Runs a real `hafc agent` process (the built CLI in dist/) for integration tests, and reads its
 * JSON log lines so tests can wait for what it says it did.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './demo-service-proc.js';
import { startWatchdog } from './watchdog.js';
import { waitFor } from './wait.js';

export type LogLine = Record<string, unknown> & { msg: string; level: string };

export interface AgentStartOptions {
  /**
   * Where the agent's stderr (its log) goes. 'pipe' (default): read and parsed into logs().
   * 'closed-pipe': a pipe whose reading end is closed at once, so every write gets EPIPE.
   * { file }: a file opened for writing, e.g. /dev/full (every write gets ENOSPC).
   * Except with 'pipe', logs() stays empty: watch the service and the shared resource instead.
   */
  stderr?: 'pipe' | 'closed-pipe' | { file: string };
  /** Node options before the script, e.g. ['--import', fixture] to inject a fault from outside. */
  nodeArgs?: string[];
  /** Extra environment (on top of the `env` argument). */
  env?: Record<string, string>;
  /** Argv run before node, e.g. ['ip', 'netns', 'exec', NAME] (it must exec node, keeping the pid). */
  wrapper?: string[];
}

// Runs from source (harness/) and compiled (dist/harness/: the demo and the benchmark): find the root.
const runFile = promisify(execFile);

export const hafcBin = path.join(repoRoot(), 'dist/src/cli/entry.js');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export class AgentProc {
  private readonly lines: LogLine[] = [];
  private raw = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  private constructor(
    readonly id: string,
    readonly child: ChildProcess,
    marker: string,
  ) {
    live.add(child);
    // If this process dies by SIGKILL no exit handler runs; the watchdog still kills the agent.
    const watchdog = child.pid ? startWatchdog(child.pid, marker, 'hafc-agent-watchdog') : undefined;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        watchdog?.stdin?.end();
        this.exitInfo = { code, signal };
        resolve({ code, signal });
      });
    });
    let buf = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.raw += chunk;
      if (this.raw.length > 4_000_000) this.raw = this.raw.slice(-2_000_000);
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ level: 'raw', msg: line });
        }
      }
    });
    child.stdout!.resume();
  }

  static start(
    id: string,
    configFile: string,
    env: Record<string, string> = {},
    opts: AgentStartOptions = {},
  ): AgentProc {
    if (!fs.existsSync(hafcBin)) throw new Error(`${hafcBin} is missing: run npm run build first`);
    const stderr = opts.stderr ?? 'pipe';
    const errFd = typeof stderr === 'object' ? fs.openSync(stderr.file, 'a') : undefined;
    let child: ChildProcess;
    try {
      const argv = [...(opts.nodeArgs ?? []), hafcBin, 'agent', '-c', configFile];
      const wrapper = opts.wrapper ?? [];
      child = spawn(
        wrapper[0] ?? process.execPath,
        wrapper.length ? [...wrapper.slice(1), process.execPath, ...argv] : argv,
        {
          stdio: ['ignore', 'pipe', errFd ?? 'pipe'],
          env: { ...process.env, ...env, ...opts.env },
        },
      );
    } finally {
      if (errFd !== undefined) fs.closeSync(errFd);
    }
    if (stderr === 'closed-pipe') child.stderr!.destroy();
    return new AgentProc(id, child, configFile);
  }

  get pid(): number {
    return this.child.pid!;
  }

  logs(): LogLine[] {
    return this.lines;
  }

  rawOutput(): string {
    return this.raw;
  }

  hasExited(): boolean {
    return this.exitInfo !== null;
  }

  find(pred: (l: LogLine) => boolean, from = 0): LogLine | undefined {
    return this.lines.slice(from).find(pred);
  }

  /** Waits for a log line matching `pred` (searching lines from index `from`). */
  async waitForLog(
    what: string,
    pred: (l: LogLine) => boolean,
    timeoutMs = 15_000,
    from = 0,
  ): Promise<LogLine> {
    return waitFor(
      `agent ${this.id} to log ${what}`,
      () => {
        if (this.exitInfo)
          throw new Error(
            `agent ${this.id} exited (${JSON.stringify(this.exitInfo)}): ${this.raw.slice(-2000)}`,
          );
        return this.find(pred, from);
      },
      { timeoutMs },
    );
  }

  /** Latest role from the controller's "role a -> b" lines. */
  role(): string {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const m = /^role \w+ -> (\w+)$/.exec(this.lines[i]!.msg);
      if (m) return m[1]!;
    }
    return 'init';
  }

  async waitForRole(role: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `agent ${this.id} to be ${role} (now ${this.role()})`,
      () => {
        if (this.exitInfo)
          throw new Error(
            `agent ${this.id} exited (${JSON.stringify(this.exitInfo)}): ${this.raw.slice(-2000)}`,
          );
        return this.role() === role;
      },
      { timeoutMs },
    );
  }

  /** Everything the agent wrote to stderr (its last 2-4 MB), for a log kept after a failure. */
  rawLog(): string {
    return this.raw;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<unknown> {
    if (!this.exitInfo) this.child.kill(signal);
    return this.exited;
  }

  freeze(): void {
    this.child.kill('SIGSTOP');
  }

  thaw(): void {
    this.child.kill('SIGCONT');
  }

  /** SIGTERM and wait (deadline), then SIGKILL. Returns the exit code. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (this.exitInfo) return this.exitInfo.code;
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const info = await this.exited;
    clearTimeout(t);
    return info.code;
  }
}

/** Runs the hafc CLI and reports its exit code instead of throwing on a non-zero one. */
export async function hafcExit(
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await runFile(process.execPath, [hafcBin, ...args], { timeout: timeoutMs });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
