/**
 * The split-brain checker (Hadoop's DummySharedResource, over TCP so real processes can use it).
 *
 * Every managed service instance keeps one persistent connection and tells the resource what it
 * believes it is: `HELLO <node>`, `TAKE <node> <epoch>`, `RELEASE <node>`, `WRITE <node> <epoch>
 * <seq>`. Each line gets exactly one reply line (`OK`, `REJECT ...` or `ERR ...`) so a client may
 * pipeline. The resource never refuses a TAKE: a service that thinks it is active IS active, so
 * the checker records what happened and tests assert afterwards with `assertNoViolations()`.
 *
 * Hold lifetime follows the connection, not the process state: a SIGSTOPped active keeps its
 * socket open, hence its hold - a frozen active is still an active, and promoting someone else
 * without fencing it first is exactly the split brain this exists to catch. A killed process's
 * socket closes and its hold is released ("released by disconnect").
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { waitFor } from './wait.js';

export type ViolationKind = 'two-actives' | 'stale-epoch' | 'write-without-holding';

export interface Violation {
  kind: ViolationKind;
  /** The node whose action broke the rule (the taker or the writer). */
  node: string;
  epoch: bigint;
  /** two-actives: the node that already held the resource. */
  holder?: string;
  /** two-actives: the node that took it while `holder` still held it. */
  taker?: string;
  /** stale-epoch: the highest epoch taken before this TAKE. */
  highest?: bigint;
  /** Monotonic milliseconds (same clock as `now()` and `history`). */
  at: number;
  detail: string;
}

export type HistoryKind = 'take' | 'release' | 'disconnect';

export interface HistoryEvent {
  kind: HistoryKind;
  node: string;
  epoch: bigint;
  /** Monotonic milliseconds (same clock as `now()`). */
  at: number;
  note?: string;
}

export interface Holder {
  node: string;
  epoch: bigint;
}

interface Hold {
  epoch: bigint;
  conn: Conn;
}

interface Conn {
  socket: net.Socket;
  /** Bound by the first line naming a node; a connection speaks for one node only. */
  node?: string;
  buf: string;
  /** True while skipping the rest of an over-long line up to its newline. */
  discarding: boolean;
}

// Node ids come from the contract's alphabet; a little looser so tests may use readable names.
const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const U64_MAX = (1n << 64n) - 1n;
const MAX_LINE = 4096;

