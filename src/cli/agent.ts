/** `hafc agent -c FILE`: the sidecar, in the foreground (systemd runs this). */
// Evaluated first, on purpose: it takes SIGUSR1 away from Node's inspector (see the module).
import { inspectorRequested, onStrayInspectorClosed, setSigusr1Handler } from './inspector-guard.js';
import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import type { HafcConfig } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { preflight } from '../config/preflight.js';
import { Controller } from '../controller/controller.js';
import { errorMessage, HafcError } from '../errors.js';
import { HealthMonitor } from '../health/monitor.js';
import type { ControlActions } from '../http/control.js';
import { clusterActions } from '../ops/actions.js';
import type { ElectionStore } from '../election/store.js';
import { startHttp, type AgentHttp } from '../http/start.js';
import { createLogger, stderrSink } from '../log.js';
import { takeNotifyEnv } from '../systemd/notify-env.js';
import { linkSystemd } from '../systemd/wire.js';
import { PromMetrics } from '../metrics/prom.js';
import { VERSION } from '../version.js';
import { assertPatched } from '../zk/session.js';
import { ExitCode } from './exit-codes.js';
import { installProcessGuard, ProcessGuard, type GuardLimits } from './process-guard.js';
import { buildParts, installReload } from './reload.js';
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

/**
 * The guard's deadlines, from the configured timeouts: a demotion is the to-standby timeout (plus
 * the controller's own margin); a clean stop is the step in flight (a few ZooKeeper requests,
 * fencing being aborted) plus a demotion plus marking the breadcrumb demoted.
 */
export function guardLimits(cfg: HafcConfig, toStandbyTimeoutMs: number): GuardLimits {
  const request = cfg.zookeeper.requestTimeoutMs;
  return {
    demoteTimeoutMs: toStandbyTimeoutMs + 2000,
    releaseTimeoutMs: toStandbyTimeoutMs + 1000 + 2 * request,
    stopTimeoutMs: toStandbyTimeoutMs + 1000 + 4 * request + 2000,
  };
}

/** POST /switchover, /pause, /resume: the CLI's operator actions, on this agent's session. */
function httpActions(cfg: HafcConfig, store: () => ElectionStore | null): ControlActions {
  const ops = (remote: string) =>
    clusterActions({
      cluster: cfg.cluster,
      store,
      by: `http:${remote} via ${cfg.node.id}`,
      switchoverTimeoutMs: SWITCHOVER_REQUEST_MS,
    });
  return {
    switchover: (req, caller) => ops(caller.remote).switchover(req),
    pause: (req, caller) => ops(caller.remote).pause(req),
    resume: (req, caller) => ops(caller.remote).resume(req),
  };
}

/** How long a switchover asked for over HTTP stays valid (the CLI's --timeout default). */
const SWITCHOVER_REQUEST_MS = 30_000;

export async function runAgent(configFile: string): Promise<number> {
  // Before anything can spawn a hook: they must not inherit systemd's notification socket.
  const notifyEnv = takeNotifyEnv(process.env, process.pid);
  // Signals and fatal errors are handled from the very start; before the configuration is read
  // they have nothing to demote, and log without the cluster's fields.
  const guard = new ProcessGuard({
    logger: createLogger({ base: { component: 'agent' } }),
    clock: systemClock,
    exit: (code) => process.exit(code),
  });
  installProcessGuard(guard, setSigusr1Handler);
  onStrayInspectorClosed((url) =>
    guard.logger.error('a debugger port was open without --inspect (opened by SIGUSR1?): closed it', { url }),
  );

  let cfg;
  try {
    cfg = await loadConfig(configFile);
  } catch (err) {
    stderrSink().write(`hafc agent: ${errorMessage(err)}\n`, () => {});
    return ExitCode.USAGE;
  }
  // What the file names must exist here (hook programs, credentials, token): an agent that could
  // not run its to-standby hook must not start, let alone become active.
  const missing = await preflight(cfg);
  if (missing.length > 0) {
    stderrSink().write(missing.map((p) => `hafc agent: config ${configFile}: ${p}\n`).join(''), () => {});
    return ExitCode.USAGE;
  }
  const logger = loggerFor(cfg);
  guard.setLogger(logger);
  for (const problem of notifyEnv.problems) logger.warn(problem, { component: 'systemd' });
  if (inspectorRequested())
    logger.warn(
      'the inspector was enabled explicitly (--inspect): whoever connects to it runs code as this agent',
    );

  const clock = systemClock;
  let controller: Controller;
  let limits: GuardLimits;
  let systemd;
  let http: AgentHttp;
  try {
    assertPatched();
    const parts = await buildParts(cfg, logger, clock, () => controller?.role() ?? 'init');
    const { agent, fencer } = parts;
    limits = guardLimits(cfg, agent.toStandbyTimeoutMs);
    const zk = await zkAccess(cfg, logger, agent.toStandbyTimeoutMs, true);
    const health = new HealthMonitor({
      ...parts.health,
      clock,
      logger: logger.child({ component: 'health' }),
    });
    const metrics = new PromMetrics({
      version: VERSION,
      cluster: cfg.cluster,
      node: cfg.node.id,
      fencingMethods: cfg.fencing.methods.map((m) => m.kind),
    });
    controller = new Controller({
      config: cfg,
      agent,
      fencer,
      health,
      connect: zk.connect,
      agentVersion: VERSION,
      // The elector cannot go on (a duplicate node id): stop cleanly, exit 2 (a configuration error).
      onFatal: (reason) => guard.stopWith(ExitCode.USAGE, reason),
      clock,
      logger,
      metrics,
    });
    // Before the controller competes; failing to bind is a configuration error (exit 2).
    http = await startHttp({
      config: cfg,
      controller,
      metrics,
      actions: httpActions(cfg, () => controller.clusterStore()),
      droppedLogLines: () => logger.droppedLines(),
      version: VERSION,
      clock,
      logger,
    });
    systemd = linkSystemd(notifyEnv.target, {
      config: cfg,
      toStandbyTimeoutMs: agent.toStandbyTimeoutMs,
      status: () => controller.status(),
      health,
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
  // Attached before start(): from the first election on, a crash demotes what it may have promoted.
  guard.attach(controller, limits);
  installReload(guard, { configFile, config: cfg, controller, logger, clock });
  guard.onStopping((reason) => systemd.markStopping(reason));
  controller.start();
  systemd.start();
  const code = await guard.done;
  systemd.close();
  await http.close();
  return code;
}
