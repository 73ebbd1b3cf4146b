/**
 * `hafc import-hadoop`: one hafc config per NameNode of an HDFS HA nameservice, and per
 * ResourceManager of an RM HA pair, from Hadoop's site files. What ZKFC (or the RM's embedded
 * elector) would have done with each key is written as the hafc key that does the same; what has
 * no equivalent is reported, one sentence per key, saying why. Every file is validated with hafc's
 * own config loader before it is offered for writing.
 *
 * Keys a Hadoop admin did not set are left to hafc's defaults rather than written with Hadoop's
 * defaults: hafc's defaults are chosen to fit its timing rules (ZKFC's 45 s health RPC timeout
 * would not), and an unset key says nothing about the operator's wishes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from '../../errors.js';
import { InvalidConfigError, parseConfig } from '../../config/load.js';
import { DEFAULT_TICK_TIME_MS, relayAllowanceMs } from '../../config/timing.js';
import { AVAILABLE_AGENTS } from '../../config/validate.js';
import { HadoopConf, javaSystemProperties, type Lookup } from './configuration.js';
import { translateFencing } from './fencing.js';
import { parseHadoopXml } from './xml.js';
import { translateZkAuth } from './zk-auth.js';

export const SITE_FILES = ['core-site.xml', 'hdfs-site.xml', 'yarn-site.xml'] as const;

export interface ImportOptions {
  confDir: string;
  nameservice?: string;
  outDir: string;
  /** Java system properties for ${...} (-D key=value), over user.name, user.home, java.io.tmpdir. */
  defines?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
}

export interface PlannedFile {
  path: string;
  text: string;
  mode: number;
  /** e.g. "NameNode nn1 of nameservice ns1". */
  what: string;
}

export interface ImportPlan {
  files: PlannedFile[];
  /** Keys not mapped (or mapped with a change), each with why; and what to do by hand. */
  notes: ImportNote[];
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const DEFAULT_NN_RPC_PORT = 8020;
const DEFAULT_RM_ADMIN_PORT = 8033;
const DEFAULT_RM_WEBAPP_PORT = 8088;
const DEFAULT_RM_WEBAPP_HTTPS_PORT = 8090;
const DEFAULT_CONTROL_PORT = 9779;
/** hafc's health.fall and health.timeoutMs defaults (src/config/schema.ts). */
const DEFAULT_FALL = 3;
const DEFAULT_HEALTH_TIMEOUT_MS = 2000;

/** The ZKFC keys and Hadoop keys this import reads or deliberately passes over (docs/hadoop.md). */
const HANDLED = new Set([
  'ha.zookeeper.quorum',
  'ha.zookeeper.session-timeout.ms',
  'ha.zookeeper.parent-znode',
  'ha.zookeeper.auth',
  'ha.zookeeper.acl',
  'ha.health-monitor.check-interval.ms',
  'ha.health-monitor.rpc-timeout.ms',
  'ha.failover-controller.new-active.rpc-timeout.ms',
  'ha.failover-controller.graceful-fence.rpc-timeout.ms',
  'dfs.ha.fencing.methods',
  'dfs.ha.fencing.ssh.private-key-files',
  'dfs.ha.fencing.ssh.connect-timeout',
  'dfs.ha.namenodes',
  'dfs.ha.namenode.id',
  'dfs.ha.automatic-failover.enabled',
]);

/** ZKFC keys with no hafc equivalent, and why (printed when a site file sets one). */
const NO_EQUIVALENT: Record<string, string> = {
  'ha.health-monitor.connect-retry-interval.ms':
    'hafc connects as part of each health check, so a failed connect is retried at the next check (health.intervalMs)',
  'ha.health-monitor.sleep-after-disconnect.ms':
    'hafc reconnects at the next health check (health.intervalMs); it does not pause after an RPC error',
  'ha.health-monitor.rpc.connect.max.retries':
    'each hafc health check makes one connect attempt bounded by service.connectTimeoutMs; health.fall counts failed checks',
  'ha.failover-controller.graceful-fence.connection.retries':
    'the graceful fence makes one attempt bounded by service.gracefulFenceTimeoutMs, then the next fencing method runs',
  'ha.failover-controller.active-standby-elector.zk.op.retries':
    "hafc's ZooKeeper requests are bounded by time (zookeeper.requestTimeoutMs), not by a retry count",
  'ha.failover-controller.cli-check.rpc-timeout.ms':
    'it bounds haadmin -failover; the hafc equivalent is the CLI flag hafc failover --timeout S',
  'dfs.ha.zkfc.port':
    "it is ZKFC's own RPC server (ZKFCProtocol, for haadmin -failover); hafc's operator actions go through ZooKeeper and the HTTP listener (control.listen)",
  'dfs.ha.zkfc.nn.http.timeout.ms':
    "ZKFC uses it to fetch the NameNode's thread dump for its log; hafc fetches none",
  'dfs.ha.zkfc.client.ssl.enabled': "hafc's ZooKeeper client has no TLS",
};

/** NameNode-side HA keys that ZKFC does not read: reported as staying where they are. */
const NAMENODE_ONLY = [
  'dfs.ha.tail-edits',
  'dfs.ha.log-roll',
  'dfs.ha.standby.checkpoints',
  'dfs.ha.allow.stale.reads',
  'dfs.ha.nn.not-become-active-in-safemode',
];

export interface ImportNote {
  /** unmapped: a key or part of one that has no hafc equivalent; info: what the operator must do. */
  kind: 'unmapped' | 'info';
  text: string;
}

class Notes {
  readonly list: ImportNote[] = [];
  add(text: string, kind: ImportNote['kind'] = 'unmapped'): void {
    if (!this.list.some((n) => n.text === text)) this.list.push({ kind, text });
  }
  info(text: string): void {
    this.add(text, 'info');
  }
}

function fail(found: Pick<Lookup, 'where' | 'key' | 'value'>, problem: string): never {
  throw new ConfigError(`${found.where}: ${found.key}: ${problem}, got ${JSON.stringify(found.value)}`);
}

function warnUnresolved(found: Lookup | undefined, notes: Notes): void {
  // A fencing command's ${...} are the shell's (Hadoop leaves them as written too).
  if (found?.key.startsWith('dfs.ha.fencing.methods') === true) return;
  if (found !== undefined && found.unresolved.length > 0) {
    notes.add(
      `${found.key} (${found.where}): \${${found.unresolved[0]}} is not defined by the site files, -D or the environment, so it is left as written`,
    );
  }
}

/** Hadoop reads these with getLong/getInt: trimmed decimal (or 0x hex). */
function msValue(found: Lookup | undefined): number | undefined {
  if (found === undefined) return undefined;
  const v = found.value.trim();
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) fail(found, 'expected a whole number of milliseconds');
  return n;
}

