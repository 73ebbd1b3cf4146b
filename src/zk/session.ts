/**
 * The ZooKeeper session layer: the ONLY module in hafc that imports node-zookeeper-client.
 *
 * The failover controller's safety rests on one question this module answers at every moment:
 * until when can the server NOT have expired our session (and with it our ephemeral lock)? The
 * library cannot answer it (see the README's section on the client, and the hunks of
 * patches/node-zookeeper-client+1.1.3.patch): it has no
 * read timeout, rarely reports expiry, and never fails some requests. And a reply as such proves
 * little: a follower cut off from the leader keeps answering reads for up to syncLimit x tickTime
 * while the leader, which alone expires sessions, hears nothing of us. So we keep our own account,
 * on the monotonic clock, of what the QUORUM LEADER must have seen:
 *
 *   anchor = a time before which the leader last renewed ("touched") our session, proven by
 *            - a (re)connect handshake: the leader creates or revalidates the session (and so
 *              touches it) after we start connecting; or
 *            - a write W that succeeded (it went through the leader) together with an earlier
 *              request M on the same connection answered at least G before W was sent: the
 *              follower relays session touches to the leader only in its replies to the leader's
 *              pings (every tickTime/2), and such a reply, sent after M arrived and before W was
 *              forwarded, travels ahead of W on the same stream, so the leader processed M's touch
 *              before it committed W. G = the relay allowance, tickTime/2 plus slack.
 *   expiryNotBefore = anchor + T (the negotiated timeout): the leader expires a session no
 *            earlier than T after its last touch.
 *
 *   - now >= anchor + 2/3 T -> suspended (act as if we do not hold the lock; the silent or
 *     isolated connection is dropped so the library tries the next server);
 *   - now >= anchor + T     -> lost (terminal: the server may have expired us), whatever the
 *     library says.
 * Two probes keep the anchor fresh while healthy: a cheap read (exists "/", answered by the
 * follower) every relay allowance / 2, and a quorum write (a multi with one `check` of "/", a tiny
 * no-op transaction) every writeProbeIntervalMs. Reads alone never move the anchor.
 *
 * Library events are hints on top: 'disconnected' -> suspended at once; 'expired' and
 * 'authenticationFailed' -> lost at once.
 *
 * Library quirks handled here rather than in the patch: retries are 0 (a retried create of our
 * own ephemeral comes back as NODE_EXISTS); close() is always deferred to a later macrotask
 * (close inside a 'disconnected' handler is overridden by the library's reconnect); every request
 * has our own timeout; callbacks and watch events are dropped once the session is lost or closed.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
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
    options: {
      sessionTimeout: number;
      spinDelay: number;
      retries: number;
      sessionId?: Buffer;
      sessionPassword?: Buffer;
    },
  ): LibClient;
  ACL: new (perms: number, id: LibId) => LibAcl;
  Id: new (scheme: string, id: string) => LibId;
}

const requireLib = createRequire(import.meta.url);
const zk = requireLib('node-zookeeper-client') as ZkLibrary;

let patchChecked = false;

/**
 * The library as published crashes the process on some server replies (see the patch): running
 * it unpatched (an install with --ignore-scripts, a copied node_modules) must be refused, loudly.
 */
function assertPatched(): void {
  if (patchChecked) return;
  const file = requireLib.resolve('node-zookeeper-client/lib/ConnectionManager.js');
  if (!readFileSync(file, 'utf8').includes('hafc patch')) {
    throw new ConfigError(
      `node-zookeeper-client at ${file} is not patched: its crash fixes are missing (was npm run with ` +
        '--ignore-scripts?); reinstall hafc so that patch-package applies patches/node-zookeeper-client+1.1.3.patch',
    );
  }
  patchChecked = true;
}

/** ConnectionManager.STATES of the library. */
const CM_CONNECTING = 1;
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
  /** The library connection it was sent on (libConnects at send time). */
  conn: number;
  reject: (err: ZkError) => void;
  cancelTimer: () => void;
}

/** Requests that the quorum leader must process: their success proves it saw them. */
const QUORUM_OPS = new Set(['create', 'setData', 'remove', 'multi', 'quorum probe']);
/** Answered requests kept per connection as candidates for the relay argument. */
const MAX_ANSWERED = 256;

const ALLOWED: Record<SessionState, readonly SessionState[]> = {
  connecting: ['connected', 'closed'],
  connected: ['suspended', 'lost', 'closed'],
  suspended: ['connected', 'lost', 'closed'],
  lost: ['closed'],
  closed: [],
};

