/**
 * hafc's config, declared once: every key with its type, bounds, default
 * and meaning. types.ts infers HafcConfig from it, read.ts validates with it, and
 * `npm run docs:config` generates docs/config.md and docs/hafc.schema.json from it.
 */
import { boolean, integer, oneOf, section, string, variants, type Derived } from './declare.js';
import { command, fenceMethods, healthCheck } from './forms.js';
import { ABSOLUTE_PATH, CONNECT, HOST, hostPort, NAME, ROOT, URL_PATH, URL_RULE, USER } from './rules.js';

/**
 * The longest duration any key takes. Node timers treat anything from 2^31 ms up as 1 ms, so an
 * unbounded value would fire at once; and no hafc step should wait longer than the longest
 * ZooKeeper session we accept: a larger value is a typo (seconds for milliseconds, a zero too
 * many), and waiting it out would leave the cluster without an active for that long.
 */
export const MAX_DURATION_MS = 600_000;
export const MIN_SESSION_TIMEOUT_MS = 1000;
export const MAX_SESSION_TIMEOUT_MS = MAX_DURATION_MS;
/** fall and rise count checks; beyond this, detection would take longer than any session. */
export const MAX_HEALTH_COUNT = 100;

export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
export const DEFAULT_CONTROL_LISTEN = '127.0.0.1:9779';

export function defaultRequestTimeoutMs(sessionTimeoutMs: number): number {
  return Math.round(Math.min(sessionTimeoutMs / 3, 5000));
}

export function defaultSafetyMarginMs(sessionTimeoutMs: number): number {
  return Math.round(Math.max(1000, sessionTimeoutMs / 10));
}

function fromSession(text: string, f: (sessionTimeoutMs: number) => number): Derived<number> {
  return {
    text,
    derive: (zk) =>
      f(typeof zk.sessionTimeoutMs === 'number' ? zk.sessionTimeoutMs : DEFAULT_SESSION_TIMEOUT_MS),
  };
}

function ms(o: { min: number; doc: string; default: number | Derived<number> }) {
  return integer({ ...o, max: MAX_DURATION_MS, unit: 'ms' });
}

const NODE = section(
  {
    id: string({ rule: NAME, doc: 'This node, unique within the cluster; same alphabet as cluster.' }),
    host: string({
      rule: HOST,
      default: { text: "this machine's host name", derive: (_, ctx) => ctx.hostname },
      doc: "The managed service's host (ZKFC's target address): where the other nodes fence it.",
    }),
    port: integer({ min: 1, max: 65535, doc: "The managed service's port." }),
    priority: integer({
      min: 0,
      max: 1_000_000,
      default: 0,
      doc: 'Of the healthy candidates for a free lock, the highest priority takes it.',
    }),
    noFailover: boolean({ default: false, doc: 'Never become active (a witness or a read replica).' }),
  },
  { required: true, doc: 'This node and the service instance it manages.' },
);

const ZOOKEEPER = section(
  {
    connect: string({ rule: CONNECT, doc: 'The ZooKeeper servers, with an optional chroot.' }),
    root: string({ rule: ROOT, default: '/hafc', doc: 'Parent znode of all clusters.' }),
    sessionTimeoutMs: integer({
      min: MIN_SESSION_TIMEOUT_MS,
      max: MAX_SESSION_TIMEOUT_MS,
      unit: 'ms',
      default: DEFAULT_SESSION_TIMEOUT_MS,
      doc: 'The session timeout asked for; the servers clamp it to [2, 20] x their tickTime, and the agent uses the one they negotiate.',
    }),
    onConnectionLoss: oneOf(['demote', 'hold'] as const, {
      default: 'demote',
      doc: "demote: an active node that loses ZooKeeper demotes its service before its session can expire, so a standby can take over safely. hold: keep the service active (ZKFC's behaviour); only for services whose own storage fences a second writer, such as a NameNode on QJM.",
    }),
    auth: section(
      {
        scheme: oneOf(['digest'] as const, { default: 'digest', doc: 'The ZooKeeper auth scheme.' }),
        credentialsFile: string({
          rule: ABSOLUTE_PATH,
          doc: 'Holds "user:password" on its first line; must be readable by the agent.',
        }),
      },
      { optional: true, doc: "Restrict writes to this cluster's znodes to these credentials." },
    ),
    requestTimeoutMs: ms({
      min: 1,
      default: fromSession('min(sessionTimeoutMs / 3, 5000)', defaultRequestTimeoutMs),
      doc: 'Timeout of each ZooKeeper request; must be less than sessionTimeoutMs.',
    }),
    safetyMarginMs: ms({
      min: 0,
      default: fromSession('max(1000, sessionTimeoutMs / 10)', defaultSafetyMarginMs),
      doc: 'Subtracted from the lease before self-demotion, for clock-rate drift and scheduling delays.',
    }),
  },
  { required: true, doc: 'The ZooKeeper ensemble the nodes elect through.' },
);