function list(found: Lookup | undefined): string[] {
  if (found === undefined) return [];
  return found.value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function toName(raw: string, what: string, notes: Notes): string {
  const name = raw
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63);
  if (!NAME.test(name)) {
    throw new ConfigError(
      `${what} ${JSON.stringify(raw)} cannot be made into an hafc name ([a-z0-9][a-z0-9_-]{0,62})`,
    );
  }
  if (name !== raw)
    notes.add(
      `${what} ${JSON.stringify(raw)} is written as ${JSON.stringify(name)}: hafc names are [a-z0-9][a-z0-9_-]{0,62}`,
    );
  return name;
}

function hostPort(found: Lookup, defaultPort: number): { host: string; port: number } {
  const v = found.value.trim();
  const m = /^(\[[^\]]+\]|[^:\s[\]]+)(?::(\d+))?$/.exec(v);
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port < 1 || port > 65535) fail(found, 'expected host:port');
  const host = (m[1] as string).replace(/^\[|\]$/g, '');
  if (host === '0.0.0.0' || host === '::') {
    fail(
      found,
      'a wildcard address cannot be reached by the other nodes (it is where hafc fences); give the host name',
    );
  }
  return { host, port };
}

function readSiteFiles(opts: ImportOptions): { conf: (files: string[]) => HadoopConf; present: Set<string> } {
  const dir = opts.confDir;
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    throw new ConfigError(
      `--conf-dir ${JSON.stringify(dir)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : String(err)}`,
    );
  }
  if (!st.isDirectory()) throw new ConfigError(`--conf-dir ${JSON.stringify(dir)}: not a directory`);
  const parsed = new Map<string, ReturnType<typeof parseHadoopXml>>();
  for (const name of SITE_FILES) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ConfigError(`${file}: cannot read the file: ${String((err as Error).message)}`);
    }
    parsed.set(name, parseHadoopXml(text, file));
  }
  if (parsed.size === 0) {
    throw new ConfigError(`--conf-dir ${JSON.stringify(dir)}: none of ${SITE_FILES.join(', ')} is there`);
  }
  const props = { ...javaSystemProperties(), ...opts.defines };
  const conf = (files: string[]): HadoopConf => {
    const c = new HadoopConf(props, opts.env ?? process.env);
    for (const f of files) {
      const p = parsed.get(f);
      if (p !== undefined) c.addResource(path.join(dir, f), p);
    }
    return c;
  };
  return { conf, present: new Set(parsed.keys()) };
}

