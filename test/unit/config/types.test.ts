import { describe, expectTypeOf, it } from 'vitest';
import type {
  Command,
  FenceMethodConfig,
  HafcConfig,
  HealthCheckConfig,
  HttpServiceConfig,
  ShellServiceConfig,
} from '../../../src/config/types.js';

// The shape the rest of the code was written against, before HafcConfig was inferred from the
// declaration: the declaration may add keys (then this grows), but never rename or retype one.
interface ShellService {
  agent: 'shell';
  toActive: Command;
  toStandby: Command;
  state?: Command;
  check?: Command;
  hookTimeoutMs: number;
}

interface HttpService {
  agent: 'http';
  url: string;
  rolePath: string;
  statePath: string;
  healthPath: string;
  requestTimeoutMs: number;
  gracefulFenceTimeoutMs: number;
}

interface HaService {
  rpcAddress: string;
  user: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  transitionTimeoutMs: number;
  gracefulFenceTimeoutMs: number;
  httpUrl?: string;
  requestSource: 'zkfc' | 'user';
}
interface HdfsNameNodeService extends HaService {
  agent: 'hdfs-namenode';
}
interface YarnResourceManagerService extends HaService {
  agent: 'yarn-resourcemanager';
}

interface PostgresqlService {
  agent: 'postgresql';
  port?: number;
  host: string;
  dataDir: string;
  binDir: string;
  osUser?: string;
  user: string;
  database: string;
  passwordFile?: string;
  logFile?: string;
  requestTimeoutMs: number;
  gracefulFenceTimeoutMs: number;
  stopTimeoutMs: number;
  startTimeoutMs: number;
  followTimeoutMs: number;
  maximumLagOnFailover: number;
  synchronous: boolean;
}

interface RedisService {
  agent: 'redis';
  address?: string;
  username?: string;
  passwordFile?: string;
  maximumLagOnFailover: number;
  requestTimeoutMs: number;
  gracefulFenceTimeoutMs: number;
}

interface Expected {
  cluster: string;
  node: { id: string; host: string; port: number; priority: number; noFailover: boolean };
  zookeeper: {
    connect: string;
    root: string;
    sessionTimeoutMs: number;
    onConnectionLoss: 'demote' | 'hold';
    auth?: { scheme: 'digest'; credentialsFile: string };
    requestTimeoutMs: number;
    safetyMarginMs: number;
  };
  health: {
    intervalMs: number;
    fastIntervalMs: number;
    pidFile?: string;
    timeoutMs: number;
    fall: number;
    rise: number;
    check: HealthCheckConfig;
  };
  service:
    | ShellService
    | HttpService
    | HdfsNameNodeService
    | YarnResourceManagerService
    | PostgresqlService
    | RedisService;
  fencing: { methods: FenceMethodConfig[]; timeoutMs: number };
  election: { priorityGraceMs: number; backoffMs: number };
  control: { listen: string; tokenFile?: string };
  log: { level: 'debug' | 'info' | 'warn' | 'error'; format: 'auto' | 'json' | 'pretty' };
}

// These are checked by the compiler (`npm run typecheck` covers test/): a declaration that drops,
// renames or retypes a key fails the build, not only this file.
describe('HafcConfig inferred from the declaration', () => {
  it('is the shape the rest of the code reads', () => {
    expectTypeOf<HafcConfig>().toEqualTypeOf<Expected>();
    expectTypeOf<ShellServiceConfig>().toEqualTypeOf<ShellService>();
    expectTypeOf<HttpServiceConfig>().toEqualTypeOf<HttpService>();
  });
});
