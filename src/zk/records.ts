/**
 * The JSON records hafc keeps in ZooKeeper. Everything read back is untrusted (another version
 * of hafc, an operator with zkCli, a bug): parse never throws anything but RecordError, whose
 * message names the znode and a bounded excerpt of the bad value.
 */
import { RecordError } from '../errors.js';

/** Major format version we write. Minor additions are new optional fields and need no bump. */
export const FORMAT_VERSION = 1;
/** Larger data is refused before JSON.parse: the lock record is a few hundred bytes. */
export const MAX_RECORD_BYTES = 64 * 1024;

export interface NodeIdentity {
  id: string;
  host: string;
  port: number;
}

export interface LockRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'lock';
  cluster: string;
  priority: number;
  pid: number;
  agentVersion: string;
  acquiredAt: string;
}

export interface BreadcrumbRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'breadcrumb';
  cluster: string;
  /** Decimal string of the u64 epoch of the activation that wrote it. */
  epoch: string;
  writtenAt: string;
}

export interface MemberRecord extends NodeIdentity {
  formatVersion: number;
  kind: 'member';
  cluster: string;
  priority: number;
  noFailover: boolean;
  health: string;
  role: string;
  epoch: string;
  agentVersion: string;
  control: string;
  updatedAt: string;
}

export type AnyRecord = LockRecord | BreadcrumbRecord | MemberRecord;

export function encodeRecord(rec: AnyRecord): Buffer {
  return Buffer.from(JSON.stringify(rec), 'utf8');
}

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function excerpt(buf: Buffer): string {
  const s = buf
    .subarray(0, 80)
    .toString('utf8')
    .replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(buf.length > 80 ? s + '...' : s);
}

export function decodeRecord<K extends AnyRecord['kind']>(
  kind: K,
  path: string,
  data: Buffer | null,
): Extract<AnyRecord, { kind: K }> {
  if (!data || data.length === 0) throw new RecordError(`znode ${path}: empty, expected a ${kind} record`);
  if (data.length > MAX_RECORD_BYTES) {
    throw new RecordError(
      `znode ${path}: ${data.length} bytes is larger than a ${kind} record may be (${MAX_RECORD_BYTES})`,
    );
  }
  let obj: unknown;
  try {
    obj = JSON.parse(data.toString('utf8'));
  } catch {
    throw new RecordError(`znode ${path}: not JSON, got ${excerpt(data)}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new RecordError(`znode ${path}: expected a JSON object, got ${excerpt(data)}`);
  }
  const r = obj as Record<string, unknown>;
  const fv = r.formatVersion;
  if (typeof fv !== 'number' || !Number.isInteger(fv) || fv < 1) {
    throw new RecordError(
      `znode ${path}: formatVersion must be a positive integer, got ${JSON.stringify(fv)} (not written by hafc?)`,
    );
  }
  if (fv > FORMAT_VERSION) {
    throw new RecordError(
      `znode ${path}: record format ${fv} is newer than this agent understands (${FORMAT_VERSION}); upgrade hafc on this host`,
    );
  }
  if (r.kind !== kind)
    throw new RecordError(`znode ${path}: kind must be "${kind}", got ${JSON.stringify(r.kind)}`);
  const bad = (field: string) =>
    new RecordError(
      `znode ${path}: field ${field} is invalid, got ${JSON.stringify(r[field])?.slice(0, 80)}`,
    );
  const str = (f: string) => {
    if (typeof r[f] !== 'string' || (r[f] as string).length > 1024) throw bad(f);
  };
  if (typeof r.id !== 'string' || !NAME_RE.test(r.id)) throw bad('id');
  str('host');
  if (typeof r.port !== 'number' || !Number.isInteger(r.port) || r.port < 0 || r.port > 65535)
    throw bad('port');
  str('cluster');
  if (kind === 'breadcrumb' || kind === 'member') {
    if (typeof r.epoch !== 'string' || !/^\d{1,20}$/.test(r.epoch) || BigInt(r.epoch) >= 2n ** 64n)
      throw bad('epoch');
  }
  if (kind === 'lock' || kind === 'member') {
    if (typeof r.priority !== 'number' || !Number.isFinite(r.priority)) throw bad('priority');
  }
  if (kind === 'member') {
    if (typeof r.noFailover !== 'boolean') throw bad('noFailover');
    str('health');
    str('role');
  }
  return r as unknown as Extract<AnyRecord, { kind: K }>;
}
