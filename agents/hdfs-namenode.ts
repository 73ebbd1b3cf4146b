/**
 * The hdfs-namenode service agent: an HDFS NameNode driven through HAServiceProtocol on its RPC
 * address (ha-service-agent.ts has the calls and ZKFC's rules). The NameNode accepts the
 * REQUEST_BY_ZKFC transitions only with dfs.ha.automatic-failover.enabled=true. With httpUrl, its
 * /isActive (200 active, 405 otherwise) must agree with the IPC state, catching a NameNode whose
 * RPC and HTTP views diverge.
 */
import type { Clock } from '../src/clock.js';
import type { HaServiceStatus } from '../src/hadoop/ha-service.js';
import type { Logger } from '../src/log.js';
import { HaServiceAgent, type HaServiceAgentConfig } from './ha-service-agent.js';

export { parseRpcAddress } from './ha-service-agent.js';

export interface HdfsNameNodeConfig extends HaServiceAgentConfig {
  agent: 'hdfs-namenode';
  /** dfs.namenode.rpc-address (or servicerpc-address) of this NameNode. */
  rpcAddress: string;
  /** e.g. http://nn1.example:9870. */
  httpUrl?: string;
}

export class HdfsNameNodeAgent extends HaServiceAgent {
  constructor(cfg: HdfsNameNodeConfig, logger: Logger, clock?: Clock) {
    super(
      { kind: 'hdfs-namenode', daemon: 'NameNode', defaultUser: 'hdfs', defaultSource: 'zkfc' },
      cfg,
      logger,
      clock,
    );
  }

  protected async checkHttp(status: HaServiceStatus, signal: AbortSignal): Promise<void> {
    await this.checkIsActive(status, signal);
  }
}
