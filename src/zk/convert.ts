/**
 * Pure conversions between node-zookeeper-client's wire-level shapes and our types. Kept apart
 * from session.ts (and free of the library import) so they can be unit-tested without a server;
 * the shapes below are what the pinned library version hands us, checked defensively because a
 * wrong guess here would surface as a crash inside the library's socket handler.
 */
import { ZkError } from '../errors.js';
import type { Acl, CreateMode, Stat, WatchEvent } from './types.js';

/** The library's jute Stat: 64-bit fields are 8-byte big-endian buffers. */
export interface RawStat {
  czxid: Buffer;
  mzxid: Buffer;
  ctime: Buffer;
  mtime: Buffer;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: Buffer;
  dataLength: number;
  numChildren: number;
  pzxid: Buffer;
}

export function toStat(raw: RawStat): Stat {
  return {
    czxid: u64(raw.czxid, 'czxid'),
    mzxid: u64(raw.mzxid, 'mzxid'),
    pzxid: u64(raw.pzxid, 'pzxid'),
    // Milliseconds since the epoch fit a double exactly for the next 280,000 years.
    ctime: Number(i64(raw.ctime, 'ctime')),
    mtime: Number(i64(raw.mtime, 'mtime')),
    version: raw.version,
    cversion: raw.cversion,
    aversion: raw.aversion,
    ephemeralOwner: hex64(raw.ephemeralOwner, 'ephemeralOwner'),
    dataLength: raw.dataLength,
    numChildren: raw.numChildren,
  };
}

/** 8 bytes -> 16 lower-case hex digits (session ids, ephemeral owners). */
export function hex64(buf: Buffer, what = 'value'): string {
  check8(buf, what);
  return buf.toString('hex');
}

function u64(buf: Buffer, what: string): bigint {
  check8(buf, what);
  return buf.readBigUInt64BE(0);
}

function i64(buf: Buffer, what: string): bigint {
  check8(buf, what);
  return buf.readBigInt64BE(0);
}

function check8(buf: Buffer, what: string): void {
  if (!Buffer.isBuffer(buf) || buf.length !== 8) {
    throw new ZkError('MARSHALLING_ERROR', `ZooKeeper stat field ${what} is not an 8-byte value`);
  }
}

/** The library's numeric create modes (CreateMode.js). */
export const CREATE_MODE: Record<CreateMode, number> = {
  persistent: 0,
  ephemeral: 1,
  persistent_sequential: 2,
  ephemeral_sequential: 3,
};

/** Validates one of our ACL entries before it reaches the library (which throws on bad perms). */
export function checkAcl(acl: Acl, index: number): void {
  if (typeof acl.scheme !== 'string' || acl.scheme === '') {
    throw new ZkError('INVALID_ACL', `ACL entry #${index + 1} has an empty scheme`);
  }
  if (typeof acl.id !== 'string') {
    throw new ZkError('INVALID_ACL', `ACL entry #${index + 1} (${acl.scheme}) has no id`);
  }
  if (!Number.isInteger(acl.perms) || acl.perms < 1 || acl.perms > 31) {
    throw new ZkError(
      'INVALID_ACL',
      `ACL entry #${index + 1} (${acl.scheme}:${acl.id}) has perms ${String(acl.perms)}; expected 1..31`,
    );
  }
}

/** The library's Event type codes (Event.js). Unknown codes yield undefined and are dropped. */
export function toWatchEventType(code: number): WatchEvent['type'] | undefined {
  switch (code) {
    case 1:
      return 'created';
    case 2:
      return 'deleted';
    case 3:
      return 'dataChanged';
    case 4:
      return 'childrenChanged';
    default:
      return undefined;
  }
}

/** What an error from the library's callback looks like (its Exception class). */
export interface LibException {
  code: number;
  name: string;
  message: string;
}

export function isLibException(err: unknown): err is LibException {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'number' &&
    typeof (err as { name?: unknown }).name === 'string'
  );
}

/** Codes the library makes up locally (no server answered): they prove nothing about liveness. */
export const LOCAL_ERROR_CODES: ReadonlySet<number> = new Set([
  -4, // CONNECTION_LOSS
  -112, // SESSION_EXPIRED
  -115, // AUTH_FAILED
]);

/**
 * Maps a library error to ZkError with the library's code name (NO_NODE, NODE_EXISTS,
 * QUOTA_EXCEEDED, ...); anything else becomes CLIENT_ERROR rather than being rethrown.
 */
export function toZkError(err: unknown, op: string, path: string): ZkError {
  if (isLibException(err)) {
    const name = /^[A-Z][A-Z0-9_]*$/.test(err.name) ? err.name : 'UNKNOWN';
    return new ZkError(name, `ZooKeeper ${op} ${path} failed: ${name} (${err.code})`, { cause: err, path });
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new ZkError('CLIENT_ERROR', `ZooKeeper ${op} ${path} failed in the client: ${detail}`, {
    cause: err,
    path,
  });
}