interface Draft {
  file: string;
  what: string;
  header: string[];
  config: Record<string, unknown>;
  /** Keys set from Hadoop values that may go back to hafc's default if the timing rules refuse them. */
  optional: { path: string[]; from: string }[];
  credentials?: string;
}

function getPath(obj: Record<string, unknown>, p: string[]): unknown {
  let cur: unknown = obj;
  for (const k of p) cur = (cur as Record<string, unknown> | undefined)?.[k];
  return cur;
}

function deletePath(obj: Record<string, unknown>, p: string[]): void {
  const parent = getPath(obj, p.slice(0, -1)) as Record<string, unknown> | undefined;
  if (parent !== undefined) delete parent[p[p.length - 1] as string];
}

function rank(p: string[]): number {
  const key = p.join('.');
  return key === 'zookeeper.sessionTimeoutMs' ? 2 : key === 'health.intervalMs' ? 1 : 0;
}

/**
 * With demote, the to-standby deadline must fit in the lease as the agent computes it at runtime
 * (less the relay allowance). For hdfs-namenode that deadline is service.transitionTimeoutMs,
 * which the loader's lease rule does not read (it reads requestTimeoutMs), so the import checks
 * it itself: otherwise check-config passes a file whose agent then refuses to compete.
 */
function checkTransitionLease(d: Draft, notes: Notes): void {
  const zk = d.config.zookeeper as { onConnectionLoss?: string; sessionTimeoutMs?: number };
  const service = d.config.service as { transitionTimeoutMs?: number };
  if (zk.onConnectionLoss !== 'demote' || service.transitionTimeoutMs === undefined) return;
  const session = zk.sessionTimeoutMs ?? 10_000;
  const lease =
    session -
    Math.max(1000, Math.floor(session / 10)) -
    relayAllowanceMs(DEFAULT_TICK_TIME_MS) -
    service.transitionTimeoutMs;
  if (lease >= 1000) return;
  const from = d.optional.find((o) => o.path.join('.') === 'service.transitionTimeoutMs')?.from ?? '';
  notes.add(
    `${from} = ${service.transitionTimeoutMs} is not written as service.transitionTimeoutMs for ${d.what}, because with zookeeper.onConnectionLoss: demote the to-standby deadline must leave at least 1000 ms of the ${session} ms session, less the safety margin and ZooKeeper's relay allowance (${relayAllowanceMs(DEFAULT_TICK_TIME_MS)} ms at the default tickTime); hafc's default is used`,
  );
  delete service.transitionTimeoutMs;
  d.optional = d.optional.filter((o) => o.path.join('.') !== 'service.transitionTimeoutMs');
}

function render(d: Draft): string {
  return `${d.header.map((l) => `# ${l}`).join('\n')}\n${stringify(d.config, { lineWidth: 0 })}`;
}

/**
 * The text of the draft, validated by hafc's loader. A Hadoop timing value that breaks one of
 * hafc's timing rules is put back to hafc's default, with the loader's own words as the reason;
 * anything else the loader refuses is an error naming the file, key and value.
 */
