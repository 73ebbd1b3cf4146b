/**
 * Health-check outcomes as errors with stable codes. The monitor branches on `code` only, so any
 * check (built-in, agent, or a test fake) can say which kind of failure it saw.
 *
 * Why two kinds: a service that answers "I am unhealthy" (a 500, a non-zero exit, a refused
 * connection: the host is up and says nothing serves there) is in a known state, while one that
 * does not answer in time may be hung and come back at any moment. Hadoop's HealthMonitor keeps
 * the same split (SERVICE_UNHEALTHY vs SERVICE_NOT_RESPONDING); operators read it in the
 * logs and the member record (and later in status and metrics, not built yet) to tell a crashed
 * service from a stuck one.
 *
 * Within "unhealthy", some failures are *definite*: proof that nothing serves any more (the
 * connection was refused or reset, the program is not there, the watched process exited), not an
 * answer a flapping service may change at the next probe. The check that saw the failure marks
 * it (`definite` on HealthUnhealthyError, set with definiteCause() below), and the monitor reads
 * only that field: it re-probes sooner after a definite failure (health.fastIntervalMs, HAProxy's
 * `fastinter`), and counts an exited process as `fall` failures at once. A timeout and a bad
 * answer (a 500, a non-zero exit) are never definite: a hung or flapping service must not fail
 * over sooner than it does without the fast path.
 */
import { HafcError } from '../errors.js';

export const EHEALTH_UNHEALTHY = 'EHEALTH_UNHEALTHY';
export const EHEALTH_TIMEOUT = 'EHEALTH_TIMEOUT';

/**
 * Why a failure is definite:
 * - refused: the connection was refused (ECONNREFUSED): nothing listens on the port;
 * - reset: the connection was reset or broken mid-request (ECONNRESET, EPIPE): the listener died;
 * - missing: a command check's program is not there (spawn ENOENT, or the shell's exit 127);
 * - exited: the process health.pidFile names is gone (proof enough to count as `fall` failures).
 */
export type DefiniteCause = 'refused' | 'reset' | 'missing' | 'exited';

const DEFINITE_CAUSES: ReadonlySet<string> = new Set<DefiniteCause>([
  'refused',
  'reset',
  'missing',
  'exited',
]);

/** The service answered, and the answer says it is not healthy (or there was no one to answer). */
export class HealthUnhealthyError extends HafcError {
  /** Set by the check when the failure is proof the service is down (see DefiniteCause). */
  readonly definite: DefiniteCause | undefined;
  constructor(message: string, options?: { cause?: unknown; definite?: DefiniteCause }) {
    super(EHEALTH_UNHEALTHY, message, options);
    this.definite = options?.definite;
  }
}

/** The service did not answer before the deadline (or the check was aborted). */
export class HealthTimeoutError extends HafcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(EHEALTH_TIMEOUT, message, options);
  }
}

export type FailureKind = 'unhealthy' | 'timeout' | 'fatal';

/**
 * Codes that mean "the check can never work as set up", so retrying is pointless and the
 * monitor goes MONITOR_FAILED. Kept deliberately narrow: an unknown error (e.g. a raw
 * TypeError from a check with a bug, or a network error it did not wrap) counts as unhealthy,
 * so that a transient problem can never take a node out of the election until restart.
 */
const FATAL_CODES = new Set(['ECONFIG']);

/** Codes from elsewhere in hafc that mean "did not answer in time". */
const TIMEOUT_CODES = new Set([EHEALTH_TIMEOUT, 'EHOOKTIMEOUT']);

export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  try {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    // A getter that throws: treat as codeless rather than letting it escape the monitor.
    return undefined;
  }
}

/** Socket error codes that prove the listener is gone (rather than slow or busy). */
const DEFINITE_NET_CODES: Readonly<Record<string, DefiniteCause>> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
};

/** How deep definiteCause follows `cause`: wrappers nest two or three deep; a cycle must end. */
const MAX_CAUSE_DEPTH = 8;

/**
 * For a check to mark the error it throws: the definite cause found in `err` or its `cause`
 * chain, by code only (a `definite` field set further down, or a socket error code), never by
 * message text. Undefined when nothing in the chain is proof.
 */
export function definiteCause(err: unknown): DefiniteCause | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && typeof e === 'object' && e !== null; depth++) {
    const marked = definiteOf(e);
    if (marked !== undefined) return marked;
    const code = errorCode(e);
    if (code !== undefined && Object.hasOwn(DEFINITE_NET_CODES, code)) return DEFINITE_NET_CODES[code];
    try {
      e = (e as { cause?: unknown }).cause;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * A command run's end that says its program is not there (spawn ENOENT, or sh's 127), unless we
 * cut the run short ourselves: then its exit status says nothing about the program.
 */
export function commandDefiniteCause(r: {
  spawnErrorCode?: string;
  exitCode: number | null;
  timedOut: boolean;
  aborted: boolean;
}): DefiniteCause | undefined {
  if (r.spawnErrorCode === 'ENOENT') return 'missing';
  if (r.timedOut || r.aborted) return undefined;
  return r.exitCode === COMMAND_NOT_FOUND ? 'missing' : undefined;
}

/** POSIX sh's exit status for "command not found". */
const COMMAND_NOT_FOUND = 127;

/** The monitor's reading: the `definite` field a check set on its error, nothing else. */
export function definiteOf(err: unknown): DefiniteCause | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  try {
    const d = (err as { definite?: unknown }).definite;
    return typeof d === 'string' && DEFINITE_CAUSES.has(d) ? (d as DefiniteCause) : undefined;
  } catch {
    return undefined;
  }
}

export function classifyFailure(err: unknown): FailureKind {
  const code = errorCode(err);
  if (code !== undefined && FATAL_CODES.has(code)) return 'fatal';
  if (code !== undefined && TIMEOUT_CODES.has(code)) return 'timeout';
  return 'unhealthy';
}

/** A printable message for anything a check may throw, including non-Error values. */
export function describeThrown(err: unknown): string {
  try {
    if (err instanceof Error) return err.message || err.name;
    if (typeof err === 'string') return err;
    if (err === undefined) return 'undefined (a check threw or rejected with no value)';
    const json = JSON.stringify(err);
    return json === undefined ? String(err) : json;
  } catch {
    return Object.prototype.toString.call(err);
  }
}
