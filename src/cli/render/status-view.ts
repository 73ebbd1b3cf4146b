/**
 * What `hafc status` says about a cluster, as a pure function of what it read from ZooKeeper and
 * the time: which node is active, each member's state, pause and switchover, and the warnings an
 * operator must not miss. The object is also the `--json` output, so its shape is a contract
 * (docs/cli.md, `schemaVersion`): fields are added, never renamed or retyped, and absent values
 * are `null` rather than missing so that consumers see one shape.
 */
import type { BreadcrumbView, ControlView, LockHolder } from '../../election/store.js';
import type { MemberRecord } from '../../election/records.js';
import { switchoverCandidates } from '../../election/switchover.js';
import { agoMs } from './text.js';

/** A persistent znode's "owner": nobody's session. */
const NO_SESSION = '0000000000000000';

/** Everything `status` reads, in the store's own terms. */
export interface ClusterSnapshot {
  cluster: string;
  connect: string;
  path: string;
  lock: LockHolder | null;
  members: readonly MemberRecord[];
  /** Member znodes that could not be used, each message naming the znode. */
  memberProblems: readonly string[];
  breadcrumb: BreadcrumbView;
  control: ControlView;
}

export interface MemberStatus {
  node: string;
  host: string;
  port: number;
  role: string;
  health: string;
  priority: number;
  /** Decimal string; "0" when not active. */
  epoch: string;
  holdsLock: boolean;
  since: string | null;
  sinceMs: number | null;
  sinceReason: string | null;
  /** Why it cannot take over now (absent while electable). */
  notElectableReason: string | null;
  noFailover: boolean;
  activationFailed: boolean;
  lastFailure: { reason: string; at: string } | null;
  session: string | null;
  pid: number | null;
  agentVersion: string;
  control: string;
  updatedAt: string;
}

export type WarningCode =
  | 'no-active'
  | 'multiple-active'
  | 'active-without-lock'
  | 'lock-orphan'
  | 'foreign-lock'
  | 'lock-record-unreadable'
  | 'will-be-fenced'
  | 'breadcrumb-unreadable'
  | 'control-unreadable'
  | 'member-unreadable';

export interface StatusWarning {
  code: WarningCode;
  message: string;
}

export interface StatusJson {
  schemaVersion: 1;
  cluster: string;
  zookeeper: string;
  path: string;
  readAt: string;
  /** Exactly one member is ACTIVE and it holds the lock. */
  healthy: boolean;
  active: { node: string; epoch: string; session: string; acquiredAt: string | null } | null;
  lock: {
    session: string;
    epoch: string;
    /** From the lock's record; null when the record is unreadable. */
    node: string | null;
    host: string | null;
    port: number | null;
    acquiredAt: string | null;
    /** A persistent znode on the lock path: nobody's lock, and nobody can take it. */
    persistent: boolean;
    recordError: string | null;
  } | null;
  breadcrumb:
    | {
        node: string;
        host: string;
        port: number;
        epoch: string;
        writtenAt: string;
        session: string | null;
        demoted: boolean;
        demotedAt: string | null;
      }
    | { error: string }
    | null;
  members: MemberStatus[];
  paused: { by: string; at: string; reason: string | null } | null;
  switchover: {
    id: string;
    from: string;
    to: string;
    by: string;
    reason: string | null;
    requestedAt: string;
    expiresAt: string;
    /** Negative: expired, and nobody acts on it any more. */
    expiresInMs: number | null;
  } | null;
  lastSwitchover: {
    id: string;
    outcome: string;
    from: string;
    to: string;
    at: string;
    detail: string;
    handoverMs: number | null;
    epoch: string | null;
  } | null;
  /** Every live member but the active, best first: can it take over now, and if not why. */
  candidates: { node: string; priority: number; eligible: boolean; why: string[] }[];
  warnings: StatusWarning[];
}

