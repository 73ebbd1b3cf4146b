/**
 * The benchmark's view of which PostgreSQL server takes writes, whatever any controller thinks:
 * one persistent connection per server and, every 20 ms, an INSERT into it (a standby refuses it
 * as read-only). This is what sees an old primary acknowledge writes after the other server was
 * promoted (a client still connected to it, or a load balancer not yet switched, would be served
 * by it), which harness/pg-checker.ts's writer, following the primary it sampled, cannot see.
 *
 * A write that does not answer within the timeout has its connection destroyed and counts as
 * unknown. Its backend may stay blocked on the server (a commit waiting for a synchronous
 * standby ignores a dead client), so at most one such write per second per server is left.
 */
import pg from 'pg';
import type { PgServer } from '../harness/postgres.js';

export interface ProbeWrite {
  node: string;
  id: number;
  sentAt: number;
  doneAt: number;
  result: 'ok' | 'refused' | 'unknown';
}

const INTERVAL_MS = 20;
const TIMEOUT_MS = 1000;

export class PgProbe {
  readonly writes: ProbeWrite[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private nextId = 1;

  private constructor(readonly table: string) {}

  /** Creates `table` on `primary` (the standby gets it by replication) and starts writing. */
  static async start(servers: PgServer[], primary: PgServer, table: string): Promise<PgProbe> {
    if (!/^[a-z_][a-z0-9_]*$/.test(table))
      throw new Error(`PgProbe: bad table name ${JSON.stringify(table)}`);
    await primary.query(
      `CREATE TABLE IF NOT EXISTS ${table} (id integer PRIMARY KEY, node text, at timestamptz DEFAULT now())`,
      [],
      { timeoutMs: 10_000 },
    );
    const p = new PgProbe(table);
    p.loops = servers.map((s) => p.loop(s));
    return p;
  }

  private async loop(s: PgServer): Promise<void> {
    let client: pg.Client | null = null;
    let lastTimeout = 0;
    while (!this.stopped) {
      const sentAt = Date.now();
      const w: ProbeWrite = { node: s.id, id: this.nextId++, sentAt, doneAt: sentAt, result: 'unknown' };
      try {
        if (client === null) {
          client = s.client({ timeoutMs: TIMEOUT_MS });
          await withTimeout(client.connect(), TIMEOUT_MS);
        }
        await withTimeout(
          client.query(`INSERT INTO ${this.table} (id, node) VALUES ($1, $2)`, [w.id, s.id]),
          TIMEOUT_MS,
        );
        w.result = 'ok';
      } catch (err) {
        const msg = (err as Error).message;
        if (/read-only|recovery/i.test(msg)) {
          w.result = 'refused';
        } else {
          w.result = 'unknown';
          destroy(client);
          client = null;
          if (msg === TIMEOUT) lastTimeout = Date.now();
        }
      }
      w.doneAt = Date.now();
      this.writes.push(w);
      const pause = w.result === 'unknown' && Date.now() - lastTimeout < 1000 ? 1000 : INTERVAL_MS;
      await new Promise((r) => setTimeout(r, pause));
    }
    destroy(client);
  }

  /** The first write `node` acknowledged that was sent at or after `t`. */
  firstOk(node: string, t: number): ProbeWrite | undefined {
    return this.writes.find((w) => w.node === node && w.result === 'ok' && w.sentAt >= t);
  }

  /** Writes `node` acknowledged that were sent after `t`. */
  okAfter(node: string, t: number): ProbeWrite[] {
    return this.writes.filter((w) => w.node === node && w.result === 'ok' && w.sentAt > t);
  }

  /** Acknowledged probe rows that `on` (the final primary) does not have. */
  async lost(on: PgServer): Promise<ProbeWrite[]> {
    const acked = this.writes.filter((w) => w.result === 'ok');
    const rows = await on.query<{ id: number }>(`SELECT id FROM ${this.table}`, [], { timeoutMs: 10_000 });
    const have = new Set(rows.map((r) => r.id));
    return acked.filter((w) => !have.has(w.id));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

const TIMEOUT = 'probe write timed out';

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(TIMEOUT)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function destroy(c: pg.Client | null): void {
  if (c === null) return;
  (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  void c.end().catch(() => {});
}
