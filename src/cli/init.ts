/** `hafc init -c FILE [--force --yes]`: create the cluster's znodes and ACLs (ZKFC -formatZK). */
import type { Command } from 'commander';
import { createAgent } from '../../agents/index.js';
import { loadConfig } from '../config/load.js';
import { errorMessage, ZkError } from '../errors.js';
import { ZkElectionStore } from '../zk/election-store.js';
import { clusterPaths } from '../zk/paths.js';
import type { ZkSession } from '../zk/types.js';
import { ExitCode } from './exit-codes.js';
import { loggerFor, zkAccess } from './runtime.js';

export function registerInit(program: Command): void {
  program
    .command('init')
    .description("create the cluster's znodes (and ACLs when zookeeper.auth is set)")
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .option('--force', 'delete and recreate an existing cluster (its lock, breadcrumb, members, history)')
    .option('--yes', 'confirm --force without asking')
    .action(async (opts: { config: string; force?: boolean; yes?: boolean }) => {
      process.exitCode = await runInit(opts.config, !!opts.force, !!opts.yes);
    });
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
  const logger = loggerFor(cfg);
  const agent = createAgent(cfg.service, logger);
  let session: ZkSession;
  let zk;
  try {
    zk = await zkAccess(cfg, logger, agent.toStandbyTimeoutMs);
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
