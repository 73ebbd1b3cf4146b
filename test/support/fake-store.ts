/**
 * An in-memory coordination service for the elector's unit tests: the ElectionStore and
 * ElectionConnection of src/election/store.ts, on a (fake) Clock. It keeps the cluster's few
 * znodes (lock, breadcrumb, members/*) as raw bytes with versions, zxids and ephemeral owners, and
 * decodes them with the product's own codec, so tests can plant garbage exactly as on a real
 * server. test/integration/store-contract.test.ts runs the same cases against this double and
 * against the real ZooKeeper store, so the two cannot drift apart unnoticed.
 *
 * What it models, because the elector's safety depends on it:
 * - ownership: an ephemeral's owner is the creating session; it vanishes when the server ends that
 *   session (`server.expire`, or `close()` while the link is up);
 * - zxids: one increasing counter, so a newer lock has a larger czxid (epoch);
 * - watches: one-shot, on the lock and the breadcrumb; events for a suspended connection wait for
 *   its resume; a lost or closed one never sees another;
 * - the session layer's account: every answered request (and a probe every T/3 while connected)
 *   proves the session, `expiryNotBefore` = last proof + T; suspended after 2/3 T and lost after T
 *   without proof (both can be turned off per connection).
 * Test controls: `conn.suspend()` / `conn.resume()` (a partition of that client),
 * `conn.noticeLoss()`, `server.expire(conn, { notice })`, `server.hold(match)` (delay requests until
 * released), `server.deny(path)` (writes there fail NO_AUTH), `server.reachable = false` (connect
 * fails), `server.put/get/remove` of raw znodes, and `server.history` of every change.
 */
import type { Clock } from '../../src/clock.js';
import { RecordError, ZkError } from '../../src/errors.js';
import {
  HISTORY_LIMIT,
  type BreadcrumbRecord,
  type ControlRecord,
  type HistoryEntry as HistoryRecordEntry,
  type LockRecord,
  type MemberRecord,
} from '../../src/election/records.js';
import type {
  BreadcrumbView,
  ControlView,
  ConnectionState,
  ElectionConnection,
  ElectionStore,
  LockHolder,
  LockView,
  MemberList,
  MemberPut,
} from '../../src/election/store.js';
import type { ClusterPaths } from '../../src/zk/paths.js';
import {
  appendToHistory,
  decodeControl,
  decodeHistory,
  decodeRecord,
  encodeControl,
  encodeRecord,
} from '../../src/zk/records.js';

export const PERSISTENT = '0000000000000000';

interface ZNode {
  data: Buffer | null;
  czxid: bigint;
  version: number;
  owner: string;
}

export interface HistoryEntry {
  at: number;
  op: 'create' | 'setData' | 'remove';
  path: string;
  sessionId: string;
  /** The server did it when a session ended. */
  cause?: 'expired' | 'closed';
}

export interface HoldMatch {
  (req: { conn: FakeConnection; op: string; path: string }): boolean;
}

export class Hold {
  readonly held: { sessionId: string; op: string; path: string }[] = [];
  private readonly waiting: (() => void)[] = [];
  private done = false;

  constructor(
    readonly match: HoldMatch,
    private readonly onRelease: (h: Hold) => void,
  ) {}

  get pending(): number {
    return this.waiting.length;
  }

  /** @internal */
  add(sessionId: string, op: string, path: string, go: () => void): void {
    this.waiting.push(go);
    this.held.push({ sessionId, op, path });
  }

  /** Lets every held request go on (in order) and stops holding new ones. */
  release(): void {
    if (this.done) return;
    this.done = true;
    this.onRelease(this);
    for (const go of this.waiting.splice(0)) go();
  }
}

const CODES: Record<string, number> = {
  CONNECTION_LOSS: -4,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NODE_EXISTS: -110,
};

function zkError(code: string, op: string, path: string): ZkError {
  return new ZkError(code, `ZooKeeper ${op} ${path} failed: ${code} (${CODES[code] ?? 0})`, { path });
}

let lastGeneration = 0;
let lastSession = 0;

