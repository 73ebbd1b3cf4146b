/** The human form of `hafc status`: a few cluster lines, one row per live member, the warnings. */
import type { MemberStatus, StatusJson } from './status-view.js';
import { ago, clean, formatDuration, table } from './text.js';

function flags(m: MemberStatus, nowMs: number): string {
  const f: string[] = [];
  if (m.noFailover) f.push('noFailover');
  if (m.activationFailed) f.push('activationFailed');
  if (m.lastFailure)
    f.push(`last failure ${ago(m.lastFailure.at, nowMs)} ago: ${clean(m.lastFailure.reason, 100)}`);
  return f.length ? f.join('; ') : '-';
}

function activeLine(v: StatusJson, nowMs: number): string {
  const a = v.active;
  if (!a) return 'none';
  const taken = a.acquiredAt ? `, lock taken ${ago(a.acquiredAt, nowMs)} ago` : '';
  return `${clean(a.node)} (epoch ${a.epoch}${taken}, session ${a.session})`;
}

function pausedLine(v: StatusJson, nowMs: number): string {
  const p = v.paused;
  if (!p) return 'no';
  const why = p.reason !== null ? `: ${clean(p.reason)}` : '';
  return `yes, by ${clean(p.by)} ${ago(p.at, nowMs)} ago${why} (no automatic promotion, demotion or fencing)`;
}

function switchoverLines(v: StatusJson, nowMs: number): string[] {
  const out: string[] = [];
  const s = v.switchover;
  if (s) {
    const left = s.expiresInMs;
    const when =
      left === null
        ? 'expiry unreadable'
        : left >= 0
          ? `expires in ${formatDuration(left)}`
          : `expired ${formatDuration(-left)} ago, nobody acts on it`;
    const why = s.reason !== null ? `: ${clean(s.reason)}` : '';
    out.push(
      `switchover: ${clean(s.id)} ${clean(s.from)} -> ${clean(s.to)} by ${clean(s.by)}, ${when}${why}`,
    );
  } else out.push('switchover: none pending');
  const l = v.lastSwitchover;
  if (l) {
    const handover = l.handoverMs !== null ? `, handover ${l.handoverMs} ms` : '';
    out.push(
      `last switchover: ${clean(l.outcome)} ${clean(l.from)} -> ${clean(l.to)} ${ago(l.at, nowMs)} ago` +
        `${handover} (${clean(l.id)}): ${clean(l.detail)}`,
    );
  }
  return out;
}

function breadcrumbLine(v: StatusJson, nowMs: number): string {
  const b = v.breadcrumb;
  if (!b) return 'none (no activation yet)';
  if ('error' in b) return `unreadable: ${clean(b.error)}`;
  const state = b.demoted
    ? `stood down cleanly${b.demotedAt ? ` ${ago(b.demotedAt, nowMs)} ago` : ''}`
    : `written ${ago(b.writtenAt, nowMs)} ago`;
  return `${clean(b.node)} at ${clean(b.host)}:${b.port}, epoch ${b.epoch}, ${state}`;
}

function candidatesLine(v: StatusJson): string | null {
  if (v.candidates.length === 0) return null;
  const ok = v.candidates.filter((c) => c.eligible);
  if (ok.length > 0)
    return `failover target: ${ok.map((c) => `${clean(c.node)} (priority ${c.priority})`).join(', ')}`;
  return `no failover target: ${v.candidates.map((c) => `${clean(c.node)} ${c.why.join(', ')}`).join('; ')}`;
}

export function renderStatus(v: StatusJson, nowMs: number): string {
  const lines: string[] = [];
  lines.push(`cluster ${clean(v.cluster)} at ${clean(v.path)} (ZooKeeper ${clean(v.zookeeper)})`);
  lines.push(`active: ${activeLine(v, nowMs)}`);
  lines.push(`paused: ${pausedLine(v, nowMs)}`);
  lines.push(...switchoverLines(v, nowMs));
  lines.push(`breadcrumb: ${breadcrumbLine(v, nowMs)}`);
  lines.push('');
  if (v.members.length === 0) lines.push('no live members (no agent of this cluster is connected)');
  else {
    const rows = v.members.map((m) => [
      m.holdsLock ? '*' : ' ',
      clean(m.node),
      clean(m.role, 20),
      clean(m.health, 20),
      String(m.priority),
      m.epoch === '0' ? '-' : m.epoch,
      m.since !== null ? ago(m.since, nowMs) : '?',
      `${clean(m.host, 60)}:${m.port}`,
      flags(m, nowMs),
      whyColumn(m),
    ]);
    lines.push(
      ...table(['', 'NODE', 'ROLE', 'HEALTH', 'PRIO', 'EPOCH', 'SINCE', 'ADDRESS', 'FLAGS', 'WHY'], rows),
    );
    lines.push('(* holds the lock)');
    const c = candidatesLine(v);
    if (c) lines.push(c);
  }
  if (v.warnings.length > 0) {
    lines.push('');
    lines.push('warnings:');
    for (const w of v.warnings) lines.push(`  ${w.code}: ${clean(w.message, 400)}`);
  }
  return lines.join('\n') + '\n';
}

/** Why it is in its role; for a node that cannot take over, why not (what an operator acts on). */
function whyColumn(m: MemberStatus): string {
  const since = m.sinceReason !== null ? clean(m.sinceReason, 120) : '';
  if (m.notElectableReason === null || m.role === 'ACTIVE') return since;
  const not = `not electable: ${clean(m.notElectableReason, 120)}`;
  return since ? `${since}; ${not}` : not;
}
