import { CommanderError, type Command } from 'commander';
import { ConfigError } from '../errors.js';
import { escapeControls } from '../config/format.js';
import { loadConfig } from '../config/load.js';
import { preflight } from '../config/preflight.js';
import {
  DEFAULT_TICK_TIME_MS,
  detectionTimeMs,
  leaseBudgetMs,
  relayAllowanceMs,
  transitionTimeoutKey,
  transitionTimeoutMs,
  worstCaseFailoverMs,
} from '../config/timing.js';
import type { HafcConfig } from '../config/types.js';
import { ExitCode } from './exit-codes.js';

/**
 * The lease as configured, and what changes at runtime: the agent uses the session timeout the
 * servers negotiate (they clamp the requested one to [2, 20] x tickTime) and also subtracts the
 * relay allowance, which depends on the servers' tickTime and so is only known at connect.
 */
function lease(cfg: HafcConfig): string[] {
  const zk = cfg.zookeeper;
  if (zk.onConnectionLoss !== 'demote')
    return ['no lease budget (onConnectionLoss: hold, the service fences itself),'];
  const relay = relayAllowanceMs(DEFAULT_TICK_TIME_MS);
  return [
    `lease budget ${leaseBudgetMs(cfg)} ms (session ${zk.sessionTimeoutMs} - margin ${zk.safetyMarginMs} - ` +
      `to-standby ${transitionTimeoutMs(cfg.service)}),`,
    `less the ZooKeeper relay allowance at runtime (tickTime/2 + slack: ${relay} ms for the default tickTime ` +
      `${DEFAULT_TICK_TIME_MS}), and with the session timeout the servers negotiate in place of ${zk.sessionTimeoutMs};`,
  ];
}

/** What the file amounts to, so an operator can sanity-check the numbers, not just the syntax. */
export function summarize(cfg: HafcConfig): string {
  const { node, zookeeper: zk, health, fencing } = cfg;
  const hook = transitionTimeoutMs(cfg.service);
  // The agent's own to-standby key (the lease budget subtracts it), named as the file names it.
  const hookKey = `to-standby ${transitionTimeoutKey(cfg.service).replace(/^service\./, '')}`;
  const methods = fencing.methods.map((m) => m.kind).join(', ');
  return [
    `cluster ${cfg.cluster}, node ${node.id} at ${node.host}:${node.port} (priority ${node.priority}` +
      `${node.noFailover ? ', never active' : ''}), service agent ${cfg.service.agent} (${hookKey} ${hook} ms),`,
    `zookeeper ${zk.connect} under ${zk.root} (session ${zk.sessionTimeoutMs} ms, on connection loss ` +
      `${zk.onConnectionLoss}), health check ${health.check.kind}, fencing ${methods};`,
    `detection ${detectionTimeMs(cfg)} ms (every ${health.intervalMs} ms x fall ${health.fall}), ` +
      `${lease(cfg).join('\n')}`,
    `worst-case failover ${worstCaseFailoverMs(cfg)} ms (detection + session + ${fencing.methods.length} x ` +
      `fencing ${fencing.timeoutMs} + to-active ${hook}).`,
  ].join('\n');
}

function usageError(message: string): never {
  process.exitCode = ExitCode.USAGE;
  // main() sets process.exitCode from its own return value after parsing, which would turn
  // the 2 above into 0; a CommanderError is what it maps to exit code 2 (usage or config).
  throw new CommanderError(ExitCode.USAGE, 'hafc.invalidConfig', message);
}

export function registerCheckConfig(program: Command): void {
  program
    .command('check-config')
    .description(
      'validate a config file, check that the files and programs it names exist here, and summarise ' +
        'its timing; exit 2 if anything is wrong',
    )
    .argument('<file>', 'the YAML config file')
    .option(
      '--no-preflight',
      'check the file only, not the files and programs it names (for a config meant for another host)',
    )
    .action(async (file: string, opts: { preflight: boolean }) => {
      let cfg: HafcConfig;
      try {
        cfg = await loadConfig(file);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`${err.message}\n`);
        usageError(err.message);
      }
      const problems = opts.preflight ? await preflight(cfg) : [];
      if (problems.length > 0) {
        const lines = problems.map((p) => `config ${escapeControls(file)}: ${p}`).join('\n');
        process.stderr.write(`${lines}\n`);
        usageError(lines);
      }
      process.stdout.write(`${escapeControls(file)}: ok\n${summarize(cfg)}\n`);
      process.exitCode = ExitCode.OK;
    });
}
