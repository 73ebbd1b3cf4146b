/**
 * Small text helpers shared by the read-only verbs' renderers. Everything they print may come
 * from a znode (untrusted: another hafc, an operator with zkCli, a bug), so every string goes
 * through `clean` before it reaches a terminal.
 */

/**
 * A duration as an operator reads it at a glance: `850ms`, `45s`, `3m12s`, `2h05m`, `3d04h`.
 * Below a minute seconds are whole (rounded down): "since 0s" reads better than "since 0.4s".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const neg = ms < 0;
  const a = Math.abs(ms);
  let out: string;
  if (a < 1000) out = `${Math.floor(a)}ms`;
  else {
    const s = Math.floor(a / 1000);
    if (s < 60) out = `${s}s`;
    else if (s < 3600) out = `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
    else if (s < 86400) out = `${Math.floor(s / 3600)}h${pad2(Math.floor(s / 60) % 60)}m`;
    else out = `${Math.floor(s / 86400)}d${pad2(Math.floor(s / 3600) % 24)}h`;
  }
  return neg ? `-${out}` : out;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * How long ago an ISO time was, for a column: `3m12s`. A time in the future (the writer's clock
 * runs ahead of ours) says so rather than pretending it is zero; an unparsable one is `?`.
 */
export function ago(iso: string | undefined, nowMs: number): string {
  const ms = agoMs(iso, nowMs);
  if (ms === null) return '?';
  return ms < 0 ? `in ${formatDuration(-ms)} (clock skew?)` : formatDuration(ms);
}

export function agoMs(iso: string | undefined, nowMs: number): number | null {
  if (iso === undefined) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : nowMs - t;
}

/**
 * Printable, one line, bounded: control characters (ANSI escapes in a znode could repaint the
 * operator's terminal) become `?`, and long values are cut with an ellipsis.
 */
export function clean(value: unknown, max = 200): string {
  let s = '';
  for (const ch of typeof value === 'string' ? value : String(value)) {
    const c = ch.codePointAt(0)!;
    s += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? '?' : ch;
  }
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/**
 * Columns padded to their widest cell, two spaces apart; the last column is not padded, so a
 * long reason never pushes trailing blanks.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