export interface FakeConnectOptions {
  negotiatedTimeoutMs?: number;
  relayAllowanceMs?: number;
  /** Suspend at 2/3 T and lose at T without proof (the session layer's own deadlines). @default true */
  deadlines?: boolean;
  /** 0 = no probe. @default T / 3 */
  probeIntervalMs?: number;
  /**
   * Re-attach to this live session (an agent process restarted): the old connection object is
   * dropped without ending the session; rejects with SESSION_EXPIRED when the session is gone.
   */
  resumeSessionId?: string;
}

export class FakeCoordinator {
  private zxid = 100n;
  private readonly nodes = new Map<string, ZNode>();
  private readonly holds = new Set<Hold>();
  private readonly denied = new Set<{ path: string; who: (sessionId: string) => boolean }>();
  /** @internal */ readonly conns = new Set<FakeConnection>();
  readonly history: HistoryEntry[] = [];
  reachable = true;
  clusterInitialised = true;
  aclProblemList: string[] = [];
  /** Set when a request loop spun without waiting (parked requests never settle). */
  storm: string | null = null;
  private instant = -1;
  private requestsThisInstant = 0;
  private readonly stormLimit = 2000;

  constructor(
    readonly clock: Clock,
    readonly paths: ClusterPaths,
  ) {}

  async connect(opts: FakeConnectOptions = {}): Promise<FakeConnection> {
    await Promise.resolve();
    if (!this.reachable) throw new ZkError('CONNECT_TIMEOUT', 'could not connect to ZooKeeper (unreachable)');
    if (opts.resumeSessionId !== undefined) {
      const old = [...this.conns].find((x) => x.sessionId === opts.resumeSessionId);
      if (!old) throw new ZkError('SESSION_EXPIRED', `session ${opts.resumeSessionId} has expired`);
      this.conns.delete(old);
      old.detach();
    }
    const c = new FakeConnection(this, opts);
    this.conns.add(c);
    return c;
  }

  hold(match: HoldMatch): Hold {
    const h = new Hold(match, (x) => this.holds.delete(x));
    this.holds.add(h);
    return h;
  }

  /** Writes to `path` (by the sessions `who` picks, default all) fail with NO_AUTH from now on. */
  deny(path: string, who: (sessionId: string) => boolean = () => true): () => void {
    const rule = { path, who };
    this.denied.add(rule);
    return () => this.denied.delete(rule);
  }

  get(
    path: string,
  ): { data: Buffer | null; stat: { czxid: bigint; version: number; ephemeralOwner: string } } | null {
    const n = this.nodes.get(path);
    return n ? { data: n.data, stat: { czxid: n.czxid, version: n.version, ephemeralOwner: n.owner } } : null;
  }

