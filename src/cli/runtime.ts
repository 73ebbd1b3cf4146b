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
import { runtimeDir, SessionFile } from '../zk/session-file.js';
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

/**
 * `resumeSessions`: the agent keeps its session in the runtime directory for its next run
 * (zk/session-file.ts); other verbs never do.
 */
export async function zkAccess(
  cfg: HafcConfig,
  logger: Logger,
  toStandbyTimeoutMs: number,
  resumeSessions = false,
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
  const dir = resumeSessions ? runtimeDir() : null;
  const sessionFile = dir
    ? new SessionFile(dir, { cluster: cfg.cluster, node: cfg.node.id, connect: z.connect })
    : null;
  let firstConnect = true;
  let saveWarned = false;
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
      const opts = {
        ...base,
        relayAllowanceMs,
        leaseReserveMs: z.onConnectionLoss === 'demote' ? z.safetyMarginMs + toStandbyTimeoutMs : 0,
        signal,
      };
      let s: ZkSession | undefined;
      // Only this process's first session may be a resumed one: later ones replace sessions the
      // elector gave up on purpose.
      if (sessionFile && firstConnect) {
        const { resume, why } = sessionFile.load();
        if (resume) {
          try {
            s = await openSession({ ...opts, resume });
            zkLog.info(
              s.resumed
                ? "resumed the previous run's ZooKeeper session: its lock and member znodes are still ours"
                : 'the server gave us a new session instead of resuming the old one',
              { sessionId: s.sessionId, previous: resume.sessionId },
            );
          } catch (err) {
            if (signal.aborted) throw err;
            zkLog.info("could not resume the previous run's ZooKeeper session; opening a new one", {
              previous: resume.sessionId,
              error: errorMessage(err),
            });
          }
        } else if (why !== 'no session file') {
          zkLog.info('not resuming a ZooKeeper session', { reason: why });
        }
      }
      firstConnect = false;
      s ??= await openSession(opts);
      const saved = sessionFile?.save(s.sessionId, s.sessionPassword) ?? null;
      if (saved !== null && !saveWarned) {
        saveWarned = true;
        zkLog.warn('cannot keep the session for a restart (an agent restart will fail over)', {
          file: sessionFile?.file,
          error: saved,
        });
      }
      const id = s.sessionId;
      return new ZkElectionConnection(s, paths, acl, () => sessionFile?.forget(id));
    },
  };
}
