/**
 * A self-contained HTML timeline of a cluster's life (Jepsen's timeline.html is the model): one
 * lane per node with its role over time and the epoch of each activation, faults as shaded bands,
 * each failover's phases as segments with their durations, violations in red. Everything is
 * inline (CSS, SVG, a few lines of script); the page loads nothing, so it opens from a CI
 * artifact or a mail attachment as well as from disk.
 *
 * One model, three writers: the chaos suite (from the services' and agents' logs), the benchmark
 * (it can build the same model), and `hafc history --html` (from the history znode). The page's
 * script writes a summary of what it drew into #summary, which a headless browser's --dump-dom
 * shows, so a test can tell the page rendered, not just that the file exists.
 */

export type TimelineRole = 'active' | 'standby' | 'neutral' | 'init' | 'down' | 'unknown';

export interface TimelineSegment {
  /** Wall-clock ms (Date.now() scale). */
  from: number;
  to: number;
  role: TimelineRole;
  epoch: string | null;
  note?: string;
}

export interface TimelinePhase {
  name: 'detection' | 'lock hand-over' | 'fencing' | 'to-active hook';
  from: number;
  to: number;
}

export interface TimelineModel {
  title: string;
  subtitle?: string;
  startMs: number;
  endMs: number;
  lanes: { id: string; segments: TimelineSegment[] }[];
  /** lane null: cluster-wide (ZooKeeper); drawn across every lane. */
  faults: { id: string; from: number; to: number; label: string; lane: string | null }[];
  failovers: { lane: string; epoch: string | null; phases: TimelinePhase[] }[];
  violations: { at: number; to?: number; lane: string | null; text: string }[];
  /** Point events worth a glance: an activation that failed, a pause, an agent restart. */
  markers?: { at: number; lane: string | null; text: string }[];
  /** Lines shown under the title (the command that replays the run, the verdict). */
  notes?: string[];
}

const ROLE_COLOURS: Record<TimelineRole, string> = {
  active: '#2e7d32',
  standby: '#1565c0',
  neutral: '#f9a825',
  init: '#9e9e9e',
  down: '#424242',
  unknown: '#e0e0e0',
};
const PHASE_COLOURS: Record<TimelinePhase['name'], string> = {
  detection: '#8e24aa',
  'lock hand-over': '#00838f',
  fencing: '#ef6c00',
  'to-active hook': '#558b2f',
};

function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

const LABEL_W = 90;
const LANE_H = 56;
const ROLE_H = 20;
const PHASE_H = 12;
const AXIS_H = 28;