/**
 * Opens a session and resolves once it is connected: the handshake succeeded and a quorum write
 * went through. Rejects with ConfigError for bad options, ZkError CONNECT_TIMEOUT (naming the
 * connect string) after connectTimeoutMs, NO_CHROOT when the connect string's chroot does not
 * exist, or AUTH_FAILED; the library client is closed in every failure case.
 */
export async function openSession(opts: ZkSessionOptions): Promise<ZkSession> {
  assertPatched();
  const session = new Session(opts);
  await session.start();
  return session;
}

/**
 * The relay allowance for a ZooKeeper ensemble whose minSessionTimeout is `minSessionTimeoutMs`:
 * half its tickTime (servers keep minSessionTimeout = 2 x tickTime unless an operator set it)
 * plus slack for a leader whose ping loop runs late.
 */
export function relayAllowanceFromMinSessionMs(minSessionTimeoutMs: number): number {
  const halfTick = minSessionTimeoutMs / 4;
  return Math.round(halfTick + Math.max(25, halfTick / 4));
}

/**
 * Asks the servers for their minSessionTimeout by requesting a session shorter than any sane
 * minimum (the server grants its minimum instead), and derives the relay allowance from it. Only
 * the handshake is needed, so the library is used bare here. The request cannot be much shorter:
 * the library bounds each connect attempt by a fraction of it.
 */
export function discoverRelayAllowanceMs(opts: {
  connect: string;
  timeoutMs: number;
  digestAuth?: string[];
  signal?: AbortSignal;
}): Promise<{ relayAllowanceMs: number; minSessionTimeoutMs: number }> {
  assertPatched();
  const connect = parseConnectString(opts.connect).normalized;
  const client = zk.createClient(connect, {
    sessionTimeout: DISCOVERY_SESSION_MS,
    spinDelay: 50,
    retries: 0,
  });
  for (const cred of opts.digestAuth ?? []) client.addAuthInfo('digest', Buffer.from(cred));
  return new Promise((resolve, reject) => {
    let done = false;
    const onAbort = () => finish(() => reject(new ZkError('ABORTED', 'ZooKeeper connect attempt aborted')));
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // Deferred: close() inside a library handler is undone by its reconnect logic.
      setImmediate(() => {
        try {
          client.close();
        } catch {
          // nothing to close
        }
      });
      fn();
    };
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new ZkError(
              'CONNECT_TIMEOUT',
              `could not reach ZooKeeper at ${connect} within ${opts.timeoutMs} ms`,
            ),
          ),
        ),
      opts.timeoutMs,
    );
    client.once('connected', () =>
      finish(() => {
        const min = client.getSessionTimeout();
        resolve({ minSessionTimeoutMs: min, relayAllowanceMs: relayAllowanceFromMinSessionMs(min) });
      }),
    );
    client.once('authenticationFailed', () =>
      finish(() => reject(new ZkError('AUTH_FAILED', `ZooKeeper at ${connect} rejected our credentials`))),
    );
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      client.connect();
    } catch (err) {
      finish(() =>
        reject(new ZkError('CLIENT_ERROR', `could not start the ZooKeeper client: ${errorMessage(err)}`)),
      );
    }
  });
}

/** Shorter than any ensemble's minSessionTimeout we expect (2 x a tickTime of 300 ms or more). */
const DISCOVERY_SESSION_MS = 600;

class Session implements ZkSession {
  readonly generation = ++lastGeneration;

  private current: SessionState = 'connecting';
  private id = '0000000000000000';
  private password: Buffer = Buffer.alloc(16);
  private timeoutMs: number;
  /** Send time of the latest request any server answered: proves the connection, not the session. */
  private lastSent = -Infinity;
  /** The leader touched the session no earlier than this (see the header). */
  private anchor = -Infinity;
  /** A lower bound on when the handshake of the current (or next) connection was sent. */
  private connectStartedAt = -Infinity;
  /** Requests answered on the current connection: candidates for pairing with a later write. */
  private answered: Array<{ sentAt: number; answeredAt: number }> = [];
  private relayMs: number;

  private readonly connect: string;
  private readonly requestedTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly relayOpt: number | undefined;
  private readonly leaseReserveMs: number;
  private readonly abortSignal: AbortSignal | undefined;
  private readonly chroot: string | undefined;
  private readonly servers: readonly { host: string; port: number }[];
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
  private readProbeOn = -1;
  private writeProbeOn = -1;
  private chrootLogged = false;

  private cancelDeadline: () => void = () => {};
  private cancelReadProbe: () => void = () => {};
  private cancelWriteProbe: () => void = () => {};
  private cancelConnect: () => void = () => {};

