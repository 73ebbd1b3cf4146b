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

const HEALTH = section(
  {
    intervalMs: ms({ min: 1, default: 1000, doc: 'Time between health checks.' }),
    timeoutMs: ms({
      min: 1,
      default: 2000,
      doc: 'Timeout of each check; must be less than intervalMs x fall.',
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

const SERVICE = variants('agent', {
  doc: 'The managed service and the service agent that drives it.',
  tagDoc: 'The service agent.',
  planned: ['yarn-resourcemanager', 'postgresql'],
  variants: {
    shell: {
      doc: 'A service driven by shell hooks. Hooks get HAFC_CLUSTER, HAFC_NODE_ID, HAFC_ROLE, HAFC_EPOCH and HAFC_REASON in their environment.',
      gracefulFencing: false,
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
      },
    },
    'hdfs-namenode': {
      doc: 'An HDFS NameNode, driven like ZKFC does over Hadoop IPC (HAServiceProtocol, SIMPLE auth). The NameNode accepts the transitions only with dfs.ha.automatic-failover.enabled=true (docs/hadoop.md).',
      gracefulFencing: true,
      keys: {
        rpcAddress: string({
          rule: hostPort(1),
          doc: "This NameNode's RPC address, host:port (dfs.namenode.rpc-address, or servicerpc-address).",
        }),
        user: string({
          rule: USER,
          default: 'hdfs',
          doc: 'The user the NameNode sees (SIMPLE authentication).',
        }),
        connectTimeoutMs: ms({ min: 1, default: 5000, doc: 'Timeout of the TCP connect to the NameNode.' }),
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
        httpUrl: string({
          rule: URL_RULE,
          optional: true,
          doc: "The NameNode's HTTP address, e.g. http://nn1:9870: when set, checks also ask GET /isActive, which must agree with RPC.",
        }),
      },
    },
    redis: {
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
          doc: 'Deadline of each call to a server, connecting included. Twice it is the to-standby timeout of the lease budget (a REPLICAOF and the ROLE that confirms it).',
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
