/**
 * Shared start-up pieces of the CLI verbs: config + logger + a ZooKeeper session factory with
 * the timing the config asks for.
 */
import type { HafcConfig } from '../config/types.js';
import { createLogger, type Logger } from '../log.js';
import { clusterAcl, readDigestCredentials } from '../zk/acl.js';
import { openSession } from '../zk/session.js';
import type { Acl, ZkSession } from '../zk/types.js';

export function loggerFor(cfg: HafcConfig): Logger {
  return createLogger({
    level: cfg.log.level,
    format: cfg.log.format,
    base: { cluster: cfg.cluster, node: cfg.node.id },
  });
}

export interface ZkAccess {
  open: () => Promise<ZkSession>;
  acl: Acl[] | undefined;
}

/**
 * The liveness probe must run several times per lease so that a healthy link never lets the
 * lease run out between two replies: period = min(sessionTimeout / 3, leaseBudget / 3).
 */
export function pingIntervalMs(cfg: HafcConfig, toStandbyTimeoutMs: number): number {
  const z = cfg.zookeeper;
  const third = z.sessionTimeoutMs / 3;
  if (z.onConnectionLoss === 'hold') return Math.round(third);
  const budget = z.sessionTimeoutMs - z.safetyMarginMs - toStandbyTimeoutMs;
  return Math.max(100, Math.round(Math.min(third, budget / 3)));
}

export async function zkAccess(
  cfg: HafcConfig,
  logger: Logger,
  toStandbyTimeoutMs: number,
): Promise<ZkAccess> {
  const z = cfg.zookeeper;
  const creds = z.auth ? await readDigestCredentials(z.auth.credentialsFile) : undefined;
  return {
    acl: creds ? clusterAcl(creds) : undefined,
    open: () =>
      openSession({
        connect: z.connect,
        sessionTimeoutMs: z.sessionTimeoutMs,
        requestTimeoutMs: z.requestTimeoutMs,
        pingIntervalMs: pingIntervalMs(cfg, toStandbyTimeoutMs),
        digestAuth: creds ? [creds] : undefined,
        logger: logger.child({ component: 'zk' }),
      }),
  };
}