function memberStatus(m: MemberRecord, holder: MemberRecord | null, nowMs: number): MemberStatus {
  return {
    node: m.id,
    host: m.host,
    port: m.port,
    role: m.role,
    health: m.health,
    priority: m.priority,
    epoch: m.epoch,
    holdsLock: m === holder,
    since: m.since ?? null,
    sinceMs: agoMs(m.since, nowMs),
    sinceReason: m.sinceReason ?? null,
    notElectableReason: m.notElectableReason ?? null,
    noFailover: m.noFailover,
    activationFailed: m.activationFailed === true,
    lastFailure: m.lastFailure ? { reason: m.lastFailure.reason, at: m.lastFailure.at } : null,
    session: m.session ?? null,
    pid: m.pid ?? null,
    agentVersion: m.agentVersion,
    control: m.control,
    updatedAt: m.updatedAt,
  };
}

/**
 * The member whose session owns the lock. A record without a session (an older agent) is matched
 * by the node id in the lock's record instead.
 */
function lockHolderMember(lock: LockHolder | null, members: readonly MemberRecord[]): MemberRecord | null {
  if (!lock || lock.owner === NO_SESSION) return null;
  return (
    members.find((m) => (m.session !== undefined ? m.session === lock.owner : m.id === lock.record?.id)) ??
    null
  );
}

