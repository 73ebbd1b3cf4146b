/** `hafc agent -c FILE`: the sidecar, in the foreground (systemd runs this). */
import type { Command } from 'commander';
import { createAgent } from '../../agents/index.js';
import { systemClock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { Controller } from '../controller/controller.js';
import { errorMessage, HafcError } from '../errors.js';
import { Fencer } from '../fencing/fencer.js';
import { createCheck } from '../health/checks.js';
import { HealthMonitor } from '../health/monitor.js';
import { VERSION } from '../version.js';
import { ExitCode } from './exit-codes.js';
import { loggerFor, zkAccess } from './runtime.js';

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the failover controller sidecar for one service instance (foreground)')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .action(async (opts: { config: string }) => {
      process.exitCode = await runAgent(opts.config);
    });
}

export async function runAgent(configFile: string): Promise<number> {
  let cfg;
  try {
    cfg = await loadConfig(configFile);
  } catch (err) {
    process.stderr.write(`hafc agent: ${errorMessage(err)}\n`);
    return ExitCode.USAGE;
  }
  const logger = loggerFor(cfg);
  const clock = systemClock;
  let controller: Controller;
  let fatal: (reason: string) => void = () => {};
  try {
    const agent = createAgent(cfg.service, logger.child({ component: 'service' }));
    const zk = await zkAccess(cfg, logger, agent.toStandbyTimeoutMs);
    const fencer = new Fencer(
      cfg.fencing.methods,
      cfg.fencing.timeoutMs,
      agent,
      logger.child({ component: 'fencing' }),
    );
    const check = createCheck(
      cfg.health.check,
      agent,
      () => ({
        cluster: cfg.cluster,
        nodeId: cfg.node.id,
        role: controller?.role() ?? 'init',
        epoch: 0n,
        reason: 'health check',
      }),
      { timeoutMs: cfg.health.timeoutMs },
    );
    const health = new HealthMonitor({
      check,
      intervalMs: cfg.health.intervalMs,
      timeoutMs: cfg.health.timeoutMs,
      fall: cfg.health.fall,
      rise: cfg.health.rise,
      clock,
      logger: logger.child({ component: 'health' }),
    });
    controller = new Controller({
      config: cfg,
      agent,
      fencer,
      health,
      connect: zk.connect,
      agentVersion: VERSION,
      onFatal: (reason) => fatal(reason),
      clock,
      logger,
    });
  } catch (err) {
    logger.error('cannot start', {
      error: errorMessage(err),
      code: err instanceof HafcError ? err.code : undefined,
    });
    return err instanceof HafcError && err.code === 'ECONFIG' ? ExitCode.USAGE : ExitCode.FAILED;
  }

  logger.info('hafc agent starting', { version: VERSION, pid: process.pid, agent: cfg.service.agent });
  controller.start();

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        logger.warn(`second ${sig}: exiting at once`);
        process.exit(ExitCode.FAILED);
      }
      stopping = true;
      logger.info(`${sig} received: stopping (demoting the service if active)`);
      controller.stop().then(
        () => {
          logger.info('stopped');
          resolve(ExitCode.OK);
        },
        (err: unknown) => {
          logger.error('error while stopping', { error: errorMessage(err) });
          resolve(ExitCode.FAILED);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // The elector cannot go on (e.g. a duplicate node id): stop cleanly, exit 2 (a config error).
    fatal = (reason) => {
      if (stopping) return;
      stopping = true;
      logger.error('stopping: cannot continue', { reason });
      controller.stop().then(
        () => resolve(ExitCode.USAGE),
        () => resolve(ExitCode.USAGE),
      );
    };
  });
}
