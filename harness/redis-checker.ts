/**
 * The split-brain checker of a Redis pair, built from the servers' own view (no agent's word):
 *
 * - probes: every `probeIntervalMs` a real write (SET) is sent to each server; the reply (OK,
 *   READONLY, another error, no answer) and its send and reply times are kept;
 * - a client writes numbered keys to whichever server last took a write, each followed by
 *   `WAIT 1`: a write is *acknowledged* when the master said OK and WAIT says a replica has it
 *   too. Redis replicates asynchronously, so a write only the master has may be lost in any
 *   failover (and WAIT does not make it durable on disk: the replica holds it in memory); an
 *   acknowledged one must survive a failover to that replica.
 *
 * violations() fails on a write (probe or client) accepted by one server after the other had
 * accepted one since the first's previous OK, with no refusal by the first in between: two
 * writable at once, or an old master still accepting after the new one was promoted. Times are
 * the client's: the server executed each write between its send and reply times, so a write
 * counts only when its send time is after the other's reply time.
 */
import type { Redis } from 'ioredis';
import type { RedisServer } from './redis.js';

export interface ProbeResult {
  node: string;
  sentAt: number;
  doneAt: number;
  /** 'OK', or the error's first word (READONLY, LOADING...), or 'timeout' / 'down'. */
  result: string;
  /** A client write (else a probe). */
  key?: string;
  acked?: boolean;
}

export interface Violation {
  node: string;
  at: number;
  key: string;
  other: string;
  otherAt: number;
}

const now = (): number => performance.timeOrigin + performance.now();

export class RedisChecker {
  readonly events: ProbeResult[] = [];
  private running = true;
  private loops: Promise<void>[] = [];
  private readonly clients = new Map<string, Redis>();
  private seq = 0;
  private writeSeq = 0;
  private target: string;

  constructor(
    private readonly servers: RedisServer[],
    private readonly opts: { probeIntervalMs?: number; timeoutMs?: number } = {},
  ) {
    this.target = servers[0]!.id;
  }

  start(): this {
    for (const s of this.servers) this.loops.push(this.probeLoop(s));
    this.loops.push(this.writeLoop());
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const c of this.clients.values()) c.disconnect();
  }

  private client(s: RedisServer): Redis {
    let c = this.clients.get(s.id);
    if (!c || c.status === 'end') {
      const t = this.opts.timeoutMs ?? 300;
      c = s.client({ connectTimeout: t, commandTimeout: t });
      this.clients.set(s.id, c);
    }
    return c;
  }

  private async send(s: RedisServer, args: string[]): Promise<unknown> {
    const c = this.client(s);
    if (c.status === 'wait') await c.connect();
    return c.call(args[0]!, ...args.slice(1));
  }

  private async attempt(s: RedisServer, key: string, wait: boolean): Promise<ProbeResult> {
    const sentAt = now();
    let result: string;
    let acked: boolean | undefined;
    try {
      result = String(await this.send(s, ['SET', key, String(sentAt)]));
      if (wait && result === 'OK') acked = Number(await this.send(s, ['WAIT', '1', '100'])) >= 1;
    } catch (err) {
      const msg = (err as Error).message;
      result = /timed out/i.test(msg) ? 'timeout' : /^[A-Z]+ /.test(msg) ? msg.split(' ')[0]! : 'down';
      this.clients.get(s.id)?.disconnect();
      this.clients.delete(s.id);
    }
    return { node: s.id, sentAt, doneAt: now(), result, ...(wait ? { key, acked } : {}) };
  }

  private async probeLoop(s: RedisServer): Promise<void> {
    while (this.running) {
      const r = await this.attempt(s, `probe:${s.id}`, false);
      this.events.push(r);
      await new Promise((res) => setTimeout(res, this.opts.probeIntervalMs ?? 20));
    }
  }

  private async writeLoop(): Promise<void> {
    while (this.running) {
      const s = this.servers.find((x) => x.id === this.target)!;
      const r = await this.attempt(s, `w:${++this.writeSeq}`, true);
      this.events.push(r);
      if (r.result !== 'OK') {
        this.target = this.servers.find((x) => x.id !== this.target)!.id;
        await new Promise((res) => setTimeout(res, 10));
      }
    }
  }

  /** Client writes the master acknowledged with a replica's copy. */
  acknowledged(): string[] {
    return this.events.filter((e) => e.key !== undefined && e.acked).map((e) => e.key!);
  }

  /** Writes accepted by a server after the other accepted one since its own previous OK. */
  violations(): Violation[] {
    const out: Violation[] = [];
    const byNode = new Map<string, ProbeResult[]>();
    for (const e of this.events) {
      const list = byNode.get(e.node) ?? [];
      list.push(e);
      byNode.set(e.node, list);
    }
    for (const [node, list] of byNode) {
      const own = [...list].sort((a, b) => a.sentAt - b.sentAt);
      const others = this.events.filter((e) => e.node !== node && e.result === 'OK');
      let lastOk: ProbeResult | undefined;
      for (const e of own) {
        if (e.result !== 'OK') {
          // A refusal (or no answer) ends what we know of this server's writable spell.
          lastOk = undefined;
          continue;
        }
        if (lastOk !== undefined) {
          const since = lastOk.doneAt;
          const between = others.find((o) => o.sentAt > since && o.doneAt < e.sentAt);
          if (between) {
            out.push({
              node,
              at: e.sentAt,
              key: e.key ?? 'probe',
              other: between.node,
              otherAt: between.doneAt,
            });
          }
        }
        lastOk = e;
      }
    }
    return out;
  }

  /** Stats of the client's writes: accepted, acknowledged, failed. */
  writes(): { ok: number; acked: number; failed: number } {
    const w = this.events.filter((e) => e.key !== undefined);
    return {
      ok: w.filter((e) => e.result === 'OK').length,
      acked: w.filter((e) => e.acked).length,
      failed: w.filter((e) => e.result !== 'OK').length,
    };
  }

  /** The longest time the client's writes were failing in [from, to]. */
  longestOutageMs(from: number, to = now()): number {
    let worst = 0;
    let lastOk = from;
    for (const e of this.events.filter((x) => x.key !== undefined && x.sentAt >= from && x.sentAt <= to)) {
      if (e.result === 'OK') {
        worst = Math.max(worst, e.doneAt - lastOk);
        lastOk = e.doneAt;
      }
    }
    // Still failing at `to`: that spell counts too.
    return Math.max(worst, to - lastOk);
  }
}

export { now as checkerNow };