  /** Plants a persistent znode (or replaces a node's data), as an operator with zkCli would. */
  put(path: string, data: Buffer | string | null): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const n = this.nodes.get(path);
    if (n) {
      n.data = buf;
      n.version += 1;
      this.change('setData', path, 'operator');
    } else {
      this.nodes.set(path, { data: buf, czxid: ++this.zxid, version: 0, owner: PERSISTENT });
      this.change('create', path, 'operator');
    }
  }

  /** Plants an ephemeral znode owned by `owner`'s session (another agent's member record, say). */
  putEphemeral(path: string, data: Buffer | string, owner: FakeConnection): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    this.nodes.set(path, { data: buf, czxid: ++this.zxid, version: 0, owner: owner.sessionId });
    this.change('create', path, owner.sessionId);
  }

  remove(path: string): void {
    if (this.nodes.delete(path)) this.change('remove', path, 'operator');
  }

  members(): string[] {
    const prefix = `${this.paths.members}/`;
    return [...this.nodes.keys()]
      .filter((p) => p.startsWith(prefix))
      .map((p) => p.slice(prefix.length))
      .sort();
  }

  isAlive(c: FakeConnection): boolean {
    return this.conns.has(c);
  }

  /** The server ends the session: its ephemerals vanish; with notice (default) the client hears it. */
  expire(c: FakeConnection, opts: { notice?: boolean } = {}): void {
    this.endSession(c, 'expired');
    if (opts.notice !== false) c.terminate('lost');
  }

  /** @internal */
  endSession(c: FakeConnection, cause: 'expired' | 'closed'): void {
    if (!this.conns.delete(c)) return;
    for (const [path, n] of [...this.nodes]) {
      if (n.owner !== c.sessionId) continue;
      this.nodes.delete(path);
      this.change('remove', path, c.sessionId, cause);
    }
  }

  // ---- requests ---------------------------------------------------------------------------

  /** @internal */
  request<T>(c: FakeConnection, op: string, path: string, run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const sentAt = this.clock.now();
      const go = () => {
        queueMicrotask(() => {
          if (c.state === 'lost' || c.state === 'closed') {
            reject(
              new ZkError(
                c.state === 'lost' ? 'SESSION_LOST' : 'CLOSED',
                `ZooKeeper ${op} ${path}: session ${c.state}`,
              ),
            );
            return;
          }
          if (c.isSuspended() || !this.conns.has(c)) {
            reject(zkError('CONNECTION_LOSS', op, path));
            return;
          }
          try {
            const v = run();
            c.proved(sentAt);
            resolve(v);
          } catch (err) {
            if (err instanceof ZkError) c.proved(sentAt);
            reject(err);
          }
        });
      };
      const now = this.clock.now();
      if (now !== this.instant) {
        this.instant = now;
        this.requestsThisInstant = 0;
      }
      if (++this.requestsThisInstant > this.stormLimit) {
        this.storm ??= `more than ${this.stormLimit} requests at t=${now} without time passing (last: ${op} ${path})`;
        return; // parked for good
      }
      for (const h of this.holds) {
        if (h.match({ conn: c, op, path })) {
          h.add(c.sessionId, op, path, go);
          return;
        }
      }
      go();
    });
  }

  /** @internal */
  node(path: string): ZNode | undefined {
    return this.nodes.get(path);
  }

  /** @internal */
  create(c: FakeConnection, path: string, data: Buffer, ephemeral: boolean): void {
    this.checkWrite(c, 'create', path);
    if (this.nodes.has(path)) throw zkError('NODE_EXISTS', 'create', path);
    this.nodes.set(path, {
      data,
      czxid: ++this.zxid,
      version: 0,
      owner: ephemeral ? c.sessionId : PERSISTENT,
    });
    this.change('create', path, c.sessionId);
  }

  /** @internal */
  setData(c: FakeConnection, path: string, data: Buffer, version: number): void {
    this.checkWrite(c, 'setData', path);
    const n = this.nodes.get(path);
    if (!n) throw zkError('NO_NODE', 'setData', path);
    if (version !== -1 && version !== n.version) throw zkError('BAD_VERSION', 'setData', path);
    n.data = data;
    n.version += 1;
    this.change('setData', path, c.sessionId);
  }

  /** @internal */
  delete(c: FakeConnection, path: string, version: number): void {
    this.checkWrite(c, 'remove', path);
    const n = this.nodes.get(path);
    if (!n) throw zkError('NO_NODE', 'remove', path);
    if (version !== -1 && version !== n.version) throw zkError('BAD_VERSION', 'remove', path);
    this.nodes.delete(path);
    this.change('remove', path, c.sessionId);
  }

  private checkWrite(c: FakeConnection, op: string, path: string): void {
    if (!this.clusterInitialised) throw zkError('NO_NODE', op, path);
    for (const d of this.denied)
      if (d.path === path && d.who(c.sessionId)) throw zkError('NO_AUTH', op, path);
  }

  private change(
    op: HistoryEntry['op'],
    path: string,
    sessionId: string,
    cause?: 'expired' | 'closed',
  ): void {
    this.history.push({ at: this.clock.now(), op, path, sessionId, ...(cause ? { cause } : {}) });
    for (const c of this.conns) c.fire(path);
  }
}

