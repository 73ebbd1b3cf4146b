/**
 * The JSON body of a mutating call: size-capped while it streams in (never buffered past the cap),
 * then checked field by field so a bad request is told exactly what is wrong.
 */
import type { IncomingMessage } from 'node:http';
import { NAME_PATTERN } from '../config/rules.js';

export class BadRequest extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
  }
}

/** Resolves with the whole body; rejects with BadRequest(413) past `maxBytes`, or when the client goes. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBytes) {
      reject(new BadRequest(413, `request body of ${declared} bytes is over the limit of ${maxBytes} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) finish(new BadRequest(413, `request body is over the limit of ${maxBytes} bytes`));
      else chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => finish(null));
    req.on('error', (err) => finish(err));
    req.on('close', () => finish(new Error('the client closed the connection before the body ended')));
  });
}

const MAX_REASON = 1024;
const MAX_NODE_ID = 63;

/** The body as an object with only `allowed` string fields; empty body = {}. */
export function parseFields<K extends string>(
  body: Buffer,
  allowed: readonly K[],
): Partial<Record<K, string>> {
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BadRequest(
      400,
      `request body is not JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new BadRequest(
      400,
      `request body must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
    );
  const out: Partial<Record<K, string>> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!(allowed as readonly string[]).includes(key))
      throw new BadRequest(
        400,
        `unknown field ${JSON.stringify(key.slice(0, 64))} (allowed: ${allowed.join(', ')})`,
      );
    const max = key === 'to' ? MAX_NODE_ID : MAX_REASON;
    if (typeof v !== 'string')
      throw new BadRequest(400, `field "${key}" must be a string, got ${jsonType(v)}`);
    if (v.length === 0 || v.length > max)
      throw new BadRequest(400, `field "${key}" must have 1 to ${max} characters, got ${v.length}`);
    if (key === 'to' && !NAME_PATTERN.test(v))
      throw new BadRequest(
        400,
        `field "to" must be a node id (${NAME_PATTERN.source}), got ${JSON.stringify(v.slice(0, 80))}`,
      );
    out[key as K] = v;
  }
  return out;
}

function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
