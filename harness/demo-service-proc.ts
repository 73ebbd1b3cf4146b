/**
 * Spawns harness/demo-service (the built JS in dist/) as a real process for tests.
 *
 * Orphans are the failure mode that poisons later runs, so there are two guards: every child is
 * killed from this process's 'exit' handler, and the child runs with --exit-on-stdin-eof, so if
 * this process dies without running handlers (SIGKILL, crash) the closed pipe stops the child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DemoServiceOptions {
  id: string;
  /** Port of a SharedResource on 127.0.0.1 to report TAKE/RELEASE/WRITE to. */
  resourcePort?: number;
  /** Or the Unix socket of one (SharedResource.listenUnix), e.g. from another network namespace. */
  resourcePath?: string;
  env?: Record<string, string>;
  /** @default 100 (the service's own default); 0 disables periodic writes. */
  writeIntervalMs?: number;
  /** Extra command-line arguments. */
  args?: string[];
  /** How long to wait for the listening line. @default 10000 */
  startTimeoutMs?: number;
  /** The address to listen on (and of `url`). @default 127.0.0.1 */
  host?: string;
  /** @default 0 (any free port) */
  port?: number;
  /** Argv run before node, e.g. ['ip', 'netns', 'exec', NAME] (it must exec node, keeping the pid). */
  wrapper?: string[];
}

export interface RoleEvent {
  time: string;
  id: string;
  event: 'role';
  from: string;
  to: string;
  epoch: string;
  reason: string;
}

export interface HttpReply {
  status: number;
  /** Parsed JSON when the body is JSON, else the raw text. */
  body: unknown;
}

