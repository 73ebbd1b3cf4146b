/**
 * The Hadoop RPC v9 envelope messages (RpcHeader.proto, IpcConnectionContext.proto,
 * ProtobufRpcEngine2.proto in Hadoop), written from the published protocol. Field numbers:
 *
 *   RpcRequestHeaderProto: 1 rpcKind (enum), 2 rpcOp (enum), 3 callId (sint32, required),
 *     4 clientId (bytes, required), 5 retryCount (sint32), 7 callerContext { 1 context string }
 *   IpcConnectionContextProto: 2 userInfo { 1 effectiveUser, 2 realUser }, 3 protocol
 *   RequestHeaderProto: 1 methodName, 2 declaringClassProtocolName, 3 clientProtocolVersion
 *     (uint64); all required
 *   RpcResponseHeaderProto: 1 callId (uint32, required), 2 status (enum, required),
 *     3 serverIpcVersionNum, 4 exceptionClassName, 5 errorMsg, 6 errorDetail (enum),
 *     7 clientId, 8 retryCount; later fields (state ids) are skipped
 */
import { IpcProtocolError } from './errors.js';
import {
  asInt32,
  asUint32,
  delimited,
  expectLen,
  expectVarint,
  ProtoWriter,
  readFields,
  readVarint,
} from './protobuf.js';

export const RPC_VERSION = 9;
export const RPC_KIND_PROTOCOL_BUFFER = 2;
export const RPC_OP_FINAL_PACKET = 0;

/** Call ids below 0 are out-of-band messages, never answered as calls. */
export const CONNECTION_CONTEXT_CALL_ID = -3;
export const PING_CALL_ID = -4;
export const AUTHORIZATION_FAILED_CALL_ID = -1;
export const SASL_CALL_ID = -33;
/** retryCount of messages that are not calls (connection context, ping). */
export const INVALID_RETRY_COUNT = -1;

export interface RequestHeaderFields {
  callId: number;
  clientId: Buffer;
  retryCount: number;
  /** Hadoop's caller context (haadmin sends "CLI"); omitted when undefined. */
  callerContext?: string | undefined;
}

export function encodeRpcRequestHeader(h: RequestHeaderFields): Buffer {
  const w = new ProtoWriter()
    .enum(1, RPC_KIND_PROTOCOL_BUFFER)
    .enum(2, RPC_OP_FINAL_PACKET)
    .sint32(3, h.callId)
    .bytes(4, h.clientId)
    .sint32(5, h.retryCount);
  if (h.callerContext !== undefined) {
    w.message(7, new ProtoWriter().string(1, h.callerContext).finish());
  }
  return w.finish();
}

export function encodeConnectionContext(user: string, protocol: string): Buffer {
  const userInfo = new ProtoWriter().string(1, user).finish();
  return new ProtoWriter().message(2, userInfo).string(3, protocol).finish();
}

export function encodeRequestHeader(method: string, protocol: string, protocolVersion: number): Buffer {
  return new ProtoWriter().string(1, method).string(2, protocol).uint32(3, protocolVersion).finish();
}

/** The 7 bytes a client opens every connection with: "hrpc", version, service class, auth. */
export function connectionPreamble(serviceClass = 0): Buffer {
  // auth protocol NONE (0): SIMPLE authentication, no SASL exchange.
  return Buffer.from([0x68, 0x72, 0x70, 0x63, RPC_VERSION, serviceClass, 0]);
}

