/**
 * One bounded connection to one Redis server, for the redis agent, over ioredis.
 *
 * A failover controller must never have a command run later than it meant to, so the client is
 * set up to do nothing on its own: no offline queue (a command while disconnected fails at once),
 * no resend of unfulfilled commands after a reconnect (a REPLICAOF NO ONE that timed out must not
 * be replayed minutes later), no automatic reconnect (the next call connects afresh), no ready
 * check (it would wait out a LOADING server instead of letting the health check see it).
 * Every call has one deadline covering connect and reply; a call that misses it, or is aborted,
 * drops the connection, so its answer can never be mistaken for a later call's.
 *
 * The connection closes itself after `idleCloseMs` without a call: an agent replaced by a reload
 * leaves nothing open behind it.
 */
import { Redis, ReplyError } from 'ioredis';
import { systemClock, type Clock } from '../src/clock.js';
import { HafcError } from '../src/errors.js';

export const EREDIS_REPLY = 'EREDIS_REPLY';
export const EREDIS_NO_ANSWER = 'EREDIS_NO_ANSWER';

/** The server answered, with an error reply (LOADING, NOAUTH, READONLY, ...). */
export class RedisReplyError extends HafcError {
  constructor(message: string) {
    super(EREDIS_REPLY, message);
  }
}

/** No usable answer: refused, reset, timed out, aborted. `refused`: nothing listens there. */
export class RedisNoAnswerError extends HafcError {
  constructor(
    message: string,
    readonly refused = false,
    options?: { cause?: unknown },
  ) {
    super(EREDIS_NO_ANSWER, message, options);
  }
}

export interface RedisConnOptions {
  host: string;
  port: number;
  username?: string;
  /** Asked at each new connection, so a changed password file is picked up without a restart. */
  password?: () => string | undefined;
  /** @default 30000 */
  idleCloseMs?: number;
  clock?: Clock;
}

export class RedisConn {
  readonly address: string;
  private client: Redis | undefined;
  private connecting: Promise<void> | undefined;
  private cancelIdle: (() => void) | undefined;
  private lastError: Error | undefined;
  private readonly clock: Clock;

  constructor(private readonly opts: RedisConnOptions) {
    this.address = opts.host.includes(':') ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`;
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Sends one command and returns the reply. Rejects with RedisReplyError for an error reply and
   * RedisNoAnswerError for anything else, both naming the command and the server, within
   * `timeoutMs` (connecting included) or at once when `signal` aborts.
   */
  async call(args: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    this.lastError = undefined;
    const what = `${args.slice(0, 3).join(' ')} on Redis ${this.address}`;
    if (signal?.aborted) throw new RedisNoAnswerError(`${what}: aborted before it was sent`);
    const t0 = this.clock.now();
    let cancelTimer = (): void => {};
    let onAbort = (): void => {};
    const cut = new Promise<never>((_, reject) => {
      cancelTimer = this.clock.setTimer(timeoutMs, () =>
        reject(new RedisNoAnswerError(`${what}: no answer within ${timeoutMs} ms`)),
      );
      onAbort = () =>
        reject(new RedisNoAnswerError(`${what}: aborted after ${Math.round(this.clock.now() - t0)} ms`));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.send(args), cut]);
    } catch (err) {
      if (err instanceof ReplyError) throw new RedisReplyError(`${what} answered ${(err as Error).message}`);
      if (!(err instanceof RedisNoAnswerError)) {
        // ioredis rejects a command on a connection that failed with "Connection is closed.";
        // why it closed (ECONNREFUSED, WRONGPASS) is in the client's last 'error' event.
        const cause = this.lastError ?? err;
        this.lastError = undefined;
        if (cause instanceof ReplyError) {
          this.drop();
          throw new RedisReplyError(`${what} answered ${(cause as Error).message}`);
        }
        const code = (cause as NodeJS.ErrnoException).code;
        // Never a raw library error: it may not say which server or command it was.
        this.drop();
        throw new RedisNoAnswerError(`${what}: ${(cause as Error).message}`, code === 'ECONNREFUSED', {
          cause,
        });
      }
      this.drop();
      throw err;
    } finally {
      cancelTimer();
      signal?.removeEventListener('abort', onAbort);
      this.armIdle();
    }
  }

  /** Closes the connection now; the next call opens a new one. Idempotent. */
  close(): void {
    this.cancelIdle?.();
    this.cancelIdle = undefined;
    this.drop();
  }

  private async send(args: readonly string[]): Promise<unknown> {
    const c = await this.connected();
    return c.call(args[0]!, ...args.slice(1));
  }

  private connected(): Promise<Redis> {
    const existing = this.client;
    if (existing && this.connecting) return this.connecting.then(() => existing);
    if (existing && existing.status === 'ready') return Promise.resolve(existing);
    this.drop();
    const password = this.opts.password?.();
    const c = new Redis({
      host: this.opts.host,
      port: this.opts.port,
      ...(this.opts.username !== undefined ? { username: this.opts.username } : {}),
      ...(password !== undefined ? { password } : {}),
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      // Our own deadline governs; this only stops ioredis from waiting forever on its own.
      connectTimeout: 60_000,
    });
    // Errors reach the caller through the command's promise; the event must not crash the agent.
    c.on('error', (err: Error) => {
      if (this.client === c) this.lastError = err;
    });
    c.on('end', () => {
      if (this.client === c) {
        this.client = undefined;
        this.connecting = undefined;
      }
    });
    this.client = c;
    const connecting = c.connect().finally(() => {
      if (this.connecting === connecting) this.connecting = undefined;
    });
    this.connecting = connecting;
    return connecting.then(() => c);
  }

  private drop(): void {
    const c = this.client;
    this.client = undefined;
    this.connecting = undefined;
    c?.disconnect();
  }

  private armIdle(): void {
    this.cancelIdle?.();
    this.cancelIdle = this.clock.setTimer(this.opts.idleCloseMs ?? 30_000, () => {
      this.cancelIdle = undefined;
      this.drop();
    });
  }
}

/** ROLE's answer, read defensively: a server we do not control may say anything. */
export type RoleReply =
  | { role: 'master'; offset: number }
  | { role: 'slave'; host: string; port: number; state: string; offset: number }
  | { role: 'other'; name: string };

export function parseRole(reply: unknown): RoleReply {
  if (!Array.isArray(reply) || reply.length === 0) return { role: 'other', name: JSON.stringify(reply) };
  const [name, a, b, c, d] = reply as unknown[];
  if (name === 'master' && Number.isFinite(Number(a))) return { role: 'master', offset: Number(a) };
  if (name === 'slave' && typeof a === 'string' && Number.isInteger(Number(b))) {
    return { role: 'slave', host: a, port: Number(b), state: String(c), offset: Number(d) };
  }
  return { role: 'other', name: String(name) };
}

/** INFO's `key:value` lines (one section or all). */
export function parseInfo(reply: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of String(reply).split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}
