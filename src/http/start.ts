/**
 * The listener as the agent runs it (`startHttp`, called from cli/agent.ts): token, liveness,
 * scrape-time metric values and the view of the controller, then the server on control.listen.
 * It is started before the controller competes: an agent whose /active endpoint cannot be served
 * (the port taken, say) would be invisible to the load balancer, so it must not become active.
 */
import type { Clock } from '../clock.js';
import { parseHostPort } from '../config/rules.js';
import type { HafcConfig } from '../config/types.js';
import type { Controller } from '../controller/controller.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PromMetrics } from '../metrics/prom.js';
import { BearerAuth, readToken } from './auth.js';
import type { ControlActions } from './control.js';
import { Liveness } from './liveness.js';
import { startHttpServer, type AgentView, type HttpLimits } from './server.js';
import { statusJson } from './status-json.js';

/** Slack on top of the loops' own bounds before /healthz calls them stuck (GC, a loaded host). */
const LIVENESS_SLACK_MS = 5000;
/**
 * How often liveness notes whether the election loop decided anew. A change is noticed up to one
 * period late, so a stuck loop is reported up to this much later than its limit (which is the
 * step deadline, tens of seconds at least), never sooner; every 500 ms it was 2 of an idle
 * agent's few wake-ups a second.
 */
const LIVENESS_SAMPLE_MS = 2000;

export interface StartHttpOptions {
  config: HafcConfig;
  controller: Controller;
  metrics: PromMetrics;
  actions: ControlActions;
  /** The agent's log lines lost so far (hafc_log_lines_dropped_total). */
  droppedLogLines: () => number;
  version: string;
  clock: Clock;
  logger: Logger;
  limits?: Partial<HttpLimits>;
}

export interface AgentHttp {
  readonly address: string;
  close(): Promise<void>;
}

export async function startHttp(o: StartHttpOptions): Promise<AgentHttp> {
  const cfg = o.config;
  const log = o.logger.child({ component: 'http' });
  const where = parseHostPort(cfg.control.listen, 0);
  if (typeof where === 'string')
    throw new ConfigError(`control.listen: ${JSON.stringify(cfg.control.listen)} must be host:port ${where}`);
  const token = cfg.control.tokenFile === undefined ? null : await readToken(cfg.control.tokenFile);
  const c = o.controller;
  const liveness = new Liveness({
    clock: o.clock,
    electorStaleMs: c.stepDeadlineMs + LIVENESS_SLACK_MS,
    sampleMs: LIVENESS_SAMPLE_MS,
    healthStaleMs: () => {
      const h = c.healthTiming();
      return h.intervalMs + h.timeoutMs + LIVENESS_SLACK_MS;
    },
    signals: {
      electorDecision: () => c.elector.status().lastDecision,
      healthResultAt: () => c.lastHealthResultAt(),
      healthState: () => c.status().health,
    },
  });
  o.metrics.observe(() => {
    const e = c.elector.status();
    return {
      zookeeperState: e.sessionState,
      leaseRemainingMs: e.leaseRemainingMs,
      droppedLogLines: o.droppedLogLines(),
    };
  });
  const view: AgentView = {
    status: () =>
      statusJson(c.status(), {
        version: o.version,
        mayBeActive: c.elector.mayBeActive(),
        nowMs: o.clock.now(),
      }),
    active: () => c.elector.mayBeActive(),
    standby: () => c.elector.getState() === 'STANDBY' && !c.elector.serviceMayBeActive(),
    role: () => c.role(),
    live: () => liveness.check(),
  };
  const server = await startHttpServer({
    host: where.host,
    port: where.port,
    view,
    metrics: async () => ({ contentType: o.metrics.contentType, body: await o.metrics.text() }),
    actions: o.actions,
    auth: new BearerAuth(token),
    clock: o.clock,
    logger: log,
    limits: o.limits,
  });
  liveness.start();
  log.info(`HTTP listening on ${server.address}`, {
    address: server.address,
    mutatingCalls: token === null ? 'refused (no control.tokenFile)' : 'bearer token',
  });
  return {
    address: server.address,
    close: async () => {
      liveness.stop();
      await server.close();
    },
  };
}
