/**
 * The promise API of our ZooKeeper session layer. `session.ts` implements it on top of
 * node-zookeeper-client (the only module that imports that library); everything else in hafc
 * talks to ZooKeeper through these types.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';

/**
 * connecting -> connected <-> suspended -> lost; any -> closed.
 * - suspended: we may or may not still hold the session; act as if we do not. Entered when the
 *   library reports a disconnect or nothing proved the session to the quorum for 2/3 of the
 *   negotiated timeout.
 * - lost: terminal. The session's proven expiry floor passed (or the server said expired, or
 *   auth failed). Every ephemeral node of ours may be gone.
 * - closed: terminal, by close().
 */
export type SessionState = 'connecting' | 'connected' | 'suspended' | 'lost' | 'closed';

export interface Stat {
  czxid: bigint;
  mzxid: bigint;
  pzxid: bigint;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  /** Session id (16 hex digits) owning an ephemeral node; '0000000000000000' for persistent ones. */
  ephemeralOwner: string;
  dataLength: number;
  numChildren: number;
}

export type CreateMode = 'persistent' | 'ephemeral' | 'persistent_sequential' | 'ephemeral_sequential';

export const Perm = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const;

export interface Acl {
  /** 'world' (id 'anyone'), 'digest' (id 'user:base64(sha1(user:password))'), 'auth', 'ip' */
  scheme: string;
  id: string;
  /** Bitmask of Perm. */
  perms: number;
}

export interface WatchEvent {
  type: 'created' | 'deleted' | 'dataChanged' | 'childrenChanged';
  path: string;
}

export type Watcher = (event: WatchEvent) => void;

export type Op =
  | { op: 'create'; path: string; data: Buffer | null; mode?: CreateMode; acl?: Acl[] }
  | { op: 'setData'; path: string; data: Buffer | null; version: number }
  | { op: 'remove'; path: string; version: number }
  | { op: 'check'; path: string; version: number };

export interface ZkSessionOptions {
  /** "host:port,host:port[/chroot]" */
  connect: string;
  /** Requested session timeout; the server may clamp it (see negotiatedTimeoutMs). */
  sessionTimeoutMs: number;
  /** Every request fails with ZkError TIMEOUT after this long. */
  requestTimeoutMs: number;
  /** How long open() waits for the first connection before rejecting. @default sessionTimeoutMs */
  connectTimeoutMs?: number;
  /**
   * How far the leader's expiry clock for this session may lag behind our requests: ZooKeeper
   * relays a follower's session touches to the leader only in its replies to the leader's pings,
   * every tickTime/2. Use `discoverRelayAllowanceMs()`. @default negotiatedTimeoutMs / 4 (the bound
   * when the servers keep their default minSessionTimeout of 2 x tickTime)
   */
  relayAllowanceMs?: number;
  /**
   * The part of the session a lease cannot use (safety margin + to-standby timeout): the quorum
   * probe runs several times per remaining budget. @default 0
   */
  leaseReserveMs?: number;
  /** Digest credentials, "user:password", added to the session (and re-sent on reconnect). */
  digestAuth?: string[];
  logger?: Logger;
  clock?: Clock;
  /** Opening only: abort = give up the attempt at once (ZkError ABORTED). */
  signal?: AbortSignal;
  /**
   * Re-attach to this session (an agent restarted within the session timeout). If the server
   * has expired it, opening fails with SESSION_EXPIRED and the caller opens a fresh one.
   */
  resume?: { sessionId: string; password: Buffer };
}

export interface ZkSession {
  /** Opened by re-attaching to the session named in options.resume (not a new session). */
  readonly resumed: boolean;
  /** Unique per session object in this process; callbacks from an older generation are dropped. */
  readonly generation: number;
  readonly state: SessionState;
  /** 16 hex digits. */
  readonly sessionId: string;
  /**
   * The session's 16-byte password (a copy). Lets a test attach a second client to this session
   * and close it, the standard way to force a server-side expiry. Treat it as a secret.
   */
  readonly sessionPassword: Buffer;
  readonly negotiatedTimeoutMs: number;
  /**
   * Clock time at which the most recent request that was answered by a server was SENT. Proves
   * the connection only: a follower cut off from its leader still answers reads.
   */
  readonly lastReplySentAt: number;
  /**
   * Clock time before which the server cannot have expired this session, proven through the
   * quorum leader (a handshake, or a committed write plus the relay argument; see session.ts).
   */
  readonly expiryNotBefore: number;
  /** The relay allowance in use (see ZkSessionOptions.relayAllowanceMs). */
  readonly relayAllowanceMs: number;

  on(event: 'state', listener: (next: SessionState, prev: SessionState) => void): this;
  off(event: 'state', listener: (next: SessionState, prev: SessionState) => void): this;

  create(path: string, data: Buffer | null, opts?: { mode?: CreateMode; acl?: Acl[] }): Promise<string>;
  getData(path: string, watcher?: Watcher): Promise<{ data: Buffer | null; stat: Stat }>;
  /** null when the node does not exist (the watcher then fires on creation). */
  exists(path: string, watcher?: Watcher): Promise<Stat | null>;
  getChildren(path: string, watcher?: Watcher): Promise<string[]>;
  /** version -1 = any version (explicitly; 0 means version 0). */
  setData(path: string, data: Buffer | null, version: number): Promise<Stat>;
  remove(path: string, version: number): Promise<void>;
  multi(ops: Op[]): Promise<void>;
  getACL(path: string): Promise<{ acl: Acl[]; stat: Stat }>;
  /** Creates missing parents (persistent, with acl); NODE_EXISTS is not an error. */
  mkdirp(path: string, acl?: Acl[]): Promise<void>;
  /** Idempotent. Ends the session on the server at once (ephemerals vanish now). */
  close(): Promise<void>;
}
