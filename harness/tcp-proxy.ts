import net from 'node:net';

/**
 * One proxied connection. `dirty` records that bytes were dropped while blackholed: the two byte
 * streams no longer line up (a ZooKeeper frame may have lost its middle), so the pair cannot be
 * resumed honestly and is torn down when the blackhole lifts. `upstream` is null for a connection
 * accepted while blackholed: a silent link never reaches the server. `head` holds the client's
 * first bytes while a preamble rewrite still needs more of them (null once it is done).
 */
interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
  dirty: boolean;
  head: Buffer | null;
  /** Bytes held back by setDelay, oldest first, per direction. */
  toUpstream: Delayed[];
  toClient: Delayed[];
}

interface Delayed {
  due: number;
  chunk: Buffer;
}

export interface TcpProxyOptions {
  /**
   * Rewrites the start of what each client sends before it reaches the server. Called with every
   * byte the client sent so far; returns null while it needs more, else the bytes to forward in
   * their place (the rewritten preamble followed by whatever came after it). Called again for the
   * same connection only while it returns null.
   */
  rewriteClientPreamble?: (head: Buffer) => Buffer | null;
  /**
   * The address to listen on, e.g. the root side of a network namespace's veth so processes in
   * that namespace can reach a loopback-only server through it. @default 127.0.0.1
   */
  host?: string;
}

/** Past this much unparsed preamble the rewrite is abandoned and the bytes pass as they are. */
const MAX_PREAMBLE_BYTES = 64 * 1024;

/**
 * A loopback TCP forwarder in front of one server port, so tests can break the network between
 * two processes without touching either: cut connections, refuse new ones, or make the link silent
 * (the failure mode node-zookeeper-client cannot detect by itself, and the one that isolates a
 * ZooKeeper follower from its quorum).
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private blackhole = false;
  private refuse = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private delay = 0;

  private constructor(
    private readonly server: net.Server,
    readonly targetPort: number,
    private readonly rewrite: ((head: Buffer) => Buffer | null) | undefined,
  ) {
    server.on('connection', (socket) => this.onConnection(socket));
    // A listening server only errors on fatal conditions; never let it crash the test process.
    server.on('error', () => {});
  }

  static async start(targetPort: number, opts: TcpProxyOptions = {}): Promise<TcpProxy> {
    const server = net.createServer({ pauseOnConnect: false, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen({ port: 0, host: opts.host ?? '127.0.0.1', exclusive: true }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    return new TcpProxy(server, targetPort, opts.rewriteClientPreamble);
  }

  get port(): number {
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('TcpProxy: not listening');
    return addr.port;
  }

  /** Number of connections currently held (useful for asserting that a client reconnected). */
  get connectionCount(): number {
    return this.pairs.size;
  }

  get isBlackholed(): boolean {
    return this.blackhole;
  }

  /** Destroy every current connection on both sides; new connections are still accepted. */
  cut(): void {
    for (const pair of [...this.pairs]) this.drop(pair);
  }

  /**
   * While on, connections stay open but every byte in both directions is discarded, closes are not
   * propagated either, and new connections are accepted but never reach the server. When turned
   * off, connections that lost bytes (or never had an upstream) are destroyed; idle ones resume.
   */
  setBlackhole(on: boolean): void {
    if (this.blackhole === on) return;
    this.blackhole = on;
    if (!on) {
      for (const pair of [...this.pairs]) {
        if (pair.dirty || pair.upstream === null || pair.upstream.destroyed || pair.client.destroyed) {
          this.drop(pair);
        }
      }
    }
  }

  /**
   * Holds every byte in both directions for `ms` before passing it on, order kept (0 = off).
   * The kernel here has no sch_netem, so this is how the chaos suite delays a link; only what
   * flows through this proxy is delayed. A change applies to bytes that arrive after it.
   */
  setDelay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`TcpProxy.setDelay: ms must be >= 0, got ${ms}`);
    this.delay = ms;
  }

  get delayMs(): number {
    return this.delay;
  }

  /** While on, new connections are closed right after accept (existing ones are untouched). */
  setRefuse(on: boolean): void {
    this.refuse = on;
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.cut();
    });
    return this.closing;
  }

  private onConnection(client: net.Socket): void {
    client.on('error', () => {});
    if (this.closed || this.refuse) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const pair: Pair = {
      client,
      upstream: null,
      dirty: false,
      head: this.rewrite ? Buffer.alloc(0) : null,
      toUpstream: [],
      toClient: [],
    };
    this.pairs.add(pair);
    if (!this.blackhole) this.connectUpstream(pair);

    client.on('data', (chunk: Buffer) => {
      if (this.blackhole || pair.upstream === null) {
        if (chunk.length > 0) pair.dirty = true;
        return;
      }
      const out = this.rewritten(pair, chunk);
      if (out === null || out.length === 0) return;
      const upstream = pair.upstream;
      if (this.delay > 0 || pair.toUpstream.length > 0) {
        this.later(pair, pair.toUpstream, upstream, out);
        return;
      }
      if (!upstream.write(out)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    client.on('close', () => {
      // A silent link hides the client's departure from the server too.
      if (this.blackhole) return;
      this.drop(pair);
    });
  }

  /** Applies the preamble rewrite while it is pending; null = hold the bytes for now. */
  private rewritten(pair: Pair, chunk: Buffer): Buffer | null {
    if (pair.head === null || this.rewrite === undefined) return chunk;
    const head = Buffer.concat([pair.head, chunk]);
    const out = this.rewrite(head);
    if (out !== null) {
      pair.head = null;
      return out;
    }
    if (head.length > MAX_PREAMBLE_BYTES) {
      pair.head = null;
      return head;
    }
    pair.head = head;
    return null;
  }

  private connectUpstream(pair: Pair): void {
    const upstream = net.connect({ port: this.targetPort, host: '127.0.0.1', noDelay: true });
    pair.upstream = upstream;
    upstream.on('error', () => {});
    upstream.on('data', (chunk: Buffer) => {
      if (this.blackhole) {
        if (chunk.length > 0) pair.dirty = true;
        return;
      }
      if (this.delay > 0 || pair.toClient.length > 0) {
        this.later(pair, pair.toClient, pair.client, chunk);
        return;
      }
      if (!pair.client.write(chunk)) {
        upstream.pause();
        pair.client.once('drain', () => upstream.resume());
      }
    });
    upstream.on('close', () => {
      if (this.blackhole) return;
      this.drop(pair);
    });
  }

  /** Queues `chunk` for `dst` after the delay; a queue drains in order, one timer at a time. */
  private later(pair: Pair, queue: Delayed[], dst: net.Socket, chunk: Buffer): void {
    queue.push({ due: Date.now() + this.delay, chunk });
    if (queue.length > 1) return;
    const pump = (): void => {
      while (queue.length > 0 && queue[0]!.due <= Date.now()) {
        const next = queue.shift()!;
        if (!this.pairs.has(pair) || dst.destroyed) {
          queue.length = 0;
          return;
        }
        dst.write(next.chunk);
      }
      if (queue.length > 0) setTimeout(pump, Math.max(1, queue[0]!.due - Date.now()));
    };
    setTimeout(pump, this.delay);
  }

  private drop(pair: Pair): void {
    this.pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
