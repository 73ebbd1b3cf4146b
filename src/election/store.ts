/**
 * The seam between the elector and the coordination service (client-go's resourcelock.Interface
 * is the model): records in, records out, a watch. zk/election-store.ts implements it on a
 * ZooKeeper session; the elector's unit tests use a small in-memory double
 * (test/support/fake-store.ts), and one set of contract tests runs against both so the double
 * cannot drift from the real thing unnoticed (test/integration/store-contract.test.ts).
 *
 * Ownership of the lock is decided by the store from the coordination service's own bookkeeping
 * (ZooKeeper: the lock znode's ephemeralOwner equals our session id), never from the record
 * inside it.
 */
import type { BreadcrumbRecord, ControlRecord, HistoryEntry, LockRecord, MemberRecord } from './records.js';

/** connecting -> connected <-> suspended -> lost; any -> closed. Lost and closed are terminal. */
export type ConnectionState = 'connecting' | 'connected' | 'suspended' | 'lost' | 'closed';

export type LockView =
  | { state: 'free' }
  /** Held by this connection's session; `epoch` is the fencing token of the lock (its czxid). */
  | { state: 'ours'; epoch: bigint; version: number }
  | { state: 'theirs'; owner: string; epoch: bigint }
  /** Something that is not an ephemeral lock sits on the lock path: nobody can acquire it. */
  | { state: 'foreign'; detail: string };

/** Who holds the lock, read from its record; `recordError` when the record is garbage. */
export interface LockHolder {
  owner: string;
  epoch: bigint;
  record?: LockRecord;
  recordError?: string;
}

export type BreadcrumbView =
  | null
  | { record: BreadcrumbRecord; version: number }
  /** Present but unreadable: nobody can tell whom to fence. */
  | { error: string; version: number };

export type MemberPut =
  | { ok: true }
  /** members/<id> belongs to another live session (not one we said we may replace). */
  | { ok: false; owner: string; record?: MemberRecord; recordError?: string };

export interface MemberList {
  members: MemberRecord[];
  /** Unreadable or non-ephemeral member znodes, each message naming the znode (new ones only). */
  problems: string[];
}

/**
 * The control znode: `record` null when it is empty or missing (an older `hafc init`); an
 * unreadable one is reported, never acted on (no pause, no switchover).
 */
export type ControlView =
  { record: ControlRecord | null; version: number | null } | { error: string; version: number };

export interface ElectionStore {
  /** The cluster's znode exists (`hafc init` ran). */
  clusterExists(): Promise<boolean>;
  /** With credentials configured: what is wrong with the cluster's ACL (empty when fine). */
  aclProblems(): Promise<string[]>;
  /** The lock's state; `onChange` fires once on its next creation, change or deletion. */
  viewLock(onChange?: () => void): Promise<LockView>;
  /** The holder's record (null when the lock is free). Never throws on garbage data. */
  lockHolder(): Promise<LockHolder | null>;
  /** Creates the lock with `record`; the view afterwards says whether we won. */
  tryAcquire(record: LockRecord): Promise<LockView>;
  /** Deletes the lock if (and only if) this connection's session owns it. */
  releaseLock(): Promise<void>;
  /** Deletes the lock if it is still owned by session `owner`; true when it did. */
  removeLockOf(owner: string): Promise<boolean>;
  /** `onChange` fires once on the breadcrumb's next creation, change or deletion. */
  readBreadcrumb(onChange?: () => void): Promise<BreadcrumbView>;
  /** Compare-and-set on `expectedVersion` (null = create; fails if it exists). */
  writeBreadcrumb(record: BreadcrumbRecord, expectedVersion: number | null): Promise<void>;
  /**
   * Publishes our member record (ephemeral, owned by this session). An existing members/<id> of
   * another session is replaced only when its owner is in `replaceable` (our own past sessions);
   * otherwise it is left alone and reported.
   */
  putMember(record: MemberRecord, replaceable: ReadonlySet<string>): Promise<MemberPut>;
  /** The live (ephemeral) members, garbage skipped and reported once per znode version. */
  listMembers(): Promise<MemberList>;
  /** `onChange` fires once on the control znode's next change (pause, switchover). */
  readControl(onChange?: () => void): Promise<ControlView>;
  /**
   * Compare-and-set on `expectedVersion` (null: the znode is missing, create it). Resolves false
   * when someone else changed it first (read again and decide again).
   */
  writeControl(record: ControlRecord, expectedVersion: number | null): Promise<boolean>;
  /** Appends to the bounded history (compare-and-set, retried a few times). */
  appendHistory(entry: HistoryEntry): Promise<void>;
}

/** One session with the coordination service, and the store that works through it. */
export interface ElectionConnection {
  /** Unique per connection object in this process: callbacks of older ones are dropped. */
  readonly generation: number;
  /** 16 hex digits. */
  readonly sessionId: string;
  /**
   * This connection re-attached to a session a previous run of this agent left behind (it was
   * restarted within the session timeout): the locks and members that session owns are ours.
   */
  readonly resumed: boolean;
  readonly state: ConnectionState;
  /** The session timeout the server granted (it clamps what we ask for). */
  readonly negotiatedTimeoutMs: number;
  /**
   * How far behind our own requests the server's expiry clock may run (ZooKeeper: a follower
   * relays session touches to the leader only with its next ping, every tickTime/2).
   */
  readonly relayAllowanceMs: number;
  /**
   * Monotonic time before which the server cannot have expired this session, proven by replies
   * that went through the quorum (-Infinity when nothing proves it yet).
   */
  readonly expiryNotBefore: number;
  /** State changes, after they happened, in order. */
  onState(listener: (next: ConnectionState, prev: ConnectionState) => void): void;
  readonly store: ElectionStore;
  /** Idempotent; ends the session on the server at once (our ephemerals vanish now). */
  close(): Promise<void>;
}
