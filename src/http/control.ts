/**
 * The mutating calls of the HTTP listener (POST /switchover, /pause, /resume), as an interface:
 * the listener checks the caller and the request; what a call does (write the cluster's
 * `control` znode) is src/ops/actions.ts, wired in the composition root.
 */

export interface SwitchoverRequest {
  /** The node that should become active; absent = any eligible standby. */
  to?: string;
  reason?: string;
}

export interface PauseRequest {
  reason?: string;
}

/** What a call answers: the HTTP status and one line for the caller. */
export interface ControlResult {
  status: number;
  message: string;
}

/** Who asked: recorded with the action (e.g. a pause's `by`). */
export interface ControlCaller {
  /** The client's address and port, e.g. "10.0.0.5:41234" ("[::1]:41234" for IPv6). */
  remote: string;
}

export interface ControlActions {
  switchover(req: SwitchoverRequest, caller: ControlCaller): Promise<ControlResult>;
  pause(req: PauseRequest, caller: ControlCaller): Promise<ControlResult>;
  resume(req: PauseRequest, caller: ControlCaller): Promise<ControlResult>;
}
