/**
 * One base error with a stable machine-readable `code`. Callers branch on `code`, never on
 * message text; messages are for humans and name the thing and the value at fault.
 */
export class HafcError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad configuration: the message names the key and the value. CLI exit code 2. */
export class ConfigError extends HafcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ECONFIG', message, options);
  }
}

/**
 * A ZooKeeper operation failed. `zkCode` is the server/client error name (NO_NODE,
 * NODE_EXISTS, BAD_VERSION, CONNECTION_LOSS, SESSION_EXPIRED, ...) or TIMEOUT / SESSION_LOST /
 * CLOSED for conditions our session layer detects itself.
 */
export class ZkError extends HafcError {
  readonly zkCode: string;
  readonly path: string | undefined;
  constructor(zkCode: string, message: string, options?: { cause?: unknown; path?: string }) {
    super(`EZK_${zkCode}`, message, options);
    this.zkCode = zkCode;
    this.path = options?.path;
  }
}

/** A record read from ZooKeeper (or any outside source) is malformed, foreign or too new. */
export class RecordError extends HafcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERECORD', message, options);
  }
}

/** A hook or check ran past its timeout: killed, or abandoned when even SIGKILL did not end it. */
export class HookTimeoutError extends HafcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EHOOKTIMEOUT', message, options);
  }
}

/** A hook exited non-zero, was killed by a signal or could not be started. */
export class HookFailedError extends HafcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EHOOKFAILED', message, options);
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
