/**
 * The `hafc agent` config the integration tests, the benchmark and the demo run with: an http
 * agent in front of a demo service, the fast timing profile (session 4 s, health 200-300 ms x 2),
 * and the given fencing methods.
 */
export interface AgentConfigOptions {
  cluster: string;
  id: string;
  /** The demo service's port (also the node's address, which graceful fencing calls). */
  port: number;
  /** The node's (and its service's) address. @default 127.0.0.1 */
  host?: string;
  connect: string;
  sessionTimeoutMs?: number;
  policy?: 'demote' | 'hold';
  priority?: number;
  noFailover?: boolean;
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  /** health.fastIntervalMs; left out, the config's default (intervalMs / 4, at most 50). */
  healthFastIntervalMs?: number;
  /** health.pidFile: the service's pid file, watched by the agent. */
  healthPidFile?: string;
  /** YAML list items for fencing.methods, e.g. ['- graceful', '- shell: "..."']. */
  fencingMethods: string[];
  /** A digest credentials file for zookeeper.auth. */
  credentialsFile?: string;
  /** control.tokenFile: the bearer token for the agent's mutating HTTP calls. */
  tokenFile?: string;
  logLevel?: 'debug' | 'info';
  extraYaml?: string;
  /** The `service:` section's lines (indented), in place of the http agent for a demo service. */
  serviceYaml?: string[];
  /** The http agent's service.gracefulFenceTimeoutMs. @default its requestTimeoutMs (1000) */
  gracefulFenceTimeoutMs?: number;
}

export function agentConfigYaml(o: AgentConfigOptions): string {
  const host = o.host ?? '127.0.0.1';
  return [
    `cluster: ${o.cluster}`,
    `node: { id: ${o.id}, host: ${host}, port: ${o.port}, priority: ${o.priority ?? 0}, noFailover: ${o.noFailover ?? false} }`,
    'zookeeper:',
    `  connect: ${o.connect}`,
    `  sessionTimeoutMs: ${o.sessionTimeoutMs ?? 4000}`,
    '  requestTimeoutMs: 1000',
    `  onConnectionLoss: ${o.policy ?? 'demote'}`,
    ...(o.credentialsFile ? [`  auth: { scheme: digest, credentialsFile: ${o.credentialsFile} }`] : []),
    `health: { ${[
      `intervalMs: ${o.healthIntervalMs ?? 200}`,
      `timeoutMs: ${o.healthTimeoutMs ?? 300}`,
      'fall: 2',
      'rise: 1',
      ...(o.healthFastIntervalMs !== undefined ? [`fastIntervalMs: ${o.healthFastIntervalMs}`] : []),
      ...(o.healthPidFile !== undefined ? [`pidFile: ${JSON.stringify(o.healthPidFile)}`] : []),
    ].join(', ')} }`,
    'service:',
    ...(o.serviceYaml ?? [
      '  agent: http',
      `  url: http://${host}:${o.port}`,
      '  requestTimeoutMs: 1000',
      ...(o.gracefulFenceTimeoutMs !== undefined
        ? [`  gracefulFenceTimeoutMs: ${o.gracefulFenceTimeoutMs}`]
        : []),
    ]),
    'fencing:',
    '  timeoutMs: 3000',
    '  methods:',
    ...o.fencingMethods.map((m) => `    ${m}`),
    'election: { backoffMs: 1000, priorityGraceMs: 1000 }',
    o.tokenFile
      ? `control: { listen: "127.0.0.1:0", tokenFile: ${JSON.stringify(o.tokenFile)} }`
      : 'control: { listen: "127.0.0.1:0" }',
    `log: { level: ${o.logLevel ?? 'debug'}, format: json }`,
    o.extraYaml ?? '',
  ].join('\n');
}

/**
 * The fast crash-detection profile (bench/README.md): the test profile's interval and fall,
 * a definite failure re-probed after 25 ms, and the service's pid watched every 25 ms, so that a
 * crashed service is declared unhealthy within one poll of its exit.
 */
export const FAST_HEALTH = { fastIntervalMs: 25, watchPid: true } as const;

/** How a node's health section departs from the test profile (see HaClusterOptions.health). */
export interface HealthProfile {
  fastIntervalMs?: number;
  /** Watch the demo service's pid file (the one HaCluster writes for KILL_BY_PIDFILE). */
  watchPid?: boolean;
}
