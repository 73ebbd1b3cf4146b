/**
 * The JSON records hafc keeps in ZooKeeper. Everything read back is untrusted (another version
 * of hafc, an operator with zkCli, a bug): parse never throws anything but RecordError, whose
 * message names the znode and a bounded excerpt of the bad value.
 */
import { RecordError } from '../errors.js';
import { FORMAT_VERSION, type AnyRecord } from '../election/records.js';

export { FORMAT_VERSION } from '../election/records.js';
export type {
  AnyRecord,
  BreadcrumbRecord,
  LockRecord,
  MemberRecord,
  NodeIdentity,
} from '../election/records.js';

/** Larger data is refused before JSON.parse: the lock record is a few hundred bytes. */
export const MAX_RECORD_BYTES = 64 * 1024;

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
  // Optional fields of later minor versions: absent is fine, present must be well-formed.
  if (r.session !== undefined && (typeof r.session !== 'string' || !/^[0-9a-f]{16}$/.test(r.session)))
    throw bad('session');
  for (const f of ['demoted', 'activationFailed']) {
    if (r[f] !== undefined && typeof r[f] !== 'boolean') throw bad(f);
  }
  if (r.pid !== undefined && (typeof r.pid !== 'number' || !Number.isInteger(r.pid) || r.pid < 0))
    throw bad('pid');
  const cp = r.controlPort;
  if (cp !== undefined && (typeof cp !== 'number' || !Number.isInteger(cp) || cp < 1 || cp > 65535))
    throw bad('controlPort');
  return r as unknown as Extract<AnyRecord, { kind: K }>;
}
