/**
 * A real Prometheus server (Debian's package) for integration tests: a temp config and data dir,
 * a free port on 127.0.0.1, fast scrapes; queried through its own HTTP API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startWatchdog } from '../../harness/watchdog.js';
import { waitFor } from '../../harness/wait.js';
import { request } from '../support/http-client.js';

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export class PrometheusServer {
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
    private readonly exited: Promise<unknown>,
  ) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      this.output = (this.output + c).slice(-20_000);
    });
  }

  /** Scrapes `targets` (host:port) as job "hafc" every `scrapeMs`, with `ruleFiles` loaded. */
  static async start(opts: {
    targets: string[];
    scrapeMs?: number;
    ruleFiles?: string[];
  }): Promise<PrometheusServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-prom-'));
    const every = `${opts.scrapeMs ?? 500}ms`;
    const config = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      config,
      JSON.stringify({
        global: { scrape_interval: every, evaluation_interval: every, scrape_timeout: every },
        rule_files: opts.ruleFiles ?? [],
        scrape_configs: [{ job_name: 'hafc', static_configs: [{ targets: opts.targets }] }],
      }),
    );
    // The port may be taken between finding it and Prometheus binding it: try a few.
    let last = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const child = spawn(
        'prometheus',
        [
          `--config.file=${config}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const watchdog = child.pid ? startWatchdog(child.pid, config, 'hafc-prometheus-watchdog') : undefined;
      const exited = new Promise((resolve) =>
        child.on('exit', (code) => {
          watchdog?.stdin?.end();
          resolve(code);
        }),
      );
      const p = new PrometheusServer(child, port, dir, exited);
      let gone = false;
      void exited.then(() => (gone = true));
      try {
        await waitFor(
          `Prometheus on port ${port} to be ready`,
          async () => {
            if (gone) throw new Error(`prometheus exited: ${p.output.slice(-2000)}`);
            return (await request(port, '/-/ready')).status === 200;
          },
          { timeoutMs: 30_000, intervalMs: 100 },
        );
        return p;
      } catch (err) {
        last = String(err);
        await p.stop(false);
        if (!p.output.includes('address already in use')) break;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start Prometheus: ${last}`);
  }

  /** An instant query through /api/v1/query; the result vector. */
  async query(q: string): Promise<PromSample[]> {
    const r = await request(this.port, `/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = JSON.parse(r.body) as { status: string; error?: string; data?: { result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`query ${q} failed: ${body.error ?? r.body}`);
    return body.data!.result;
  }

  /** Polls `q` until `accept` holds for its result; fails naming the query and the last result. */
  async waitForQuery(what: string, q: string, accept: (r: PromSample[]) => boolean, timeoutMs = 20_000) {
    let last: PromSample[] = [];
    try {
      return await waitFor(
        what,
        async () => {
          last = await this.query(q);
          return accept(last) ? last : null;
        },
        { timeoutMs, intervalMs: 200 },
      );
    } catch (err) {
      throw new Error(`${String(err)}; query ${q} last returned ${JSON.stringify(last)}`);
    }
  }

  log(): string {
    return this.output;
  }

  async stop(removeDir = true): Promise<void> {
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
    if (removeDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