export class SharedResource {
  readonly violations: Violation[] = [];
  readonly history: HistoryEvent[] = [];
  /** Free-text log of everything that happened, for failure messages. */
  readonly log: string[] = [];
  private _badLines = 0;
  private _rejectedWrites = 0;
  private _acceptedWrites = 0;
  private highest = -1n;
  private readonly holds = new Map<string, Hold>();
  /** How each node's last hold ended, so a reconnecting holder can resume its own epoch. */
  private readonly lastEnd = new Map<string, { epoch: bigint; how: 'release' | 'disconnect' }>();
  private readonly conns = new Set<Conn>();
  private readonly extraServers: net.Server[] = [];
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<SharedResource> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('shared resource: no TCP address');
    const res = new SharedResource(server, addr.port);
    server.on('connection', (s) => res.accept(s));
    // A listening-socket error after start must not crash the test process.
    server.on('error', (err) => res.note(`server error: ${err.message}`));
    return res;
  }

  /**
   * Also accepts clients on a Unix socket at `file`. A service in its own network namespace
   * reaches the resource this way, and a partition of its network leaves that path intact: the
   * resource plays storage on a separate fabric, which a cut-off active keeps writing to until it
   * is fenced - the case fencing exists for.
   */
  async listenUnix(file: string): Promise<void> {
    const server = net.createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.note(`unix server error: ${err.message}`));
    this.extraServers.push(server);
  }

  /** The clock of `history[].at`, `violations[].at` and `gapAfter(t)`. */
  now(): number {
    return performance.now();
  }

  get badLines(): number {
    return this._badLines;
  }
  /** Writes refused because they carried an epoch below the highest taken: fencing working. */
  get rejectedWrites(): number {
    return this._rejectedWrites;
  }
  get acceptedWrites(): number {
    return this._acceptedWrites;
  }
  /** Highest epoch ever taken, or null before the first TAKE. */
  get highestEpoch(): bigint | null {
    return this.highest < 0n ? null : this.highest;
  }

  /** The current holder; with several (a violation already recorded) the most recent taker. */
  holder(): Holder | null {
    let last: Holder | null = null;
    for (const [node, h] of this.holds) last = { node, epoch: h.epoch };
    return last;
  }

  /** Every current holder, oldest take first; more than one only after a two-actives violation. */
  holders(): Holder[] {
    return [...this.holds].map(([node, h]) => ({ node, epoch: h.epoch }));
  }

  takes(node?: string): HistoryEvent[] {
    return this.history.filter((e) => e.kind === 'take' && (node === undefined || e.node === node));
  }

  assertNoViolations(): void {
    if (this.violations.length === 0) return;
    const lines = this.violations.map((v, i) => `  ${i + 1}. [${v.kind}] ${v.detail}`);
    throw new Error(
      `shared resource saw ${this.violations.length} violation(s):\n${lines.join('\n')}\n` +
        `history:\n${this.describeHistory()}`,
    );
  }

  /**
   * Resolves when `node` holds the resource (or, for null, when nobody does). Fails with the
   * history in the message, so a timeout says what did happen instead.
   */
  async waitForHolder(node: string | null, timeoutMs = 10_000): Promise<Holder | null> {
    try {
      const got = await waitFor(
        node === null ? 'the shared resource to be free' : `${node} to hold the shared resource`,
        () => {
          const h = this.holder();
          if (node === null) return h === null ? { h } : undefined;
          return h !== null && h.node === node ? { h } : undefined;
        },
        { timeoutMs, intervalMs: 10 },
      );
      return got.h;
    } catch (err) {
      throw new Error(
        `${(err as Error).message}; holders now: ${JSON.stringify(this.holders(), bigintJson)}\n` +
          `history:\n${this.describeHistory()}`,
      );
    }
  }

  /**
   * Failover gap around time `t` (from `now()`): if the resource was free at `t`, measured from
   * the release/disconnect that freed it; if it was held at `t` (the caller took `t` just before
   * killing the active), from the first release/disconnect after `t`. Ends at the next take.
   * Null when no such release or no later take exists yet.
   */
  gapAfter(t: number): number | null {
    let start = -1;
    for (let i = 0; i < this.history.length; i++) {
      const e = this.history[i]!;
      if (e.at > t) break;
      if (e.kind !== 'take') start = i;
      else start = -1;
    }
    if (start < 0) start = this.history.findIndex((e) => e.at > t && e.kind !== 'take');
    if (start < 0) return null;
    const from = this.history[start]!;
    for (let i = start + 1; i < this.history.length; i++) {
      const e = this.history[i]!;
      if (e.kind === 'take') return e.at - from.at;
    }
    return null;
  }

  describeHistory(): string {
    if (this.history.length === 0) return '  (empty)';
    const t0 = this.history[0]!.at;
    return this.history
      .map(
        (e) =>
          `  +${(e.at - t0).toFixed(1)}ms ${e.kind} ${e.node} epoch ${e.epoch}${e.note ? ` (${e.note})` : ''}`,
      )
      .join('\n');
  }

  /** Idempotent; drops every client connection (their holds are not recorded as released). */
  close(): Promise<void> {
    this.closing ??= Promise.all(
      [this.server, ...this.extraServers].map(
        (srv) => new Promise<void>((resolve) => srv.close(() => resolve())),
      ),
    ).then(() => undefined);
    for (const c of this.conns) c.socket.destroy();
    return this.closing;
  }

  private accept(socket: net.Socket): void {
    const conn: Conn = { socket, buf: '', discarding: false };
    this.conns.add(conn);
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.onData(conn, chunk));
    // 'close' always follows 'error'; the hold is released there.
    socket.on('error', (err) => this.note(`connection ${conn.node ?? '?'} error: ${err.message}`));
    socket.on('close', () => this.onClose(conn));
  }

  private onData(conn: Conn, chunk: string): void {
    conn.buf += chunk;
    for (;;) {
      const nl = conn.buf.indexOf('\n');
      if (nl < 0) break;
      const line = conn.buf.slice(0, nl);
      conn.buf = conn.buf.slice(nl + 1);
      if (conn.discarding) {
        conn.discarding = false;
        continue;
      }
      this.reply(conn, this.handle(conn, line.replace(/\r$/, '')));
    }
    if (conn.buf.length > MAX_LINE) {
      // Answered once now; the rest of that line (up to its newline) is dropped unanswered.
      conn.buf = '';
      if (!conn.discarding) {
        conn.discarding = true;
        this._badLines++;
        this.reply(conn, `ERR line longer than ${MAX_LINE} bytes`);
      }
    }
  }

  private reply(conn: Conn, text: string): void {
    if (!conn.socket.destroyed && conn.socket.writable) conn.socket.write(text + '\n');
  }

  private bad(conn: Conn, line: string, why: string): string {
    this._badLines++;
    this.note(`ERR from ${conn.node ?? '?'}: ${why}: ${JSON.stringify(line.slice(0, 200))}`);
    return `ERR ${why}`;
  }

  private handle(conn: Conn, line: string): string {
    const parts = line.trim().split(/\s+/);
    const verb = parts[0] ?? '';
    if (verb === '') return this.bad(conn, line, 'empty line');
    const arity: Record<string, number> = { HELLO: 2, TAKE: 3, RELEASE: 2, WRITE: 4 };
    const want = arity[verb];
    if (want === undefined)
      return this.bad(conn, line, `unknown command ${JSON.stringify(verb.slice(0, 40))}`);
    if (parts.length !== want) {
      return this.bad(conn, line, `${verb} takes ${want - 1} argument(s), got ${parts.length - 1}`);
    }
    const node = parts[1]!;
    if (!NODE_RE.test(node)) return this.bad(conn, line, `bad node id ${JSON.stringify(node.slice(0, 80))}`);
    if (conn.node !== undefined && conn.node !== node) {
      return this.bad(conn, line, `this connection speaks for ${conn.node}, not ${node}`);
    }
    let epoch = 0n;
    if (verb === 'TAKE' || verb === 'WRITE') {
      const e = parseU64(parts[2]!);
      if (e === null) return this.bad(conn, line, `bad epoch ${JSON.stringify(parts[2]!.slice(0, 40))}`);
      epoch = e;
    }
    if (verb === 'WRITE' && parseU64(parts[3]!) === null) {
      return this.bad(conn, line, `bad seq ${JSON.stringify(parts[3]!.slice(0, 40))}`);
    }
    conn.node = node;
    switch (verb) {
      case 'HELLO':
        this.note(`hello ${node}`);
        return 'OK';
      case 'TAKE':
        return this.take(conn, node, epoch);
      case 'RELEASE':
        return this.release(node);
      default:
        return this.write(node, epoch, parts[3]!);
    }
  }

  private take(conn: Conn, node: string, epoch: bigint): string {
    const at = this.now();
    const own = this.holds.get(node);
    if (own !== undefined && own.epoch === epoch) {
      // A repeated TAKE (retry, or re-announce) is not a new activation.
      own.conn = conn;
      return 'OK';
    }
    // A service whose resource connection dropped (not the process) re-announces its hold on
    // reconnect with the same epoch; that is the same activation, not a stale one.
    const end = this.lastEnd.get(node);
    const resume =
      own === undefined && end?.how === 'disconnect' && end.epoch === epoch && epoch === this.highest;
    if (!resume && this.highest >= 0n && epoch <= this.highest) {
      this.violate({
        kind: 'stale-epoch',
        node,
        epoch,
        highest: this.highest,
        at,
        detail: `${node} took the resource with epoch ${epoch}, not above the highest epoch taken before (${this.highest})`,
      });
    }
    for (const [other, h] of this.holds) {
      if (other === node) continue;
      this.violate({
        kind: 'two-actives',
        node,
        epoch,
        holder: other,
        taker: node,
        at,
        detail: `${node} took the resource with epoch ${epoch} while ${other} still held it with epoch ${h.epoch}`,
      });
    }
    this.holds.delete(node);
    this.holds.set(node, { epoch, conn });
    if (epoch > this.highest) this.highest = epoch;
    this.record({ kind: 'take', node, epoch, at, ...(resume ? { note: 'resumed after reconnect' } : {}) });
    return 'OK';
  }

  private release(node: string): string {
    const h = this.holds.get(node);
    if (h !== undefined) {
      this.holds.delete(node);
      this.lastEnd.set(node, { epoch: h.epoch, how: 'release' });
      this.record({ kind: 'release', node, epoch: h.epoch, at: this.now() });
    }
    return 'OK';
  }

  private write(node: string, epoch: bigint, seq: string): string {
    if (epoch < this.highest) {
      this._rejectedWrites++;
      return `REJECT stale epoch ${epoch} < ${this.highest}`;
    }
    const h = this.holds.get(node);
    if (h === undefined || h.epoch !== epoch) {
      const detail =
        h === undefined
          ? `${node} wrote (seq ${seq}, epoch ${epoch}) without holding the resource`
          : `${node} wrote (seq ${seq}) with epoch ${epoch} but holds the resource with epoch ${h.epoch}`;
      this.violate({ kind: 'write-without-holding', node, epoch, at: this.now(), detail });
      return h === undefined ? 'REJECT not holding' : `REJECT holding with epoch ${h.epoch}`;
    }
    this._acceptedWrites++;
    return 'OK';
  }

  private onClose(conn: Conn): void {
    this.conns.delete(conn);
    if (this.closing !== undefined) return;
    for (const [node, h] of [...this.holds]) {
      if (h.conn !== conn) continue;
      this.holds.delete(node);
      this.lastEnd.set(node, { epoch: h.epoch, how: 'disconnect' });
      this.record({
        kind: 'disconnect',
        node,
        epoch: h.epoch,
        at: this.now(),
        note: 'released by disconnect',
      });
    }
  }

  private violate(v: Violation): void {
    this.violations.push(v);
    this.note(`VIOLATION ${v.kind}: ${v.detail}`);
  }

  private record(e: HistoryEvent): void {
    this.history.push(e);
    this.note(`${e.kind} ${e.node} epoch ${e.epoch}${e.note ? ` (${e.note})` : ''}`);
  }

  private note(msg: string): void {
    // Bounded: a chatty long test must not grow memory without limit.
    if (this.log.length >= 10_000) this.log.splice(0, 1_000);
    this.log.push(`${this.now().toFixed(1)} ${msg}`);
  }
}

function parseU64(s: string): bigint | null {
  if (!/^\d{1,20}$/.test(s)) return null;
  const v = BigInt(s);
  return v <= U64_MAX ? v : null;
}

function bigintJson(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
