/**
 * The JSON records hafc keeps in ZooKeeper. Everything read back is untrusted (another version
 * of hafc, an operator with zkCli, a bug): parse never throws anything but RecordError, whose
 * message names the znode and a bounded excerpt of the bad value.
 */
import { RecordError } from '../errors.js';
import {
  FORMAT_VERSION,
  type AnyRecord,
  type ControlRecord,
  type HistoryEntry,
  type HistoryRecord,
} from '../election/records.js';

export { FORMAT_VERSION } from '../election/records.js';
export type {
  AnyRecord,
  BreadcrumbRecord,
  ControlRecord,
  HistoryEntry,
  HistoryRecord,
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
  const r = parseObject(kind, path, data, MAX_RECORD_BYTES);
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
  if (r.since !== undefined && (typeof r.since !== 'string' || Number.isNaN(Date.parse(r.since))))
    throw bad('since');
  for (const f of ['sinceReason', 'notElectableReason']) {
    if (r[f] !== undefined && (typeof r[f] !== 'string' || (r[f] as string).length > 1024)) throw bad(f);
  }
  const lf = r.lastFailure as { reason?: unknown; at?: unknown } | undefined;
  if (
    lf !== undefined &&
    (typeof lf !== 'object' || lf === null || typeof lf.reason !== 'string' || typeof lf.at !== 'string')
  )
    throw bad('lastFailure');
  const cp = r.controlPort;
  if (cp !== undefined && (typeof cp !== 'number' || !Number.isInteger(cp) || cp < 1 || cp > 65535))
    throw bad('controlPort');
  return r as unknown as Extract<AnyRecord, { kind: K }>;
}

// ---- control and history: cluster-level records without a node identity ----

/** The history znode holds up to HISTORY_LIMIT entries of a few hundred bytes each. */
export const MAX_HISTORY_BYTES = 512 * 1024;

function parseObject(kind: string, path: string, data: Buffer, max: number): Record<string, unknown> {
  if (data.length > max) {
    throw new RecordError(
      `znode ${path}: ${data.length} bytes is larger than a ${kind} record may be (${max})`,
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
  if (typeof fv !== 'number' || !Number.isInteger(fv) || fv < 1)
    throw new RecordError(
      `znode ${path}: formatVersion must be a positive integer, got ${JSON.stringify(fv)} (not written by hafc?)`,
    );
  if (fv > FORMAT_VERSION) {
    throw new RecordError(
      `znode ${path}: record format ${fv} is newer than this agent understands (${FORMAT_VERSION}); upgrade hafc on this host`,
    );
  }
  if (r.kind !== kind)
    throw new RecordError(`znode ${path}: kind must be "${kind}", got ${JSON.stringify(r.kind)}`);
  return r;
}

function fieldChecker(path: string, where: string, r: Record<string, unknown>) {
  const bad = (f: string) =>
    new RecordError(`znode ${path}: ${where}${f} is invalid, got ${JSON.stringify(r[f])?.slice(0, 80)}`);
  return {
    str(f: string, optional = false): void {
      if (optional && r[f] === undefined) return;
      if (typeof r[f] !== 'string' || (r[f] as string).length > 4096) throw bad(f);
    },
    time(f: string, optional = false): void {
      if (optional && r[f] === undefined) return;
      if (typeof r[f] !== 'string' || Number.isNaN(Date.parse(r[f] as string))) throw bad(f);
    },
    id(f: string, optional = false): void {
      if (optional && r[f] === undefined) return;
      if (typeof r[f] !== 'string' || !NAME_RE.test(r[f] as string)) throw bad(f);
    },
    obj(f: string): Record<string, unknown> | undefined {
      if (r[f] === undefined) return undefined;
      if (typeof r[f] !== 'object' || r[f] === null || Array.isArray(r[f])) throw bad(f);
      return r[f] as Record<string, unknown>;
    },
    bad,
  };
}

/** `control`: null when the znode is empty (as `hafc init` creates it). */
export function decodeControl(path: string, data: Buffer | null): ControlRecord | null {
  if (!data || data.length === 0) return null;
  const r = parseObject('control', path, data, MAX_RECORD_BYTES);
  const c = fieldChecker(path, '', r);
  c.str('cluster');
  c.time('updatedAt');
  const paused = c.obj('paused');
  if (paused) {
    const p = fieldChecker(path, 'paused.', paused);
    p.str('by');
    p.time('at');
    p.str('reason', true);
  }
  const so = c.obj('switchover');
  if (so) {
    const s = fieldChecker(path, 'switchover.', so);
    s.str('id');
    s.id('from');
    s.id('to');
    s.str('by');
    s.str('reason', true);
    s.time('requestedAt');
    s.time('expiresAt');
  }
  const last = c.obj('lastSwitchover');
  if (last) {
    const l = fieldChecker(path, 'lastSwitchover.', last);
    l.str('id');
    l.str('detail');
    l.time('at');
    if (!['done', 'refused', 'expired'].includes(last.outcome as string)) throw l.bad('outcome');
  }
  return r as unknown as ControlRecord;
}

export function encodeControl(rec: ControlRecord): Buffer {
  return Buffer.from(JSON.stringify(rec), 'utf8');
}

/**
 * `history`: an empty znode is an empty history. Entries that are not objects with a time and an
 * event are dropped (counted in `skipped`), so one bad entry does not hide the others.
 */
export function decodeHistory(path: string, data: Buffer | null): { record: HistoryRecord; skipped: number } {
  if (!data || data.length === 0)
    return {
      record: { formatVersion: FORMAT_VERSION, kind: 'history', cluster: '', entries: [] },
      skipped: 0,
    };
  const r = parseObject('history', path, data, MAX_HISTORY_BYTES);
  if (!Array.isArray(r.entries))
    throw new RecordError(
      `znode ${path}: entries must be a list, got ${JSON.stringify(r.entries)?.slice(0, 80)}`,
    );
  const entries: HistoryEntry[] = [];
  let skipped = 0;
  for (const e of r.entries as unknown[]) {
    const ok =
      typeof e === 'object' &&
      e !== null &&
      typeof (e as HistoryEntry).at === 'string' &&
      typeof (e as HistoryEntry).event === 'string' &&
      typeof (e as HistoryEntry).cause === 'string';
    if (ok) entries.push(e as HistoryEntry);
    else skipped++;
  }
  return {
    record: { formatVersion: FORMAT_VERSION, kind: 'history', cluster: String(r.cluster ?? ''), entries },
    skipped,
  };
}

/** Appends `entry`, keeping the newest `limit` entries. */
export function appendToHistory(rec: HistoryRecord, entry: HistoryEntry, limit: number): HistoryRecord {
  const entries = [...rec.entries, entry];
  return { ...rec, entries: entries.slice(Math.max(0, entries.length - limit)) };
}
