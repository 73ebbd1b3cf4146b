/**
 * One bounded HTTP call, shared by the http service agent and the http fencing method: a hard
 * timeout that covers the body too, the caller's signal, and a cap on how much body is read, so
 * an endpoint that hangs or answers megabytes can neither stall nor bloat the agent.
 *
 * Built on node:http(s) rather than fetch: fetch refuses the "bad ports" of the browser security
 * model (e.g. 2049, 5060, 6000, 10080), which a managed service or a STONITH device may well
 * listen on, and node:http lets us stop reading a body at the cap without buffering it.
 */
import http from 'node:http';
import https from 'node:https';
import { HookFailedError, HookTimeoutError, errorMessage } from '../errors.js';

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
}

export interface HttpCallResult {
  status: number;
  body: string;
  truncated: boolean;
  durationMs: number;
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/**
 * Resolves with any HTTP status (the caller decides what counts as success); throws
 * HookTimeoutError past timeoutMs and HookFailedError when there is no answer at all (refused,
 * reset, DNS, bad URL, aborted by the caller).
 */
export async function httpCall(opts: HttpCallOptions): Promise<HttpCallResult> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const started = performance.now();
  const label = `${opts.what} ${opts.method} ${opts.url}`;
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const r = await request(opts, signal, opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    return { ...r, durationMs: elapsed() };
  } catch (err) {
    if (timeout.aborted && !opts.signal?.aborted) {
      throw new HookTimeoutError(`${label} timed out after ${opts.timeoutMs} ms`, { cause: err });
    }
    if (opts.signal?.aborted) {
      throw new HookFailedError(`${label} was aborted after ${elapsed()} ms`, { cause: err });
    }
    throw new HookFailedError(`${label} failed after ${elapsed()} ms: ${errorMessage(err)}`, { cause: err });
  }
}

function request(
  opts: HttpCallOptions,
  signal: AbortSignal,
  maxBody: number,
): Promise<{ status: number; body: string; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const url = new URL(opts.url);
    const mod = url.protocol === 'http:' ? http : url.protocol === 'https:' ? https : undefined;
    if (!mod) throw new Error(`unsupported protocol ${JSON.stringify(url.protocol)}`);
    if (signal.aborted) throw signal.reason;
    const payload =
      opts.json !== undefined ? Buffer.from(JSON.stringify(opts.json, bigintAsString)) : undefined;

    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const req = mod.request(
      url,
      {
        method: opts.method,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': String(payload.length) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        let len = 0;
        const done = (truncated: boolean) =>
          settle(() =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), truncated }),
          );
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
        res.on('close', () =>
          settle(() => reject(new Error('connection closed before the body was complete'))),
        );
      },
    );
    const onAbort = () => {
      settle(() => reject(signal.reason));
      req.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => settle(() => reject(err)));
    req.end(payload);
  });
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
