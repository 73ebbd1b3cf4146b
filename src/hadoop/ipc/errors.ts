/**
 * What can go wrong in a Hadoop IPC call, split the way a health monitor must tell it apart: the
 * server answered with an exception (IpcRemoteError: the service is there and said no), versus no
 * usable answer at all (IpcTransportError: refused, reset, timed out, aborted; the service may be
 * dead or hung), versus an answer that is not Hadoop IPC (IpcProtocolError), versus a server that
 * demands authentication we do not speak (IpcAuthError).
 */
import { HafcError } from '../../errors.js';

export type TransportReason = 'connect' | 'timeout' | 'closed' | 'aborted';

export class IpcTransportError extends HafcError {
  readonly reason: TransportReason;
  constructor(reason: TransportReason, message: string, options?: { cause?: unknown }) {
    super('EIPC_TRANSPORT', message, options);
    this.reason = reason;
  }
}

export class IpcProtocolError extends HafcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EIPC_PROTOCOL', message, options);
  }
}

export class IpcAuthError extends HafcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EIPC_AUTH', message, options);
  }
}

/** The server's RpcResponseHeader said ERROR or FATAL; the fields are the server's own. */
export class IpcRemoteError extends HafcError {
  readonly exceptionClassName: string;
  readonly errorMsg: string;
  /** RpcErrorCodeProto name, e.g. ERROR_APPLICATION, ERROR_NO_SUCH_METHOD, FATAL_UNAUTHORIZED. */
  readonly errorDetail: string | undefined;
  /** FATAL: the server closed the connection after this answer. */
  readonly fatal: boolean;
  constructor(
    message: string,
    fields: { exceptionClassName: string; errorMsg: string; errorDetail: string | undefined; fatal: boolean },
  ) {
    super('EIPC_REMOTE', message);
    this.exceptionClassName = fields.exceptionClassName;
    this.errorMsg = fields.errorMsg;
    this.errorDetail = fields.errorDetail;
    this.fatal = fields.fatal;
  }
}