/**
 * A quarter of the interval, at most 50 ms: the fast path declares a crash
 * (fall - 1) x fastIntervalMs after the first refused check. A quarter keeps a short profile's
 * proportion (a fixed 50 would do nothing for a 50 ms interval). The cap is for long intervals:
 * at the 1000 ms default a quarter cost a crash 500 ms more than ZKFC, which acts on its first
 * failed check. A refused connect to a local service costs well under a millisecond, and fast
 * checks run only after a definite failure, at most fall - 1 of them, so nothing is paid at rest;
 * except that with health.pidFile set the pid is polled at this rate too (20 wake-ups a second
 * at the cap: set fastIntervalMs to trade that against detection).
 */
export const FAST_INTERVAL_CAP_MS = 50;

export function defaultFastIntervalMs(intervalMs: number): number {
  return Math.max(1, Math.min(FAST_INTERVAL_CAP_MS, Math.floor(intervalMs / 4)));
}

const HEALTH = section(
  {
    intervalMs: ms({ min: 1, default: 1000, doc: 'Time between health checks.' }),
    fastIntervalMs: ms({
      min: 1,
      default: {
        text: 'intervalMs / 4, at most 50 (at least 1)',
        derive: (health) =>
          defaultFastIntervalMs(typeof health.intervalMs === 'number' ? health.intervalMs : 1000),
      },
      doc: 'Time to the next check after a definite failure (connection refused or reset, check program missing) of a healthy service, until fall is reached or a check passes; also how often the pidFile process is looked at. Timeouts and bad answers keep intervalMs. At most intervalMs (equal: no fast path).',
    }),
    pidFile: string({
      rule: ABSOLUTE_PATH,
      optional: true,
      doc: "The service's pid file. Every check first verifies that the process it names runs (a missing or garbage file fails the check), and that process is polled every fastIntervalMs: when it exits, the service counts as unhealthy at once (fall failures), without waiting for further checks.",
    }),
    timeoutMs: ms({
      min: 1,
      default: 2000,
      doc: 'Timeout of each check; must be less than intervalMs x fall. A check timed out while this agent is promoting or demoting its service is not counted (the service may answer only after the transition, whose own deadline applies).',
    }),
    fall: integer({
      min: 1,
      max: MAX_HEALTH_COUNT,
      default: 3,
      doc: 'Consecutive failures before the service counts as unhealthy; intervalMs x fall must be less than zookeeper.sessionTimeoutMs.',
    }),
    rise: integer({
      min: 1,
      max: MAX_HEALTH_COUNT,
      default: 2,
      doc: 'Consecutive successes before it counts as healthy again.',
    }),
    check: healthCheck,
  },
  { doc: 'How and how often the local service is checked.' },
);

/** The keys of the agents that speak HAServiceProtocol (ha-service-agent.ts): one set, two daemons. */
function haServiceKeys<const S extends 'zkfc' | 'user'>(d: {
  daemon: string;
  rpc: string;
  user: string;
  http: string;
  source: S;
  sourceDoc: string;
}) {
  return {
    rpcAddress: string({ rule: hostPort(1), doc: d.rpc }),
    user: string({
      rule: USER,
      default: d.user,
      doc: `The user the ${d.daemon} sees (SIMPLE authentication).`,
    }),
    connectTimeoutMs: ms({ min: 1, default: 5000, doc: `Timeout of the TCP connect to the ${d.daemon}.` }),
    requestTimeoutMs: ms({
      min: 1,
      default: 5000,
      doc: "Deadline of each health call (ZKFC's ha.health-monitor.rpc-timeout.ms is 45000).",
    }),
    transitionTimeoutMs: ms({
      min: 1,
      default: 5000,
      doc: "Deadline of transitionToActive/Standby. It is the to-standby timeout of the lease budget: with onConnectionLoss demote it must leave room in the session timeout; with hold (QJM fences the old active) it may be ZKFC's 60000.",
    }),
    gracefulFenceTimeoutMs: ms({
      min: 1,
      default: 5000,
      doc: "Deadline of the graceful fence (transitionToStandby on the old active; ZKFC's ha.failover-controller.graceful-fence.rpc-timeout.ms).",
    }),
    httpUrl: string({ rule: URL_RULE, optional: true, doc: d.http }),
    requestSource: oneOf(['zkfc', 'user'] as const, { default: d.source, doc: d.sourceDoc }),
  };
}

