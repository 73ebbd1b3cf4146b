/**
 * An in-memory ZooKeeper for unit tests of code that talks to `ZkSession` (src/zk/types.ts): a
 * znode tree with versions, zxids, ephemeral owners and one-shot watches, and sessions that run
 * on a (fake) Clock. It is a test double, not a ZooKeeper: no ACL checks, no quotas, one server.
 *
 * What it models faithfully, because the elector's safety depends on it:
 * - ownership: an ephemeral's `ephemeralOwner` is the creating session's id; it vanishes when the
 *   server ends that session (`server.expire`, or `close()` while the server is reachable);
 * - zxids: one increasing counter (bigint) for czxid/mzxid/pzxid, so a newer lock has a larger czxid;
 * - watches: one-shot, per session; exists = created/deleted/dataChanged, getData =
 *   deleted/dataChanged, getChildren = childrenChanged/deleted. Events for a suspended session are
 *   held back until it resumes; a lost/closed session never sees another event;
 * - errors: ZkError with zkCode NO_NODE, NODE_EXISTS, BAD_VERSION, NOT_EMPTY, ... like the real
 *   layer; a suspended session's requests fail with CONNECTION_LOSS, a lost one's with SESSION_LOST;
 * - `lastReplySentAt`: the clock time at which the latest request the server answered (an error
 *   reply such as NO_NODE counts, as in session.ts) was issued. Requests answer in a microtask.
 * - the session layer's own account (session.ts): a probe every T/3 while connected; suspended
 *   after 2/3 T and lost after T without a reply (both can be turned off per session).
 *
 * Test controls: `session.suspend()` / `session.resume()` (a network partition of that client),
 * `session.noticeLoss()` (the client gives the session up, e.g. its local deadline; the server keeps
 * it unless it can still be reached), `server.expire(session, { notice })` (the server ends the
 * session: its ephemerals vanish and watches of other sessions fire; with `notice: false` the
 * client does not learn it until `noticeLoss()` or its own deadline), `server.hold(match)` (delay
 * requests until released) and `server.reachable = false` (open() fails). `server.history` lists
 * every change of the tree in order (who, when, and whether the server did it on a session's end).
 * A retry loop that never waits would spin in microtasks forever: past `stormLimit` requests at one
 * instant the server parks further requests and sets `server.storm`, which a test can report.
 */
import type { Clock } from '../../src/clock.js';
import { ZkError } from '../../src/errors.js';
import type {
  Acl,
  CreateMode,
  Op,
  SessionState,
  Stat,
  WatchEvent,
  Watcher,
  ZkSession,
} from '../../src/zk/types.js';

/** Numeric codes of the Java client, only for messages that look like the real layer's. */
const CODES: Record<string, number> = {
  CONNECTION_LOSS: -4,
  BAD_ARGUMENTS: -8,
  NO_NODE: -101,
  BAD_VERSION: -103,
  NO_CHILDREN_FOR_EPHEMERALS: -108,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
};

const PERSISTENT = '0000000000000000';
const OPEN_ACL: Acl[] = [{ scheme: 'world', id: 'anyone', perms: 31 }];

let lastGeneration = 0;
let lastSessionNumber = 0;

function zkError(code: string, op: string, path: string): ZkError {
  return new ZkError(code, `ZooKeeper ${op} ${path} failed: ${code} (${CODES[code] ?? 0})`, { path });
}

interface ZNode {
  data: Buffer | null;
  czxid: bigint;
  mzxid: bigint;
  pzxid: bigint;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: string;
  acl: Acl[];
  children: Set<string>;
}

type Kind = 'data' | 'child';

/** A pending request a hold keeps back. */
interface HeldRequest {
  session: FakeZkSession;
  op: string;
  path: string;
  go: () => void;
}

export interface HoldMatch {
  (req: { session: FakeZkSession; op: string; path: string }): boolean;
}

export class Hold {
  /** Every request this hold caught, released or not. */
  readonly held: { sessionId: string; op: string; path: string }[] = [];
  private readonly waiting: HeldRequest[] = [];
  private done = false;

  constructor(
    readonly match: HoldMatch,
    private readonly onRelease: (h: Hold) => void,
  ) {}