export class FakeConnection implements ElectionConnection, ElectionStore {
  readonly generation = ++lastGeneration;
  readonly sessionId: string;
  readonly resumed: boolean;
  readonly negotiatedTimeoutMs: number;
  readonly relayAllowanceMs: number;
  readonly store: ElectionStore = this;
  private current: ConnectionState = 'connected';
  private suspendedFlag = false;
  private lastProof: number;
  private readonly listeners: ((next: ConnectionState, prev: ConnectionState) => void)[] = [];
  private readonly watches = new Map<string, (() => void)[]>();
  private readonly heldEvents: string[] = [];
  private cancelProbe: () => void = () => {};
  private cancelDeadline: () => void = () => {};
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly server: FakeCoordinator,
    private readonly opts: FakeConnectOptions,
  ) {
    this.sessionId = opts.resumeSessionId ?? (++lastSession).toString(16).padStart(16, '0');
    this.resumed = opts.resumeSessionId !== undefined;
    this.negotiatedTimeoutMs = opts.negotiatedTimeoutMs ?? 4000;
    this.relayAllowanceMs = opts.relayAllowanceMs ?? 0;
    this.lastProof = server.clock.now();
    this.scheduleProbe();
    this.scheduleDeadline();
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** When the latest proof of the session was sent (what the real layer's anchor is). */
  get lastReplySentAt(): number {
    return this.lastProof;
  }

  get expiryNotBefore(): number {
    return this.lastProof - this.relayAllowanceMs + this.negotiatedTimeoutMs;
  }

  onState(listener: (next: ConnectionState, prev: ConnectionState) => void): void {
    this.listeners.push(listener);
  }

  isSuspended(): boolean {
    return this.suspendedFlag;
  }

  /** The link to the server goes silent: requests fail, nothing proves the session. */
  suspend(): void {
    this.suspendedFlag = true;
    this.setState('suspended');
  }

  resume(): void {
    if (this.current === 'lost' || this.current === 'closed') return;
    this.suspendedFlag = false;
    this.lastProof = this.server.clock.now();
    this.setState('connected');
    this.scheduleDeadline();
    for (const path of this.heldEvents.splice(0)) this.fire(path);
  }

  /** The client gives the session up (its own deadline); the server keeps it unless reachable. */
  noticeLoss(): void {
    this.terminate('lost');
  }

  async close(): Promise<void> {
    if (this.current === 'closed') return;
    if (!this.suspendedFlag && this.server.reachable) this.server.endSession(this, 'closed');
    this.terminate('closed');
  }

  // ---- the session layer's account ---------------------------------------------------------

  /** @internal */
  proved(sentAt: number): void {
    if (sentAt > this.lastProof) this.lastProof = sentAt;
    if (this.current === 'suspended' && !this.suspendedFlag) this.setState('connected');
    this.scheduleDeadline();
  }

  /** @internal */
  /** @internal its process died: the session lives on in the server; this object hears nothing more. */
  detach(): void {
    this.cancelProbe();
    this.cancelDeadline();
    this.watches.clear();
    this.heldEvents.length = 0;
    this.listeners.length = 0;
    this.current = 'closed';
  }

  terminate(next: 'lost' | 'closed'): void {
    if (this.current === 'closed' || this.current === next) return;
    this.cancelProbe();
    this.cancelDeadline();
    this.watches.clear();
    this.heldEvents.length = 0;
    this.setState(next);
  }

  private setState(next: ConnectionState): void {
    const prev = this.current;
    if (prev === next || prev === 'closed' || (prev === 'lost' && next !== 'closed')) return;
    this.current = next;
    queueMicrotask(() => {
      for (const l of this.listeners) l(next, prev);
    });
  }

  private scheduleProbe(): void {
    const every = this.opts.probeIntervalMs ?? Math.floor(this.negotiatedTimeoutMs / 3);
    if (every <= 0) return;
    this.cancelProbe = this.server.clock.setTimer(every, () => {
      if (this.current === 'lost' || this.current === 'closed') return;
      // Through the server like any request, so a hold silences it too.
      this.server.request(this, 'probe', '/', () => undefined).catch(() => undefined);
      this.scheduleProbe();
    });
  }

  private scheduleDeadline(): void {
    this.cancelDeadline();
    if (this.opts.deadlines === false || this.current === 'lost' || this.current === 'closed') return;
    const T = this.negotiatedTimeoutMs;
    const at = this.lastProof + (this.current === 'connected' ? (2 * T) / 3 : T);
    this.cancelDeadline = this.server.clock.setTimer(Math.max(0, at - this.server.clock.now()), () => {
      const age = this.server.clock.now() - this.lastProof;
      if (age >= T) this.terminate('lost');
      else if (age >= (2 * T) / 3 && this.current === 'connected') this.setState('suspended');
      this.scheduleDeadline();
    });
  }

  /** @internal a znode changed: deliver (or hold back) this connection's watches on it. */
  fire(path: string): void {
    if (this.current === 'lost' || this.current === 'closed') return;
    if (this.suspendedFlag) {
      if (this.watches.has(path)) this.heldEvents.push(path);
      return;
    }
    const ws = this.watches.get(path);
    if (!ws) return;
    this.watches.delete(path);
    for (const w of ws) queueMicrotask(w);
  }

  private watch(path: string, onChange?: () => void): void {
    if (!onChange) return;
    const ws = this.watches.get(path) ?? [];
    ws.push(onChange);
    this.watches.set(path, ws);
  }

  private req<T>(op: string, path: string, run: () => T): Promise<T> {
    return this.server.request(this, op, path, run);
  }

  // ---- ElectionStore ------------------------------------------------------------------------

  private get paths(): ClusterPaths {
    return this.server.paths;
  }

  private classify(n: ZNode | undefined): LockView {
    if (!n) return { state: 'free' };
    if (n.owner === PERSISTENT) {
      return {
        state: 'foreign',
        detail: `${this.paths.lock} is a persistent znode (czxid ${n.czxid}), not an ephemeral lock`,
      };
    }
    if (n.owner === this.sessionId) return { state: 'ours', epoch: n.czxid, version: n.version };
    return { state: 'theirs', owner: n.owner, epoch: n.czxid };
  }

  clusterExists(): Promise<boolean> {
    return this.req('exists', this.paths.cluster, () => this.server.clusterInitialised);
  }

  aclProblems(): Promise<string[]> {
    return this.req('getACL', this.paths.cluster, () => [...this.server.aclProblemList]);
  }

  viewLock(onChange?: () => void): Promise<LockView> {
    return this.req('exists', this.paths.lock, () => {
      this.watch(this.paths.lock, onChange);
      return this.classify(this.server.node(this.paths.lock));
    });
  }

  lockHolder(): Promise<LockHolder | null> {
    return this.req('getData', this.paths.lock, () => {
      const n = this.server.node(this.paths.lock);
      if (!n) return null;
      const h: LockHolder = { owner: n.owner, epoch: n.czxid };
      try {
        h.record = decodeRecord('lock', this.paths.lock, n.data);
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
        h.recordError = err.message;
      }
      return h;
    });
  }

  tryAcquire(record: LockRecord): Promise<LockView> {
    return this.req('create', this.paths.lock, () => {
      if (!this.server.node(this.paths.lock))
        this.server.create(this, this.paths.lock, encodeRecord(record), true);
      return this.classify(this.server.node(this.paths.lock));
    });
  }

  releaseLock(): Promise<void> {
    return this.req('remove', this.paths.lock, () => {
      const n = this.server.node(this.paths.lock);
      if (n && n.owner === this.sessionId) this.server.delete(this, this.paths.lock, n.version);
    });
  }

  removeLockOf(owner: string): Promise<boolean> {
    return this.req('remove', this.paths.lock, () => {
      const n = this.server.node(this.paths.lock);
      if (!n || n.owner !== owner) return false;
      this.server.delete(this, this.paths.lock, n.version);
      return true;
    });
  }

  readBreadcrumb(onChange?: () => void): Promise<BreadcrumbView> {
    const path = this.paths.breadcrumb;
    return this.req('getData', path, () => {
      this.watch(path, onChange);
      const n = this.server.node(path);
      if (!n) return null;
      try {
        return { record: decodeRecord('breadcrumb', path, n.data), version: n.version };
      } catch (err) {
        if (err instanceof RecordError) return { error: err.message, version: n.version };
        throw err;
      }
    });
  }

  writeBreadcrumb(record: BreadcrumbRecord, expectedVersion: number | null): Promise<void> {
    const path = this.paths.breadcrumb;
    return this.req(expectedVersion === null ? 'create' : 'setData', path, () => {
      if (expectedVersion === null) this.server.create(this, path, encodeRecord(record), false);
      else this.server.setData(this, path, encodeRecord(record), expectedVersion);
    });
  }

  putMember(record: MemberRecord, replaceable: ReadonlySet<string>): Promise<MemberPut> {
    const path = this.paths.member(record.id);
    return this.req('setData', path, (): MemberPut => {
      const data = encodeRecord(record);
      const n = this.server.node(path);
      if (!n) {
        this.server.create(this, path, data, true);
        return { ok: true };
      }
      if (n.owner === this.sessionId) {
        this.server.setData(this, path, data, n.version);
        return { ok: true };
      }
      if (n.owner === PERSISTENT || replaceable.has(n.owner)) {
        this.server.delete(this, path, n.version);
        this.server.create(this, path, data, true);
        return { ok: true };
      }
      const conflict: MemberPut = { ok: false, owner: n.owner };
      try {
        conflict.record = decodeRecord('member', path, n.data);
      } catch (err) {
        if (err instanceof RecordError) conflict.recordError = err.message;
        else throw err;
      }
      return conflict;
    });
  }

  listMembers(): Promise<MemberList> {
    return this.req('getChildren', this.paths.members, () => {
      const members: MemberRecord[] = [];
      const problems: string[] = [];
      for (const name of this.server.members()) {
        const path = this.paths.member(name);
        const n = this.server.node(path)!;
        const version = `${n.czxid}/${n.version}`;
        const report = (msg: string) => {
          if (this.reported.get(path) === version) return;
          this.reported.set(path, version);
          problems.push(msg);
        };
        if (n.owner === PERSISTENT) {
          report(`znode ${path}: persistent, so no live agent owns it; ignored`);
          continue;
        }
        try {
          members.push(decodeRecord('member', path, n.data));
        } catch (err) {
          if (!(err instanceof RecordError)) throw err;
          report(err.message);
        }
      }
      return { members, problems };
    });
  }

  readControl(onChange?: () => void): Promise<ControlView> {
    const path = this.paths.control;
    return this.req('getData', path, (): ControlView => {
      this.watch(path, onChange);
      const n = this.server.node(path);
      if (!n) return { record: null, version: null };
      try {
        return { record: decodeControl(path, n.data), version: n.version };
      } catch (err) {
        if (err instanceof RecordError) return { error: err.message, version: n.version };
        throw err;
      }
    });
  }

  writeControl(record: ControlRecord, expectedVersion: number | null): Promise<boolean> {
    const path = this.paths.control;
    return this.req(expectedVersion === null ? 'create' : 'setData', path, () => {
      try {
        if (expectedVersion === null) this.server.create(this, path, encodeControl(record), false);
        else this.server.setData(this, path, encodeControl(record), expectedVersion);
        return true;
      } catch (err) {
        if (err instanceof ZkError && ['BAD_VERSION', 'NODE_EXISTS', 'NO_NODE'].includes(err.zkCode))
          return false;
        throw err;
      }
    });
  }

  appendHistory(entry: HistoryRecordEntry): Promise<void> {
    const path = this.paths.history;
    return this.req('setData', path, () => {
      const n = this.server.node(path);
      const rec = decodeHistory(path, n?.data ?? null).record;
      const data = Buffer.from(JSON.stringify(appendToHistory(rec, entry, HISTORY_LIMIT)));
      if (n) this.server.setData(this, path, data, n.version);
      else this.server.create(this, path, data, false);
    });
  }
}