  private opened: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private libraryClosed: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(opts: ZkSessionOptions) {
    const parsed = parseConnectString(opts.connect);
    this.connect = parsed.normalized;
    this.chroot = parsed.chroot;
    this.servers = parsed.servers;
    this.requestedTimeoutMs = positiveMs(opts.sessionTimeoutMs, 'sessionTimeoutMs');
    this.requestTimeoutMs = positiveMs(opts.requestTimeoutMs, 'requestTimeoutMs');
    this.connectTimeoutMs =
      opts.connectTimeoutMs === undefined
        ? this.requestedTimeoutMs
        : positiveMs(opts.connectTimeoutMs, 'connectTimeoutMs');
    this.relayOpt =
      opts.relayAllowanceMs === undefined
        ? undefined
        : nonNegativeMs(opts.relayAllowanceMs, 'relayAllowanceMs');
    this.leaseReserveMs =
      opts.leaseReserveMs === undefined ? 0 : nonNegativeMs(opts.leaseReserveMs, 'leaseReserveMs');
    this.abortSignal = opts.signal;
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
    this.relayMs = this.relayOpt ?? this.timeoutMs / 4;

    this.client = zk.createClient(this.connect, {
      sessionTimeout: this.requestedTimeoutMs,
      // Between full passes over the server list; the default 1 s is a large slice of a short session.
      spinDelay: Math.min(1000, Math.max(50, Math.floor(this.requestedTimeoutMs / 20))),
      // A retried create of our own ephemeral would come back as NODE_EXISTS (pitfall 8).
      retries: 0,
      ...(opts.resume
        ? { sessionId: Buffer.from(opts.resume.sessionId, 'hex'), sessionPassword: opts.resume.password }
        : {}),
    });
    this.resumeId = opts.resume?.sessionId ?? null;
  }

  private readonly resumeId: string | null;