  /** Requests caught and not yet released. */
  get pending(): number {
    return this.waiting.length;
  }

  get released(): boolean {
    return this.done;
  }

  /** @internal */
  add(req: HeldRequest): void {
    this.waiting.push(req);
    this.held.push({ sessionId: req.session.sessionId, op: req.op, path: req.path });
  }

  /** Lets every held request go on (in order) and stops holding new ones. */
  release(): void {
    if (this.done) return;
    this.done = true;
    this.onRelease(this);
    for (const r of this.waiting.splice(0)) r.go();
  }
}

export interface HistoryEntry {
  zxid: bigint;
  op: 'create' | 'setData' | 'remove';
  path: string;
  /**
   * The session that made the change, or whose end made the server delete its ephemeral (see
   * `cause`); '' for a test's direct edit.
   */
  sessionId: string;
  /** Clock time of the change. */
  at: number;
  /** Set when the server deleted an ephemeral because its session ended (no client request). */
  cause?: 'expired' | 'closed';
}

export interface FakeSessionOptions {
  clock?: Clock;
  /** @default 4000 */
  negotiatedTimeoutMs?: number;
  /** Liveness probe period while connected; 0 = no probe. @default floor(negotiatedTimeoutMs / 3) */
  probeIntervalMs?: number;
  /** Suspended after 2/3 T and lost after T without a reply, as session.ts does. @default true */
  deadlines?: boolean;
}

export class FakeZkServer {
  /** When false, open() rejects with ZkError CONNECT_TIMEOUT. */
  reachable = true;
  /**
   * Requests issued at one instant of the clock before the server calls it a storm. Code under
   * test that retries without waiting (a bug) would otherwise spin in microtasks forever and
   * starve the test runner; past the limit requests are parked unanswered and `storm` says why.
   */
  stormLimit = 5000;
  /** Set once a request storm was detected (see stormLimit). */
  storm: string | null = null;
  private burstAt = -1;
  private burstCount = 0;
  /** Every change of the tree, in order. */
  readonly history: HistoryEntry[] = [];

  private zxid = 0x1_0000_0000n;
  private readonly nodes = new Map<string, ZNode>();
  private readonly watches: Record<Kind, Map<string, Map<FakeZkSession, Set<Watcher>>>> = {
    data: new Map(),
    child: new Map(),
  };
  private readonly alive = new Set<FakeZkSession>();
  private readonly holds = new Set<Hold>();
  /** Inside a multi: watch triggers wait here until every op succeeded. */
  private deferred: Array<() => void> | null = null;

  constructor(private readonly clock: Clock) {
    this.nodes.set('/', this.newNode(null, 0n, PERSISTENT, OPEN_ACL, 0));
  }

  /** A new connected session. */
  async open(opts: FakeSessionOptions = {}): Promise<FakeZkSession> {
    await Promise.resolve();
    if (!this.reachable) {
      throw new ZkError('CONNECT_TIMEOUT', 'could not open a ZooKeeper session at fake: server unreachable');
    }
    const s = new FakeZkSession(this, opts.clock ?? this.clock, opts);
    this.alive.add(s);
    return s;
  }

  /** True while the server keeps `session` (its ephemerals exist). */
  isAlive(session: FakeZkSession): boolean {
    return this.alive.has(session);
  }

  /**
   * The server ends the session: its ephemerals are deleted (watches of other sessions fire) and
   * its watches are dropped. With `notice` (default) the client learns at once (state 'lost');
   * otherwise its requests fail with SESSION_EXPIRED until `noticeLoss()` or its own deadline.
   */
  expire(session: FakeZkSession, opts: { notice?: boolean } = {}): void {
    this.endSession(session, 'expired');
    if (opts.notice ?? true) session.noticeLoss();
  }

  /** Holds back every request `match` selects (evaluated when the request is issued). */
  hold(match: HoldMatch): Hold {
    const h = new Hold(match, (x) => this.holds.delete(x));
    this.holds.add(h);
    return h;
  }

  // ---- inspection and direct edits (an operator with zkCli) --------------------------------

  get(path: string): { data: Buffer | null; stat: Stat } | null {
    const n = this.nodes.get(path);
    return n ? { data: n.data === null ? null : Buffer.from(n.data), stat: this.stat(n) } : null;
  }

