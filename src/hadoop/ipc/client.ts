/**
 * A Hadoop IPC (RPC v9, protobuf engine) client for one server address and one protocol, with
 * SIMPLE authentication. One TCP connection at a time, opened on the first call and again on the
 * next call after it dropped; calls are multiplexed on it by call id.
 *
 * Every wait has a deadline: connecting is bounded by connectTimeoutMs and by the call's own
 * deadline, each call by its timeout (callTimeoutMs unless the call names one) and by its signal.
 * A call that times out also ends its connection: the server is hung or the link is, and the
 * next call should find out afresh instead of queueing behind it. An aborted call only forgets
 * its call id (its late answer is dropped); the connection stays.
 *
 * While the connection is open and nothing was sent for pingIntervalMs, a ping goes out (call id
 * -4, as Hadoop's own client sends): the server counts it as contact and does not close the
 * connection as idle.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { errorMessage } from '../../errors.js';
import { IpcAuthError, IpcProtocolError, IpcRemoteError, IpcTransportError } from './errors.js';
import {
  AUTHORIZATION_FAILED_CALL_ID,
  callFrame,
  connectionContextFrame,
  connectionPreamble,
  pingFrame,
  SASL_CALL_ID,
  splitResponse,
  type ResponseHeader,
} from './headers.js';

export interface IpcClientOptions {
  host: string;
  port: number;
  /** The protocol's Java name, e.g. org.apache.hadoop.ha.HAServiceProtocol. */
  protocol: string;
  /** The protocol version sent in every RequestHeaderProto. @default 1 */
  protocolVersion?: number;
  /** The user the server will see (SIMPLE authentication: it is taken on trust). */
  user: string;
  /** @default 5000 */
  connectTimeoutMs?: number;
  /** Deadline of a call that names none, from the call until its answer. @default 10000 */
  callTimeoutMs?: number;
  /** 0 turns pings off. @default 10000 */
  pingIntervalMs?: number;
  /** The largest answer frame accepted; a larger length prefix is taken as garbage. @default 4 MiB */
  maxResponseBytes?: number;
  /** 16 bytes identifying this client to the server's retry cache. @default random */
  clientId?: Buffer;
  /** Hadoop caller context sent with every call. @default none */
  callerContext?: string;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Pending {
  method: string;
  resolve: (message: Buffer) => void;
  reject: (err: Error) => void;
}

const MAX_CALL_ID = 0x7fffffff;

export class IpcClient {
  readonly address: string;
  private readonly opts: Required<Omit<IpcClientOptions, 'callerContext'>> & { callerContext?: string };
  private conn: Connection | undefined;
  private nextCallId = 0;
  private closed = false;

  constructor(opts: IpcClientOptions) {
    if (!opts.host) throw new RangeError('IpcClient: host must not be empty');
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
      throw new RangeError(`IpcClient: port must be 1-65535, got ${String(opts.port)}`);
    }
    if (!opts.user)
      throw new RangeError('IpcClient: user must not be empty (SIMPLE authentication sends it)');
    const positive = (name: string, v: number | undefined, zeroOk = false): void => {
      if (v === undefined) return;
      if (!Number.isInteger(v) || v < 0 || (!zeroOk && v === 0)) {
        throw new RangeError(`IpcClient: ${name} must be a positive integer, got ${String(v)}`);
      }
    };
    positive('connectTimeoutMs', opts.connectTimeoutMs);
    positive('callTimeoutMs', opts.callTimeoutMs);
    positive('pingIntervalMs', opts.pingIntervalMs, true);
    positive('maxResponseBytes', opts.maxResponseBytes);
    if (opts.clientId !== undefined && opts.clientId.length !== 16) {
      throw new RangeError(`IpcClient: clientId must be 16 bytes, got ${opts.clientId.length}`);
    }
    this.opts = {
      protocolVersion: 1,
      connectTimeoutMs: 5000,
      callTimeoutMs: 10_000,
      pingIntervalMs: 10_000,
      maxResponseBytes: 4 * 1024 * 1024,
      clientId: crypto.randomBytes(16),
      ...opts,
    };
    this.address = `${opts.host}:${opts.port}`;
  }

  /**
   * Calls `method` with an encoded request message; resolves with the encoded response message.
   * Rejects with IpcRemoteError (the server's exception), IpcTransportError (no answer),
   * IpcProtocolError (an answer that is not Hadoop IPC) or IpcAuthError.
   */
  async call(method: string, request: Buffer, callOpts: CallOptions = {}): Promise<Buffer> {
    if (this.closed) throw new IpcTransportError('closed', `IPC client for ${this.address} is closed`);
    const timeoutMs = callOpts.timeoutMs ?? this.opts.callTimeoutMs;
    const signal = callOpts.signal;
    const what = `${method} on ${this.address}`;
    if (signal?.aborted) throw new IpcTransportError('aborted', `${what}: aborted before it was sent`);
    const started = Date.now();

    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      let conn: Connection | undefined;
      let callId: number | undefined;
      const finish = (err: Error | undefined, value?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (conn && callId !== undefined) conn.forget(callId);
        if (err) reject(err);
        else resolve(value as Buffer);
      };
      const timer = setTimeout(() => {
        const phase = callId === undefined ? 'connecting' : 'waiting for the answer';
        const err = new IpcTransportError(
          'timeout',
          `${what}: no answer within ${timeoutMs} ms (timed out ${phase})`,
        );
        // A hung server or link: the next call must not queue behind this connection.
        conn?.destroy(err);
        finish(err);
      }, timeoutMs);
      const onAbort = (): void => {
        finish(new IpcTransportError('aborted', `${what}: aborted after ${Date.now() - started} ms`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });

      this.connection()
        .then((c) => {
          conn = c;
          if (settled) return;
          return c.ready.then(() => {
            if (settled) return;
            callId = this.allocateCallId();
            c.send(
              callId,
              { method, resolve: (m) => finish(undefined, m), reject: (e) => finish(e) },
              callFrame({
                callId,
                clientId: this.opts.clientId,
                callerContext: this.opts.callerContext,
                method,
                protocol: this.opts.protocol,
                protocolVersion: this.opts.protocolVersion,
                request,
              }),
            );
          });
        })
        .catch((err: unknown) => finish(err instanceof Error ? err : new Error(errorMessage(err))));
    });
  }

  /** Ends the connection; pending calls fail with reason 'closed'. Idempotent. */
  close(): void {
    this.closed = true;
    this.conn?.destroy(new IpcTransportError('closed', `IPC client for ${this.address} was closed`));
    this.conn = undefined;
  }

  /** Whether a connection is open or being opened (for tests and status). */
  get connected(): boolean {
    return this.conn !== undefined && !this.conn.dead;
  }

  private allocateCallId(): number {
    const id = this.nextCallId;
    this.nextCallId = id >= MAX_CALL_ID ? 0 : id + 1;
    return id;
  }

  private async connection(): Promise<Connection> {
    if (this.conn && !this.conn.dead) return this.conn;
    const conn = new Connection(this.opts, this.address, () => {
      if (this.conn === conn) this.conn = undefined;
    });
    this.conn = conn;
    return conn;
  }
}

