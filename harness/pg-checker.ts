/**
 * The split-brain checker for PostgreSQL, built from the servers' own view and a real client:
 *
 * - a sampler asks every server pg_is_in_recovery() every few milliseconds (a server that does
 *   not answer, frozen or down, takes no writes) and records who answers "primary";
 * - a writer inserts numbered rows, one at a time, into whichever server the sampler last saw as
 *   primary, and records each INSERT's outcome (acknowledged, failed, or timed out: unknown).
 *
 * Violations: two servers answering "primary" in one sampling round; a write acknowledged by a
 * server after another server had been seen promoted later than it (a stale write); and, at the
 * end (`missing()`), an acknowledged row that the final primary does not have.
 */
import type { PgServer } from './postgres.js';

interface Write {
  n: number;
  node: string;
  start: number;
  end: number;
  result: 'ok' | 'failed' | 'unknown';
  error?: string;
}

interface Promotion {
  node: string;
  /** First sampling round that saw it primary after it had not been. */
  at: number;
}

const SAMPLE_TIMEOUT_MS = 400;
const WRITE_TIMEOUT_MS = 3000;

export class PgChecker {
  readonly violations: string[] = [];
  readonly writes: Write[] = [];
  readonly promotions: Promotion[] = [];
  private primary: string | null = null;
  /** Who answered primary in the previous sampling round. */
  private lastPrimaries = new Set<string>();
  private stopped = false;
  private nextN = 1;
  private loops: Promise<void>[] = [];
  private readonly deadline: number;

  constructor(
    private readonly servers: PgServer[],
    /** Loops end by themselves after this long, whatever the test does. */
    maxRunMs = 300_000,
  ) {
    this.deadline = Date.now() + maxRunMs;
  }

  static async start(servers: PgServer[], table = 'hafc_rows'): Promise<PgChecker> {
    const c = new PgChecker(servers);
    c.table = table;
    const primary = await c.findPrimary();
    await primary.query(
      `CREATE TABLE IF NOT EXISTS ${table} (n integer PRIMARY KEY, at timestamptz DEFAULT now())`,
    );
    c.loops = [c.sampleLoop(), c.writeLoop()];
    return c;
  }

  private table = 'hafc_rows';

  private async findPrimary(): Promise<PgServer> {
    for (const s of this.servers) if ((await s.role()) === 'primary') return s;
    throw new Error('no server is primary');
  }

  currentPrimary(): string | null {
    return this.primary;
  }

  private live(): boolean {
    return !this.stopped && Date.now() < this.deadline;
  }

  private async sampleLoop(): Promise<void> {
    while (this.live()) {
      const at = Date.now();
      const roles = await Promise.all(this.servers.map((s) => s.role(SAMPLE_TIMEOUT_MS)));
      const primaries = this.servers.filter((_, i) => roles[i] === 'primary').map((s) => s.id);
      if (primaries.length > 1) {
        this.violations.push(`${new Date(at).toISOString()}: two primaries at once: ${primaries.join(', ')}`);
      }
      // With two answering primary, the newly promoted one is the one to follow: the old one is
      // an orphan (its controller dead or frozen) that a client must leave. Taking the first in
      // list order instead hid a promotion for as long as an orphan listed before it answered
      // (Patroni's agentKill: 20-30 s to the promotion, then minutes until the orphan ran out
      // of connections), and with it the stale writes the orphan acknowledged meanwhile.
      const fresh = primaries.find((id) => id !== this.primary && !this.lastPrimaries.has(id));
      const p =
        fresh ?? (this.primary !== null && primaries.includes(this.primary) ? this.primary : primaries[0]);
      this.lastPrimaries = new Set(primaries);
      if (p !== undefined && p !== this.primary) {
        this.promotions.push({ node: p, at });
        this.primary = p;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private async writeLoop(): Promise<void> {
    while (this.live()) {
      const target = this.servers.find((s) => s.id === this.primary);
      if (!target) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const n = this.nextN++;
      const start = Date.now();
      const w: Write = { n, node: target.id, start, end: start, result: 'unknown' };
      try {
        await target.query(`INSERT INTO ${this.table} (n) VALUES ($1)`, [n], { timeoutMs: WRITE_TIMEOUT_MS });
        w.result = 'ok';
      } catch (err) {
        const msg = (err as Error).message;
        // A timeout, a reset or a cancelled wait for the standby: it may or may not have committed.
        w.result = /timed out|timeout|terminat|cancel|ECONNRESET/i.test(msg) ? 'unknown' : 'failed';
        w.error = msg;
      }
      w.end = Date.now();
      this.writes.push(w);
      if (w.result === 'ok') this.checkStale(w);
      if (w.result !== 'ok') await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** An acknowledged write must not have started after another server's later promotion. */
  private checkStale(w: Write): void {
    const mine = this.promotions.filter((p) => p.node === w.node && p.at <= w.end).at(-1);
    const later = this.promotions.find(
      (p) => p.node !== w.node && p.at > (mine?.at ?? -Infinity) && p.at < w.start,
    );
    if (later) {
      this.violations.push(
        `row ${w.n} acknowledged by ${w.node} (sent ${new Date(w.start).toISOString()}) after ${later.node} was promoted (${new Date(later.at).toISOString()})`,
      );
    }
  }

  acknowledged(): number[] {
    return this.writes.filter((w) => w.result === 'ok').map((w) => w.n);
  }

  /** Acknowledged writes since `t` (ms epoch). */
  acknowledgedSince(t: number): number {
    return this.writes.filter((w) => w.result === 'ok' && w.start >= t).length;
  }

  /** The longest stretch with no acknowledged write that began after `t`. */
  unavailableMsAfter(t: number): number {
    const acks = this.writes.filter((w) => w.result === 'ok' && w.end >= t).map((w) => w.end);
    let prev = t;
    let worst = 0;
    for (const a of acks) {
      worst = Math.max(worst, a - prev);
      prev = a;
    }
    return worst;
  }

  /** Acknowledged rows the server does not have (it should be the final primary). */
  async missing(on: PgServer): Promise<number[]> {
    // Taken before the query: a row acknowledged while it runs may be after its snapshot.
    const acknowledged = this.acknowledged();
    const rows = await on.query<{ n: number }>(`SELECT n FROM ${this.table}`, [], { timeoutMs: 5000 });
    const have = new Set(rows.map((r) => r.n));
    return acknowledged.filter((n) => !have.has(n));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  describe(): string {
    const last = this.writes
      .slice(-15)
      .map((w) => `  #${w.n} ${w.node} ${w.result} ${w.end - w.start}ms${w.error ? ` ${w.error}` : ''}`);
    return [
      `promotions: ${this.promotions.map((p) => `${p.node}@${new Date(p.at).toISOString()}`).join(', ')}`,
      `writes: ${this.writes.length}, acknowledged ${this.acknowledged().length}`,
      ...last,
    ].join('\n');
  }
}