  children(path: string): string[] {
    return [...(this.nodes.get(path)?.children ?? [])].sort();
  }

  /** Creates missing persistent nodes along `path`. */
  mkdirp(path: string): void {
    let prefix = '';
    for (const seg of path.slice(1).split('/')) {
      prefix += '/' + seg;
      if (!this.nodes.has(prefix)) this.doCreate('', prefix, null, 'persistent', OPEN_ACL);
    }
  }

  /** Creates (persistent) or overwrites `path` with `data`, as an operator would. */
  put(path: string, data: Buffer | string | null): void {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.nodes.has(path)) this.doSetData('', path, buf, -1);
    else this.doCreate('', path, buf, 'persistent', OPEN_ACL);
  }

  /** Deletes `path` (any version), as an operator would. */
  remove(path: string): void {
    this.doRemove('', path, -1);
  }

  // ---- used by FakeZkSession ------------------------------------------------------------------

  /** @internal Lets the request `go` now, or when a hold releases it (never, in a storm). */
  schedule(session: FakeZkSession, op: string, path: string, go: () => void): void {
    const now = this.clock.now();
    if (now !== this.burstAt) {
      this.burstAt = now;
      this.burstCount = 0;
    }
    if (++this.burstCount > this.stormLimit || this.storm) {
      this.storm ??=
        `request storm: more than ${this.stormLimit} requests at clock time ${now} ` +
        `(last: ${op} ${path} by session ${session.sessionId}); requests are parked from now on`;
      return;
    }
    for (const h of this.holds) {
      if (h.match({ session, op, path })) {
        h.add({ session, op, path, go });
        return;
      }
    }
    go();
  }

  /** @internal The server ends a session (expiry or CLOSE_SESSION). */
  endSession(session: FakeZkSession, cause: 'expired' | 'closed'): void {
    if (!this.alive.delete(session)) return;
    for (const kind of ['data', 'child'] as const) {
      for (const [path, bySession] of this.watches[kind]) {
        bySession.delete(session);
        if (bySession.size === 0) this.watches[kind].delete(path);
      }
    }
    const mine = [...this.nodes.entries()]
      .filter(([, n]) => n.ephemeralOwner === session.sessionId)
      .map(([p]) => p)
      .sort((a, b) => b.length - a.length);
    for (const p of mine) this.doRemove(session.sessionId, p, -1, cause);
  }

  /** @internal */
  exec(session: FakeZkSession, op: string, args: unknown[]): unknown {
    if (!this.alive.has(session)) throw zkError('SESSION_EXPIRED', op, String(args[0]));
    const sid = session.sessionId;
    switch (op) {
      case 'probe':
        return undefined;
      case 'create': {
        const [path, data, mode, acl] = args as [string, Buffer | null, CreateMode, Acl[] | undefined];
        return this.doCreate(sid, path, data, mode, acl ?? OPEN_ACL);
      }
      case 'getData': {
        const [path, watcher] = args as [string, Watcher | undefined];
        const n = this.mustGet('getData', path);
        if (watcher) this.addWatch('data', path, session, watcher);
        return { data: n.data === null ? null : Buffer.from(n.data), stat: this.stat(n) };
      }
      case 'exists': {
        const [path, watcher] = args as [string, Watcher | undefined];
        checkPath('exists', path);
        const n = this.nodes.get(path);
        if (watcher) this.addWatch('data', path, session, watcher);
        return n ? this.stat(n) : null;
      }
      case 'getChildren': {
        const [path, watcher] = args as [string, Watcher | undefined];
        const n = this.mustGet('getChildren', path);
        if (watcher) this.addWatch('child', path, session, watcher);
        return [...n.children].sort();
      }
      case 'setData': {
        const [path, data, version] = args as [string, Buffer | null, number];
        return this.doSetData(sid, path, data, version);
      }
      case 'remove': {
        const [path, version] = args as [string, number];
        this.doRemove(sid, path, version);
        return undefined;
      }
      case 'getACL': {
        const [path] = args as [string];
        const n = this.mustGet('getACL', path);
        return { acl: n.acl.map((a) => ({ ...a })), stat: this.stat(n) };
      }
      case 'multi': {
        const [ops] = args as [Op[]];
        this.doMulti(sid, ops);
        return undefined;
      }
      default:
        throw new Error(`fake ZooKeeper: unknown op ${op}`);
    }
  }

  // ---- the tree -------------------------------------------------------------------------------

  private newNode(data: Buffer | null, zxid: bigint, owner: string, acl: Acl[], now: number): ZNode {
    return {
      data: data === null ? null : Buffer.from(data),
      czxid: zxid,
      mzxid: zxid,
      pzxid: zxid,
      ctime: now,
      mtime: now,
      version: 0,
      cversion: 0,
      aversion: 0,
      ephemeralOwner: owner,
      acl: acl.map((a) => ({ ...a })),
      children: new Set(),
    };
  }

  private stat(n: ZNode): Stat {
    return {
      czxid: n.czxid,
      mzxid: n.mzxid,
      pzxid: n.pzxid,
      ctime: n.ctime,
      mtime: n.mtime,
      version: n.version,
      cversion: n.cversion,
      aversion: n.aversion,
      ephemeralOwner: n.ephemeralOwner,
      dataLength: n.data?.length ?? 0,
      numChildren: n.children.size,
    };
  }

  private mustGet(op: string, path: string): ZNode {
    checkPath(op, path);
    const n = this.nodes.get(path);
    if (!n) throw zkError('NO_NODE', op, path);
    return n;
  }

  private doCreate(sid: string, path: string, data: Buffer | null, mode: CreateMode, acl: Acl[]): string {
    checkPath('create', path);
    if (path === '/') throw zkError('NODE_EXISTS', 'create', path);
    const parentPath = parentOf(path);
    const parent = this.nodes.get(parentPath);
    if (!parent) throw zkError('NO_NODE', 'create', path);
    if (parent.ephemeralOwner !== PERSISTENT) throw zkError('NO_CHILDREN_FOR_EPHEMERALS', 'create', path);
    let full = path;
    if (mode === 'persistent_sequential' || mode === 'ephemeral_sequential') {
      full = path + String(parent.cversion).padStart(10, '0');
    }
    if (this.nodes.has(full)) throw zkError('NODE_EXISTS', 'create', path);
    const ephemeral = mode === 'ephemeral' || mode === 'ephemeral_sequential';
    if (ephemeral && !sid) throw new Error('fake ZooKeeper: an ephemeral node needs a session');
    const zxid = ++this.zxid;
    this.nodes.set(full, this.newNode(data, zxid, ephemeral ? sid : PERSISTENT, acl, this.clock.now()));
    parent.children.add(full.slice(parentPath === '/' ? 1 : parentPath.length + 1));
    parent.cversion++;
    parent.pzxid = zxid;
    this.history.push({ zxid, op: 'create', path: full, sessionId: sid, at: this.clock.now() });
    this.fire('data', full, 'created');
    this.fire('child', parentPath, 'childrenChanged', parentPath);
    return full;
  }

  private doSetData(sid: string, path: string, data: Buffer | null, version: number): Stat {
    const n = this.mustGet('setData', path);
    if (version !== -1 && version !== n.version) throw zkError('BAD_VERSION', 'setData', path);
    const zxid = ++this.zxid;
    n.data = data === null ? null : Buffer.from(data);
    n.version++;
    n.mzxid = zxid;
    n.mtime = this.clock.now();
    this.history.push({ zxid, op: 'setData', path, sessionId: sid, at: this.clock.now() });
    this.fire('data', path, 'dataChanged');
    return this.stat(n);
  }

  private doRemove(sid: string, path: string, version: number, cause?: 'expired' | 'closed'): void {
    const n = this.mustGet('remove', path);
    if (path === '/') throw zkError('BAD_ARGUMENTS', 'remove', path);
    if (version !== -1 && version !== n.version) throw zkError('BAD_VERSION', 'remove', path);
    if (n.children.size > 0) throw zkError('NOT_EMPTY', 'remove', path);
    const zxid = ++this.zxid;
    this.nodes.delete(path);
    const parentPath = parentOf(path);
    const parent = this.nodes.get(parentPath)!;
    parent.children.delete(path.slice(parentPath === '/' ? 1 : parentPath.length + 1));
    parent.cversion++;
    parent.pzxid = zxid;
    const entry: HistoryEntry = { zxid, op: 'remove', path, sessionId: sid, at: this.clock.now() };
    if (cause) entry.cause = cause;
    this.history.push(entry);
    // One event per watcher: a watcher set both by exists and getChildren hears 'deleted' once.
    const notified = new Set<Watcher>();
    this.fire('data', path, 'deleted', path, notified);
    this.fire('child', path, 'deleted', path, notified);
    this.fire('child', parentPath, 'childrenChanged', parentPath);
  }

  /** All or nothing: on the first failure the tree is put back and no watch fires. */
  private doMulti(sid: string, ops: Op[]): void {
    const saved = new Map([...this.nodes].map(([p, n]) => [p, { ...n, children: new Set(n.children) }]));
    const savedZxid = this.zxid;
    const savedHistory = this.history.length;
    // Watches fire only once every op succeeded.
    this.deferred = [];
    let index = 0;
    try {
      for (const o of ops) {
        index++;
        switch (o.op) {
          case 'create':
            this.doCreate(sid, o.path, o.data, o.mode ?? 'persistent', o.acl ?? OPEN_ACL);
            break;
          case 'setData':
            this.doSetData(sid, o.path, o.data, o.version);
            break;
          case 'remove':
            this.doRemove(sid, o.path, o.version);
            break;
          case 'check': {
            const n = this.mustGet('check', o.path);
            if (o.version !== -1 && o.version !== n.version) throw zkError('BAD_VERSION', 'check', o.path);
            break;
          }
        }
      }
    } catch (err) {
      this.deferred = null;
      this.nodes.clear();
      for (const [p, n] of saved) this.nodes.set(p, n);
      this.zxid = savedZxid;
      this.history.length = savedHistory;
      const op = ops[index - 1];
      if (err instanceof ZkError && op) {
        throw new ZkError(
          err.zkCode,
          `ZooKeeper multi failed at op #${index} (${op.op} ${op.path}): ${err.zkCode} (${CODES[err.zkCode] ?? 0})`,
          { path: op.path },
        );
      }
      throw err;
    }
    const events = this.deferred;
    this.deferred = null;
    for (const e of events) e();
  }

  private addWatch(kind: Kind, path: string, session: FakeZkSession, watcher: Watcher): void {
    let bySession = this.watches[kind].get(path);
    if (!bySession) this.watches[kind].set(path, (bySession = new Map()));
    let set = bySession.get(session);
    if (!set) bySession.set(session, (set = new Set()));
    set.add(watcher);
  }

  /** Triggers (and so removes) the one-shot watches of `kind` on `path`. */
  private fire(
    kind: Kind,
    path: string,
    type: WatchEvent['type'],
    eventPath = path,
    notified = new Set<Watcher>(),
  ): void {
    if (this.deferred) {
      this.deferred.push(() => this.fire(kind, path, type, eventPath, notified));
      return;
    }
    const bySession = this.watches[kind].get(path);
    if (!bySession) return;
    this.watches[kind].delete(path);
    for (const [session, set] of bySession) {
      for (const w of set) {
        if (notified.has(w)) continue;
        notified.add(w);
        session.deliverWatch(w, { type, path: eventPath });
      }
    }
  }
}