export interface DemoServiceProc {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  role(): Promise<{ role: string; epoch: string }>;
  /** POST /role; returns the status instead of throwing, so tests can assert 409 / 400. */
  setRole(role: 'active' | 'standby', epoch: bigint | string, reason?: string): Promise<HttpReply>;
  setHealthy(healthy: boolean): Promise<void>;
  setHang(hang: boolean): Promise<void>;
  request(
    method: string,
    urlPath: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<HttpReply>;
  /** Resolves when the process has exited. SIGSTOP/SIGCONT: use freeze()/thaw(). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  freeze(): void;
  thaw(): void;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  stop(): Promise<void>;
  roleEvents(): RoleEvent[];
  /** Every stdout line so far, parsed where it is JSON. */
  events(): Record<string, unknown>[];
  stdout(): string[];
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** SIGKILLs every demo service this process started and waits for them to exit. */
export async function killAllDemoServices(): Promise<void> {
  const all = [...live];
  await Promise.all(
    all.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
}

export function repoRoot(): string {
  // Runs both from source (harness/) and compiled (dist/harness/): walk up to package.json.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && !dir.endsWith(`${path.sep}dist`)) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('demo-service-proc: cannot find the repository root (package.json)');
    dir = up;
  }
}

export function demoServiceScript(): string {
  return path.join(repoRoot(), 'dist', 'harness', 'demo-service.js');
}

export async function startDemoService(opts: DemoServiceOptions): Promise<DemoServiceProc> {
  const script = demoServiceScript();
  if (!fs.existsSync(script)) {
    throw new Error(`demo service not built: ${script} is missing; run \`npm run build\` first`);
  }
  const host = opts.host ?? '127.0.0.1';
  const args = [script, '--id', opts.id, '--port', String(opts.port ?? 0), '--exit-on-stdin-eof'];
  if (opts.host !== undefined) args.push('--host', opts.host);
  if (opts.resourcePort !== undefined) args.push('--resource', `127.0.0.1:${opts.resourcePort}`);
  else if (opts.resourcePath !== undefined) args.push('--resource', `unix:${opts.resourcePath}`);
  if (opts.writeIntervalMs !== undefined) args.push('--write-interval-ms', String(opts.writeIntervalMs));
  args.push(...(opts.args ?? []));

  installExitHook();
  const wrapper = opts.wrapper ?? [];
  const child = spawn(
    wrapper[0] ?? process.execPath,
    wrapper.length ? [...wrapper.slice(1), process.execPath, ...args] : args,
    {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  live.add(child);
  const lines: string[] = [];
  const parsed: Record<string, unknown>[] = [];
  let errText = '';
  let partial = '';
  let frozen = false;

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  // A spawn failure (e.g. ENOENT) arrives as 'error' and may come without 'exit'.
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  let onListening: ((port: number) => void) | undefined;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      try {
        const obj = JSON.parse(line) as Record<string, unknown>;
        parsed.push(obj);
        if (obj.event === 'listening' && typeof obj.port === 'number') onListening?.(obj.port);
      } catch {
        // not JSON: kept in lines only
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    // Bounded: a runaway child must not fill the test process's memory.
    if (errText.length < 1_000_000) errText += chunk;
  });
  // The child exits on stdin EOF; an EPIPE here (child already dead) is not our error.
  child.stdin!.on('error', () => {});

  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const port = await Promise.race([
    new Promise<number>((resolve) => (onListening = resolve)),
    exited.then(({ code, signal }) => {
      throw new Error(
        `demo service ${opts.id} exited before listening (code ${code}, signal ${signal}); ` +
          `stderr: ${errText.trim() || '(empty)'}; stdout: ${lines.join('\n') || '(empty)'}`,
      );
    }),
    spawnError.then((err) => {
      live.delete(child);
      throw new Error(`cannot start demo service ${opts.id}: ${err.message}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `demo service ${opts.id} did not report a listening port within ${timeoutMs} ms; ` +
              `stderr: ${errText.trim() || '(empty)'}; stdout: ${lines.join('\n') || '(empty)'}`,
          ),
        );
      }, timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));

  const url = `http://${host}:${port}`;
  const hasExited = (): boolean => child.exitCode !== null || child.signalCode !== null;

  const request = (method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}) =>
    httpRequest(`${url}${urlPath}`, method, body, headers);

  const expectOk = async (what: string, p: Promise<HttpReply>): Promise<HttpReply> => {
    const r = await p;
    if (r.status !== 200)
      throw new Error(`demo service ${opts.id}: ${what} answered ${r.status}: ${show(r.body)}`);
    return r;
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (hasExited()) return;
    child.kill(signal);
    // A stopped process only acts on a catchable signal once continued.
    if (frozen && signal !== 'SIGKILL') child.kill('SIGCONT');
    await exited;
  };

  return {
    id: opts.id,
    port,
    url,
    pid: child.pid!,
    exited,
    hasExited,
    request,
    async role() {
      const r = await expectOk('GET /role', request('GET', '/role'));
      const b = r.body as { role: string; epoch: string };
      return { role: b.role, epoch: b.epoch };
    },
    setRole(role, epoch, reason) {
      return request('POST', '/role', {
        role,
        epoch: String(epoch),
        ...(reason !== undefined ? { reason } : {}),
      });
    },
    async setHealthy(healthy) {
      await expectOk('POST /fault', request('POST', '/fault', { healthy }));
    },
    async setHang(hang) {
      await expectOk('POST /fault', request('POST', '/fault', { hang }));
    },
    kill,
    freeze() {
      if (hasExited()) return;
      child.kill('SIGSTOP');
      frozen = true;
    },
    thaw() {
      if (hasExited()) return;
      child.kill('SIGCONT');
      frozen = false;
    },
    async stop() {
      if (hasExited()) return;
      child.kill('SIGTERM');
      if (frozen) child.kill('SIGCONT');
      let t: NodeJS.Timeout | undefined;
      const forced = new Promise<void>((resolve) => {
        t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 5_000);
      });
      await Promise.race([exited, forced]);
      clearTimeout(t);
      await exited;
    },
    roleEvents() {
      return parsed.filter((o) => o.event === 'role') as unknown as RoleEvent[];
    },
    events() {
      return [...parsed];
    },
    stdout() {
      return [...lines];
    },
    stderr() {
      return errText;
    },
  };
}

/**
 * One HTTP request with its own connection (no keep-alive pool to outlive a killed service) and a
 * deadline, so a hung or frozen service fails the call instead of the whole test.
 */
export function httpRequest(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 5_000,
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request(url, {
      method,
      agent: false,
      headers: {
        ...(payload !== undefined
          ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }
          : {}),
        ...headers,
      },
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('error', reject);
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.end(payload);
  });
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 300 ? s.slice(0, 300) + '...' : s;
}