function frame(parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

export function connectionContextFrame(
  clientId: Buffer,
  user: string,
  protocol: string,
  callerContext?: string,
): Buffer {
  const header = encodeRpcRequestHeader({
    callId: CONNECTION_CONTEXT_CALL_ID,
    clientId,
    retryCount: INVALID_RETRY_COUNT,
    callerContext,
  });
  return frame([delimited(header), delimited(encodeConnectionContext(user, protocol))]);
}

export function callFrame(opts: {
  callId: number;
  clientId: Buffer;
  callerContext?: string | undefined;
  method: string;
  protocol: string;
  protocolVersion: number;
  request: Buffer;
}): Buffer {
  const header = encodeRpcRequestHeader({
    callId: opts.callId,
    clientId: opts.clientId,
    retryCount: 0,
    callerContext: opts.callerContext,
  });
  return frame([
    delimited(header),
    delimited(encodeRequestHeader(opts.method, opts.protocol, opts.protocolVersion)),
    delimited(opts.request),
  ]);
}

export function pingFrame(clientId: Buffer): Buffer {
  const header = encodeRpcRequestHeader({
    callId: PING_CALL_ID,
    clientId,
    retryCount: INVALID_RETRY_COUNT,
  });
  return frame([delimited(header)]);
}

export type RpcStatus = 'SUCCESS' | 'ERROR' | 'FATAL';

const STATUS: Record<number, RpcStatus> = { 0: 'SUCCESS', 1: 'ERROR', 2: 'FATAL' };

const ERROR_DETAIL: Record<number, string> = {
  1: 'ERROR_APPLICATION',
  2: 'ERROR_NO_SUCH_METHOD',
  3: 'ERROR_NO_SUCH_PROTOCOL',
  4: 'ERROR_RPC_SERVER',
  5: 'ERROR_SERIALIZING_RESPONSE',
  6: 'ERROR_RPC_VERSION_MISMATCH',
  10: 'FATAL_UNKNOWN',
  11: 'FATAL_UNSUPPORTED_SERIALIZATION',
  12: 'FATAL_INVALID_RPC_HEADER',
  13: 'FATAL_DESERIALIZING_REQUEST',
  14: 'FATAL_VERSION_MISMATCH',
  15: 'FATAL_UNAUTHORIZED',
};

export interface ResponseHeader {
  /** Signed: the server writes negative ids (-1 auth failed, -33 SASL) as uint32. */
  callId: number;
  status: RpcStatus;
  serverIpcVersionNum?: number;
  exceptionClassName?: string;
  errorMsg?: string;
  errorDetail?: string;
}

export function decodeResponseHeader(buf: Buffer): ResponseHeader {
  const what = 'RpcResponseHeaderProto';
  let callId: number | undefined;
  let status: RpcStatus | undefined;
  const h: Partial<ResponseHeader> = {};
  for (const f of readFields(buf, what)) {
    switch (f.no) {
      case 1:
        callId = asInt32(expectVarint(f, what));
        break;
      case 2: {
        const v = asInt32(expectVarint(f, what));
        status = STATUS[v];
        if (!status) throw new IpcProtocolError(`${what}: unknown status ${v}`);
        break;
      }
      case 3:
        h.serverIpcVersionNum = asUint32(expectVarint(f, what));
        break;
      case 4:
        h.exceptionClassName = expectLen(f, what).toString('utf8');
        break;
      case 5:
        h.errorMsg = expectLen(f, what).toString('utf8');
        break;
      case 6: {
        const v = asInt32(expectVarint(f, what));
        h.errorDetail = ERROR_DETAIL[v] ?? `UNKNOWN_${v}`;
        break;
      }
      default:
        // clientId, retryCount, state ids: nothing we act on.
        break;
    }
  }
  if (callId === undefined) throw new IpcProtocolError(`${what}: required field callId (1) missing`);
  if (status === undefined) throw new IpcProtocolError(`${what}: required field status (2) missing`);
  return { ...h, callId, status };
}

/** Splits a response frame's body into the delimited header and the (delimited) message. */
export function splitResponse(body: Buffer): { header: ResponseHeader; message: Buffer | undefined } {
  const hl = readVarint(body, 0);
  if (!hl) throw new IpcProtocolError('response frame: truncated header length');
  const hEnd = hl.next + Number(hl.value);
  if (hl.value > BigInt(body.length) || hEnd > body.length) {
    throw new IpcProtocolError(
      `response frame: header claims ${hl.value} bytes but the frame has ${body.length - hl.next}`,
    );
  }
  const header = decodeResponseHeader(body.subarray(hl.next, hEnd));
  if (hEnd === body.length) return { header, message: undefined };
  const ml = readVarint(body, hEnd);
  if (!ml) throw new IpcProtocolError('response frame: truncated message length');
  const mEnd = ml.next + Number(ml.value);
  if (mEnd !== body.length) {
    throw new IpcProtocolError(
      `response frame: message claims ${ml.value} bytes but ${body.length - ml.next} follow the header`,
    );
  }
  return { header, message: body.subarray(ml.next, mEnd) };
}
