/**
 * A protocol-faithful fake of a NameNode's HAServiceProtocol endpoint on a real TCP socket, for
 * the faults a real daemon will not produce on demand: hangs, slow answers, garbage frames,
 * FATAL replies, a connection closed mid-call, a demand for SASL, an unhealthy or not-ready
 * state. It parses what the client sends as a Hadoop server does (preamble, connection context,
 * delimited headers) and records it, so tests can also assert what reached the server.
 *
 * Its answers follow the real NameNode's (checked in test/integration/hadoop-ipc.test.ts): the
 * same exception classes and messages for the cases both cover.
 */
import net from 'node:net';
import {
  asInt32,
  asSint32,
  delimited,
  expectLen,
  ProtoWriter,
  readFields,
  readVarint,
} from '../../src/hadoop/ipc/protobuf.js';

export type Fault =
  | { kind: 'hang' }
  | { kind: 'delay'; ms: number }
  | { kind: 'garbage'; bytes: Buffer }
  | { kind: 'close' }
  | { kind: 'fatal'; exceptionClassName: string; errorMsg: string }
  /** Answers with a call id that was never sent. */
  | { kind: 'wrong-call-id' };

export interface ReceivedCall {
  callId: number;
  method: string;
  protocol: string;
  protocolVersion: number;
  request: Buffer;
}

export interface ReceivedConnection {
  preamble: Buffer;
  user?: string;
  protocol?: string;
  calls: ReceivedCall[];
  pings: number;
}

const HA_STATES = { initializing: 0, active: 1, standby: 2 } as const;

export class FakeNameNode {
  state: keyof typeof HA_STATES = 'standby';
  readyToBecomeActive = true;
  notReadyReason: string | undefined;
  /** When set, monitorHealth answers HealthCheckFailedException with this message. */
  unhealthy: string | undefined;
  /** dfs.ha.automatic-failover.enabled: only REQUEST_BY_ZKFC (2) or forced (1) transitions. */
  automaticFailover = true;
  /** Refuse SIMPLE authentication as a Kerberos-secured server does. */
  requireSasl = false;
  /** Per-method fault, applied to every call of that method until cleared. */
  readonly faults = new Map<string, Fault>();
  readonly connections: ReceivedConnection[] = [];
  readonly transitions: { method: string; reqSource: number }[] = [];

  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {
    server.on('connection', (s) => this.onConnection(s));
    server.on('error', () => {});
  }

  static async start(): Promise<FakeNameNode> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new FakeNameNode(server);
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get calls(): ReceivedCall[] {
    return this.connections.flatMap((c) => c.calls);
  }

