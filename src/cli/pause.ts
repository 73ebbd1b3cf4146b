/** `hafc pause | resume [--reason TEXT]`: cluster-wide maintenance mode (src/ops/pause.ts). */
import type { Command } from 'commander';
import { setPaused } from '../ops/pause.js';
import {
  addClusterOptions,
  requester,
  withClusterTarget,
  type ClusterTargetOptions,
} from './cluster-target.js';
import { ExitCode } from './exit-codes.js';

interface Opts extends ClusterTargetOptions {
  reason?: string;
  json?: boolean;
}

export function registerPause(program: Command): void {
  for (const [verb, pause, what] of [
    ['pause', true, 'maintenance mode: agents monitor and report but take no automatic action'],
    ['resume', false, 'end maintenance mode: automatic failover again'],
  ] as const) {
    addClusterOptions(program.command(verb).description(what))
      .option('--reason <text>', "why (shown in status and history, and in the agents' logs)")
      .option('--json', 'machine-readable output')
      .action(async (opts: Opts) => {
        process.exitCode = await runPause(verb, opts, pause);
      });
  }
}

export async function runPause(verb: 'pause' | 'resume', opts: Opts, pause: boolean): Promise<number> {
  if (opts.reason !== undefined && opts.reason.length > 1000) {
    process.stderr.write(`hafc ${verb}: --reason is ${opts.reason.length} characters long; at most 1000\n`);
    return ExitCode.USAGE;
  }
  return withClusterTarget(verb, opts, async (t) => {
    const r = await setPaused(t.store, t.cluster, pause, {
      by: requester(),
      ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    });
    process.stdout.write(opts.json ? JSON.stringify({ schemaVersion: 1, ...r }) + '\n' : `${r.message}\n`);
    return ExitCode.OK;
  });
}
