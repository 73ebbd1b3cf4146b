/**
 * What the election keeps in the coordination service, as values. The JSON encoding and the
 * checks of untrusted data live in zk/records.ts; the elector and its store seam speak only these
 * types. Minor additions are new OPTIONAL fields (older agents ignore them); anything an older
 * agent would misread needs a FORMAT_VERSION bump.
 */

/** Major format version we write. */
export const FORMAT_VERSION = 1;

export interface NodeIdentity {
  id: string;
  host: string;
  port: number;
}

/** The ephemeral lock: who holds it (informational; ownership is the znode's ephemeral owner). */
export interface LockRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'lock';
  cluster: string;
  priority: number;
  pid: number;
  agentVersion: string;
  acquiredAt: string;
  /** The holder's session id (16 hex digits), for status and logs. */
  session?: string;
}

/**
 * The last activation (persistent): the node the next active must fence. A clean demotion does
 * not delete it but marks it `demoted`, so that a MISSING breadcrumb always means "someone removed
 * it" (an operator, a script, a bug) and never "the last active stood down".
 */
export interface BreadcrumbRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'breadcrumb';
  cluster: string;
  /** Decimal string of the u64 epoch of the activation that wrote it. */
  epoch: string;
  writtenAt: string;
  /** The writer's session id: a breadcrumb is "ours" only if it names one of our sessions. */
  session?: string;
  /** The port of the writer's service control API, when not `port` (graceful fencing). */
  controlPort?: number;
  /** Set by the writer after its service was demoted cleanly: nothing to fence. */
  demoted?: boolean;
  demotedAt?: string;
}

/** An agent's ephemeral presence record. */
export interface MemberRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'member';
  cluster: string;
  priority: number;
  noFailover: boolean;
  health: string;
  role: string;
  epoch: string;
  agentVersion: string;
  control: string;
  updatedAt: string;
  pid?: number;
  session?: string;
  /**
   * Its last activation failed (fencing or to-active) and it has not succeeded since: peers do
   * not hold a free lock back for it however high its priority.
   */
  activationFailed?: boolean;
}

export type AnyRecord = LockRecord | BreadcrumbRecord | MemberRecord;