function checkPath(op: string, path: string): void {
  if (
    typeof path !== 'string' ||
    !path.startsWith('/') ||
    (path.length > 1 && path.endsWith('/')) ||
    path.includes('//')
  ) {
    throw new ZkError('BAD_ARGUMENTS', `ZooKeeper ${op} ${String(path)} rejected: invalid path`, {
      path: String(path),
    });
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

type StateListener = (next: SessionState, prev: SessionState) => void;

export class FakeZkSession implements ZkSession {
  readonly generation = ++lastGeneration;
  readonly sessionId: string;
  readonly sessionPassword: Buffer;
  readonly negotiatedTimeoutMs: number;

  private current: SessionState = 'connected';
  private lastSent: number;
  private readonly listeners = new Set<StateListener>();
  private readonly deliveries: Array<[SessionState, SessionState]> = [];
  private delivering = false;
  /** Watch events that arrived while suspended: delivered on resume. */
  private readonly heldEvents: Array<[Watcher, WatchEvent]> = [];
  private readonly probeIntervalMs: number;
  private readonly deadlines: boolean;
  private cancelProbe: () => void = () => {};
  private cancelDeadline: () => void = () => {};

  constructor(
    private readonly server: FakeZkServer,
    private readonly clock: Clock,
    opts: FakeSessionOptions,
  ) {
    const n = ++lastSessionNumber;
    this.sessionId = (0x0100_0000_0000_0000n + BigInt(n)).toString(16).padStart(16, '0');
    this.sessionPassword = Buffer.alloc(16, n & 0xff);
    this.negotiatedTimeoutMs = opts.negotiatedTimeoutMs ?? 4000;
    this.probeIntervalMs = opts.probeIntervalMs ?? Math.floor(this.negotiatedTimeoutMs / 3);
    this.deadlines = opts.deadlines ?? true;
    this.lastSent = clock.now();
    this.scheduleProbe();
    this.scheduleDeadline();
  }

  get state(): SessionState {
    return this.current;
  }

  get lastReplySentAt(): number {
    return this.lastSent;
  }

  on(event: 'state', listener: StateListener): this {
    if (event === 'state') this.listeners.add(listener);
    return this;
  }

  off(event: 'state', listener: StateListener): this {
    if (event === 'state') this.listeners.delete(listener);
    return this;
  }

  // ---- test controls -------------------------------------------------------------------------

  /** The client loses its connection: requests fail with CONNECTION_LOSS, no reply refreshes. */
  suspend(): void {
    if (this.current !== 'connected') throw new Error(`cannot suspend a ${this.current} session`);
    this.setState('suspended');
  }

  /** The connection is back; if the server expired the session meanwhile, it is lost. */
  resume(): void {
    if (this.current !== 'suspended') throw new Error(`cannot resume a ${this.current} session`);
    if (!this.server.isAlive(this)) {
      this.noticeLoss();
      return;
    }
    // session.ts counts a session connected again once a probe is answered.
    this.lastSent = this.clock.now();
    this.setState('connected');
    for (const [w, ev] of this.heldEvents.splice(0)) this.deliverWatch(w, ev);
  }

  /**
   * The client gives the session up (state 'lost'). Like session.ts, it then tries to close it on
   * the server: that works only if the server can be reached (state was 'connected').
   */
  noticeLoss(): void {
    if (this.current === 'lost' || this.current === 'closed') return;
    const reachable = this.current === 'connected';
    this.terminate('lost');
    if (reachable) this.server.endSession(this, 'closed');
  }

  // ---- ZkSession -----------------------------------------------------------------------------

  create(path: string, data: Buffer | null, opts?: { mode?: CreateMode; acl?: Acl[] }): Promise<string> {
    return this.request<string>('create', path, [path, data, opts?.mode ?? 'persistent', opts?.acl]);
  }

  getData(path: string, watcher?: Watcher): Promise<{ data: Buffer | null; stat: Stat }> {
    return this.request('getData', path, [path, watcher]);
  }

  exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    return this.request('exists', path, [path, watcher]);
  }

  getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    return this.request('getChildren', path, [path, watcher]);
  }

  setData(path: string, data: Buffer | null, version: number): Promise<Stat> {
    return this.request('setData', path, [path, data, version]);
  }

  remove(path: string, version: number): Promise<void> {
    return this.request('remove', path, [path, version]);
  }

  multi(ops: Op[]): Promise<void> {
    return this.request('multi', ops.map((o) => o.path).join(','), [ops]);
  }

  getACL(path: string): Promise<{ acl: Acl[]; stat: Stat }> {
    return this.request('getACL', path, [path]);
  }

  async mkdirp(path: string, acl?: Acl[]): Promise<void> {
    if (path === '/' || (await this.exists(path)) !== null) return;
    let prefix = '';
    for (const seg of path.slice(1).split('/')) {
      prefix += '/' + seg;
      try {
        await this.create(prefix, null, { mode: 'persistent', acl });
      } catch (err) {
        if (err instanceof ZkError && err.zkCode === 'NODE_EXISTS') continue;
        throw err;
      }
    }
  }

  async close(): Promise<void> {
    if (this.current === 'closed') return;
    // CLOSE_SESSION reaches the server only over a live connection.
    const reachable = this.current === 'connected';
    this.terminate('closed');
    if (reachable) this.server.endSession(this, 'closed');
    await Promise.resolve();
  }

  // ---- internals -----------------------------------------------------------------------------

  /** @internal Called by the server when a watch of this session triggers. */
  deliverWatch(watcher: Watcher, event: WatchEvent): void {
    if (this.current === 'lost' || this.current === 'closed') return;
    if (this.current === 'suspended') {
      this.heldEvents.push([watcher, event]);
      return;
    }
    queueMicrotask(() => {
      if (this.current !== 'connected') {
        if (this.current === 'suspended') this.heldEvents.push([watcher, event]);
        return;
      }
      watcher(event);
    });
  }

  private request<T>(op: string, path: string, args: unknown[]): Promise<T> {
    const sentAt = this.clock.now();
    return new Promise<T>((resolve, reject) => {
      this.server.schedule(this, op, path, () => {
        queueMicrotask(() => {
          if (this.current === 'lost') {
            reject(
              new ZkError(
                'SESSION_LOST',
                `ZooKeeper ${op} ${path} refused: session ${this.sessionId} is lost`,
                { path },
              ),
            );
            return;
          }
          if (this.current === 'closed') {
            reject(
              new ZkError('CLOSED', `ZooKeeper ${op} ${path} refused: session ${this.sessionId} is closed`, {
                path,
              }),
            );
            return;
          }
          if (this.current === 'suspended') {
            reject(zkError('CONNECTION_LOSS', op, path));
            return;
          }
          if (!this.server.isAlive(this)) {
            reject(zkError('SESSION_EXPIRED', op, path));
            return;
          }
          let result: unknown;
          try {
            result = this.server.exec(this, op, args);
          } catch (err) {
            // A server error reply still proves the session was alive when the request was sent.
            if (err instanceof ZkError && err.zkCode !== 'BAD_ARGUMENTS') this.onReply(sentAt);
            reject(err);
            return;
          }
          this.onReply(sentAt);
          resolve(result as T);
        });
      });
    });
  }

  private onReply(sentAt: number): void {
    if (sentAt > this.lastSent) this.lastSent = sentAt;
    this.scheduleDeadline();
  }

  private setState(next: SessionState): void {
    const prev = this.current;
    if (prev === next) return;
    this.current = next;
    this.scheduleDeadline();
    this.deliveries.push([next, prev]);
    if (!this.delivering) {
      this.delivering = true;
      queueMicrotask(() => {
        for (let item = this.deliveries.shift(); item; item = this.deliveries.shift()) {
          for (const l of [...this.listeners]) {
            try {
              l(item[0], item[1]);
            } catch {
              // session.ts logs a throwing listener and goes on with the others.
            }
          }
        }
        this.delivering = false;
      });
    }
  }

  private terminate(next: 'lost' | 'closed'): void {
    this.cancelProbe();
    this.cancelDeadline();
    this.heldEvents.length = 0;
    this.setState(next);
  }

  private scheduleProbe(): void {
    this.cancelProbe();
    if (this.probeIntervalMs <= 0) return;
    this.cancelProbe = this.clock.setTimer(this.probeIntervalMs, () => {
      if (this.current === 'lost' || this.current === 'closed') return;
      if (this.current === 'connected') this.request('probe', '/', []).catch(() => undefined);
      this.scheduleProbe();
    });
  }

  private scheduleDeadline(): void {
    this.cancelDeadline();
    if (!this.deadlines || (this.current !== 'connected' && this.current !== 'suspended')) return;
    const t = this.negotiatedTimeoutMs;
    const at = this.lastSent + (this.current === 'connected' ? (t * 2) / 3 : t);
    this.cancelDeadline = this.clock.setTimer(Math.max(0, Math.ceil(at - this.clock.now())), () => {
      const silentFor = this.clock.now() - this.lastSent;
      if (silentFor >= t) {
        // The client's own deadline (reached from 'suspended': the server cannot be told).
        this.noticeLoss();
      } else if (this.current === 'connected' && silentFor >= (t * 2) / 3) {
        this.setState('suspended');
      } else {
        this.scheduleDeadline();
      }
    });
  }
}
