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
 */
import { HafcError } from '../errors.js';

export const EHEALTH_UNHEALTHY = 'EHEALTH_UNHEALTHY';
export const EHEALTH_TIMEOUT = 'EHEALTH_TIMEOUT';

/** The service answered, and the answer says it is not healthy. */
export class HealthUnhealthyError extends HafcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(EHEALTH_UNHEALTHY, message, options);
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