/** One TCP connection: preamble and connection context first, then framed calls and answers. */
class Connection {
  dead = false;
  /** Resolves once TCP is up and the preamble is written; rejects on connect failure. */
  readonly ready: Promise<void>;
  private readonly socket: net.Socket;
  private readonly pending = new Map<number, Pending>();
  /** Call ids given up (aborted) whose late answers are dropped silently. */
  private readonly forgotten = new Set<number>();
  private buffered: Buffer = Buffer.alloc(0);
  private lastSend = Date.now();
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: Required<Omit<IpcClientOptions, 'callerContext'>> & { callerContext?: string },
    private readonly address: string,
    private readonly onDead: () => void,
  ) {
    this.socket = net.connect({ host: opts.host, port: opts.port });
    this.socket.setNoDelay(true);
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new IpcTransportError(
          'connect',
          `connecting to ${address}: no TCP connection within ${opts.connectTimeoutMs} ms`,
        );
        reject(err);
        this.destroy(err);
      }, opts.connectTimeoutMs);
      this.socket.once('connect', () => {
        clearTimeout(timer);
        this.write(
          Buffer.concat([
            connectionPreamble(),
            connectionContextFrame(opts.clientId, opts.user, opts.protocol, opts.callerContext),
          ]),
        );
        this.startPings();
        resolve();
      });
      this.socket.once('error', (err) => {
        clearTimeout(timer);
        const e = new IpcTransportError('connect', `connecting to ${address}: ${err.message}`, {
          cause: err,
        });
        reject(e);
      });
      this.socket.once('close', () => clearTimeout(timer));
    });
    // A rejected `ready` is reported through the call that awaits it; never unhandled.
    this.ready.catch(() => {});
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => {
      this.destroy(
        new IpcTransportError('closed', `connection to ${address} failed: ${err.message}`, { cause: err }),
      );
    });
    this.socket.on('close', () => {
      this.destroy(new IpcTransportError('closed', `connection to ${address} was closed by the server`));
    });
  }

  send(callId: number, p: Pending, frame: Buffer): void {
    if (this.dead) {
      p.reject(
        new IpcTransportError('closed', `connection to ${this.address} closed before ${p.method} was sent`),
      );
      return;
    }
    this.pending.set(callId, p);
    this.write(frame);
  }

  forget(callId: number): void {
    if (this.pending.delete(callId)) this.forgotten.add(callId);
  }

  destroy(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    clearInterval(this.pingTimer);
    this.socket.destroy();
    this.onDead();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      p.reject(
        err instanceof IpcTransportError && err.reason === 'closed'
          ? new IpcTransportError('closed', `${p.method}: ${err.message} while waiting for the answer`, {
              cause: err,
            })
          : err,
      );
    }
  }

  private write(buf: Buffer): void {
    this.lastSend = Date.now();
    this.socket.write(buf);
  }

  private startPings(): void {
    const interval = this.opts.pingIntervalMs;
    if (interval === 0) return;
    // Checked at a quarter of the interval so an idle gap never exceeds it by much.
    this.pingTimer = setInterval(
      () => {
        if (!this.dead && Date.now() - this.lastSend >= interval) this.write(pingFrame(this.opts.clientId));
      },
      Math.max(1, Math.floor(interval / 4)),
    );
    this.pingTimer.unref();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    try {
      while (!this.dead && this.buffered.length >= 4) {
        const len = this.buffered.readUInt32BE(0);
        if (len > this.opts.maxResponseBytes) {
          throw new IpcProtocolError(
            `${this.address} sent a frame of ${len} bytes (limit ${this.opts.maxResponseBytes}); ` +
              `first bytes ${this.buffered.subarray(0, 16).toString('hex')}: not a Hadoop IPC server?`,
          );
        }
        if (this.buffered.length < 4 + len) return;
        const body = this.buffered.subarray(4, 4 + len);
        this.buffered = this.buffered.subarray(4 + len);
        this.onFrame(body);
      }
    } catch (err) {
      this.destroy(
        err instanceof IpcProtocolError
          ? err
          : new IpcProtocolError(`${this.address}: ${errorMessage(err)}`, { cause: err }),
      );
    }
  }

  private onFrame(body: Buffer): void {
    let parsed: ReturnType<typeof splitResponse>;
    try {
      parsed = splitResponse(body);
    } catch (err) {
      throw new IpcProtocolError(
        `${this.address} sent an answer that is not Hadoop IPC: ${errorMessage(err)} ` +
          `(frame of ${body.length} bytes starting ${body.subarray(0, 16).toString('hex')})`,
        { cause: err },
      );
    }
    const { header, message } = parsed;
    if (header.callId === SASL_CALL_ID) {
      throw new IpcAuthError(
        `${this.address} started a SASL exchange: the server requires Kerberos or token ` +
          `authentication; hafc's Hadoop IPC client speaks SIMPLE only (hadoop.security.authentication=simple). ` +
          'A secured cluster would need SASL GSSAPI with a Kerberos principal and keytab, which is not implemented',
      );
    }
    if (header.status === 'FATAL') {
      this.onFatal(header);
      return;
    }
    const p = this.pending.get(header.callId);
    if (!p) {
      if (this.forgotten.delete(header.callId)) return;
      throw new IpcProtocolError(`${this.address} answered call id ${header.callId}, which was never sent`);
    }
    this.pending.delete(header.callId);
    if (header.status === 'ERROR') {
      p.reject(remoteError(p.method, this.address, header, false));
      return;
    }
    if (message === undefined) {
      p.reject(
        new IpcProtocolError(`${p.method} on ${this.address}: SUCCESS answer without a response message`),
      );
      return;
    }
    // A copy: the frame's buffer is reused for the next reads.
    p.resolve(Buffer.from(message));
  }

  /** FATAL: the server closes the connection; the call it names (or every call) fails with it. */
  private onFatal(header: ResponseHeader): void {
    const cls = header.exceptionClassName ?? '';
    const msg = header.errorMsg ?? '';
    if (
      header.errorDetail === 'FATAL_UNAUTHORIZED' &&
      cls.endsWith('AccessControlException') &&
      /SIMPLE authentication is not enabled/i.test(msg)
    ) {
      this.destroy(
        new IpcAuthError(
          `${this.address} refused SIMPLE authentication (${msg.split('\n')[0]}): the cluster is secured; ` +
            "hafc's Hadoop IPC client speaks SIMPLE only. A secured cluster would need SASL (Kerberos " +
            'GSSAPI with a principal and keytab, or a delegation token), which is not implemented',
        ),
      );
      return;
    }
    const p = header.callId === AUTHORIZATION_FAILED_CALL_ID ? undefined : this.pending.get(header.callId);
    const err = remoteError(p?.method ?? 'connection', this.address, header, true);
    if (p) {
      this.pending.delete(header.callId);
      p.reject(err);
    }
    this.destroy(err);
  }
}

function remoteError(method: string, address: string, h: ResponseHeader, fatal: boolean): IpcRemoteError {
  const cls = h.exceptionClassName ?? '(no exception class)';
  const msg = h.errorMsg ?? '';
  // Hadoop puts the whole server-side stack trace in errorMsg for some errors; the first line is the message.
  const first = msg.split('\n')[0] ?? '';
  return new IpcRemoteError(
    `${method} on ${address} failed${fatal ? ' (FATAL, connection closed)' : ''}: ${cls}: ${first}` +
      (h.errorDetail ? ` [${h.errorDetail}]` : ''),
    { exceptionClassName: cls, errorMsg: msg, errorDetail: h.errorDetail, fatal },
  );
}