function validated(d: Draft, notes: Notes): string {
  checkTransitionLease(d, notes);
  for (;;) {
    const text = render(d);
    try {
      parseConfig(text, d.file);
      return text;
    } catch (err) {
      if (!(err instanceof InvalidConfigError)) throw err;
      // A rule names several keys; the session timeout is the one to keep longest, since the other
      // timings are derived from it.
      const named = d.optional
        .filter((o) => err.problems.some((p) => new RegExp(`${o.path.join('\\.')}(?![A-Za-z0-9])`).test(p)))
        .sort((a, b) => rank(a.path) - rank(b.path))[0];
      if (named === undefined) {
        throw new ConfigError(`the config written for ${d.what} does not validate:\n${err.message}`);
      }
      const value = getPath(d.config, named.path);
      const why = err.problems.find((p) => p.includes(named.path.join('.'))) ?? err.message;
      notes.add(
        `${named.from} = ${String(value)} is not written as ${named.path.join('.')} for ${d.what}, because hafc refuses it (${why.replace(/^config [^:]*: /, '')}); hafc's default is used`,
      );
      deletePath(d.config, named.path);
      d.optional = d.optional.filter((o) => o !== named);
    }
  }
}

function zookeeperSection(
  connect: Lookup,
  session: Lookup | undefined,
  root: Lookup | undefined,
  auth: { credentials?: string },
  credentialsFile: string,
  onConnectionLoss: 'hold' | 'demote',
  optional: Draft['optional'],
): Record<string, unknown> {
  const zk: Record<string, unknown> = { connect: connect.value.trim().replace(/\s*,\s*/g, ',') };
  const timeout = msValue(session);
  if (timeout !== undefined && session !== undefined) {
    zk.sessionTimeoutMs = timeout;
    optional.push({ path: ['zookeeper', 'sessionTimeoutMs'], from: session.key });
  }
  if (root !== undefined) {
    const r = root.value.trim().replace(/\/+$/, '');
    if (!r.startsWith('/') || r === '') fail(root, 'expected an absolute znode path such as /hadoop-ha');
    zk.root = r;
  }
  zk.onConnectionLoss = onConnectionLoss;
  if (auth.credentials !== undefined) zk.auth = { scheme: 'digest', credentialsFile };
  return zk;
}

function reportUnmapped(conf: HadoopConf, notes: Notes, prefixes: string[]): void {
  for (const key of conf.keys().sort()) {
    if (!prefixes.some((p) => key.startsWith(p))) continue;
    const base = [...HANDLED, ...Object.keys(NO_EQUIVALENT)].find(
      (k) => key === k || key.startsWith(`${k}.`),
    );
    if (base !== undefined && HANDLED.has(base)) continue;
    if (base !== undefined) {
      notes.add(`${key}: no equivalent, because ${NO_EQUIVALENT[base]}`);
      continue;
    }
    if (NAMENODE_ONLY.some((p) => key.startsWith(p))) {
      notes.add(`${key}: a NameNode setting that ZKFC does not read; it stays in hdfs-site.xml`);
      continue;
    }
    notes.add(`${key}: not mapped, because this import does not know the key`);
  }
}

function chooseNameservice(conf: HadoopConf, wanted: string | undefined): string | undefined {
  const declared = list(conf.get('dfs.nameservices'));
  const ha = (
    declared.length > 0
      ? declared
      : conf
          .keys()
          .filter((k) => k.startsWith('dfs.ha.namenodes.'))
          .map((k) => k.slice(17))
  ).filter((ns) => conf.get(`dfs.ha.namenodes.${ns}`) !== undefined);
  if (wanted !== undefined) {
    if (conf.get(`dfs.ha.namenodes.${wanted}`) === undefined) {
      const found = conf.get('dfs.nameservices');
      throw new ConfigError(
        `--nameservice ${JSON.stringify(wanted)}: no dfs.ha.namenodes.${wanted} in hdfs-site.xml` +
          (found ? ` (dfs.nameservices at ${found.where} is ${JSON.stringify(found.value)})` : ''),
      );
    }
    return wanted;
  }
  if (ha.length > 1) {
    throw new ConfigError(
      `hdfs-site.xml has ${ha.length} HA nameservices (${ha.join(', ')}): choose one with --nameservice NS`,
    );
  }
  return ha[0];
}

