/**
 * What a SIGHUP reload may change in a running agent, decided once per key of the declaration
 * (schema.ts). Pure: two validated configs in, a plan out; the agent (cli/reload.ts) applies it.
 *
 * A key is `live` when the running pieces can take the new value between two transitions without
 * dropping the ZooKeeper session or the lock: health, hooks, fencing, priority, logging. Everything
 * the session, the lock's path or the lease budget was built from at start is `restart`. A key the
 * table does not know is refused too (the safe default), and a unit test fails until it is
 * classified, so a new key cannot slip through as "live" by accident.
 */
import type { Field, Shape, Spec } from './declare.js';
import { show } from './format.js';
import { CONFIG } from './schema.js';
import type { FenceMethodConfig, HafcConfig, HealthCheckConfig } from './types.js';

/** The configs a conditional rule looks at. `boot` is the one the agent started with. */
export interface RuleContext {
  current: HafcConfig;
  next: HafcConfig;
  boot: HafcConfig;
}

export interface ReloadRule {
  live: boolean;
  /** Why (restart) or how (live) it takes effect, for the log and docs/cli.md. */
  note: string;
  /** For a live key: a reason to refuse this particular change, or undefined. */
  refuseIf?: (ctx: RuleContext) => string | undefined;
  /** Renders a value for a log line (commands and URLs may carry secrets). @default show() */
  display?: (value: unknown) => string;
}

export interface Refusal {
  key: string;
  old: string;
  new: string;
  why: string;
}

export interface ReloadPlan {
  /** Keys whose new value the running agent takes. */
  apply: string[];
  /** Keys that cannot change without a restart; any one of them refuses the whole reload. */
  refuse: Refusal[];
}

const live = (note: string, more: Omit<ReloadRule, 'live' | 'note'> = {}): ReloadRule => ({
  live: true,
  note,
  ...more,
});
const restart = (note: string, more: Omit<ReloadRule, 'live' | 'note'> = {}): ReloadRule => ({
  live: false,
  note,
  ...more,
});

const hidden = (what: string) => (value: unknown) => (value === undefined ? 'nothing' : `(${what})`);

/** A URL without its password: `user:***@host`. */
export function withoutPassword(value: unknown): string {
  if (typeof value !== 'string') return show(value);
  try {
    const u = new URL(value);
    if (u.password === '') return show(value);
    u.password = '***';
    return show(u.toString());
  } catch {
    return show(value);
  }
}

function showCheck(value: unknown): string {
  if (value === undefined) return 'nothing';
  const c = value as HealthCheckConfig;
  switch (c.kind) {
    case 'http':
      return `http ${withoutPassword(c.url)}`;
    case 'tcp':
      return `tcp ${show(`${c.host}:${c.port}`)}`;
    case 'command':
      return 'command (not shown)';
    default:
      return show((c as { kind?: unknown }).kind);
  }
}

/** The methods' kinds only: their commands and URLs may carry secrets. */
function showMethods(value: unknown): string {
  if (!Array.isArray(value)) return 'nothing';
  return `[${(value as FenceMethodConfig[]).map((m) => String(m?.kind)).join(', ')}]`;
}

/** The port a URL's requests go to, the way the http agent derives its control port. */
function urlPort(url: string): number | undefined {
  try {
    const u = new URL(url);
    return Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  } catch {
    return undefined;
  }
}

/**
 * The election step's deadline is sized at start from the fencing methods and their timeout (a
 * longer fence would be taken for a stuck step, and the session given up), so fencing may change
 * live only within what it was at start: no more methods, no longer a timeout.
 */
function fencingWithinBoot({ next, boot }: RuleContext): string | undefined {
  const n = next.fencing;
  const b = boot.fencing;
  if (n.methods.length <= b.methods.length && n.timeoutMs <= b.timeoutMs) return undefined;
  return (
    `the election step deadline was sized at start for ${b.methods.length} fencing method(s) of ` +
    `${b.timeoutMs} ms; more methods or a longer timeout need a restart`
  );
}

function sameControlPort({ current, next }: RuleContext): string | undefined {
  if (current.service.agent !== 'http' || next.service.agent !== 'http') return undefined;
  const before = urlPort(current.service.url);
  const after = urlPort(next.service.url);
  if (before === after) return undefined;
  return `its port (${before} -> ${after}) is the control port published for peers' graceful fencing`;
}

const SESSION = 'the ZooKeeper session is opened with it at start';
const LEASE = 'it is the to-standby timeout: the lease budget was computed from it when the session opened';
const IDENTITY = 'published in the member, lock and breadcrumb records peers elect and fence by';

