/**
 * How the cluster-level verbs (status, failover, pause, resume, history) find their cluster:
 * `-c FILE` (an agent's config), or `--zk CONN --cluster NAME [--root R] [--auth-file F]` from any
 * host that reaches ZooKeeper with the cluster's credentials. Opens one plain session and answers
 * the contract's exit codes for what can go wrong before the verb's own work starts.
 */
import os from 'node:os';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { ConfigError, errorMessage, ZkError } from '../errors.js';
import { createLogger } from '../log.js';
import { clusterAcl, readDigestCredentials } from '../zk/acl.js';
import { ZkElectionStore } from '../zk/election-store.js';
import { clusterPaths, type ClusterPaths } from '../zk/paths.js';
import { openSession } from '../zk/session.js';
import type { ZkSession } from '../zk/types.js';
import { OpsError, type OpsFailure } from '../ops/errors.js';
import { ExitCode } from './exit-codes.js';

export interface ClusterTargetOptions {
  config?: string;
  zk?: string;
  cluster?: string;
  root?: string;
  authFile?: string;
}

export interface ClusterTarget {
  cluster: string;
  connect: string;
  paths: ClusterPaths;
  session: ZkSession;
  store: ZkElectionStore;
  close(): Promise<void>;
}

/** A verb's failure with its exit code and the one line that explains it. */
export class VerbError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

const OPS_EXIT: Record<OpsFailure, number> = {
  usage: ExitCode.USAGE,
  'no-eligible-target': ExitCode.NO_ELIGIBLE_TARGET,
  failed: ExitCode.FAILED,
  'timed-out': ExitCode.TIMED_OUT,
  unreachable: ExitCode.ZK_UNREACHABLE,
};

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function addClusterOptions(cmd: Command): Command {
  return cmd
    .option(
      '-c, --config <file>',
      "an agent's configuration file (YAML): its ZooKeeper, cluster and credentials",
    )
    .option('--zk <connect>', 'ZooKeeper connect string, host:port[,host:port][/chroot] (instead of -c)')
    .option('--cluster <name>', 'cluster name (with --zk)')
    .option('--root <path>', 'zookeeper.root (with --zk)', '/hafc')
    .option('--auth-file <file>', 'digest credentials file, "user:password" (with --zk)');
}

/** Who asks, for the records an operator's action leaves behind. */
export function requester(): string {
  let user = process.env.SUDO_USER ?? '';
  if (!user) {
    try {
      user = os.userInfo().username;
    } catch {
      user = process.env.USER ?? 'unknown';
    }
  }
  return `${user}@${os.hostname()}`;
}

export async function openClusterTarget(verb: string, o: ClusterTargetOptions): Promise<ClusterTarget> {
  let connect: string;
  let cluster: string;
  let root: string;
  let authFile: string | undefined;
  let sessionTimeoutMs = 10_000;
  let requestTimeoutMs = 5_000;
  if (o.config) {
    if (o.zk || o.cluster)
      throw new VerbError(
        ExitCode.USAGE,
        `hafc ${verb}: give either -c FILE or --zk CONN --cluster NAME, not both`,
      );
    let cfg;
    try {
      cfg = await loadConfig(o.config);
    } catch (err) {
      throw new VerbError(ExitCode.USAGE, `hafc ${verb}: ${errorMessage(err)}`);
    }
    connect = cfg.zookeeper.connect;
    cluster = cfg.cluster;
    root = cfg.zookeeper.root;
    authFile = cfg.zookeeper.auth?.credentialsFile;
    sessionTimeoutMs = cfg.zookeeper.sessionTimeoutMs;
    requestTimeoutMs = cfg.zookeeper.requestTimeoutMs;
  } else {
    if (!o.zk || !o.cluster)
      throw new VerbError(
        ExitCode.USAGE,
        `hafc ${verb}: say which cluster: -c FILE, or --zk CONN --cluster NAME [--root R] [--auth-file F]`,
      );
    if (!NAME_RE.test(o.cluster))
      throw new VerbError(
        ExitCode.USAGE,
        `hafc ${verb}: --cluster ${JSON.stringify(o.cluster)} is not a cluster name ([a-z0-9][a-z0-9_-]{0,62})`,
      );
    const r = o.root ?? '/hafc';
    if (!r.startsWith('/') || (r.length > 1 && r.endsWith('/')))
      throw new VerbError(
        ExitCode.USAGE,
        `hafc ${verb}: --root ${JSON.stringify(r)} must be an absolute znode path`,
      );
    connect = o.zk;
    cluster = o.cluster;
    root = r;
    authFile = o.authFile;
  }
  let digestAuth: string[] | undefined;
  if (authFile) {
    try {
      digestAuth = [await readDigestCredentials(authFile)];
    } catch (err) {
      throw new VerbError(
        err instanceof ConfigError ? ExitCode.USAGE : ExitCode.FAILED,
        `hafc ${verb}: ${errorMessage(err)}`,
      );
    }
  }
  let session: ZkSession;
  try {
    session = await openSession({
      connect,
      sessionTimeoutMs,
      requestTimeoutMs,
      connectTimeoutMs: Math.min(sessionTimeoutMs, 10_000),
      ...(digestAuth ? { digestAuth } : {}),
      logger: createLogger({ level: 'error', base: { component: 'zk' } }),
    });
  } catch (err) {
    throw new VerbError(
      ExitCode.ZK_UNREACHABLE,
      `hafc ${verb}: ZooKeeper unreachable at ${connect}: ${errorMessage(err)}`,
    );
  }
  const paths = clusterPaths(root, cluster);
  const store = new ZkElectionStore(session, paths, digestAuth ? clusterAcl(digestAuth[0]!) : undefined);
  try {
    if (!(await store.clusterExists())) {
      throw new VerbError(
        ExitCode.NOT_INITIALISED,
        `hafc ${verb}: cluster ${cluster} is not initialised (no ${paths.cluster} at ${connect}): run hafc init -c FILE`,
      );
    }
  } catch (err) {
    await session.close();
    if (err instanceof VerbError) throw err;
    throw new VerbError(ExitCode.ZK_UNREACHABLE, `hafc ${verb}: ${errorMessage(err)}`);
  }
  return { cluster, connect, paths, session, store, close: () => session.close() };
}

/** Runs a verb body with its target, turning VerbErrors into their exit code and line. */
export async function withClusterTarget(
  verb: string,
  o: ClusterTargetOptions,
  body: (t: ClusterTarget) => Promise<number>,
): Promise<number> {
  let t: ClusterTarget | undefined;
  try {
    t = await openClusterTarget(verb, o);
    return await body(t);
  } catch (err) {
    if (err instanceof VerbError) {
      process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof OpsError) {
      process.stderr.write(`hafc ${err.message}\n`);
      return OPS_EXIT[err.kind];
    }
    process.stderr.write(`hafc ${verb}: ${errorMessage(err)}\n`);
    // Lost the connection half way: the operator should know it was ZooKeeper, not the request.
    const answered = ['NO_AUTH', 'BAD_VERSION', 'NO_NODE', 'NODE_EXISTS', 'NOT_EMPTY', 'INVALID_ACL'];
    return err instanceof ZkError && !answered.includes(err.zkCode)
      ? ExitCode.ZK_UNREACHABLE
      : ExitCode.FAILED;
  } finally {
    await t?.close().catch(() => undefined);
  }
}
