/**
 * The ZooKeeper session layer: the ONLY module in hafc that imports node-zookeeper-client.
 *
 * The failover controller's safety rests on one question this module answers at every moment:
 * may we still hold our ephemeral lock? The library cannot answer it (see
 * ../../../shared/notes/zookeeper-client-pitfalls.md): it has no read timeout, rarely reports
 * expiry, and never fails some requests. So we keep our own account, on the monotonic clock:
 *
 *   lastReplySentAt = when the most recent request that a server answered was SENT.
 *
 * A server answering proves the session was alive when it processed the request, which is no
 * earlier than when we sent it; the server expires the session no earlier than one negotiated
 * timeout (T) after it last heard from us. Hence:
 *   - now - lastReplySentAt >= 2/3 T  -> suspended (act as if we do not hold the lock);
 *   - now - lastReplySentAt >= T      -> lost (terminal: the server may have expired us, and
 *     another node may hold the lock), whatever the library says.
 * A cheap probe (exists "/") every pingIntervalMs keeps lastReplySentAt fresh while healthy.
 *
 * Library events are hints on top: 'disconnected' -> suspended at once; 'expired' and
 * 'authenticationFailed' -> lost at once. A probe answered after a (re)connect -> connected.
 *
 * Library quirks handled here rather than in the patch: retries are 0 (a retried create of our
 * own ephemeral comes back as NODE_EXISTS); close() is always deferred to a later macrotask
 * (close inside a 'disconnected' handler is overridden by the library's reconnect); every request
 * has our own timeout; callbacks and watch events are dropped once the session is lost or closed.
 */
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';