/** Every key of the declaration; `service.X` covers key X of whichever agent has it. */
export const RELOAD_RULES: Readonly<Record<string, ReloadRule>> = {
  cluster: restart('the cluster name is the path of the lock and member znodes'),
  'node.id': restart(IDENTITY),
  'node.host': restart(IDENTITY),
  'node.port': restart(IDENTITY),
  'node.priority': live('republished in `members/<id>` at once'),
  'node.noFailover': live('re-decides electability at once (true on an active demotes it)'),
  'zookeeper.connect': restart(SESSION),
  'zookeeper.root': restart('the root is the path of the lock and member znodes'),
  'zookeeper.sessionTimeoutMs': restart(SESSION),
  'zookeeper.onConnectionLoss': restart('the lease policy is fixed when the elector starts'),
  'zookeeper.auth.scheme': restart(SESSION),
  'zookeeper.auth.credentialsFile': restart(SESSION),
  'zookeeper.requestTimeoutMs': restart(SESSION),
  'zookeeper.safetyMarginMs': restart('the lease budget was computed from it when the session opened'),
  'health.intervalMs': live('from the next check on'),
  'health.timeoutMs': live('from the next check on'),
  'health.fall': live('compared with the failures counted so far at the next result'),
  'health.rise': live('compared with the successes counted so far at the next result'),
  'health.fastIntervalMs': live("from the next wait on (and the pid watch's next poll)"),
  'health.pidFile': live('read by the next check; the process it names is watched from then on'),
  'health.check': live('from the next check on; the health state is kept', { display: showCheck }),
  'service.agent': restart('the service agent is chosen at start'),
  'service.toActive': live('used by the next activation', { display: hidden('a command, not shown') }),
  'service.toStandby': live('used by the next demotion', { display: hidden('a command, not shown') }),
  'service.state': live('used by the next reconcile', { display: hidden('a command, not shown') }),
  'service.check': live('used by the next check', { display: hidden('a command, not shown') }),
  'service.hookTimeoutMs': restart(LEASE),
  'service.url': live('used by the next request, if its port is unchanged', {
    refuseIf: sameControlPort,
    display: withoutPassword,
  }),
  'service.rolePath': live('used by the next request'),
  'service.statePath': live('used by the next request'),
  'service.healthPath': live('used by the next request'),
  'service.requestTimeoutMs': restart(LEASE),
  'service.rpcAddress': restart("its port is the control port published for peers' graceful fencing"),
  'service.user': live('used by the next call'),
  'service.connectTimeoutMs': live('used by the next connect'),
  'service.transitionTimeoutMs': restart(LEASE),
  'service.gracefulFenceTimeoutMs': live('used by the next graceful fence'),
  'service.httpUrl': live('used by the next check'),
  'service.requestSource': live('used by the next transition or graceful fence'),
  'service.port': restart(IDENTITY),
  'service.host': live('used by the next connection'),
  'service.dataDir': restart('the server the agent manages; a new one is a new node'),
  'service.binDir': live('used by the next pg_ctl, pg_rewind or pg_basebackup'),
  'service.osUser': live('used by the next pg_ctl, pg_rewind or pg_basebackup'),
  'service.database': live('used by the next connection'),
  'service.passwordFile': live('read again by the reloaded agent; used by the next connection', {
    display: hidden('a file, not shown'),
  }),
  'service.logFile': live('used by the next pg_ctl start'),
  'service.stopTimeoutMs': restart(LEASE),
  'service.startTimeoutMs': live('used by the next start'),
  'service.followTimeoutMs': live('used by the next follow'),
  'service.maximumLagOnFailover': live('judged by the next check and promotion'),
  'service.synchronous': live(
    'applied by the next promotion (a running active keeps its setting until then)',
  ),
  'service.address': restart('the agent reaches its own server there; it must agree with node.port'),
  'service.username': live('used by the next connection'),
  'fencing.methods': live('used by the next fencing, within the number of methods at start', {
    refuseIf: fencingWithinBoot,
    display: showMethods,
  }),
  'fencing.timeoutMs': live('used by the next fencing, up to the timeout at start', {
    refuseIf: fencingWithinBoot,
  }),
  'election.priorityGraceMs': restart('the elector reads it once, when it starts'),
  'election.backoffMs': restart('the elector reads it once, when it starts'),
  'control.listen': restart('the listener is bound at start'),
  'control.tokenFile': restart('read at start'),
  'log.level': live('at once, for every line after the reload'),
  'log.format': live('at once, for every line after the reload'),
};

