/**
 * Why an operator action (switchover, pause, resume) did not happen. The CLI maps the kind to
 * its exit code, the HTTP API to a status code; the message is the one line an operator reads.
 */
export type OpsFailure = 'usage' | 'no-eligible-target' | 'failed' | 'timed-out' | 'unreachable';

export class OpsError extends Error {
  constructor(
    readonly kind: OpsFailure,
    message: string,
  ) {
    super(message);
  }
}
