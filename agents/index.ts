/**
 * The composition point for service agents: config in, ServiceAgent out.
 *
 * Each agent's module is imported only when a config names it: an agent process runs one agent,
 * and the replica agents' client libraries are heavy to load (measured here: pg +14 MB of RSS,
 * ioredis +20 MB). A reload that switches agents imports the new one then.
 */
import type { Clock } from '../src/clock.js';
import type { ServiceConfig } from '../src/config/types.js';
import type { Logger } from '../src/log.js';
import type { ServiceAgent } from '../src/service/agent.js';

/** `clock` (default systemClock) runs the agents' hook and request timeouts. */
export async function createAgent(cfg: ServiceConfig, logger: Logger, clock?: Clock): Promise<ServiceAgent> {
  const log = logger.child({ component: 'agent', agent: cfg.agent });
  switch (cfg.agent) {
    case 'shell':
      return new (await import('./shell.js')).ShellAgent(cfg, log, clock);
    case 'http':
      return new (await import('./http.js')).HttpAgent(cfg, log, clock);
    case 'hdfs-namenode':
      return new (await import('./hdfs-namenode.js')).HdfsNameNodeAgent(cfg, log, clock);
    case 'yarn-resourcemanager':
      return new (await import('./yarn-resourcemanager.js')).YarnResourceManagerAgent(cfg, log, clock);
    case 'postgresql':
      return new (await import('./postgresql.js')).PostgresqlAgent(cfg, log, clock);
    case 'redis':
      return new (await import('./redis.js')).RedisAgent(cfg, log, clock);
    default: {
      // Config validation rejects unknown agents; reaching this is a programming error.
      const never: never = cfg;
      throw new Error(`unknown service agent ${JSON.stringify((never as { agent?: unknown }).agent)}`);
    }
  }
}
