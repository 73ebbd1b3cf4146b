/**
 * Bounded HTTP, shared by the http service agent, http fencing and the http health check.
 *
 * - httpRequest: one request under the caller's signal; resolves on the status line, and the
 *   body is read (to a cap) or discarded as the caller decides. Never follows redirects: a
 *   3xx is an answer like any other, and following it could ask another host.
 * - httpCall: httpRequest plus a timeout covering the body too, and HookTimeoutError /
 *   HookFailedError messages naming the call, for the agent and fencing.
 *
 * Built on node:http(s) rather than fetch: fetch refuses the "bad ports" of the browser security
 * model (e.g. 2049, 5060, 6000, 10080), which a managed service or a STONITH device may well
 * listen on, and node:http lets us stop reading a body at the cap without buffering it.
 *
 * Every request gets its own connection (agent: false). Node's global agent keeps connections
 * alive, and a request sent on an idle connection the server is just closing fails with
 * ECONNRESET: a spurious failure on a health or fencing path, where a fresh connection is also
 * the honest test of whether the server still accepts any.
 */
import http from 'node:http';
import https from 'node:https';
import { systemClock, type Clock } from '../clock.js';
import { HookFailedError, HookTimeoutError } from '../errors.js';
import { describeNetworkError } from './net-errors.js';

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

export interface HttpRequestOptions {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  /** Sent as JSON with content-type application/json; bigints become decimal strings. */
  json?: unknown;
  headers?: Record<string, string>;
  /** The caller's deadline: abort = drop the connection now, while connecting or reading. */
  signal: AbortSignal;
  /** Most of the body readBody() keeps; the rest is never downloaded. @default 65536 */
  maxBodyBytes?: number;
}

export interface HttpResponse {
  status: number;
  /** The reason phrase the server sent, e.g. "Internal Server Error" (may be empty). */
  statusText: string;
  /**
   * Reads the body up to maxBodyBytes, then hangs up. Rejects if the connection fails or the
   * signal aborts before the end. Call it or discard(), once.
   */
  readBody(): Promise<{ body: string; truncated: boolean }>;
  /** Hangs up without reading the body. */
  discard(): void;
}

/**
 * Rejects with the cause as it came: a Node network error (with its `code`), an HTTP parse error
 * (code HPE_*), the signal's reason, or an Error for a bad URL. describeHttpError words it.
 */
export function httpRequest(opts: HttpRequestOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const { signal } = opts;
    const url = new URL(opts.url);
    const mod = url.protocol === 'http:' ? http : url.protocol === 'https:' ? https : undefined;
    if (!mod) throw new Error(`unsupported protocol ${JSON.stringify(url.protocol)}`);
    if (signal.aborted) throw signal.reason;
    const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    const payload =
      opts.json !== undefined ? Buffer.from(JSON.stringify(opts.json, bigintAsString)) : undefined;
    const headers: Record<string, string> = { ...opts.headers };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }

    const onAbort = () => {
      req.destroy();
      reject(signal.reason);
    };
    const req = mod.request(url, { method: opts.method, headers, agent: false }, (res) => {
      signal.removeEventListener('abort', onAbort);
      // A reset mid-body must not become an unhandled 'error' event (it would end the agent);
      // readBody listens for real.
      res.on('error', () => {});
      resolve({
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        readBody: () => readBody(res, signal, maxBody),
        discard: () => res.destroy(),
      });
    });
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    req.end(payload);
  });
}

function readBody(
  res: http.IncomingMessage,
  signal: AbortSignal,
  maxBody: number,
): Promise<{ body: string; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let len = 0;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    // Decoded as UTF-8 whatever the content-type says: invalid bytes become U+FFFD, never an
    // exception.
    const done = (truncated: boolean) =>
      settle(() => resolve({ body: Buffer.concat(chunks).toString('utf8'), truncated }));
    const onAbort = () => {
      settle(() => reject(signal.reason));
      res.destroy();
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    res.on('data', (chunk: Buffer) => {
      const room = maxBody - len;
      if (chunk.length <= room) {
        chunks.push(chunk);
        len += chunk.length;
        return;
      }
      chunks.push(chunk.subarray(0, room));
      len += room;
      done(true);
      // The rest is not wanted: drop the connection rather than download it.
      res.destroy();
    });
    res.on('end', () => done(false));
    res.on('error', (err) => settle(() => reject(err)));
    res.on('close', () => settle(() => reject(new Error('connection closed before the body was complete'))));
  });
}

/** A failed request's cause, for a message: DNS and socket errors worded as net-errors does. */
export function describeHttpError(err: unknown, url?: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('HPE_')) {
    return `the answer is not valid HTTP (${(err as Error).message})`;
  }
  let host: string | undefined;
  try {
    host = url !== undefined ? new URL(url).hostname : undefined;
  } catch {
    host = undefined;
  }
  return describeNetworkError(err, host);
}

export interface HttpCallOptions {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  /** Sent as JSON with content-type application/json; bigints become decimal strings. */
  json?: unknown;
  timeoutMs: number;
  signal?: AbortSignal;
  /** @default 65536 */
  maxBodyBytes?: number;
  /** Names the call in messages, e.g. "toActive request". */
  what: string;
  /** Runs the timeout and measures durations. @default systemClock */
  clock?: Clock;
}

export interface HttpCallResult {
  status: number;
  body: string;
  truncated: boolean;
  durationMs: number;
}

/**
 * Resolves with any HTTP status (the caller decides what counts as success); throws
 * HookTimeoutError past timeoutMs and HookFailedError when there is no answer at all (refused,
 * reset, DNS, bad URL, aborted by the caller).
 */
export async function httpCall(opts: HttpCallOptions): Promise<HttpCallResult> {
  const clock = opts.clock ?? systemClock;
  const started = clock.now();
  const elapsed = () => Math.round(clock.now() - started);
  const label = `${opts.what} ${opts.method} ${opts.url}`;
  const ac = new AbortController();
  let timedOut = false;
  const cancelTimer = clock.setTimer(opts.timeoutMs, () => {
    timedOut = true;
    ac.abort(new Error(`timed out after ${opts.timeoutMs} ms`));
  });
  const outer = opts.signal;
  const onOuter = () => ac.abort(outer?.reason);
  if (outer?.aborted) onOuter();
  else outer?.addEventListener('abort', onOuter, { once: true });
  try {
    const res = await httpRequest({
      method: opts.method,
      url: opts.url,
      json: opts.json,
      signal: ac.signal,
      maxBodyBytes: opts.maxBodyBytes,
    });
    const { body, truncated } = await res.readBody();
    return { status: res.status, body, truncated, durationMs: elapsed() };
  } catch (err) {
    if (timedOut && !outer?.aborted) {
      throw new HookTimeoutError(`${label} timed out after ${opts.timeoutMs} ms`, { cause: err });
    }
    if (outer?.aborted) {
      throw new HookFailedError(`${label} was aborted after ${elapsed()} ms`, { cause: err });
    }
    throw new HookFailedError(`${label} failed after ${elapsed()} ms: ${describeHttpError(err, opts.url)}`, {
      cause: err,
    });
  } finally {
    cancelTimer();
    outer?.removeEventListener('abort', onOuter);
  }
}

function bigintAsString(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString(10) : v;
}

/** The first bytes of a body for an error message, on one line. */
export function snippet(body: string, max = 200): string {
  const b = Buffer.from(body, 'utf8');
  const s = b.length > max ? b.subarray(0, max).toString('utf8') + '...' : body;
  return JSON.stringify(s);
}