const SERVICE = variants('agent', {
  doc: 'The managed service and the service agent that drives it.',
  tagDoc: 'The service agent.',
  planned: [],
  variants: {
    shell: {
      doc: 'A service driven by shell hooks. Hooks get HAFC_CLUSTER, HAFC_NODE_ID, HAFC_ROLE, HAFC_EPOCH and HAFC_REASON in their environment.',
      gracefulFencing: false,
      toStandbyKey: 'hookTimeoutMs',
      keys: {
        toActive: command({ doc: 'Makes the local service active; exit 0 = done.' }),
        toStandby: command({ doc: 'Makes the local service standby; exit 0 = done.' }),
        state: command({ optional: true, doc: 'Prints "active" or "standby" on stdout.' }),
        check: command({
          optional: true,
          doc: 'Exit 0 = healthy; required when health.check is "agent".',
        }),
        hookTimeoutMs: ms({
          min: 1,
          default: 5000,
          doc: "Each hook's process group is killed after this long. It is the to-standby timeout of the lease budget.",
        }),
      },
    },
    http: {
      doc: 'A service with an HTTP control API.',
      gracefulFencing: true,
      toStandbyKey: 'requestTimeoutMs',
      keys: {
        url: string({
          rule: URL_RULE,
          // The paths are appended to the base URL, so a trailing slash would double up.
          normalize: (value) => value.replace(/\/+$/, ''),
          doc: "Base URL of the service's control API, e.g. http://127.0.0.1:8080.",
        }),
        rolePath: string({
          rule: URL_PATH,
          default: '/role',
          doc: 'POSTed with JSON {role, epoch, reason}; 2xx = done.',
        }),
        statePath: string({
          rule: URL_PATH,
          default: '/role',
          doc: 'GET returns JSON {role: "active" | "standby"}.',
        }),
        healthPath: string({ rule: URL_PATH, default: '/health', doc: 'GET 2xx = healthy.' }),
        requestTimeoutMs: ms({
          min: 1,
          default: 5000,
          doc: 'Timeout of each request. It is the to-standby timeout of the lease budget.',
        }),
        gracefulFenceTimeoutMs: ms({
          min: 1,
          default: {
            text: 'requestTimeoutMs',
            derive: (svc) => (typeof svc.requestTimeoutMs === 'number' ? svc.requestTimeoutMs : 5000),
          },
          doc: "Deadline of the graceful fence (POST rolePath {role: standby} to the OLD active's control API). The old active is usually unreachable or frozen when this runs, so the whole wait is added to the failover before the next fencing method: set it to what a healthy service needs to answer, not to requestTimeoutMs's margin for a busy one.",
        }),
      },
    },
    'hdfs-namenode': {
      doc: 'An HDFS NameNode, driven like ZKFC does over Hadoop IPC (HAServiceProtocol, SIMPLE auth). The NameNode accepts the transitions only with dfs.ha.automatic-failover.enabled=true (docs/hadoop.md).',
      gracefulFencing: true,
      toStandbyKey: 'transitionTimeoutMs',
      keys: haServiceKeys({
        daemon: 'NameNode',
        rpc: "This NameNode's RPC address, host:port (dfs.namenode.rpc-address, or servicerpc-address).",
        user: 'hdfs',
        http: "The NameNode's HTTP address, e.g. http://nn1:9870: when set, checks also ask GET /isActive, which must agree with RPC.",
        source: 'zkfc',
        sourceDoc:
          'The request source of transitions: zkfc (REQUEST_BY_ZKFC, what ZKFC sends; the NameNode takes it only with dfs.ha.automatic-failover.enabled=true) or user (REQUEST_BY_USER, for a NameNode with automatic failover off).',
      }),
    },
    'yarn-resourcemanager': {
      doc: 'A YARN ResourceManager, driven like ZKFC does over Hadoop IPC (HAServiceProtocol on the admin address, SIMPLE auth), with its own elector off: yarn.resourcemanager.ha.automatic-failover.enabled=false, and transitions sent as REQUEST_BY_USER (docs/hadoop.md).',
      gracefulFencing: true,
      toStandbyKey: 'transitionTimeoutMs',
      keys: haServiceKeys({
        daemon: 'ResourceManager',
        rpc: "This ResourceManager's admin address, host:port (yarn.resourcemanager.admin.address.<rm-id>, default port 8033), where it serves HAServiceProtocol.",
        user: 'yarn',
        http: "The ResourceManager's web address, e.g. http://rm1:8088: when set, checks also ask GET /isActive and /ws/v1/cluster/info (haState), which must agree with RPC.",
        source: 'user',
        sourceDoc:
          'The request source of transitions. user (REQUEST_BY_USER): the RM takes it with yarn.resourcemanager.ha.automatic-failover.enabled=false, the only setting under which Hadoop 3.4 runs an RM with no elector of its own (with automatic failover on it insists on the embedded or the Curator elector). zkfc (REQUEST_BY_ZKFC): for an RM that accepts automatic failover with an external controller.',
      }),
    },
    postgresql: {
      toStandbyKey: 'stopTimeoutMs',
      doc: 'A PostgreSQL server (15 or later) in streaming replication: promoted with pg_promote, demoted by stopping it, rejoined as a standby of the active with pg_rewind or pg_basebackup (docs/postgresql.md). Nothing else may start or stop the server (disable its own systemd unit).',
      gracefulFencing: true,
      keys: {
        port: integer({
          min: 1,
          max: 65535,
          optional: true,
          doc: "The server's port; node.port when absent, and must equal it: the lock record carries node.host and node.port, which is how a standby finds the active. The agent starts the server with this port.",
        }),
        host: string({
          rule: HOST,
          default: '127.0.0.1',
          doc: 'Where the agent connects to its own server.',
        }),
        dataDir: string({
          rule: ABSOLUTE_PATH,
          doc: "The data directory (PGDATA); pg_ctl -D takes it, so postgresql.conf must be in it. The agent keeps that directory's postgresql.conf, pg_hba.conf and pg_ident.conf across a rewind or re-clone.",
        }),
        binDir: string({
          rule: ABSOLUTE_PATH,
          default: '/usr/lib/postgresql/15/bin',
          doc: 'Where pg_ctl, pg_rewind and pg_basebackup are.',
        }),
        osUser: string({
          rule: USER,
          optional: true,
          doc: "The OS user the server and its tools run as (runuser -u, when the agent runs as root); absent: the agent's own user. PostgreSQL refuses to run as root.",
        }),
        user: string({
          rule: USER,
          default: 'postgres',
          doc: "The database role the agent and the standby's replication connect as; a superuser (pg_promote, ALTER SYSTEM, pg_rewind, fencing).",
        }),
        database: string({ rule: USER, default: 'postgres', doc: 'The database the agent connects to.' }),
        passwordFile: string({
          rule: ABSOLUTE_PATH,
          optional: true,
          doc: "Holds the role's password on its first line; absent: none (trust, peer or a .pgpass of the OS user). It is also written into the standby's primary_conninfo.",
        }),
        logFile: string({
          rule: ABSOLUTE_PATH,
          optional: true,
          doc: "pg_ctl start -l: where the server's own stderr goes; absent: /dev/null (use logging_collector).",
        }),
        requestTimeoutMs: ms({
          min: 1,
          default: 2000,
          doc: 'Deadline of each call to a server, connect and queries together; a server that accepts the connection but does not answer in time is NOT_RESPONDING.',
        }),
        gracefulFenceTimeoutMs: ms({
          min: 1,
          default: {
            text: 'requestTimeoutMs',
            derive: (svc) => (typeof svc.requestTimeoutMs === 'number' ? svc.requestTimeoutMs : 2000),
          },
          doc: "Deadline of the graceful fence's first answer from the OLD primary (connect, pg_is_in_recovery, read-only, its sessions ended, a fast shutdown asked); then it has stopTimeoutMs to refuse connections. A frozen host's kernel still accepts the connection, so the whole wait is added to the failover before the next fencing method: set it to what a healthy server needs to answer.",
        }),
        stopTimeoutMs: ms({
          min: 100,
          default: 4000,
          doc: 'The to-standby timeout of the lease budget: the whole demotion (pg_ctl stop -m fast, then -m immediate for what is left) fits in it. to-active is allowed this plus 4 s.',
        }),
        startTimeoutMs: ms({
          min: 1000,
          default: 60_000,
          doc: 'Deadline of pg_ctl start when the server rejoins as a standby (crash recovery may replay WAL).',
        }),
        followTimeoutMs: ms({
          min: 1000,
          default: 600_000,
          doc: 'Longest one rejoin as a standby (stop, pg_rewind or pg_basebackup, start, streaming) may take.',
        }),
        maximumLagOnFailover: integer({
          min: 0,
          max: 1_073_741_824,
          default: 1_048_576,
          doc: "Bytes of WAL a standby may be behind the primary's last position it saw (pg_stat_wal_receiver.latest_end_lsn minus the WAL it has received) and still be electable; past it, the standby is unhealthy (not electable) and to-active refuses.",
        }),
        synchronous: boolean({
          default: false,
          doc: "The active sets synchronous_standby_names = 'ANY 1 (*)': a commit is acknowledged only once a standby has flushed it, so no acknowledged commit is lost in a failover; a primary without a connected standby blocks every commit until one is back.",
        }),
      },
    },
    redis: {
      toStandbyKey: 'requestTimeoutMs',
      doc: 'A Redis server in a replicated pair (docs/redis.md): active = master, standby = read-only replica of whichever node holds the lock. Its address is node.host:node.port, which peers follow and fence.',
      gracefulFencing: true,
      keys: {
        address: string({
          rule: hostPort(1),
          optional: true,
          doc: 'Where this agent reaches its own server, when not at node.host:node.port (e.g. 127.0.0.1 while node.host is the name peers use); its port must be node.port. Absent: node.host:node.port.',
        }),
        username: string({
          rule: USER,
          optional: true,
          doc: 'The ACL user AUTH names (Redis 6+); absent: the default user.',
        }),
        passwordFile: string({
          rule: ABSOLUTE_PATH,
          optional: true,
          doc: "Holds the servers' password (requirepass, the same on every node) on its first line; read at start and on reload, never logged.",
        }),
        maximumLagOnFailover: integer({
          min: 0,
          // A limit past 1 GiB of replication stream is a typo, not a policy.
          max: 1_073_741_824,
          default: 1_048_576,
          doc: 'A replica more than this many bytes of replication offset behind its master is not electable and refuses to-active. With the master gone, the last offset seen from it counts (docs/redis.md).',
        }),
        requestTimeoutMs: ms({
          min: 1,
          default: 1000,
          doc: 'Deadline of each call to a server, connecting included. It is also the to-standby timeout of the lease budget: the whole demotion (ROLE, REPLICAOF and the ROLE that confirms it) is cut off at it.',
        }),
        gracefulFenceTimeoutMs: ms({
          min: 1,
          default: {
            text: 'requestTimeoutMs',
            derive: (svc) => (typeof svc.requestTimeoutMs === 'number' ? svc.requestTimeoutMs : 1000),
          },
          doc: "Deadline of the graceful fence's first answer from the OLD master (INFO replication); the REPLICAOF and its confirmation then have requestTimeoutMs each. A frozen server's kernel still accepts the connection, so the whole wait is added to the failover before the next fencing method: set it to what a healthy server needs to answer.",
        }),
      },
    },
  },
});

