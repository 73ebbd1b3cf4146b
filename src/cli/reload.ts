/**
 * SIGHUP: read the agent's config file again and put what may change live in force, without
 * dropping the ZooKeeper session or the lock (config/reload.ts says which keys those are). The
 * file goes through exactly what it went through at start (loadConfig, preflight); then the plan;
 * then the new pieces are built (agent, fencer, check: a ConfigError from them refuses too); then
 * the controller swaps them between two election steps. Anything refused leaves the config in
 * force as it was. Every outcome is one log line and a ReloadRecord in the controller's status.
 */
import { createAgent } from '../../agents/index.js';
import type { Clock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { preflight } from '../config/preflight.js';
import { describeRefusals, planReload } from '../config/reload.js';
import type { HafcConfig } from '../config/types.js';
import type { Controller, ReloadParts, ReloadRecord, Role } from '../controller/controller.js';
import { errorMessage } from '../errors.js';
import { Fencer } from '../fencing/fencer.js';
import { createCheck } from '../health/checks.js';
import { setLogOptions, type Logger } from '../log.js';
import type { ProcessGuard } from './process-guard.js';

/**
 * The pieces of an agent that a config decides: built the same way at start (cli/agent.ts) and
 * on a reload, so a reloaded agent is the agent a restart would have built.
 */
export async function buildParts(
  cfg: HafcConfig,
  logger: Logger,
  clock: Clock,
  role: () => Role,
): Promise<ReloadParts> {
  const agent = await createAgent(cfg.service, logger.child({ component: 'service' }), clock);
  const fencer = new Fencer(
    cfg.fencing.methods,
    cfg.fencing.timeoutMs,
    agent,
    logger.child({ component: 'fencing' }),
    clock,
  );
  const check = createCheck(
    cfg.health.check,
    agent,
    () => ({ cluster: cfg.cluster, nodeId: cfg.node.id, role: role(), epoch: 0n, reason: 'health check' }),
    { timeoutMs: cfg.health.timeoutMs, clock },
  );
  const h = cfg.health;
  return {
    config: cfg,
    agent,
    fencer,
    health: {
      check,
      intervalMs: h.intervalMs,
      timeoutMs: h.timeoutMs,
      fall: h.fall,
      rise: h.rise,
      fastIntervalMs: h.fastIntervalMs,
      pidFile: h.pidFile,
    },
  };
}

export interface ReloaderOptions {
  configFile: string;
  /** The config the agent started with. */
  config: HafcConfig;
  controller: Controller;
  /** The agent's root logger (its level and format are what log.* changes). */
  logger: Logger;
  clock: Clock;
}

/** Reloads one at a time; SIGHUPs during a reload coalesce into one more reload after it. */
export class Reloader {
  private current: HafcConfig;
  private readonly boot: HafcConfig;
  private readonly log: Logger;
  private running: Promise<ReloadRecord> | null = null;
  private again = false;

  constructor(private readonly opts: ReloaderOptions) {
    this.current = opts.config;
    this.boot = opts.config;
    this.log = opts.logger.child({ component: 'reload' });
  }

  /** Starts a reload (or queues one after the reload in flight); resolves with its outcome. */
  request(): Promise<ReloadRecord> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<ReloadRecord> => {
      let rec: ReloadRecord;
      do {
        this.again = false;
        rec = await this.reloadOnce();
      } while (this.again);
      return rec;
    };
    this.running = run().finally(() => (this.running = null));
    return this.running;
  }

  private async reloadOnce(): Promise<ReloadRecord> {
    const file = this.opts.configFile;
    let next: HafcConfig;
    try {
      next = await loadConfig(file);
    } catch (err) {
      return this.refused([], errorMessage(err).split('\n'));
    }
    const missing = await preflight(next);
    if (missing.length > 0)
      return this.refused(
        [],
        missing.map((p) => `config ${file}: ${p}`),
      );

    const plan = planReload(this.current, next, this.boot);
    if (plan.refuse.length > 0)
      return this.refused(
        plan.refuse.map((r) => r.key),
        [`restart needed to change ${describeRefusals(plan.refuse)}`],
      );
    if (plan.apply.length === 0) {
      this.log.info(`reload of ${file}: nothing changed`);
      return this.opts.controller.recordReload({ result: 'unchanged', changed: [] });
    }

    try {
      const c = this.opts.controller;
      await c.reload(await buildParts(next, this.opts.logger, this.opts.clock, () => c.role()));
    } catch (err) {
      return this.refused(plan.apply, [errorMessage(err)]);
    }
    this.current = next;
    setLogOptions(this.opts.logger, { level: next.log.level, format: next.log.format });
    this.log.info(`reload of ${file} applied: ${plan.apply.join(', ')}`, { changed: plan.apply });
    return this.opts.controller.recordReload({ result: 'applied', changed: plan.apply });
  }

  private refused(keys: string[], problems: string[]): ReloadRecord {
    const error = problems.join('; ');
    this.log.error(`reload of ${this.opts.configFile} refused, the configuration in force stays: ${error}`, {
      refused: keys,
    });
    return this.opts.controller.recordReload({ result: 'refused', changed: keys, error });
  }
}

/** SIGHUP reloads from now on (the guard calls it only while the agent runs). */
export function installReload(guard: ProcessGuard, opts: ReloaderOptions): Reloader {
  const reloader = new Reloader(opts);
  guard.setReloadHandler(() => {
    reloader
      .request()
      .catch((err: unknown) =>
        guard.logger.error('reload failed; the configuration in force stays', { error: errorMessage(err) }),
      );
  });
  return reloader;
}