function hdfsDrafts(opts: ImportOptions, conf: HadoopConf, notes: Notes): Draft[] {
  const ns = chooseNameservice(conf, opts.nameservice);
  if (ns === undefined) return [];
  const nnKey = conf.get(`dfs.ha.namenodes.${ns}`) as Lookup;
  const nnIds = list(nnKey);
  if (nnIds.length < 2) fail(nnKey, 'an HA nameservice needs at least two NameNode ids');
  const cluster = toName(`hdfs-${ns}`, 'the cluster name made from nameservice', notes);
  const outDir = path.resolve(opts.outDir);
  const credentialsFile = path.join(outDir, `${cluster}.zk-auth`);
  const auto = conf.getGeneric('dfs.ha.automatic-failover.enabled', ns);
  if (auto?.value.trim().toLowerCase() !== 'true') {
    notes.info(
      `dfs.ha.automatic-failover.enabled is ${auto ? JSON.stringify(auto.value) : 'not set'}: it must be true in the NameNodes' hdfs-site.xml, or they refuse hafc's transitions (REQUEST_BY_ZKFC)`,
    );
  }
  const security = conf.get('hadoop.security.authentication');
  if (security !== undefined && security.value.trim().toLowerCase() !== 'simple') {
    notes.add(
      `hadoop.security.authentication = ${security.value.trim()}: not mapped, because hafc's Hadoop IPC client does SIMPLE authentication only; a secured NameNode refuses it (docs/hadoop.md)`,
    );
  }
  const nodes = nnIds.map((nn) => {
    const rpcKey =
      conf.get(`dfs.namenode.servicerpc-address.${ns}.${nn}`) ??
      conf.get(`dfs.namenode.rpc-address.${ns}.${nn}`);
    if (rpcKey === undefined) {
      throw new ConfigError(
        `${nnKey.where}: NameNode ${nn} of ${ns} has no dfs.namenode.rpc-address.${ns}.${nn} in hdfs-site.xml`,
      );
    }
    warnUnresolved(rpcKey, notes);
    return {
      nn,
      id: toName(nn, `NameNode id of ${ns}`, notes),
      rpcKey,
      ...hostPort(rpcKey, DEFAULT_NN_RPC_PORT),
    };
  });
  const idsPreserved = nodes.every((n) => n.id === n.nn);
  const sharedHost = new Set(nodes.map((n) => n.host)).size < nodes.length;
  if (sharedHost) {
    notes.info(
      `two NameNodes of ${ns} share a host, so their agents get control.listen ports ${DEFAULT_CONTROL_PORT} to ${DEFAULT_CONTROL_PORT + nodes.length - 1}`,
    );
  }
  const https = conf.get('dfs.http.policy')?.value.trim().toUpperCase() === 'HTTPS_ONLY';
  return nodes.map((n, i): Draft => {
    const g = (key: string): Lookup | undefined => {
      const found = conf.getGeneric(key, ns, n.nn);
      warnUnresolved(found, notes);
      return found;
    };
    const optional: Draft['optional'] = [];
    const quorum = g('ha.zookeeper.quorum');
    if (quorum === undefined) {
      throw new ConfigError(
        `ha.zookeeper.quorum is not set in ${opts.confDir} (core-site.xml or hdfs-site.xml): hafc needs the ZooKeeper ensemble`,
      );
    }
    const shared = conf.getGeneric('dfs.namenode.shared.edits.dir', ns, n.nn);
    const qjm = shared?.value.trim().startsWith('qjournal://') === true;
    if (!qjm) {
      notes.add(
        `dfs.namenode.shared.edits.dir is ${shared ? JSON.stringify(shared.value.trim()) : 'not set'}, not qjournal://: zookeeper.onConnectionLoss is demote (an active that loses ZooKeeper steps down), where ZKFC would hold; with QJM it is hold, as under ZKFC`,
      );
    }
    const auth = translateZkAuth(g('ha.zookeeper.auth'), g('ha.zookeeper.acl'), opts.confDir);
    auth.notes.forEach((x) => notes.add(x));
    const zookeeper = zookeeperSection(
      quorum,
      g('ha.zookeeper.session-timeout.ms'),
      g('ha.zookeeper.parent-znode'),
      auth,
      credentialsFile,
      qjm ? 'hold' : 'demote',
      optional,
    );
    const health: Record<string, unknown> = {};
    const service: Record<string, unknown> = {
      agent: 'hdfs-namenode',
      rpcAddress: `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`,
    };
    const interval = g('ha.health-monitor.check-interval.ms');
    if (interval !== undefined) {
      health.intervalMs = msValue(interval);
      optional.push({ path: ['health', 'intervalMs'], from: interval.key });
    }
    const rpcTimeout = g('ha.health-monitor.rpc-timeout.ms');
    const intervalMs = health.intervalMs as number | undefined;
    if (
      rpcTimeout === undefined &&
      intervalMs !== undefined &&
      intervalMs * DEFAULT_FALL <= DEFAULT_HEALTH_TIMEOUT_MS
    ) {
      // hafc's default check timeout would not fit the shorter interval (timeout < interval x fall).
      health.timeoutMs = intervalMs * (DEFAULT_FALL - 1);
      notes.info(
        `${interval?.key} = ${intervalMs}: health.timeoutMs is written as ${String(health.timeoutMs)} (intervalMs x (fall - 1)), since hafc's default 2000 ms must be less than intervalMs x fall`,
      );
    }
    if (rpcTimeout !== undefined) {
      health.timeoutMs = msValue(rpcTimeout);
      service.requestTimeoutMs = msValue(rpcTimeout);
      optional.push({ path: ['health', 'timeoutMs'], from: rpcTimeout.key });
      optional.push({ path: ['service', 'requestTimeoutMs'], from: rpcTimeout.key });
    }
    health.check = 'agent';
    const newActive = g('ha.failover-controller.new-active.rpc-timeout.ms');
    if (newActive !== undefined) {
      service.transitionTimeoutMs = msValue(newActive);
      optional.push({ path: ['service', 'transitionTimeoutMs'], from: newActive.key });
    }
    const graceful = g('ha.failover-controller.graceful-fence.rpc-timeout.ms');
    if (graceful !== undefined) {
      service.gracefulFenceTimeoutMs = msValue(graceful);
      optional.push({ path: ['service', 'gracefulFenceTimeoutMs'], from: graceful.key });
    }
    const httpKey = https
      ? conf.get(`dfs.namenode.https-address.${ns}.${n.nn}`)
      : conf.get(`dfs.namenode.http-address.${ns}.${n.nn}`);
    if (httpKey !== undefined) {
      const { host, port } = hostPort(httpKey, https ? 9871 : 9870);
      service.httpUrl = `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    }
    const keyFiles = g('dfs.ha.fencing.ssh.private-key-files');
    const fencingSpec = g('dfs.ha.fencing.methods');
    const fence = translateFencing(fencingSpec?.value, {
      nameservice: ns,
      source: { host: n.host, port: n.port, nodeId: n.nn },
      idsPreserved,
      identityFiles: list(keyFiles),
      confKeys: conf.keys(),
    });
    if (fence.errors.length > 0) {
      throw new ConfigError(
        fence.errors.map((e) => `${fencingSpec?.where ?? opts.confDir}: ${e}`).join('\n'),
      );
    }
    fence.notes.forEach((x) => notes.add(x));
    const fencing: Record<string, unknown> = { methods: fence.methods };
    const sshTimeout = g('dfs.ha.fencing.ssh.connect-timeout');
    if (sshTimeout !== undefined && fence.methods.some((m) => typeof m === 'object' && 'ssh' in m)) {
      // hafc's ssh ConnectTimeout is a third of fencing.timeoutMs (at most 30 s).
      fencing.timeoutMs = Math.min(600_000, (msValue(sshTimeout) as number) * 3);
      optional.push({ path: ['fencing', 'timeoutMs'], from: sshTimeout.key });
      notes.add(
        `${sshTimeout.key} = ${sshTimeout.value.trim()} becomes fencing.timeoutMs = ${String(fencing.timeoutMs)}: hafc's ssh connect timeout is a third of the fencing timeout, at most 30 s, and the timeout applies to every fencing method`,
      );
    }
    const config: Record<string, unknown> = {
      cluster,
      node: { id: n.id, host: n.host, port: n.port },
      zookeeper,
      health,
      service,
      fencing,
      ...(sharedHost ? { control: { listen: `127.0.0.1:${DEFAULT_CONTROL_PORT + i}` } } : {}),
    };
    const file = path.join(outDir, `${cluster}-${n.id}.yaml`);
    return {
      file,
      what: `NameNode ${n.nn} of nameservice ${ns}`,
      header: [
        `hafc config for NameNode ${n.nn} of nameservice ${ns}, written by hafc import-hadoop`,
        `from ${path.resolve(opts.confDir)}. Check it on the NameNode's host: hafc check-config ${path.basename(file)}`,
        'Stop every ZKFC of the nameservice before the first hafc agent starts, and run hafc init once.',
      ],
      config,
      optional,
      ...(auth.credentials !== undefined ? { credentials: auth.credentials } : {}),
    };
  });
}

