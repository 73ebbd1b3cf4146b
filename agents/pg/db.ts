/**
 * One short-lived connection per agent call, through the `pg` client: connect, run the queries,
 * close. A connection per call rather than a pooled one: the agent is rebuilt on every reload and
 * has no close hook, a pool would leak there; and a check that connects proves what clients need
 * (a server that accepts new sessions), which a long-lived session would not.
 *
 * Every call has one deadline over connect and queries. A server that completes the TCP handshake
 * from the kernel's backlog but never answers (a frozen postmaster) ends in `timeout`, not a
 * hang: the socket is destroyed when the deadline passes or the caller aborts.
 */
import pg from 'pg';
import { systemClock, type Clock } from '../../src/clock.js';

export interface DbTarget {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
}

export type DbFailure = 'refused' | 'timeout' | 'aborted' | 'server';

/** A failed call: `kind` says whether the server was down, silent, or answered with an error. */
export class DbError extends Error {
  constructor(
    readonly kind: DbFailure,
    message: string,
    /** The server's SQLSTATE when it answered with an error. */
    readonly sqlState?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type Query = <R extends pg.QueryResultRow>(sql: string, params?: unknown[]) => Promise<R[]>;

export function describeTarget(t: Pick<DbTarget, 'host' | 'port'>): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

export async function withDb<T>(
  target: DbTarget,
  opts: { timeoutMs: number; signal?: AbortSignal; what: string; clock?: Clock },
  fn: (q: Query) => Promise<T>,
): Promise<T> {
  const where = `PostgreSQL at ${describeTarget(target)}`;
  if (opts.signal?.aborted) throw new DbError('aborted', `${opts.what} on ${where}: aborted before it began`);
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: target.user,
    database: target.database,
    ...(target.password !== undefined ? { password: target.password } : {}),
    application_name: 'hafc',
    // Our own deadline below covers connect and queries; the client's is only a backstop.
    connectionTimeoutMillis: opts.timeoutMs + 1000,
  });
  // An error on an idle client (the server went away) must not become an uncaught exception.
  client.on('error', () => {});
  const clock = opts.clock ?? systemClock;
  let cancelTimer = (): void => {};
  let onAbort: (() => void) | undefined;
  const destroy = (): void => {
    const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection
      ?.stream;
    stream?.destroy();
  };
  const stop = new Promise<never>((_, reject) => {
    cancelTimer = clock.setTimer(opts.timeoutMs, () => {
      destroy();
      reject(new DbError('timeout', `${opts.what} on ${where}: no answer within ${opts.timeoutMs} ms`));
    });
    onAbort = () => {
      destroy();
      reject(new DbError('aborted', `${opts.what} on ${where}: aborted`));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  const work = (async () => {
    try {
      await client.connect();
    } catch (err) {
      throw classify(err, `${opts.what} on ${where}: cannot connect`);
    }
    const q: Query = async (sql, params = []) => {
      try {
        return (await client.query(sql, params)).rows;
      } catch (err) {
        throw classify(err, `${opts.what} on ${where}`);
      }
    };
    return fn(q);
  })();
  // Whichever loses the race must not become an unhandled rejection.
  work.catch(() => {});
  stop.catch(() => {});
  try {
    return await Promise.race([work, stop]);
  } finally {
    cancelTimer();
    if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    // end() waits for the server's goodbye; a server that stopped answering never sends it.
    const cancelEnd = clock.setTimer(500, destroy);
    void client
      .end()
      .catch(() => {})
      .finally(cancelEnd);
  }
}

function classify(err: unknown, prefix: string): DbError {
  if (err instanceof DbError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (code === 'ECONNREFUSED' || code === 'ENOENT') {
    return new DbError('refused', `${prefix}: connection refused`, undefined, { cause: err });
  }
  if (code === 'ETIMEDOUT' || /timeout/i.test(message)) {
    return new DbError('timeout', `${prefix}: ${message}`, undefined, { cause: err });
  }
  // SQLSTATEs are five characters; network errors (ECONNRESET, EPIPE) are longer.
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    return new DbError('server', `${prefix}: ${message} (SQLSTATE ${code})`, code, { cause: err });
  }
  return new DbError('refused', `${prefix}: ${message}`, undefined, { cause: err });
}