/** Where a declared key lives: its path and, for a service agent's key, the agents that have it. */
export interface DeclaredKey {
  path: string;
  agents: string[];
}

/** Every leaf key of the declaration (sections flattened; `service.X` once for all agents). */
export function declaredKeys(shape: Shape = CONFIG.keys, base = ''): DeclaredKey[] {
  const out = new Map<string, DeclaredKey>();
  const add = (path: string, agent?: string) => {
    const k = out.get(path) ?? { path, agents: [] };
    if (agent !== undefined) k.agents.push(agent);
    out.set(path, k);
  };
  for (const [key, field] of Object.entries(shape) as Array<[string, Field<unknown>]>) {
    const path = base === '' ? key : `${base}.${key}`;
    if (field.kind === 'section') {
      for (const k of declaredKeys(field.keys, path)) add(k.path);
    } else if (field.kind === 'variants') {
      add(`${path}.${field.tag}`);
      for (const [name, variant] of Object.entries(field.variants))
        for (const k of declaredKeys(variant.keys, path)) add(k.path, name);
    } else {
      add(path);
    }
  }
  return [...out.values()];
}

interface Change {
  key: string;
  old: unknown;
  new: unknown;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const field = (value: unknown, key: string): unknown =>
  typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;

/** The leaf keys whose values differ, in declaration order. */
function changes(spec: Spec, old: unknown, next: unknown, path: string, out: Change[]): void {
  if (spec.kind === 'section') {
    for (const [key, child] of Object.entries(spec.keys) as Array<[string, Field<unknown>]>)
      changes(child, field(old, key), field(next, key), path === '' ? key : `${path}.${key}`, out);
    return;
  }
  if (spec.kind === 'variants') {
    const tag = `${path}.${spec.tag}`;
    const before = field(old, spec.tag);
    const after = field(next, spec.tag);
    // Another agent: its keys are not comparable with the old one's; the agent itself is the change.
    if (before !== after) {
      out.push({ key: tag, old: before, new: after });
      return;
    }
    const variant = spec.variants[String(after)];
    if (variant === undefined) return;
    for (const [key, child] of Object.entries(variant.keys) as Array<[string, Field<unknown>]>)
      changes(child, field(old, key), field(next, key), `${path}.${key}`, out);
    return;
  }
  if (!equal(old, next)) out.push({ key: path, old, new: next });
}

/**
 * What reloading `next` over the running `current` would do. `boot` is the config the agent
 * started with (some limits were sized from it then). Refused: every restart-only key that
 * changed, every live one whose rule refuses this change, every key the table does not know.
 */
export function planReload(current: HafcConfig, next: HafcConfig, boot: HafcConfig = current): ReloadPlan {
  const found: Change[] = [];
  changes(CONFIG, current, next, '', found);
  const plan: ReloadPlan = { apply: [], refuse: [] };
  const ctx: RuleContext = { current, next, boot };
  for (const c of found) {
    const rule = RELOAD_RULES[c.key];
    if (rule === undefined) {
      plan.refuse.push({
        key: c.key,
        old: '(not shown)',
        new: '(not shown)',
        why: 'not classified for reload',
      });
      continue;
    }
    const why = rule.live ? rule.refuseIf?.(ctx) : rule.note;
    if (why === undefined) {
      plan.apply.push(c.key);
      continue;
    }
    const display = rule.display ?? show;
    plan.refuse.push({ key: c.key, old: display(c.old), new: display(c.new), why });
  }
  return plan;
}

/** One line naming every refused key with its old and new value, and why. */
export function describeRefusals(refuse: readonly Refusal[]): string {
  return refuse.map((r) => `${r.key} ${r.old} -> ${r.new} (${r.why})`).join('; ');
}

/** The markdown table of docs/cli.md's Reload section (generated; see scripts/config-docs.ts). */
export function renderReloadTable(): string {
  const rows = declaredKeys().map((k) => {
    const rule = RELOAD_RULES[k.path];
    const agents = k.agents.length > 0 ? ` (${k.agents.join(', ')})` : '';
    const when = rule === undefined ? 'restart (not classified)' : rule.live ? 'live' : 'restart';
    return `| \`${k.path}\`${agents} | ${when} | ${rule?.note ?? ''} |`;
  });
  return ['| Key | On SIGHUP | Why, or how it takes effect |', '| --- | --- | --- |', ...rows].join('\n');
}