export function buildStatus(s: ClusterSnapshot, nowMs: number): StatusJson {
  const members = [...s.members].sort((a, b) => a.id.localeCompare(b.id));
  const lock = s.lock;
  const holder = lockHolderMember(lock, members);
  const claimants = members.filter((m) => m.role === 'ACTIVE');
  const active =
    holder && holder.role === 'ACTIVE' && lock
      ? {
          node: holder.id,
          epoch: lock.epoch.toString(),
          session: lock.owner,
          acquiredAt: lock.record?.acquiredAt ?? null,
        }
      : null;
  const warnings: StatusWarning[] = [];
  const warn = (code: WarningCode, message: string) => warnings.push({ code, message });

  const persistentLock = lock !== null && lock.owner === NO_SESSION;
  const lockRec = lock?.record;
  const lockWho = lockRec ? ` (node ${lockRec.id} at ${lockRec.host}:${lockRec.port})` : '';
  if (!active) {
    let why: string;
    if (!lock) {
      why =
        members.length === 0
          ? 'the lock is free and no agent is running'
          : `the lock is free${pausedOf(s.control) ? ' and the cluster is paused (no automatic promotion)' : ''}`;
    } else if (persistentLock) why = 'a persistent znode sits on the lock path';
    else if (holder)
      why = `the lock is held by ${holder.id}, which is ${holder.role} (activating, or standing down)`;
    else why = `the lock is held by session ${lock.owner}${lockWho}, which has no member record`;
    warn('no-active', `no node is active: ${why}`);
  }
  if (claimants.length > 1) {
    warn(
      'multiple-active',
      `${claimants.map((m) => m.id).join(', ')} all claim ACTIVE; the lock is ${
        holder ? `held by ${holder.id}` : lock ? `held by session ${lock.owner}` : 'free'
      }: check the services themselves`,
    );
  } else if (claimants.length === 1 && claimants[0] !== holder) {
    warn(
      'active-without-lock',
      `${claimants[0]!.id} claims ACTIVE but does not hold the lock (${
        holder ? `held by ${holder.id}` : lock ? `held by session ${lock.owner}` : 'free'
      }): it should demote within its lease`,
    );
  }
  if (persistentLock) {
    warn(
      'foreign-lock',
      `${s.path}/lock is a persistent znode, not an agent's lock: no node can become active until an operator deletes it`,
    );
  } else if (lock && !holder) {
    warn(
      'lock-orphan',
      `the lock is held by session ${lock.owner}${lockWho}, which has no live member record: an agent that ` +
        'could not publish it, or a client that is not hafc; no other node becomes active while it holds the lock',
    );
  }
  if (lock?.recordError) warn('lock-record-unreadable', lock.recordError);

  const bc = s.breadcrumb;
  if (bc && 'error' in bc) {
    warn(
      'breadcrumb-unreadable',
      `${bc.error}: no node can become active (it cannot tell whom to fence) until an operator repairs or deletes it`,
    );
  } else if (bc && bc.record.demoted !== true) {
    const r = bc.record;
    // The activation in progress wrote it (lock taken, service not yet active): not a victim.
    const ownActivation = holder?.id === r.id && lock !== null && lock.epoch.toString() === r.epoch;
    if (active?.node !== r.id && !ownActivation) {
      warn(
        'will-be-fenced',
        `the breadcrumb names ${r.id} at ${r.host}:${r.port} (epoch ${r.epoch}), which did not stand down ` +
          'cleanly and is not active: the next node to take the lock fences it first',
      );
    }
  }
  if ('error' in s.control) {
    warn('control-unreadable', `${s.control.error}: the agents ignore it (no pause, no switchover)`);
  }
  for (const p of s.memberProblems) warn('member-unreadable', p);

  const control = 'record' in s.control ? s.control.record : null;
  const so = control?.switchover;
  const expiresAt = so ? Date.parse(so.expiresAt) : NaN;
  const last = control?.lastSwitchover;
  return {
    schemaVersion: 1,
    cluster: s.cluster,
    zookeeper: s.connect,
    path: s.path,
    readAt: new Date(nowMs).toISOString(),
    healthy: active !== null && claimants.length === 1,
    active,
    lock: lock
      ? {
          session: lock.owner,
          epoch: lock.epoch.toString(),
          node: lockRec?.id ?? null,
          host: lockRec?.host ?? null,
          port: lockRec?.port ?? null,
          acquiredAt: lockRec?.acquiredAt ?? null,
          persistent: persistentLock,
          recordError: lock.recordError ?? null,
        }
      : null,
    breadcrumb: !bc
      ? null
      : 'error' in bc
        ? { error: bc.error }
        : {
            node: bc.record.id,
            host: bc.record.host,
            port: bc.record.port,
            epoch: bc.record.epoch,
            writtenAt: bc.record.writtenAt,
            session: bc.record.session ?? null,
            demoted: bc.record.demoted === true,
            demotedAt: bc.record.demotedAt ?? null,
          },
    members: members.map((m) => memberStatus(m, holder, nowMs)),
    paused: control?.paused
      ? { by: control.paused.by, at: control.paused.at, reason: control.paused.reason ?? null }
      : null,
    switchover: so
      ? {
          id: so.id,
          from: so.from,
          to: so.to,
          by: so.by,
          reason: so.reason ?? null,
          requestedAt: so.requestedAt,
          expiresAt: so.expiresAt,
          expiresInMs: Number.isNaN(expiresAt) ? null : expiresAt - nowMs,
        }
      : null,
    lastSwitchover: last
      ? {
          id: last.id,
          outcome: last.outcome,
          from: last.from,
          to: last.to,
          at: last.at,
          detail: last.detail,
          handoverMs: typeof last.handoverMs === 'number' ? last.handoverMs : null,
          epoch: last.epoch ?? null,
        }
      : null,
    candidates: switchoverCandidates(members, active?.node ?? null).map((c) => ({
      node: c.id,
      priority: c.priority,
      eligible: c.eligible,
      why: c.why,
    })),
    warnings,
  };
}

function pausedOf(c: ControlView): boolean {
  return 'record' in c && !!c.record?.paused;
}

/**
 * What `--watch` compares to decide whether to print again on a non-TTY: the status without
 * what only the passing of time changes.
 */
export function statusFingerprint(v: StatusJson): string {
  return JSON.stringify({
    ...v,
    readAt: null,
    members: v.members.map((m) => ({ ...m, sinceMs: null, updatedAt: null })),
    switchover: v.switchover ? { ...v.switchover, expiresInMs: (v.switchover.expiresInMs ?? 0) < 0 } : null,
  });
}
