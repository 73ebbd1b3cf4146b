/** `hafc init -c FILE [--force --yes]`: create the cluster's znodes and ACLs (ZKFC -formatZK). */
import type { Command } from 'commander';
import { createAgent } from '../../agents/index.js';
import { loadConfig } from '../config/load.js';
import { ConfigError, errorMessage, ZkError } from '../errors.js';
import { PERSISTENT_OWNER, ZkElectionStore } from '../zk/election-store.js';
import { clusterPaths, type ClusterPaths } from '../zk/paths.js';
import { decodeRecord } from '../zk/records.js';
import type { ZkSession } from '../zk/types.js';
import { ExitCode } from './exit-codes.js';
import { loggerFor, zkAccess } from './runtime.js';

export function registerInit(program: Command): void {
  program
    .command('init')
    .description("create the cluster's znodes (and ACLs when zookeeper.auth is set)")
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .option(
      '--force',
      'delete and recreate an existing cluster (its lock, breadcrumb, members, history); refused while any agent of it runs',
    )
    .option('--yes', 'confirm --force (required with it: init never prompts)')
    .action(async (opts: { config: string; force?: boolean; yes?: boolean }) => {
      process.exitCode = await runInit(opts.config, !!opts.force, !!opts.yes);
    });
}

/**
 * What of the cluster is alive: the lock's holder and every ephemeral member (a live session).
 * Wiping those would hand the lock to a standby while the old active still serves.
 */
async function liveParticipants(s: ZkSession, paths: ClusterPaths): Promise<string[]> {
  const live: string[] = [];
  const lock = await s.exists(paths.lock);
  if (lock && lock.ephemeralOwner !== PERSISTENT_OWNER) {
    let who = '';
    try {
      const rec = decodeRecord('lock', paths.lock, (await s.getData(paths.lock)).data);
      who = ` (node ${rec.id} at ${rec.host}:${rec.port})`;
    } catch {
      // an unreadable lock record is still a live lock
    }
    live.push(`the lock is held by session ${lock.ephemeralOwner}${who}`);
  }
  let names: string[] = [];
  try {
    names = await s.getChildren(paths.members);
  } catch (err) {
    if (!(err instanceof ZkError && err.zkCode === 'NO_NODE')) throw err;
  }
  for (const name of names) {
    const stat = await s.exists(paths.member(name));
    if (stat && stat.ephemeralOwner !== PERSISTENT_OWNER) {
      live.push(`member ${name} is live (session ${stat.ephemeralOwner})`);
    }
  }
  return live;
}

async function removeRecursive(s: ZkSession, path: string): Promise<void> {
  let children: string[] = [];
  try {
    children = await s.getChildren(path);
  } catch (err) {
    if (err instanceof ZkError && err.zkCode === 'NO_NODE') return;
    throw err;
  }
  for (const c of children) await removeRecursive(s, `${path}/${c}`);
  try {
    await s.remove(path, -1);
  } catch (err) {
    if (!(err instanceof ZkError && err.zkCode === 'NO_NODE')) throw err;
  }
}

export async function runInit(configFile: string, force: boolean, yes: boolean): Promise<number> {
  let cfg;
  try {
    cfg = await loadConfig(configFile);
  } catch (err) {
    process.stderr.write(`hafc init: ${errorMessage(err)}\n`);
    return ExitCode.USAGE;
  }
  if (force && !yes) {
    process.stderr.write('hafc init: --force deletes the cluster state; add --yes to confirm\n');
    return ExitCode.USAGE;
  }
  // One line of answer on stdout; the session's own chatter only when something goes wrong.
  const logger = loggerFor(cfg, 'error');
  const agent = await createAgent(cfg.service, logger);
  let session: ZkSession;
  let zk;
  try {
    zk = await zkAccess(cfg, logger, agent.toStandbyTimeoutMs);
  } catch (err) {
    // An unreadable or malformed credentials file is the config's fault, not ZooKeeper's.
    process.stderr.write(`hafc init: ${errorMessage(err)}\n`);
    return err instanceof ConfigError ? ExitCode.USAGE : ExitCode.FAILED;
  }
  try {
    session = await zk.open();
  } catch (err) {
    process.stderr.write(
      `hafc init: ZooKeeper unreachable at ${cfg.zookeeper.connect}: ${errorMessage(err)}\n`,
    );
    return ExitCode.ZK_UNREACHABLE;
  }
  try {
    const paths = clusterPaths(cfg.zookeeper.root, cfg.cluster);
    const store = new ZkElectionStore(session, paths, zk.acl);
    if (await store.clusterExists()) {
      if (!force) {
        process.stdout.write(`cluster ${cfg.cluster} already initialised at ${paths.cluster}\n`);
        await store.ensureLayout();
        return ExitCode.OK;
      }
      const live = await liveParticipants(session, paths);
      if (live.length > 0) {
        process.stderr.write(
          `hafc init: refusing to wipe cluster ${cfg.cluster} at ${paths.cluster} while its agents run: ` +
            `${live.join('; ')}. Deleting the lock and breadcrumb under a live active would let a standby ` +
            `promote beside it. Stop every agent of the cluster first (e.g. systemctl stop 'hafc@*'), ` +
            `wait until their sessions are gone, then run hafc init --force --yes again.\n`,
        );
        return ExitCode.FAILED;
      }
      await removeRecursive(session, paths.cluster);
    }
    await store.ensureLayout();
    process.stdout.write(
      `initialised cluster ${cfg.cluster} at ${paths.cluster}${zk.acl ? ' (digest ACL)' : ''}\n`,
    );
    return ExitCode.OK;
  } catch (err) {
    process.stderr.write(`hafc init: ${errorMessage(err)}\n`);
    return ExitCode.FAILED;
  } finally {
    await session.close();
  }
}
