/** The composition point for service agents: config in, ServiceAgent out. */
import type { Clock } from '../src/clock.js';
import type { ServiceConfig } from '../src/config/types.js';
import type { Logger } from '../src/log.js';
import type { ServiceAgent } from '../src/service/agent.js';
import { HdfsNameNodeAgent } from './hdfs-namenode.js';
import { HttpAgent } from './http.js';
import { PostgresqlAgent } from './postgresql.js';
import { RedisAgent } from './redis.js';
import { ShellAgent } from './shell.js';
import { YarnResourceManagerAgent } from './yarn-resourcemanager.js';

export { HttpAgent } from './http.js';
export { ShellAgent } from './shell.js';

/** `clock` (default systemClock) runs the agents' hook and request timeouts. */
export function createAgent(cfg: ServiceConfig, logger: Logger, clock?: Clock): ServiceAgent {
  const log = logger.child({ component: 'agent', agent: cfg.agent });
  switch (cfg.agent) {
    case 'shell':
      return new ShellAgent(cfg, log, clock);
    case 'http':
      return new HttpAgent(cfg, log, clock);
    case 'hdfs-namenode':
      return new HdfsNameNodeAgent(cfg, log, clock);
    case 'yarn-resourcemanager':
      return new YarnResourceManagerAgent(cfg, log, clock);
    case 'postgresql':
      return new PostgresqlAgent(cfg, log, clock);
    case 'redis':
      return new RedisAgent(cfg, log, clock);
    default: {
      // Config validation rejects unknown agents; reaching this is a programming error.
      const never: never = cfg;
      throw new Error(`unknown service agent ${JSON.stringify((never as { agent?: unknown }).agent)}`);
    }
  }
}