export function renderTimelineHtml(m: TimelineModel): string {
  const span = Math.max(1, m.endMs - m.startMs);
  // About 40 px a second, within what a browser lays out without trouble.
  const width = Math.round(Math.min(60_000, Math.max(1200, (span / 1000) * 40)));
  const x = (t: number): number =>
    LABEL_W + ((Math.min(Math.max(t, m.startMs), m.endMs) - m.startMs) / span) * width;
  const w = (a: number, b: number): number => Math.max(1, x(b) - x(a));
  const laneY = new Map(m.lanes.map((l, i) => [l.id, AXIS_H + i * LANE_H]));
  const height = AXIS_H + m.lanes.length * LANE_H + 10;
  const svg: string[] = [];
  const t0 = new Date(m.startMs).toISOString();

  // Axis: a tick every "nice" step.
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].map((s) => s * 1000);
  const step = steps.find((s) => (s / span) * width >= 80) ?? 3_600_000;
  for (let t = 0; t <= span; t += step) {
    const px = x(m.startMs + t);
    svg.push(`<line class="tick" x1="${px}" y1="${AXIS_H - 6}" x2="${px}" y2="${height}" />`);
    svg.push(`<text class="axis" x="${px + 2}" y="${AXIS_H - 10}">+${(t / 1000).toFixed(0)} s</text>`);
  }

  for (const f of m.faults) {
    const y = f.lane === null ? AXIS_H : (laneY.get(f.lane) ?? AXIS_H);
    const h = f.lane === null ? m.lanes.length * LANE_H : LANE_H;
    svg.push(
      `<rect class="fault${f.lane === null ? ' zk' : ''}" data-fault="${esc(f.id)}" x="${x(f.from)}" y="${y}" width="${w(f.from, f.to)}" height="${h}">` +
        `<title>${esc(`${f.id} ${f.label} (${fmtMs(f.to - f.from)})`)}</title></rect>`,
    );
    svg.push(`<text class="fault-label" x="${x(f.from) + 2}" y="${y + h - 3}">${esc(f.label)}</text>`);
  }

  m.lanes.forEach((lane, i) => {
    const y = AXIS_H + i * LANE_H;
    svg.push(`<text class="lane-label" x="4" y="${y + ROLE_H}">${esc(lane.id)}</text>`);
    svg.push(
      `<line class="lane-sep" x1="0" y1="${y + LANE_H}" x2="${LABEL_W + width}" y2="${y + LANE_H}" />`,
    );
    for (const s of lane.segments) {
      const tip = `${lane.id} ${s.role}${s.epoch ? ` epoch ${s.epoch}` : ''} for ${fmtMs(s.to - s.from)}${s.note ? `: ${s.note}` : ''}`;
      svg.push(
        `<rect class="role role-${s.role}" data-lane="${esc(lane.id)}" x="${x(s.from)}" y="${y + 6}" width="${w(s.from, s.to)}" height="${ROLE_H}" fill="${ROLE_COLOURS[s.role]}">` +
          `<title>${esc(tip)}</title></rect>`,
      );
      if (s.role === 'active' && s.epoch && w(s.from, s.to) > 60) {
        svg.push(`<text class="epoch" x="${x(s.from) + 3}" y="${y + 6 + 14}">e${esc(s.epoch)}</text>`);
      }
    }
  });

  for (const fo of m.failovers) {
    const y = (laneY.get(fo.lane) ?? AXIS_H) + 6 + ROLE_H + 4;
    for (const p of fo.phases) {
      const tip = `${fo.lane} epoch ${fo.epoch ?? '?'}: ${p.name} ${fmtMs(p.to - p.from)}`;
      svg.push(
        `<rect class="phase" data-phase="${esc(p.name)}" x="${x(p.from)}" y="${y}" width="${w(p.from, p.to)}" height="${PHASE_H}" fill="${PHASE_COLOURS[p.name]}">` +
          `<title>${esc(tip)}</title></rect>`,
      );
    }
  }

  for (const mk of m.markers ?? []) {
    const y = mk.lane === null ? AXIS_H : (laneY.get(mk.lane) ?? AXIS_H);
    svg.push(
      `<path class="marker" d="M${x(mk.at)} ${y + 2} l4 -6 h-8 z"><title>${esc(mk.text)}</title></path>`,
    );
  }

  for (const v of m.violations) {
    const y = v.lane === null ? AXIS_H : (laneY.get(v.lane) ?? AXIS_H);
    const h = v.lane === null ? m.lanes.length * LANE_H : LANE_H;
    const to = v.to ?? v.at;
    svg.push(
      `<rect class="violation" x="${x(v.at) - 1}" y="${y}" width="${Math.max(3, w(v.at, to))}" height="${h}">` +
        `<title>${esc(v.text)}</title></rect>`,
    );
  }

  const legend = [
    ...Object.entries(ROLE_COLOURS)
      .filter(([r]) => r !== 'init')
      .map(([r, c]) => `<span><i style="background:${c}"></i>${r}</span>`),
    ...Object.entries(PHASE_COLOURS).map(([p, c]) => `<span><i style="background:${c}"></i>${p}</span>`),
    '<span><i class="lg-fault"></i>fault</span>',
    '<span><i class="lg-violation"></i>violation</span>',
  ].join('');

  const phaseRows = m.failovers
    .map((fo) => {
      const cells = (['detection', 'lock hand-over', 'fencing', 'to-active hook'] as const).map((n) => {
        const p = fo.phases.find((q) => q.name === n);
        return `<td>${p ? fmtMs(p.to - p.from) : '-'}</td>`;
      });
      const at = fo.phases.length ? fo.phases[fo.phases.length - 1]!.to : m.startMs;
      return `<tr><td>+${((at - m.startMs) / 1000).toFixed(3)} s</td><td>${esc(fo.lane)}</td><td>${esc(fo.epoch ?? '-')}</td>${cells.join('')}</tr>`;
    })
    .join('\n');
  const violationRows = m.violations
    .map(
      (v) =>
        `<li>+${((v.at - m.startMs) / 1000).toFixed(3)} s ${esc(v.lane ?? 'cluster')}: ${esc(v.text)}</li>`,
    )
    .join('\n');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(m.title)}</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #212121; }