function yarnDrafts(opts: ImportOptions, conf: HadoopConf, notes: Notes): Draft[] {
  const enabled = conf.get('yarn.resourcemanager.ha.enabled');
  const idsKey = conf.get('yarn.resourcemanager.ha.rm-ids');
  if (enabled?.value.trim().toLowerCase() !== 'true' || idsKey === undefined) return [];
  const ids = list(idsKey);
  if (ids.length < 2) fail(idsKey, 'RM HA needs at least two ResourceManager ids');
  const clusterId = conf.get('yarn.resourcemanager.cluster-id');
  if (clusterId === undefined)
    notes.add('yarn.resourcemanager.cluster-id is not set: the hafc cluster is named yarn-rm');
  const cluster = toName(
    `yarn-${clusterId?.value.trim() ?? 'rm'}`,
    'the cluster name made from yarn.resourcemanager.cluster-id',
    notes,
  );
  const outDir = path.resolve(opts.outDir);
  // Hadoop 3.4's ResourceManager refuses automatic failover without an elector of its own
  // (embedded or Curator), and either would fight hafc: hafc drives RMs with automatic failover
  // off and REQUEST_BY_USER transitions (the yarn-resourcemanager agent's default).
  const automatic = conf.get('yarn.resourcemanager.ha.automatic-failover.enabled');
  if (automatic?.value.trim().toLowerCase() !== 'false') {
    notes.info(
      `yarn.resourcemanager.ha.automatic-failover.enabled is ${automatic ? JSON.stringify(automatic.value) : 'not set (true by default with HA)'}: set it to false; with it on, each ResourceManager insists on running its own elector beside hafc`,
    );
  }
  if (!AVAILABLE_AGENTS.includes('yarn-resourcemanager')) {
    notes.add(
      `ResourceManagers ${ids.join(', ')}: no config written, because this build of hafc has no yarn-resourcemanager service agent yet`,
    );
    return [];
  }
  const get = (key: string, ...old: string[]): Lookup | undefined => {
    for (const k of [key, ...old]) {
      const found = conf.get(k);
      if (found !== undefined) {
        warnUnresolved(found, notes);
        return found;
      }
    }
    return undefined;
  };
  // The embedded elector's ZooKeeper settings (Hadoop 3 names first, then the deprecated ones).
  const quorum = get('hadoop.zk.address', 'yarn.resourcemanager.zk-address', 'ha.zookeeper.quorum');
  if (quorum === undefined) {
    throw new ConfigError(
      `hadoop.zk.address (or yarn.resourcemanager.zk-address) is not set in ${opts.confDir}: hafc needs the ZooKeeper ensemble`,
    );
  }
  const auth = translateZkAuth(
    get('hadoop.zk.auth', 'yarn.resourcemanager.zk-auth'),
    get('hadoop.zk.acl', 'yarn.resourcemanager.zk-acl'),
    opts.confDir,
  );
  auth.notes.forEach((x) => notes.add(x));
  const https = conf.get('yarn.http.policy')?.value.trim().toUpperCase() === 'HTTPS_ONLY';
  const nodes = ids.map((rm) => {
    const hostname = conf.get(`yarn.resourcemanager.hostname.${rm}`);
    const admin = conf.get(`yarn.resourcemanager.admin.address.${rm}`);
    const addr: Lookup | undefined =
      admin ??
      (hostname && {
        ...hostname,
        key: `yarn.resourcemanager.hostname.${rm}`,
        value: `${hostname.value.trim()}:${DEFAULT_RM_ADMIN_PORT}`,
      });
    if (addr === undefined) {
      throw new ConfigError(
        `${idsKey.where}: ResourceManager ${rm} has neither yarn.resourcemanager.admin.address.${rm} nor yarn.resourcemanager.hostname.${rm}`,
      );
    }
    const webKey = https
      ? `yarn.resourcemanager.webapp.https.address.${rm}`
      : `yarn.resourcemanager.webapp.address.${rm}`;
    const web: Lookup | undefined =
      conf.get(webKey) ??
      (hostname && {
        ...hostname,
        value: `${hostname.value.trim()}:${https ? DEFAULT_RM_WEBAPP_HTTPS_PORT : DEFAULT_RM_WEBAPP_PORT}`,
      });
    return { rm, id: toName(rm, 'ResourceManager id', notes), ...hostPort(addr, DEFAULT_RM_ADMIN_PORT), web };
  });
  const sharedHost = new Set(nodes.map((n) => n.host)).size < nodes.length;
  return nodes.map((n, i): Draft => {
    const optional: Draft['optional'] = [];
    const zookeeper = zookeeperSection(
      quorum,
      get('hadoop.zk.timeout-ms', 'yarn.resourcemanager.zk-timeout-ms'),
      get('yarn.resourcemanager.ha.automatic-failover.zk-base-path'),
      auth,
      path.join(outDir, `${cluster}.zk-auth`),
      'demote',
      optional,
    );
    const service: Record<string, unknown> = {
      agent: 'yarn-resourcemanager',
      rpcAddress: `${n.host}:${n.port}`,
      user: 'yarn',
    };
    if (n.web !== undefined) {
      const { host, port } = hostPort(n.web, DEFAULT_RM_WEBAPP_PORT);
      service.httpUrl = `${https ? 'https' : 'http'}://${host}:${port}`;
    }
    const file = path.join(outDir, `${cluster}-${n.id}.yaml`);
    return {
      file,
      what: `ResourceManager ${n.rm}`,
      header: [
        `hafc config for ResourceManager ${n.rm}, written by hafc import-hadoop from ${path.resolve(opts.confDir)}.`,
        `Check it on the ResourceManager's host: hafc check-config ${path.basename(file)}`,
      ],
      config: {
        cluster,
        node: { id: n.id, host: n.host, port: n.port },
        zookeeper,
        health: { check: 'agent' },
        service,
        fencing: { methods: ['graceful'] },
        ...(sharedHost ? { control: { listen: `127.0.0.1:${DEFAULT_CONTROL_PORT + i}` } } : {}),
      },
      optional,
      ...(auth.credentials !== undefined ? { credentials: auth.credentials } : {}),
    };
  });
}

