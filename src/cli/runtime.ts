/**
 * Shared start-up pieces of the CLI verbs: config + logger + ZooKeeper sessions with the timing
 * the config asks for.
 */
import type { HafcConfig } from '../config/types.js';
import { errorMessage } from '../errors.js';
import type { ElectionConnection } from '../election/store.js';
import { createLogger, type CountingLogger, type Logger } from '../log.js';
import { clusterAcl, readDigestCredentials } from '../zk/acl.js';
import { ZkElectionConnection } from '../zk/election-store.js';
import { clusterPaths } from '../zk/paths.js';
import { discoverRelayAllowanceMs, openSession } from '../zk/session.js';
import type { Acl, ZkSession } from '../zk/types.js';

export function loggerFor(cfg: HafcConfig, level?: HafcConfig['log']['level']): CountingLogger {
  return createLogger({
    level: level ?? cfg.log.level,
    format: cfg.log.format,
    base: { cluster: cfg.cluster, node: cfg.node.id },
  });
}

export interface ZkAccess {
  /** A plain session (init and the cluster verbs). */
  open: () => Promise<ZkSession>;
  /** A session for the elector: relay allowance learned from the servers, probes sized for the lease. */
  connect: (signal: AbortSignal) => Promise<ElectionConnection>;
  acl: Acl[] | undefined;
}

export async function zkAccess(
  cfg: HafcConfig,
  logger: Logger,
  toStandbyTimeoutMs: number,
): Promise<ZkAccess> {
  const z = cfg.zookeeper;
  const creds = z.auth ? await readDigestCredentials(z.auth.credentialsFile) : undefined;
  const acl = creds ? clusterAcl(creds) : undefined;
  const digestAuth = creds ? [creds] : undefined;
  const zkLog = logger.child({ component: 'zk' });
  const base = {
    connect: z.connect,
    sessionTimeoutMs: z.sessionTimeoutMs,
    requestTimeoutMs: z.requestTimeoutMs,
    digestAuth,
    logger: zkLog,
  };
  const paths = clusterPaths(z.root, cfg.cluster);
  let lastRelay: number | undefined;
  return {
    acl,
    open: () => openSession(base),
    connect: async (signal) => {
      // Learned anew for every session: the servers' settings may change in a rolling restart.
      let relayAllowanceMs: number | undefined;
      try {
        const found = await discoverRelayAllowanceMs({
          connect: z.connect,
          timeoutMs: z.requestTimeoutMs,
          digestAuth,
          signal,
        });
        relayAllowanceMs = found.relayAllowanceMs;
        if (relayAllowanceMs !== lastRelay) {
          lastRelay = relayAllowanceMs;
          zkLog.info("learned the servers' session relay allowance", {
            minSessionTimeoutMs: found.minSessionTimeoutMs,
            relayAllowanceMs,
          });
        }
      } catch (err) {
        if (signal.aborted) throw err;
        // Without it, the session assumes the worst the servers' defaults allow (a quarter of it).
        zkLog.warn("could not learn the servers' minSessionTimeout; assuming the largest relay allowance", {
          error: errorMessage(err),
        });
      }
      const s = await openSession({
        ...base,
        relayAllowanceMs,
        leaseReserveMs: z.onConnectionLoss === 'demote' ? z.safetyMarginMs + toStandbyTimeoutMs : 0,
        signal,
      });
      return new ZkElectionConnection(s, paths, acl);
    },
  };
}