h1 { font-size: 18px; margin: 0 0 4px; } .notes { color: #555; white-space: pre-wrap; font-family: monospace; }
.scroll { overflow-x: auto; border: 1px solid #ddd; }
svg text { font: 11px monospace; } .lane-label { font-weight: bold; font-size: 12px; }
.tick { stroke: #eee; } .lane-sep { stroke: #ccc; } .axis { fill: #777; }
.fault { fill: rgba(120,120,120,.18); stroke: rgba(90,90,90,.4); } .fault.zk { fill: rgba(255,152,0,.12); }
.fault-label { fill: #555; font-size: 10px; } .epoch { fill: #fff; font-size: 10px; }
.violation { fill: rgba(229,57,53,.55); stroke: #c62828; } .marker { fill: #6d4c41; }
.legend span { margin-right: 12px; white-space: nowrap; } .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
.lg-fault { background: rgba(120,120,120,.3); } .lg-violation { background: #e53935; }
table { border-collapse: collapse; margin-top: 12px; } td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
.bad { color: #c62828; } #summary { color: #777; font-family: monospace; }
</style></head><body>
<h1>${esc(m.title)}</h1>
${m.subtitle ? `<div>${esc(m.subtitle)}</div>` : ''}
<div class="notes">${esc((m.notes ?? []).join('\n'))}</div>
<p>from ${esc(t0)} for ${fmtMs(span)}; hover a bar for its details.</p>
<div class="legend">${legend}</div>
<div class="scroll"><svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="${LABEL_W + width + 10}" height="${height}">
${svg.join('\n')}
</svg></div>
<h2>Failovers</h2>
<table><tr><th>at</th><th>node</th><th>epoch</th><th>detection</th><th>lock hand-over</th><th>fencing</th><th>to-active hook</th></tr>
${phaseRows}
</table>
<h2 class="${m.violations.length ? 'bad' : ''}">Violations: ${m.violations.length}</h2>
<ul class="bad">${violationRows}</ul>
<pre id="summary">not rendered (the page's script did not run)</pre>
<script>
(function () {
  var svg = document.getElementById('timeline');
  var lanes = {};
  svg.querySelectorAll('rect.role').forEach(function (r) { lanes[r.getAttribute('data-lane')] = true; });
  var phases = {};
  svg.querySelectorAll('rect.phase').forEach(function (r) {
    var n = r.getAttribute('data-phase'); phases[n] = (phases[n] || 0) + 1;
  });
  var summary = {
    lanes: Object.keys(lanes).sort(),
    roleSegments: svg.querySelectorAll('rect.role').length,
    activeSegments: svg.querySelectorAll('rect.role-active').length,
    phases: phases,
    faults: svg.querySelectorAll('rect.fault').length,
    violations: svg.querySelectorAll('rect.violation').length,
    width: svg.getBoundingClientRect().width
  };
  document.getElementById('summary').textContent = 'TIMELINE-SUMMARY ' + JSON.stringify(summary);
})();
</script>
</body></html>
`;
}