  /** Closes every open connection from the server side. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private onConnection(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const conn: ReceivedConnection = { preamble: Buffer.alloc(0), calls: [], pings: 0 };
    this.connections.push(conn);
    let buf = Buffer.alloc(0);
    let preambleDone = false;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!preambleDone) {
        if (buf.length < 7) return;
        conn.preamble = buf.subarray(0, 7);
        buf = buf.subarray(7);
        preambleDone = true;
      }
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const body = buf.subarray(4, 4 + buf.readUInt32BE(0));
        buf = buf.subarray(4 + body.length);
        this.onFrame(socket, conn, body);
      }
    });
  }

  private onFrame(socket: net.Socket, conn: ReceivedConnection, body: Buffer): void {
    const parts = splitDelimited(body);
    const header = parts[0] as Buffer;
    let callId = 0;
    for (const f of readFields(header, 'RpcRequestHeaderProto')) {
      if (f.no === 3 && f.wire === 'varint') callId = asSint32(f.value);
    }
    if (callId === -4) {
      conn.pings++;
      return;
    }
    if (callId === -3) {
      for (const f of readFields(parts[1] as Buffer, 'IpcConnectionContextProto')) {
        if (f.no === 3) conn.protocol = expectLen(f, 'ctx').toString('utf8');
        if (f.no === 2) {
          for (const u of readFields(expectLen(f, 'ctx'), 'UserInformationProto')) {
            if (u.no === 1) conn.user = expectLen(u, 'user').toString('utf8');
          }
        }
      }
      if (this.requireSasl) {
        // As Hadoop's Server does for SIMPLE when it is not enabled: FATAL for call id -1, then close.
        this.reply(socket, -1, 'FATAL', {
          exceptionClassName: 'org.apache.hadoop.security.AccessControlException',
          errorMsg: 'SIMPLE authentication is not enabled.  Available:[TOKEN, KERBEROS]',
          errorDetail: 15,
        });
        socket.end();
      }
      return;
    }
    const call: ReceivedCall = {
      callId,
      method: '',
      protocol: '',
      protocolVersion: 0,
      request: parts[2] ?? Buffer.alloc(0),
    };
    for (const f of readFields(parts[1] as Buffer, 'RequestHeaderProto')) {
      if (f.no === 1) call.method = expectLen(f, 'm').toString('utf8');
      if (f.no === 2) call.protocol = expectLen(f, 'p').toString('utf8');
      if (f.no === 3 && f.wire === 'varint') call.protocolVersion = Number(f.value);
    }
    conn.calls.push(call);
    const fault = this.faults.get(call.method);
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'close') {
      socket.destroy();
      return;
    }
    if (fault?.kind === 'garbage') {
      socket.write(fault.bytes);
      return;
    }
    if (fault?.kind === 'fatal') {
      this.reply(socket, callId, 'FATAL', { ...fault, errorDetail: 10 });
      socket.end();
      return;
    }
    const answer = (): void =>
      this.answer(socket, fault?.kind === 'wrong-call-id' ? callId + 1000 : callId, call);
    if (fault?.kind === 'delay') setTimeout(answer, fault.ms).unref();
    else answer();
  }

  private answer(socket: net.Socket, callId: number, call: ReceivedCall): void {
    const ok = (message: Buffer): void => this.reply(socket, callId, 'SUCCESS', undefined, message);
    const error = (exceptionClassName: string, errorMsg: string, errorDetail = 1): void =>
      this.reply(socket, callId, 'ERROR', { exceptionClassName, errorMsg, errorDetail });
    switch (call.method) {
      case 'getServiceStatus': {
        const w = new ProtoWriter().enum(1, HA_STATES[this.state]).bool(2, this.readyToBecomeActive);
        if (this.notReadyReason !== undefined) w.string(3, this.notReadyReason);
        ok(w.finish());
        return;
      }
      case 'monitorHealth':
        if (this.unhealthy !== undefined)
          error('org.apache.hadoop.ha.HealthCheckFailedException', this.unhealthy);
        else ok(Buffer.alloc(0));
        return;
      case 'transitionToActive':
      case 'transitionToStandby': {
        let reqSource = -1;
        for (const f of readFields(call.request, 'TransitionRequest')) {
          if (f.no === 1) {
            for (const g of readFields(expectLen(f, 'reqInfo'), 'HAStateChangeRequestInfoProto')) {
              if (g.no === 1 && g.wire === 'varint') reqSource = asInt32(g.value);
            }
          }
        }
        if (reqSource < 0) {
          error(
            'com.google.protobuf.InvalidProtocolBufferException',
            'Message missing required fields: reqInfo',
            13,
          );
          return;
        }
        this.transitions.push({ method: call.method, reqSource });
        if (this.automaticFailover && reqSource === 0) {
          error(
            'org.apache.hadoop.security.AccessControlException',
            'Manual HA control for this NameNode is disallowed, because automatic HA is enabled.',
          );
          return;
        }
        this.state = call.method === 'transitionToActive' ? 'active' : 'standby';
        ok(Buffer.alloc(0));
        return;
      }
      default:
        error(
          'org.apache.hadoop.ipc.RpcNoSuchMethodException',
          `Unknown method ${call.method} called on ${call.protocol} protocol.`,
          2,
        );
    }
  }

  private reply(
    socket: net.Socket,
    callId: number,
    status: 'SUCCESS' | 'ERROR' | 'FATAL',
    err?: { exceptionClassName: string; errorMsg: string; errorDetail: number },
    message?: Buffer,
  ): void {
    // Hadoop writes the call id as uint32: negative ids become their 32-bit pattern.
    const w = new ProtoWriter()
      .uint32(1, callId >>> 0)
      .enum(2, { SUCCESS: 0, ERROR: 1, FATAL: 2 }[status])
      .uint32(3, 9);
    if (err) w.string(4, err.exceptionClassName).string(5, err.errorMsg).enum(6, err.errorDetail);
    const parts = [delimited(w.finish())];
    if (message) parts.push(delimited(message));
    const body = Buffer.concat(parts);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length, 0);
    if (!socket.destroyed) socket.write(Buffer.concat([len, body]));
  }
}

function splitDelimited(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < body.length) {
    const len = readVarint(body, pos);
    if (!len) break;
    out.push(body.subarray(len.next, len.next + Number(len.value)));
    pos = len.next + Number(len.value);
  }
  return out;
}