  get resumed(): boolean {
    return this.resumeId !== null && this.id === this.resumeId;
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
  get expiryNotBefore(): number {
    return this.anchor + this.timeoutMs;
  }
  get relayAllowanceMs(): number {
    return this.relayMs;
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
    const signal = this.abortSignal;
    const onAbort = () =>
      this.failOpen(new ZkError('ABORTED', `ZooKeeper connect to ${this.connect} aborted`));
    const opening = new Promise<void>((resolve, reject) => {
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
      // Every connect attempt starts here; its handshake is sent later, so this is a lower bound
      // on when the leader created or revalidated the session if the attempt succeeds.
      c.connectionManager.on('state', (st: number) => {
        if (st === CM_CONNECTING) this.connectStartedAt = this.clock.now();
      });
      // The patched library drops a connection whose server sent a malformed frame; say so, or
      // it reads like any network flap.
      c.connectionManager.on('protocolError', (err: unknown) => {
        guarded(this.log, 'protocolError', () =>
          this.log.warn('dropped a ZooKeeper connection: malformed reply', { error: errorMessage(err) }),
        );
      });

      // In parallel: a server name that does not resolve should be named as such, not read like
      // any other unreachable server.
      const unresolved: string[] = [];
      for (const host of new Set(this.servers.map((sv) => sv.host))) {
        if (isIP(host) !== 0) continue;
        lookup(host).catch((err: NodeJS.ErrnoException) => {
          unresolved.push(`${host} does not resolve (${err.code ?? errorMessage(err)})`);
        });
      }
      this.cancelConnect = this.clock.setTimer(this.connectTimeoutMs, () => {
        if (this.current !== 'connecting') return;
        const dns = unresolved.length ? `; ${unresolved.join(', ')}` : '';
        this.failOpen(
          new ZkError(
            'CONNECT_TIMEOUT',
            `could not connect to ZooKeeper at ${this.connect} within ${this.connectTimeoutMs} ms${dns}`,
          ),
        );
      });
      this.log.debug('connecting', { connect: this.connect, sessionTimeoutMs: this.requestedTimeoutMs });
      try {
        this.connectStartedAt = this.clock.now();
        c.connect();
      } catch (err) {
        this.failOpen(
          new ZkError('CLIENT_ERROR', `could not start the ZooKeeper client: ${errorMessage(err)}`, {
            cause: err,
          }),
        );
      }
    });
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => signal?.removeEventListener('abort', onAbort);
    opening.then(done, done);
    return opening;
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
        this.relayMs = this.relayOpt ?? negotiated / 4;
      }
      this.libConnected = true;
      this.libConnects += 1;
      this.answered = [];
      // The leader created or revalidated (touched) the session after we began this connection.
      this.advanceAnchor(this.connectStartedAt);
      this.log.debug('library connected', { sessionId: id });
      this.readProbe();
      // At once: a write is what proves the quorum path (and, on a fresh session, the chroot).
      this.writeProbe();
      this.scheduleReadProbe();
      // Soon again: a write sent one relay allowance after the first read was answered re-anchors
      // the lease on this connection.
      this.scheduleWriteProbe(
        Math.min(this.writeProbeIntervalMs(), this.relayMs + 2 * this.readProbeIntervalMs()),
      );
      this.scheduleDeadline();
    });
  }

  private onLibDisconnected(why: string): void {
    guarded(this.log, 'disconnected', () => {
      this.libConnected = false;
      // The next handshake is sent after this moment.
      this.connectStartedAt = this.clock.now();
      this.answered = [];
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

  /**
   * Records a server reply to a request sent at `sentAt` on connection `conn`; `quorum` when it
   * was a successful write (the leader committed it).
   */
  private onServerReply(sentAt: number, conn: number, quorum: boolean): void {
    if (this.isTerminal()) return;
    // A lost deadline that passed while the event loop was busy counts before this late news:
    // by our own rule we could not have known the session was alive in time.
    if (this.current !== 'connecting' && this.checkDeadlines()) return;
    if (sentAt > this.lastSent) this.lastSent = sentAt;
    if (!this.libConnected || conn !== this.libConnects) return; // an older connection's news
    if (quorum) {
      let best = -Infinity;
      for (const m of this.answered) {
        if (m.answeredAt <= sentAt - this.relayMs && m.sentAt > best) best = m.sentAt;
      }
      this.advanceAnchor(best);
      if (this.current === 'connecting') this.onFirstQuorumReply();
    }
    this.answered.push({ sentAt, answeredAt: this.clock.now() });
    if (this.answered.length > MAX_ANSWERED || (this.answered[0]?.sentAt ?? Infinity) <= this.anchor) {
      // Entries sent before the anchor can never raise it; keep the list short.
      this.answered = this.answered.filter((m) => m.sentAt > this.anchor).slice(-MAX_ANSWERED);
    }
  }

  /** Opening: the handshake anchored the session, and a write just proved the quorum path. */
  private onFirstQuorumReply(): void {
    if (this.clock.now() - this.anchor >= this.suspendAfterMs()) return; // too slow to count
    this.cancelConnect();
    this.setState('connected', `session ${this.id} established (timeout ${this.timeoutMs} ms)`);
    const opened = this.opened;
    this.opened = null;
    opened?.resolve();
  }

  private advanceAnchor(t: number): void {
    if (!(t > this.anchor)) return;
    this.anchor = t;
    this.scheduleDeadline();
    if (this.current !== 'suspended' || !this.libConnected) return;
    const age = this.clock.now() - this.anchor;
    if (age < this.suspendAfterMs()) {
      this.setState('connected', `the quorum confirmed the session ${Math.round(age)} ms ago`);
    }
  }

  private suspendAfterMs(): number {
    return (this.timeoutMs * 2) / 3;
  }

  /** Applies the local deadlines; returns true when the session is (now) lost. */
  private checkDeadlines(): boolean {
    if (this.current !== 'connected' && this.current !== 'suspended') return this.isTerminal();
    const age = this.clock.now() - this.anchor;
    if (age >= this.timeoutMs) {
      this.lose(
        `nothing proved the session to the quorum in the last ${Math.round(age)} ms ` +
          `(negotiated session timeout ${this.timeoutMs} ms): the server may have expired it`,
      );
      return true;
    }
    if (this.current === 'connected' && age >= this.suspendAfterMs()) {
      this.setState(
        'suspended',
        `no quorum-confirmed reply for ${Math.round(age)} ms (2/3 of ${this.timeoutMs} ms)` +
          (this.clock.now() - this.lastSent < this.suspendAfterMs()
            ? ': the server answers reads but not writes (a follower cut off from its leader?)'
            : ''),
      );
      // The library has no read timeout, and a follower cut off from the leader still answers
      // reads: drop the connection so the library tries the next server, as the Java client does
      // after 2/3 of the timeout. Deferred: we may be inside the library's socket handler.
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
    const at = this.anchor + (this.current === 'connected' ? this.suspendAfterMs() : this.timeoutMs);
    // +1: node timers may fire a fraction of a millisecond before performance.now() says so.
    const delay = Math.max(1, Math.ceil(at - this.clock.now()) + 1);
    this.cancelDeadline = this.clock.setTimer(delay, () => {
      guarded(this.log, 'deadline', () => {
        this.checkDeadlines();
        this.scheduleDeadline();
      });
    });
  }

  /** Reads touch the session on the follower and give later writes something to pair with. */
  private readProbeIntervalMs(): number {
    return Math.max(20, Math.min(this.relayMs / 2, this.timeoutMs / 12));
  }

  /**
   * Quorum writes keep the anchor fresh: several per lease budget (negotiated timeout, less the
   * relay allowance and what the lease must keep in reserve), and at least three per session.
   */
  private writeProbeIntervalMs(): number {
    const budget = this.timeoutMs - this.relayMs - this.leaseReserveMs;
    return Math.max(50, Math.min(this.timeoutMs / 3, budget / 3));
  }

  private scheduleReadProbe(): void {
    this.cancelReadProbe();
    if (this.isTerminal()) return;
    this.cancelReadProbe = this.clock.setTimer(this.readProbeIntervalMs(), () => {
      guarded(this.log, 'read probe', () => {
        // After a suspend of the host (or a long freeze) the first timer to run notices it.
        this.checkDeadlines();
        this.readProbe();
        this.scheduleReadProbe();
      });
    });
  }

  private scheduleWriteProbe(delayMs = this.writeProbeIntervalMs()): void {
    this.cancelWriteProbe();
    if (this.isTerminal()) return;
    this.cancelWriteProbe = this.clock.setTimer(delayMs, () => {
      guarded(this.log, 'write probe', () => {
        this.writeProbe();
        this.scheduleWriteProbe();
      });
    });
  }

  /** exists("/") unless one is on the wire of this connection already (replies come in order). */
  private readProbe(): void {
    if (this.isTerminal() || !this.libConnected || this.readProbeOn === this.libConnects) return;
    const conn = this.libConnects;
    this.readProbeOn = conn;
    this.request<void>(
      'probe',
      '/',
      Math.min(this.requestTimeoutMs, this.timeoutMs),
      (reply) => this.client.exists('/', undefined, reply),
      () => {},
    )
      .catch(() => {
        // Failure is reflected in the deadlines, not here.
      })
      .finally(() => {
        if (this.readProbeOn === conn) this.readProbeOn = -1;
      });
  }

  /** A no-op transaction (check "/" at any version): only the leader can commit it. */
  private writeProbe(): void {
    if (this.isTerminal() || !this.libConnected || this.writeProbeOn === this.libConnects) return;
    const conn = this.libConnects;
    this.writeProbeOn = conn;
    this.request<void>(
      'quorum probe',
      '/',
      Math.min(this.requestTimeoutMs, this.timeoutMs),
      (reply) => {
        const tx = this.client.transaction();
        tx.check('/', -1);
        tx.commit(reply);
      },
      () => {},
    )
      .catch((err: unknown) => this.onWriteProbeFailed(err))
      .finally(() => {
        if (this.writeProbeOn === conn) this.writeProbeOn = -1;
      });
  }

  private onWriteProbeFailed(err: unknown): void {
    // "/" is the chroot: NO_NODE means the connect string names a chroot that does not exist,
    // and nothing this agent does can work until an operator creates it.
    if (!(err instanceof ZkError && err.zkCode === 'NO_NODE')) return;
    const what =
      `the chroot ${this.chroot ?? '/'} of the ZooKeeper connect string ${this.connect} does not exist ` +
      `on the servers: create it (e.g. zkCli.sh create ${this.chroot ?? '/'} "") or remove it from zookeeper.connect`;
    if (this.current === 'connecting') {
      this.failOpen(new ZkError('NO_CHROOT', what));
    } else if (!this.chrootLogged) {
      this.chrootLogged = true;
      this.log.error(what);
    }
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
      sinceQuorumProofMs: Number.isFinite(this.anchor)
        ? Math.round(this.clock.now() - this.anchor)
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
    this.cancelReadProbe();
    this.cancelWriteProbe();
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
      const p: Pending = {
        op,
        path,
        sentAt: this.clock.now(),
        conn: this.libConnects,
        reject,
        cancelTimer: () => {},
      };
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
          if (fromServer) this.onServerReply(p.sentAt, p.conn, !err && QUORUM_OPS.has(op));
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

function nonNegativeMs(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(
      `ZooKeeper session option ${name} must be a number of ms >= 0, got ${String(value)}`,
    );
  }
  return value;
}

function checkVersion(version: number): void {
  if (!Number.isInteger(version) || version < -1) {
    throw new Error(`version must be an integer >= -1 (-1 = any), got ${String(version)}`);
  }
}
