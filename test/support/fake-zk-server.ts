/**
 * A TCP server that gets the first move of the ZooKeeper protocol wrong on purpose: it reads the
 * client's ConnectRequest and answers with whatever bytes the test chose (garbage, a truncated
 * ConnectResponse, an absurd length prefix...). It never closes a connection first, so every
 * close it sees is the client giving up on it.
 */
import net from 'node:net';

export interface FakeConnection {
  /** The client's first frame (its ConnectRequest), length prefix included. */
  request?: Buffer;
  answeredAt?: number;
  /** When the client ended or reset its side. */
  clientClosedAt?: number;
}

export class FakeZkServer {
  readonly connections: FakeConnection[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly answer: (request: Buffer) => Buffer,
    private readonly onAnswered: () => void,
  ) {
    server.on('connection', (socket) => this.onConnection(socket));
    server.on('error', () => {});
  }

  /** `onAnswered` runs after each answer is written (e.g. to let the client reach a real server). */
  static async start(
    answer: (request: Buffer) => Buffer,
    onAnswered: () => void = () => {},
  ): Promise<FakeZkServer> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FakeZkServer(server, answer, onAnswered);
  }

  get port(): number {
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('FakeZkServer: not listening');
    return addr.port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    const conn: FakeConnection = {};
    this.connections.push(conn);
    this.sockets.add(socket);
    let received = Buffer.alloc(0);
    const clientClosed = (): void => {
      conn.clientClosedAt ??= performance.now();
      socket.destroy();
      this.sockets.delete(socket);
    };
    socket.on('error', clientClosed);
    socket.on('end', clientClosed);
    socket.on('close', clientClosed);
    socket.on('data', (chunk: Buffer) => {
      if (conn.request) return;
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      conn.request = received.subarray(0, 4 + received.readInt32BE(0));
      conn.answeredAt = performance.now();
      socket.write(this.answer(conn.request), () => this.onAnswered());
    });
  }
}

/** The fields of a ConnectResponse, serialized; `passwdBytes` cuts the password short. */
export function connectResponse(opts: {
  timeOutMs: number;
  sessionId: Buffer;
  passwd: Buffer;
  passwdBytes?: number;
}): Buffer {
  const passwd = opts.passwd.subarray(0, opts.passwdBytes ?? opts.passwd.length);
  const body = Buffer.alloc(4 + 4 + 8 + 4 + passwd.length);
  body.writeInt32BE(0, 0); // protocolVersion
  body.writeInt32BE(opts.timeOutMs, 4);
  opts.sessionId.copy(body, 8);
  body.writeInt32BE(opts.passwd.length, 16); // the full length, even when the bytes are cut
  passwd.copy(body, 20);
  return frame(body);
}

/** A length-prefixed frame around `body`. */
export function frame(body: Buffer): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeInt32BE(body.length, 0);
  return Buffer.concat([prefix, body]);
}