const FENCING = section(
  {
    methods: fenceMethods,
    timeoutMs: ms({ min: 1, default: 30_000, doc: 'Timeout of each fencing method.' }),
  },
  { doc: 'How the previous active is fenced before this node promotes.' },
);

const ELECTION = section(
  {
    priorityGraceMs: ms({
      min: 0,
      default: 3000,
      doc: 'How long a lower-priority candidate waits for a higher-priority healthy one to take a free lock.',
    }),
    backoffMs: ms({
      min: 0,
      default: 5000,
      doc: 'Pause after a failed activation or failed fencing before competing again.',
    }),
  },
  { doc: 'Competing for the lock.' },
);

const CONTROL = section(
  {
    listen: string({
      rule: hostPort(0),
      default: DEFAULT_CONTROL_LISTEN,
      doc: "Address of the agent's HTTP listener (/metrics, /healthz, /status, /active, /standby, control calls: docs/http.md); loopback by default; port 0 takes any free port (the bound address is logged). An address that cannot be bound stops the agent at start (exit 2).",
    }),
    tokenFile: string({
      rule: ABSOLUTE_PATH,
      optional: true,
      doc: 'Bearer token for mutating calls; without a token file they are refused.',
    }),
  },
  { doc: "The agent's HTTP control endpoint." },
);

const LOG = section(
  {
    level: oneOf(['debug', 'info', 'warn', 'error'] as const, {
      default: 'info',
      doc: 'The lowest level logged.',
    }),
    format: oneOf(['auto', 'json', 'pretty'] as const, {
      default: 'auto',
      doc: 'One JSON object per line (json), one readable line (pretty), or auto: pretty when stderr is a terminal, else json (the journal, a pipe, a file).',
    }),
  },
  { doc: 'Logging, to stderr.' },
);

export const CONFIG = section(
  {
    cluster: string({ rule: NAME, doc: 'The HA group; all its nodes use the same name.' }),
    node: NODE,
    zookeeper: ZOOKEEPER,
    health: HEALTH,
    service: SERVICE,
    fencing: FENCING,
    election: ELECTION,
    control: CONTROL,
    log: LOG,
  },
  { required: true, doc: 'One file per managed service instance, e.g. /etc/hafc/NAME.yaml.' },
);
