/**
 * The validated, defaulted configuration (CONTRACT.md section 4). `load.ts` turns YAML into this
 * or throws a ConfigError naming the key and the value; nothing downstream re-validates.
 */

/** A hook command: an argv array (run without a shell) or a string (run with /bin/sh -c). */
export type Command = string | string[];

export type HealthCheckConfig =
  | { kind: 'http'; url: string; expectStatus: number[]; expectBodyMatches?: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'command'; command: Command }
  /** Delegate to the service agent's own check (ServiceAgent.check). */
  | { kind: 'agent' };

export interface ShellServiceConfig {
  agent: 'shell';
  toActive: Command;
  toStandby: Command;
  /** Prints `active` or `standby` on stdout. */
  state?: Command;
  /** Exit 0 = healthy. Used by a `health.check` of kind agent. */
  check?: Command;
  /** Timeout of each hook. @default 5000 */
  hookTimeoutMs: number;
}

export interface HttpServiceConfig {
  agent: 'http';
  /** Base URL of the managed service's control API, e.g. http://127.0.0.1:8080 */
  url: string;
  /** POSTed with JSON {role, epoch, reason}; 2xx = done. @default "/role" */
  rolePath: string;
  /** GET returns JSON {role: "active"|"standby"} (plus anything). @default "/role" */
  statePath: string;
  /** GET 2xx = healthy. @default "/health" */
  healthPath: string;
  /** Timeout of each request. @default 5000 */
  requestTimeoutMs: number;
}

export type ServiceConfig = ShellServiceConfig | HttpServiceConfig;

export type FenceMethodConfig =
  | { kind: 'graceful' }
  | { kind: 'shell'; command: Command }
  | { kind: 'ssh'; user: string; port: number; identityFile?: string }
  | { kind: 'http'; url: string; method: 'POST' | 'PUT' | 'GET'; expectStatus: number[] };

export interface HafcConfig {
  cluster: string;
  node: {
    id: string;
    host: string;
    port: number;
    /** Higher wins a free lock; @default 0 */
    priority: number;
    /** Never take the lock (a witness / read replica). @default false */
    noFailover: boolean;
  };
  zookeeper: {
    connect: string;
    /** @default "/hafc" */
    root: string;
    /** @default 10000 */
    sessionTimeoutMs: number;
    /** @default "demote" */
    onConnectionLoss: 'demote' | 'hold';
    auth?: { scheme: 'digest'; credentialsFile: string };
    /** Per-request timeout. @default min(sessionTimeoutMs / 3, 5000) */
    requestTimeoutMs: number;
    /** Safety margin subtracted from the lease when deciding to self-demote. @default max(1000, sessionTimeoutMs/10) */
    safetyMarginMs: number;
  };
  health: {
    /** @default 1000 */
    intervalMs: number;
    /** Per check; must stay below intervalMs x fall. @default 2000 */
    timeoutMs: number;
    /** @default 3 */
    fall: number;
    /** @default 2 */
    rise: number;
    /** @default { kind: 'agent' } */
    check: HealthCheckConfig;
  };
  service: ServiceConfig;
  fencing: {
    /** Tried in order. @default [graceful] */
    methods: FenceMethodConfig[];
    /** Per method. @default 30000 */
    timeoutMs: number;
  };
  election: {
    /** How long a lower-priority candidate waits for a higher-priority healthy one to claim a free lock. @default 3000 */
    priorityGraceMs: number;
    /** Back-off after a failed activation or failed fencing before competing again. @default 5000 */
    backoffMs: number;
  };
  control: { listen: string; tokenFile?: string };
  log: { level: 'debug' | 'info' | 'warn' | 'error'; format: 'json' | 'pretty' };
}