import { systemClock, type Clock } from '../clock.js';
import { ConfigError, ZkError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { parseConnectString } from './connect-string.js';
import {
  CREATE_MODE,
  LOCAL_ERROR_CODES,
  checkAcl,
  hex64,
  isLibException,
  toStat,
  toWatchEventType,
  toZkError,
  type RawStat,
} from './convert.js';
import type {
  Acl,
  CreateMode,
  Op,
  SessionState,
  Stat,
  WatchEvent,
  Watcher,
  ZkSession,
  ZkSessionOptions,
} from './types.js';

// ---------------------------------------------------------------------------------------------
// The part of node-zookeeper-client@1.1.3 (as patched by patches/) that we rely on. Written out
// here instead of a loose `any` so that an upgrade has one list to check.

type LibCallback = (err: unknown, ...results: unknown[]) => void;
type LibWatcher = (event: { getType(): number; getPath(): string }) => void;

type LibId = object;
interface LibAcl {
  permission: number;
  id: { scheme: string; id: string };
}

interface LibTransaction {
  create(path: string, data: Buffer | undefined, acls: LibAcl[], mode: number): LibTransaction;
  setData(path: string, data: Buffer | undefined, version: number): LibTransaction;
  remove(path: string, version: number): LibTransaction;
  check(path: string, version: number): LibTransaction;
  commit(cb: LibCallback): void;
}

/** Internal ConnectionManager: no public API says when the client is really closed. */
interface LibConnectionManager extends EventEmitter {
  state: number;
  socket?: { destroy(): void; destroyed?: boolean };
}

interface LibClient extends EventEmitter {
  connect(): void;
  close(): void;
  getSessionId(): Buffer;
  getSessionPassword(): Buffer;
  getSessionTimeout(): number;
  addAuthInfo(scheme: string, auth: Buffer): void;
  create(path: string, data: Buffer | undefined, acls: LibAcl[], mode: number, cb: LibCallback): void;
  remove(path: string, version: number, cb: LibCallback): void;
  setData(path: string, data: Buffer, version: number, cb: LibCallback): void;
  getData(path: string, watcher: LibWatcher | undefined, cb: LibCallback): void;
  exists(path: string, watcher: LibWatcher | undefined, cb: LibCallback): void;
  getChildren(path: string, watcher: LibWatcher | undefined, cb: LibCallback): void;
  getACL(path: string, cb: LibCallback): void;
  transaction(): LibTransaction;
  connectionManager: LibConnectionManager;
}

interface ZkLibrary {
  createClient(
    connect: string,
    options: { sessionTimeout: number; spinDelay: number; retries: number },
  ): LibClient;
  ACL: new (perms: number, id: LibId) => LibAcl;
  Id: new (scheme: string, id: string) => LibId;
}

const zk = createRequire(import.meta.url)('node-zookeeper-client') as ZkLibrary;

/** ConnectionManager.STATES of the library. */
const CM_CLOSED = -2;
const CM_SESSION_EXPIRED = -3;
const CM_AUTHENTICATION_FAILED = -4;

const OP_ERROR = -1; // jute OP_CODES.ERROR: a multi result that carries an error code

// ---------------------------------------------------------------------------------------------

let lastGeneration = 0;

type StateListener = (next: SessionState, prev: SessionState) => void;

interface Pending {
  op: string;
  path: string;
  sentAt: number;
  reject: (err: ZkError) => void;
  cancelTimer: () => void;
}

const ALLOWED: Record<SessionState, readonly SessionState[]> = {
  connecting: ['connected', 'closed'],
  connected: ['suspended', 'lost', 'closed'],
  suspended: ['connected', 'lost', 'closed'],
  lost: ['closed'],
  closed: [],
};

/**
 * Opens a session and resolves once it is connected (a probe was answered). Rejects with
 * ConfigError for bad options, ZkError CONNECT_TIMEOUT (naming the connect string) after
 * connectTimeoutMs, or ZkError AUTH_FAILED; the library client is closed in every failure case.
 */
export async function openSession(opts: ZkSessionOptions): Promise<ZkSession> {
  const session = new Session(opts);
  await session.start();
  return session;
}

class Session implements ZkSession {
  readonly generation = ++lastGeneration;

  private current: SessionState = 'connecting';
  private id = '0000000000000000';
  private password: Buffer = Buffer.alloc(16);
  private timeoutMs: number;
  private lastSent = -Infinity;

  private readonly connect: string;
  private readonly requestedTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly pingIntervalOpt: number | undefined;
  private readonly digestAuth: string[];
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly client: LibClient;

  private readonly listeners = new Set<StateListener>();
  private readonly deliveries: Array<[SessionState, SessionState]> = [];
  private delivering = false;

  private readonly pending = new Set<Pending>();
  private readonly wrappedWatchers = new WeakMap<Watcher, LibWatcher>();

  /** The library reported a live connection (between its 'connected' and 'disconnected'). */
  private libConnected = false;
  /** Bumped on every library (re)connect: a probe issued before it may sit in a dead queue. */
  private libConnects = 0;
  private probeInFlight: { connects: number } | null = null;

  private cancelDeadline: () => void = () => {};
  private cancelProbe: () => void = () => {};
  private cancelConnect: () => void = () => {};

  private opened: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private libraryClosed: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(opts: ZkSessionOptions) {
    const parsed = parseConnectString(opts.connect);
    this.connect = parsed.normalized;
    this.requestedTimeoutMs = positiveMs(opts.sessionTimeoutMs, 'sessionTimeoutMs');
    this.requestTimeoutMs = positiveMs(opts.requestTimeoutMs, 'requestTimeoutMs');
    this.connectTimeoutMs =
      opts.connectTimeoutMs === undefined
        ? this.requestedTimeoutMs
        : positiveMs(opts.connectTimeoutMs, 'connectTimeoutMs');
    this.pingIntervalOpt =
      opts.pingIntervalMs === undefined ? undefined : positiveMs(opts.pingIntervalMs, 'pingIntervalMs');
    this.digestAuth = (opts.digestAuth ?? []).map((cred, i) => {
      // Never echo the credential itself: it is a secret.
      if (typeof cred !== 'string' || !/^[^:]+:.+$/.test(cred)) {
        throw new ConfigError(`ZooKeeper digest credential #${i + 1} must have the form "user:password"`);
      }
      return cred;
    });
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? silentLogger).child({ component: 'zk-session', generation: this.generation });
    this.timeoutMs = this.requestedTimeoutMs;

    this.client = zk.createClient(this.connect, {
      sessionTimeout: this.requestedTimeoutMs,
      // Between full passes over the server list; the default 1 s is a large slice of a short session.
      spinDelay: Math.min(1000, Math.max(50, Math.floor(this.requestedTimeoutMs / 20))),
      // A retried create of our own ephemeral would come back as NODE_EXISTS (pitfall 8).
      retries: 0,
    });
  }

  // --- ZkSession: properties ---------------------------------------------------------------

  get state(): SessionState {
    return this.current;
  }
  get sessionId(): string {
    return this.id;
  }
  get sessionPassword(): Buffer {
    return Buffer.from(this.password);
  }
  get negotiatedTimeoutMs(): number {
    return this.timeoutMs;
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

  // --- lifecycle -----------------------------------------------------------------------------

  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.opened = { resolve, reject };
      const c = this.client;
      c.on('connected', () => this.onLibConnected());
      c.on('connectedReadOnly', () => this.onLibDisconnected('the server is read-only'));
      c.on('disconnected', () => this.onLibDisconnected('the connection to the server was lost'));
      c.on('expired', () => this.onLibTerminal('the server reported the session expired', 'SESSION_EXPIRED'));
      c.on('authenticationFailed', () =>
        this.onLibTerminal('the server rejected our credentials', 'AUTH_FAILED'),
      );
      for (const cred of this.digestAuth) c.addAuthInfo('digest', Buffer.from(cred));

      this.cancelConnect = this.clock.setTimer(this.connectTimeoutMs, () => {
        if (this.current !== 'connecting') return;
        this.failOpen(
          new ZkError(
            'CONNECT_TIMEOUT',
            `could not connect to ZooKeeper at ${this.connect} within ${this.connectTimeoutMs} ms`,
          ),
        );
      });
      this.log.debug('connecting', { connect: this.connect, sessionTimeoutMs: this.requestedTimeoutMs });
      try {
        c.connect();
      } catch (err) {
        this.failOpen(
          new ZkError('CLIENT_ERROR', `could not start the ZooKeeper client: ${errorMessage(err)}`, {
            cause: err,
          }),
        );
      }
    });
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.terminate('closed', 'close() was called');
      this.closing = this.libraryClosed ?? Promise.resolve();
    }
    return this.closing;
  }

  private failOpen(err: ZkError): void {
    const opened = this.opened;
    this.opened = null;
    this.terminate('closed', err.message);
    opened?.reject(err);
  }

  // --- library events (these run inside the library's socket handlers: never throw) -------

  private onLibConnected(): void {
    guarded(this.log, 'connected', () => {
      if (this.isTerminal()) return;
      const id = hex64(this.client.getSessionId(), 'session id');
      if (this.current !== 'connecting' && id !== this.id) {
        // The library never switches sessions on its own; if it ever does, our ephemerals are gone.
        this.lose(`the client re-connected with a different session ${id}`);
        return;
      }
      this.id = id;
      this.password = this.client.getSessionPassword();
      const negotiated = this.client.getSessionTimeout();
      if (negotiated !== this.timeoutMs) {
        this.log.info('session timeout negotiated', {
          requestedMs: this.requestedTimeoutMs,
          negotiatedMs: negotiated,
        });
        this.timeoutMs = negotiated;
      }
      if (this.pingIntervalOpt !== undefined && this.pingIntervalOpt > negotiated / 3) {
        this.log.warn('pingIntervalMs exceeds a third of the negotiated session timeout; using the third', {
          pingIntervalMs: this.pingIntervalOpt,
          negotiatedMs: negotiated,
        });
      }
      this.libConnected = true;
      this.libConnects += 1;
      this.log.debug('library connected; probing before we call the session connected', { sessionId: id });
      // Not "connected" yet: the handshake's send time is unknown, a probe's is not.
      this.probe();
      this.scheduleDeadline();
    });
  }

  private onLibDisconnected(why: string): void {
    guarded(this.log, 'disconnected', () => {
      this.libConnected = false;
      if (this.current === 'connected') this.setState('suspended', why);
    });
  }

  private onLibTerminal(why: string, code: string): void {
    guarded(this.log, code, () => {
      this.libConnected = false;
      if (this.current === 'connecting') {
        this.failOpen(new ZkError(code, `could not open a ZooKeeper session at ${this.connect}: ${why}`));
      } else {
        this.lose(why);
      }
    });
  }

  // --- liveness ------------------------------------------------------------------------------

  /** Records a server reply to a request sent at `sentAt` and acts on it. */
  private onServerReply(sentAt: number): void {
    if (this.isTerminal()) return;
    // A lost deadline that passed while the event loop was busy counts before this late news:
    // by our own rule we could not have known the session was alive in time.
    if (this.current !== 'connecting' && this.clock.now() - this.lastSent >= this.timeoutMs) {
      this.checkDeadlines();
      return;
    }
    if (sentAt > this.lastSent) this.lastSent = sentAt;
    if (!this.libConnected) return;
    const silentFor = this.clock.now() - this.lastSent;
    if (silentFor >= this.suspendAfterMs()) return; // an old answer proves too little
    if (this.current === 'connecting') {
      this.cancelConnect();
      this.setState('connected', `session ${this.id} established (timeout ${this.timeoutMs} ms)`);
      const opened = this.opened;
      this.opened = null;
      opened?.resolve();
      this.scheduleProbe();
    } else if (this.current === 'suspended') {
      this.setState('connected', `a request sent ${Math.round(silentFor)} ms ago was answered`);
    }
  }

  private suspendAfterMs(): number {
    return (this.timeoutMs * 2) / 3;
  }

  /** Applies the local deadlines; returns true when the session is (now) lost. */
  private checkDeadlines(): boolean {
    if (this.current !== 'connected' && this.current !== 'suspended') return this.isTerminal();
    const silentFor = this.clock.now() - this.lastSent;
    if (silentFor >= this.timeoutMs) {
      this.lose(
        `no reply to any request sent in the last ${Math.round(silentFor)} ms ` +
          `(negotiated session timeout ${this.timeoutMs} ms): the server may have expired the session`,
      );
      return true;
    }
    if (this.current === 'connected' && silentFor >= this.suspendAfterMs()) {
      this.setState(
        'suspended',
        `no reply to any request sent in the last ${Math.round(silentFor)} ms (2/3 of ${this.timeoutMs} ms)`,
      );
      // The library has no read timeout: drop the silent connection so it tries the next
      // server, as the Java client does after 2/3 of the timeout. Deferred: we may be inside
      // the library's socket handler.
      setImmediate(() => {
        if (this.current === 'suspended' && this.libConnected) this.dropConnection();
      });
    }
    return false;
  }

  /** One timer, always at the next deadline that the current state can reach. */
  private scheduleDeadline(): void {
    this.cancelDeadline();
    if (this.current !== 'connected' && this.current !== 'suspended') return;
    const at = this.lastSent + (this.current === 'connected' ? this.suspendAfterMs() : this.timeoutMs);
    // +1: node timers may fire a fraction of a millisecond before performance.now() says so.
    const delay = Math.max(1, Math.ceil(at - this.clock.now()) + 1);
    this.cancelDeadline = this.clock.setTimer(delay, () => {
      guarded(this.log, 'deadline', () => {
        this.checkDeadlines();
        this.scheduleDeadline();
      });
    });
  }

  private pingIntervalMs(): number {
    const third = this.timeoutMs / 3;
    return Math.max(1, Math.min(this.pingIntervalOpt ?? third, third));
  }

  private scheduleProbe(): void {
    this.cancelProbe();
    if (this.isTerminal()) return;
    this.cancelProbe = this.clock.setTimer(this.pingIntervalMs(), () => {
      guarded(this.log, 'probe', () => {
        this.probe();
        this.scheduleProbe();
      });
    });
  }

  /**
   * Sends exists("/") unless a probe is already on the wire of the current connection: replies
   * come in order, so a second one cannot come back sooner.
   */
  private probe(): void {
    if (this.isTerminal() || !this.libConnected) return;
    if (this.probeInFlight && this.probeInFlight.connects === this.libConnects) return;
    const mine = { connects: this.libConnects };
    this.probeInFlight = mine;
    const timeoutMs = Math.min(this.requestTimeoutMs, this.timeoutMs);
    this.request<void>(
      'probe',
      '/',
      timeoutMs,
      (reply) => this.client.exists('/', undefined, reply),
      () => {},
    )
      .catch(() => {
        // Failure is reflected in the deadlines, not here.
      })
      .finally(() => {
        if (this.probeInFlight === mine) this.probeInFlight = null;
      });
  }

  private dropConnection(): void {
    const socket = this.client.connectionManager.socket;
    if (socket && !socket.destroyed) {
      this.log.debug('dropping the silent connection so the client tries the next server');
      socket.destroy();
    }
  }

  // --- state ---------------------------------------------------------------------------------

  private isTerminal(): boolean {
    return this.current === 'lost' || this.current === 'closed';
  }

  private lose(reason: string): void {
    this.terminate('lost', reason);
  }

  /** The single place where the state changes. */
  private setState(next: SessionState, reason: string): void {
    const prev = this.current;
    if (prev === next) return;
    if (!ALLOWED[prev].includes(next)) {
      this.log.error(`ignored impossible session transition ${prev} -> ${next}`, { reason });
      return;
    }
    this.current = next;
    const fields = {
      from: prev,
      to: next,
      reason,
      sessionId: this.id,
      negotiatedTimeoutMs: this.timeoutMs,
      sinceLastReplySentMs: Number.isFinite(this.lastSent)
        ? Math.round(this.clock.now() - this.lastSent)
        : undefined,
    };
    if (next === 'lost' || next === 'suspended') this.log.warn(`zk session ${prev} -> ${next}`, fields);
    else this.log.info(`zk session ${prev} -> ${next}`, fields);
    this.scheduleDeadline();
    this.deliveries.push([next, prev]);
    // Listeners run after the library's handler returned (they may call back into us or the
    // library), and strictly in transition order even if one of them changes the state again.
    if (!this.delivering) {
      this.delivering = true;
      queueMicrotask(() => this.deliver());
    }
  }

  private deliver(): void {
    for (let item = this.deliveries.shift(); item; item = this.deliveries.shift()) {
      for (const listener of [...this.listeners]) {
        try {
          listener(item[0], item[1]);
        } catch (err) {
          this.log.error('a session state listener threw', { error: err, state: item[0] });
        }
      }
    }
    this.delivering = false;
  }

  /** lost / closed: fail everything outstanding at once and stop the library for good. */
  private terminate(next: 'lost' | 'closed', reason: string): void {
    if (this.current === next || this.current === 'closed') return;
    const prev = this.current;
    this.setState(next, reason);
    this.cancelConnect();
    this.cancelProbe();
    this.cancelDeadline();
    this.libConnected = false;
    const code = next === 'lost' ? 'SESSION_LOST' : 'CLOSED';
    const what = next === 'lost' ? `session ${this.id} lost (${reason})` : `session ${this.id} closed`;
    for (const p of [...this.pending]) {
      this.pending.delete(p);
      p.cancelTimer();
      p.reject(new ZkError(code, `ZooKeeper ${p.op} ${p.path} failed: ${what}`, { path: p.path }));
    }
    if (prev !== 'lost') this.libraryClosed = this.shutdownLibrary();
  }

  /**
   * Ends the library client: CLOSE_SESSION when it can (ephemerals vanish now, not after the
   * timeout), bounded by requestTimeoutMs, after which its socket is destroyed. Deferred to a
   * later macrotask: close() inside a 'disconnected' handler is undone by its reconnect.
   */
  private shutdownLibrary(): Promise<void> {
    const cm = this.client.connectionManager;
    return new Promise<void>((resolve) => {
      setImmediate(() => {
        let done = false;
        let cancelBound: () => void = () => {};
        const finish = (): void => {
          if (done) return;
          done = true;
          cancelBound();
          cm.off('state', onState);
          resolve();
        };
        const onState = (s: number): void => {
          if (s === CM_CLOSED) finish();
        };
        if (cm.state === CM_CLOSED) {
          finish();
          return;
        }
        cm.on('state', onState);
        cancelBound = this.clock.setTimer(this.requestTimeoutMs, () => {
          this.log.debug('the server did not confirm CLOSE_SESSION in time; dropping the connection');
          this.dropConnection();
          finish();
        });
        try {
          if (cm.state === CM_SESSION_EXPIRED || cm.state === CM_AUTHENTICATION_FAILED) {
            // Nothing left to close on a server; the library reaches CLOSED when the socket goes.
            this.dropConnection();
          } else {
            this.client.close();
          }
        } catch (err) {
          this.log.warn('closing the ZooKeeper client failed', { error: err });
          this.dropConnection();
          finish();
        }
      });
    });
  }

  // --- requests ------------------------------------------------------------------------------

  /**
   * Issues one library call with our own timeout. `decode` turns the library's results into
   * ours; it runs inside the library's socket handler, so everything here is caught.
   */
  private request<T>(
    op: string,
    path: string,
    timeoutMs: number,
    issue: (reply: LibCallback) => void,
    decode: (...results: unknown[]) => T,
    acceptError?: (err: unknown) => T | undefined,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.isTerminal()) {
        reject(this.terminalError(op, path));
        return;
      }
      const p: Pending = { op, path, sentAt: this.clock.now(), reject, cancelTimer: () => {} };
      this.pending.add(p);
      p.cancelTimer = this.clock.setTimer(timeoutMs, () => {
        if (!this.pending.delete(p)) return;
        reject(
          new ZkError('TIMEOUT', `ZooKeeper ${op} ${path} got no reply within ${timeoutMs} ms`, { path }),
        );
      });
      const reply: LibCallback = (err, ...results) => {
        try {
          if (this.isTerminal()) return; // already failed with SESSION_LOST / CLOSED
          const fromServer = !err || (isLibException(err) && !LOCAL_ERROR_CODES.has(err.code));
          if (fromServer) this.onServerReply(p.sentAt);
          if (!this.pending.delete(p)) return; // timed out, or failed by terminate() just now
          p.cancelTimer();
          if (err) {
            const accepted = acceptError?.(err);
            if (accepted !== undefined) resolve(accepted);
            else reject(toZkError(err, op, path));
          } else {
            resolve(decode(...results));
          }
        } catch (e) {
          this.pending.delete(p);
          p.cancelTimer();
          reject(e instanceof ZkError ? e : toZkError(e, op, path));
        }
      };
      try {
        issue(reply);
      } catch (err) {
        // The library validates arguments by throwing (bad path, data over 1 MB, ...).
        this.pending.delete(p);
        p.cancelTimer();
        reject(
          err instanceof ZkError
            ? err
            : new ZkError('BAD_ARGUMENTS', `ZooKeeper ${op} ${path} rejected: ${errorMessage(err)}`, {
                cause: err,
                path,
              }),
        );
      }
    });
  }

  private terminalError(op: string, path: string): ZkError {
    return this.current === 'lost'
      ? new ZkError('SESSION_LOST', `ZooKeeper ${op} ${path} refused: session ${this.id} is lost`, { path })
      : new ZkError('CLOSED', `ZooKeeper ${op} ${path} refused: session ${this.id} is closed`, { path });
  }

  private call<T>(
    op: string,
    path: string,
    issue: (reply: LibCallback) => void,
    decode: (...results: unknown[]) => T,
    acceptError?: (err: unknown) => T | undefined,
  ): Promise<T> {
    return this.request(op, path, this.requestTimeoutMs, issue, decode, acceptError);
  }

  private libWatcher(watcher: Watcher | undefined): LibWatcher | undefined {
    if (!watcher) return undefined;
    let wrapped = this.wrappedWatchers.get(watcher);
    if (!wrapped) {
      const generation = this.generation;
      wrapped = (event) => {
        // Inside the library's socket handler: defer, and decide at delivery time.
        queueMicrotask(() => this.deliverWatch(generation, watcher, event));
      };
      // Same function for the same watcher, so the library de-duplicates it per path as ZooKeeper does.
      // The library registers it when the reply arrives, even one we already timed out: such a
      // watcher may still fire once, which is harmless (a watch is a hint to re-read).
      this.wrappedWatchers.set(watcher, wrapped);
    }
    return wrapped;
  }

  private deliverWatch(generation: number, watcher: Watcher, event: Parameters<LibWatcher>[0]): void {
    try {
      const type = toWatchEventType(event.getType());
      const path = event.getPath();
      // After a long pause the news may be read before our deadline timer runs: the deadline
      // counts first, as for replies.
      this.checkDeadlines();
      if (generation !== this.generation || this.isTerminal()) {
        this.log.debug('dropped a watch event of a finished session', { type, path, state: this.current });
        return;
      }
      if (!type) return;
      const ev: WatchEvent = { type, path };
      watcher(ev);
    } catch (err) {
      this.log.error('a watcher threw', { error: err });
    }
  }

  private libAcls(acl: Acl[] | undefined): LibAcl[] {
    const list = acl ?? [{ scheme: 'world', id: 'anyone', perms: 31 }];
    if (list.length === 0) throw new ZkError('INVALID_ACL', 'an ACL must have at least one entry');
    list.forEach(checkAcl);
    return list.map((a) => new zk.ACL(a.perms, new zk.Id(a.scheme, a.id)));
  }

  // --- ZkSession: operations -----------------------------------------------------------------

  create(path: string, data: Buffer | null, opts: { mode?: CreateMode; acl?: Acl[] } = {}): Promise<string> {
    const mode = opts.mode ?? 'persistent';
    return this.call(
      'create',
      path,
      (reply) => {
        const flags = CREATE_MODE[mode];
        if (flags === undefined) throw new Error(`unknown create mode ${String(mode)}`);
        this.client.create(path, data ?? undefined, this.libAcls(opts.acl), flags, reply);
      },
      (created) => String(created),
    );
  }

  getData(path: string, watcher?: Watcher): Promise<{ data: Buffer | null; stat: Stat }> {
    return this.call(
      'getData',
      path,
      (reply) => this.client.getData(path, this.libWatcher(watcher), reply),
      (data, stat) => ({ data: Buffer.isBuffer(data) ? data : null, stat: toStat(stat as RawStat) }),
    );
  }

  exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    return this.call(
      'exists',
      path,
      (reply) => this.client.exists(path, this.libWatcher(watcher), reply),
      (stat) => (stat ? toStat(stat as RawStat) : null),
    );
  }

  getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    return this.call(
      'getChildren',
      path,
      (reply) => this.client.getChildren(path, this.libWatcher(watcher), reply),
      (children) => (Array.isArray(children) ? children.map(String) : []),
    );
  }

  setData(path: string, data: Buffer | null, version: number): Promise<Stat> {
    return this.call(
      'setData',
      path,
      (reply) => {
        checkVersion(version);
        // The library cannot send null data here; an empty buffer is the same to ZooKeeper readers.
        this.client.setData(path, data ?? Buffer.alloc(0), version, reply);
      },
      (stat) => toStat(stat as RawStat),
    );
  }

  remove(path: string, version: number): Promise<void> {
    return this.call(
      'remove',
      path,
      (reply) => {
        checkVersion(version);
        this.client.remove(path, version, reply);
      },
      () => undefined,
    );
  }

  multi(ops: Op[]): Promise<void> {
    const where = ops.length === 0 ? '(no ops)' : ops.map((o) => o.path).join(',');
    let failedAt = -1;
    return this.call(
      'multi',
      where,
      (reply) => {
        const tx = this.client.transaction();
        for (const o of ops) {
          switch (o.op) {
            case 'create': {
              const flags = CREATE_MODE[o.mode ?? 'persistent'];
              if (flags === undefined) throw new Error(`unknown create mode ${String(o.mode)}`);
              tx.create(o.path, o.data ?? undefined, this.libAcls(o.acl), flags);
              break;
            }
            case 'setData':
              checkVersion(o.version);
              tx.setData(o.path, o.data ?? Buffer.alloc(0), o.version);
              break;
            case 'remove':
              checkVersion(o.version);
              tx.remove(o.path, o.version);
              break;
            case 'check':
              checkVersion(o.version);
              tx.check(o.path, o.version);
              break;
            default:
              throw new Error(`unknown multi op ${JSON.stringify((o as { op?: unknown }).op)}`);
          }
        }
        tx.commit((err, results) => {
          if (err && Array.isArray(results)) {
            failedAt = results.findIndex(
              (r: { type?: number; err?: number }) => r.type === OP_ERROR && r.err !== 0,
            );
          }
          reply(err, results);
        });
      },
      () => undefined,
      (err) => {
        // Name the op that failed: "multi a,b,c failed" says too little to act on.
        const op = ops[failedAt];
        if (!op || !isLibException(err)) return undefined;
        throw new ZkError(
          err.name,
          `ZooKeeper multi failed at op #${failedAt + 1} (${op.op} ${op.path}): ${err.name} (${err.code})`,
          { cause: err, path: op.path },
        );
      },
    );
  }

  getACL(path: string): Promise<{ acl: Acl[]; stat: Stat }> {
    return this.call(
      'getACL',
      path,
      (reply) => this.client.getACL(path, reply),
      (acls, stat) => ({
        acl: (Array.isArray(acls) ? (acls as LibAcl[]) : []).map((a) => ({
          scheme: a.id.scheme,
          id: a.id.id,
          perms: a.permission,
        })),
        stat: toStat(stat as RawStat),
      }),
    );
  }

  async mkdirp(path: string, acl?: Acl[]): Promise<void> {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new ZkError('BAD_ARGUMENTS', `ZooKeeper mkdirp ${String(path)} rejected: not an absolute path`);
    }
    if (path === '/' || (await this.exists(path)) !== null) return;
    let prefix = '';
    for (const segment of path.slice(1).split('/')) {
      prefix += '/' + segment;
      try {
        await this.create(prefix, null, { mode: 'persistent', acl });
      } catch (err) {
        if (err instanceof ZkError && err.zkCode === 'NODE_EXISTS') continue;
        // The server checks the parent's CREATE permission before existence: an existing node
        // under a parent we may not create in reads as NO_AUTH.
        if (err instanceof ZkError && err.zkCode === 'NO_AUTH' && (await this.exists(prefix)) !== null)
          continue;
        throw err;
      }
    }
  }
}

function guarded(log: Logger, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    // Throwing here would unwind into the library's socket handler and kill the process.
    log.error(`internal error while handling ZooKeeper ${what}`, { error: err });
  }
}

function positiveMs(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(
      `ZooKeeper session option ${name} must be a positive number of ms, got ${String(value)}`,
    );
  }
  return value;
}

function checkVersion(version: number): void {
  if (!Number.isInteger(version) || version < -1) {
    throw new Error(`version must be an integer >= -1 (-1 = any), got ${String(version)}`);
  }
}