/** Reads the site files and plans every file to write; nothing is written here. */
export function planImport(opts: ImportOptions): ImportPlan {
  const notes = new Notes();
  const { conf, present } = readSiteFiles(opts);
  const hdfs = conf(['core-site.xml', 'hdfs-site.xml']);
  const yarn = conf(['core-site.xml', 'yarn-site.xml']);
  const drafts = [...(present.has('hdfs-site.xml') ? hdfsDrafts(opts, hdfs, notes) : [])];
  if (present.has('yarn-site.xml')) drafts.push(...yarnDrafts(opts, yarn, notes));
  if (drafts.length === 0 && notes.list.length === 0) {
    throw new ConfigError(
      `${opts.confDir}: found no HA nameservice (dfs.ha.namenodes.NS in hdfs-site.xml) and no ResourceManager HA (yarn.resourcemanager.ha.rm-ids in yarn-site.xml)`,
    );
  }
  reportUnmapped(hdfs, notes, ['ha.', 'dfs.ha.']);
  const files: PlannedFile[] = [];
  const credentials = new Map<string, string>();
  for (const d of drafts) {
    files.push({ path: d.file, text: validated(d, notes), mode: 0o644, what: d.what });
    const zk = d.config.zookeeper as { auth?: { credentialsFile: string } };
    if (zk.auth === undefined || d.credentials === undefined) continue;
    const file = zk.auth.credentialsFile;
    const before = credentials.get(file);
    if (before !== undefined && before !== d.credentials) {
      throw new ConfigError(
        `the NameNodes of one cluster have different ZooKeeper digest credentials (per-NameNode ha.zookeeper.auth overrides); hafc's agents of a cluster share one: make them equal`,
      );
    }
    credentials.set(file, d.credentials);
  }
  for (const [file, cred] of credentials) {
    files.push({ path: file, text: `${cred}\n`, mode: 0o600, what: 'the ZooKeeper digest credentials' });
    notes.info(
      `the ZooKeeper digest credentials are written to ${file} (mode 0600), which zookeeper.auth.credentialsFile names: install it at that path on every host, readable only by the agent's user`,
    );
  }
  return { files, notes: notes.list };
}
