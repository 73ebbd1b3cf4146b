/**
 * A loopback forwarder between a ZooKeeper client and a real server that can lie on the server's
 * behalf. It cuts the server->client stream into frames and forwards whole frames only, so a test
 * can replace one frame (the handshake or a reply), inject bytes between two replies, or cut a
 * connection halfway through a frame. The client->server direction is passed through untouched.
 */
import net from 'node:net';

/** Returns the bytes to send instead of `frame` (length prefix included), or undefined to pass it. */
export type Rewrite = (frame: Buffer) => Buffer | undefined;

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** The handshake reply has been forwarded: what follows are replies and watch events. */
  handshaken: boolean;
}

export class TamperProxy {
  private readonly pairs = new Set<Pair>();
  private pending: {
    kind: 'handshake' | 'reply';
    rewrite: Rewrite;
    thenCut: boolean;
    done: () => void;
  } | null = null;
  /** Connections accepted so far: each reconnect of the client is a new one. */
  accepted = 0;
  /** Connections the client closed (not the proxy, not the server). */
  closedByClient = 0;

  private constructor(
    private readonly server: net.Server,
    private readonly targetPort: number,
  ) {
    server.on('connection', (socket) => this.onConnection(socket));
    server.on('error', () => {});
  }

  static async start(targetPort: number): Promise<TamperProxy> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new TamperProxy(server, targetPort);
  }

  get address(): string {
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('TamperProxy: not listening');
    return `127.0.0.1:${addr.port}`;
  }

  /** Connections open now whose handshake went through. */
  get established(): number {
    return [...this.pairs].filter((p) => p.handshaken).length;
  }

  /**
   * The next server->client frame of `kind` for which `rewrite` returns bytes is replaced by
   * them; with `thenCut` the connection then ends after those bytes (and nothing else of the
   * server's). Resolves once that happened. One rewrite at a time.
   */
  rewriteNext(
    kind: 'handshake' | 'reply',
    rewrite: Rewrite,
    opts: { thenCut?: boolean } = {},
  ): Promise<void> {
    if (this.pending) throw new Error('TamperProxy: a rewrite is already pending');
    return new Promise((resolve) => {
      this.pending = { kind, rewrite, thenCut: opts.thenCut ?? false, done: resolve };
    });
  }

  /** Writes `bytes` to every established client between two frames of the server. */
  inject(bytes: Buffer): void {
    const targets = [...this.pairs].filter((p) => p.handshaken);
    if (targets.length === 0) throw new Error('TamperProxy: no established connection to inject into');
    for (const p of targets) p.client.write(bytes);
  }

  /** Destroys both sides of every connection; the client sees a connection loss. */
  cut(): void {
    for (const p of [...this.pairs]) this.drop(p);
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: net.Socket): void {
    this.accepted += 1;
    client.setNoDelay(true);
    const upstream = net.connect({ port: this.targetPort, host: '127.0.0.1', noDelay: true });
    const pair: Pair = { client, upstream, handshaken: false };
    this.pairs.add(pair);
    upstream.on('error', () => {});
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    // Whatever way the client leaves (FIN, reset), it left first if the pair is still ours.
    const clientLeft = (): void => {
      if (!this.pairs.has(pair)) return;
      this.closedByClient += 1;
      this.drop(pair);
    };
    client.on('end', clientLeft);
    client.on('error', clientLeft);
    client.on('close', clientLeft);
    upstream.on('close', () => this.drop(pair));

    let buffered = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        const size = 4 + buffered.readInt32BE(0);
        const frame = buffered.subarray(0, size);
        buffered = buffered.subarray(size);
        if (!this.pairs.has(pair)) return;
        this.forward(pair, frame);
      }
    });
  }

  private forward(pair: Pair, frame: Buffer): void {
    const p = this.pending;
    const replaced = p && p.kind === (pair.handshaken ? 'reply' : 'handshake') ? p.rewrite(frame) : undefined;
    pair.handshaken = true;
    if (!p || replaced === undefined) {
      pair.client.write(frame);
      return;
    }
    this.pending = null;
    if (p.thenCut) {
      this.pairs.delete(pair);
      pair.upstream.destroy();
      // end(), not destroy(): the partial frame must reach the client before the FIN.
      pair.client.end(replaced);
    } else {
      pair.client.write(replaced);
    }
    setImmediate(p.done);
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream.destroy();
  }
}

/** Offsets in a reply frame (length prefix included): xid, zxid, err, then the body. */
export const REPLY_XID = 4;
export const REPLY_BODY = 4 + 4 + 8 + 4;
