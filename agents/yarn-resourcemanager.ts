/**
 * The yarn-resourcemanager service agent: a YARN ResourceManager driven through HAServiceProtocol
 * on its admin address (yarn.resourcemanager.admin.address.<rm-id>, where the RM's AdminService
 * adds the protocol when HA is on); ha-service-agent.ts has the calls and ZKFC's rules.
 *
 * What the RM says, from its AdminService: a REQUEST_BY_ZKFC transition is refused unless
 * yarn.resourcemanager.ha.automatic-failover.enabled=true ("Request from ZK failover controller
 * at ... denied since automatic failover is not enabled"), and a user's is refused when it is.
 * But Hadoop 3.4's RM will not start with automatic failover on unless its embedded or Curator
 * elector is on too (HAUtil: "One of these two properties must be true when
 * yarn.resourcemanager.ha.automatic-failover.enabled is true"), and either would fight hafc for
 * the role. So an RM under hafc runs with automatic failover off, and this agent sends
 * REQUEST_BY_USER by default (service.requestSource). monitorHealth fails with HealthCheckFailedException "Active ResourceManager services are
 * not running!" (UNHEALTHY); getServiceStatus is ready in ACTIVE and STANDBY and otherwise not
 * ready with "State is <state>". A failed transition is a ServiceFailedException ("Error when
 * transitioning to Active mode").
 *
 * With httpUrl (the RM web address), a check also asks /isActive (200 active, 405 not) and
 * /ws/v1/cluster/info (clusterInfo.haState), both of which must agree with the RPC state.
 */
import type { Clock } from '../src/clock.js';
import type { HaServiceStatus } from '../src/hadoop/ha-service.js';
import { HealthUnhealthyError } from '../src/health/errors.js';
import type { Logger } from '../src/log.js';
import { HaServiceAgent, type HaServiceAgentConfig } from './ha-service-agent.js';

export interface YarnResourceManagerConfig extends HaServiceAgentConfig {
  agent: 'yarn-resourcemanager';
  /** yarn.resourcemanager.admin.address.<rm-id>, e.g. rm1.example:8033. */
  rpcAddress: string;
  /** yarn.resourcemanager.webapp.address.<rm-id>, e.g. http://rm1.example:8088. */
  httpUrl?: string;
}

export class YarnResourceManagerAgent extends HaServiceAgent {
  constructor(cfg: YarnResourceManagerConfig, logger: Logger, clock?: Clock) {
    super(
      {
        kind: 'yarn-resourcemanager',
        daemon: 'ResourceManager',
        defaultUser: 'yarn',
        defaultSource: 'user',
      },
      cfg,
      logger,
      clock,
    );
  }

  protected async checkHttp(status: HaServiceStatus, signal: AbortSignal): Promise<void> {
    await this.checkIsActive(status, signal);
    const r = await this.httpGet('/ws/v1/cluster/info', signal);
    if (r.status !== 200) {
      throw new HealthUnhealthyError(`GET ${r.url} answered HTTP ${r.status}; expected 200`);
    }
    const haState = clusterInfoHaState(r.body);
    if (haState === undefined) {
      throw new HealthUnhealthyError(
        `GET ${r.url}: expected JSON with clusterInfo.haState, got ${JSON.stringify(r.body.slice(0, 200))}`,
      );
    }
    if (haState.toLowerCase() !== status.state) {
      throw new HealthUnhealthyError(
        `ResourceManager ${this.client.address} says ${status.state} over RPC but GET ${r.url} says haState ${haState}`,
      );
    }
  }
}

/** clusterInfo.haState of a /ws/v1/cluster/info answer, or undefined when it has none. */
export function clusterInfoHaState(body: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  const info = (doc as { clusterInfo?: unknown } | null)?.clusterInfo;
  const haState = (info as { haState?: unknown } | null | undefined)?.haState;
  return typeof haState === 'string' ? haState : undefined;
}
