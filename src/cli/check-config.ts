import { CommanderError, type Command } from 'commander';
import { ConfigError } from '../errors.js';
import { loadConfig } from '../config/load.js';
import {
  detectionTimeMs,
  leaseBudgetMs,
  transitionTimeoutMs,
  worstCaseFailoverMs,
} from '../config/timing.js';
import type { HafcConfig } from '../config/types.js';
import { ExitCode } from './exit-codes.js';

/** What the file amounts to, so an operator can sanity-check the numbers, not just the syntax. */
export function summarize(cfg: HafcConfig): string {
  const { node, zookeeper: zk, health, fencing } = cfg;
  const hook = transitionTimeoutMs(cfg.service);
  const hookKey = cfg.service.agent === 'shell' ? 'hook timeout' : 'request timeout';
  const lease =
    zk.onConnectionLoss === 'demote'
      ? `lease budget ${leaseBudgetMs(cfg)} ms (session ${zk.sessionTimeoutMs} - margin ${zk.safetyMarginMs} - ` +
        `to-standby ${hook})`
      : 'no lease budget (onConnectionLoss: hold, the service fences itself)';
  const methods = fencing.methods.map((m) => m.kind).join(', ');
  return [
    `cluster ${cfg.cluster}, node ${node.id} at ${node.host}:${node.port} (priority ${node.priority}` +
      `${node.noFailover ? ', never active' : ''}), service agent ${cfg.service.agent} (${hookKey} ${hook} ms),`,
    `zookeeper ${zk.connect} under ${zk.root} (session ${zk.sessionTimeoutMs} ms, on connection loss ` +
      `${zk.onConnectionLoss}), health check ${health.check.kind}, fencing ${methods};`,
    `detection ${detectionTimeMs(cfg)} ms (every ${health.intervalMs} ms x fall ${health.fall}), ${lease},`,
    `worst-case failover ${worstCaseFailoverMs(cfg)} ms (detection + session + ${fencing.methods.length} x ` +
      `fencing ${fencing.timeoutMs} + to-active ${hook}).`,
  ].join('\n');
}

export function registerCheckConfig(program: Command): void {
  program
    .command('check-config')
    .description('validate a config file and summarise its timing; exit 2 if it is invalid')
    .argument('<file>', 'the YAML config file')
    .action(async (file: string) => {
      try {
        const cfg = await loadConfig(file);
        process.stdout.write(`${file}: ok\n${summarize(cfg)}\n`);
        process.exitCode = ExitCode.OK;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`${err.message}\n`);
        process.exitCode = ExitCode.USAGE;
        // main() sets process.exitCode from its own return value after parsing, which would turn
        // the 2 above into 0; a CommanderError is what it maps to exit code 2 (usage or config).
        throw new CommanderError(ExitCode.USAGE, 'hafc.invalidConfig', err.message);
      }
    });
}
