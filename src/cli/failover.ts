/**
 * `hafc failover [--to ID] [--wait] [--timeout S] [--reason TEXT] [--dry-run] [--json]`: a
 * graceful switchover (src/ops/switchover.ts). Exit 4 with a per-candidate explanation when no
 * member can take over; 6 when the request expired before it was carried out.
 */
import type { Command } from 'commander';
import {
  awaitSwitchover,
  explainCandidates,
  planSwitchover,
  requestSwitchover,
  type SwitchoverPlan,
} from '../ops/switchover.js';
import {
  addClusterOptions,
  requester,
  withClusterTarget,
  type ClusterTargetOptions,
} from './cluster-target.js';
import { ExitCode } from './exit-codes.js';

interface Opts extends ClusterTargetOptions {
  to?: string;
  wait?: boolean;
  timeout: string;
  reason?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function registerFailover(program: Command): void {
  addClusterOptions(
    program
      .command('failover')
      .description(
        'graceful switchover: the active demotes while it holds the lock, then the target promotes without fencing',
      ),
  )
    .option('--to <id>', 'the node to make active (default: the eligible standby of highest priority)')
    .option(
      '--wait',
      'wait until the target is active (or the request is refused or expires) and print the handover',
    )
    .option('--timeout <seconds>', 'how long the request stays valid (and --wait waits)', '30')
    .option('--reason <text>', 'why (recorded in the control znode and the history)')
    .option('--dry-run', 'explain each candidate and what would happen; change nothing')
    .option('--json', 'machine-readable output')
    .action(async (opts: Opts) => {
      process.exitCode = await runFailover(opts);
    });
}

function planJson(plan: SwitchoverPlan) {
  return {
    from: plan.from,
    epoch: plan.epoch,
    to: plan.to,
    problem: plan.problem ?? null,
    candidates: plan.candidates.map((c) => ({
      id: c.id,
      priority: c.priority,
      eligible: c.eligible,
      why: c.why,
    })),
  };
}

export async function runFailover(opts: Opts): Promise<number> {
  const timeoutS = Number(opts.timeout);
  if (!/^\d+(\.\d+)?$/.test(opts.timeout) || timeoutS < 1 || timeoutS > 3600) {
    process.stderr.write(
      `hafc failover: --timeout must be a number of seconds from 1 to 3600, got ${JSON.stringify(opts.timeout)}\n`,
    );
    return ExitCode.USAGE;
  }
  if (opts.to !== undefined && !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(opts.to)) {
    process.stderr.write(`hafc failover: --to ${JSON.stringify(opts.to)} is not a node id\n`);
    return ExitCode.USAGE;
  }
  if (opts.reason !== undefined && opts.reason.length > 1000) {
    process.stderr.write(`hafc failover: --reason is ${opts.reason.length} characters long; at most 1000\n`);
    return ExitCode.USAGE;
  }
  const out = (text: string, json: object) =>
    process.stdout.write(opts.json ? JSON.stringify({ schemaVersion: 1, ...json }) + '\n' : text);
  return withClusterTarget('failover', opts, async (t) => {
    const plan = await planSwitchover(t.store, t.cluster, opts.to);
    const explanation = [
      `active: ${plan.from} (epoch ${plan.epoch})`,
      'candidates:',
      ...explainCandidates(plan.candidates),
    ];
    if (plan.to === null) {
      const text = `hafc failover: ${plan.problem}\n${explanation.join('\n')}\n`;
      if (opts.json) out('', { requested: false, ...planJson(plan) });
      else process.stderr.write(text);
      return ExitCode.NO_ELIGIBLE_TARGET;
    }
    if (opts.dryRun) {
      out(
        `${explanation.join('\n')}\nwould ask ${plan.from} to hand over to ${plan.to}: ${plan.from} demotes its service while it ` +
          `holds the lock, marks its breadcrumb demoted and releases the lock; ${plan.to} takes it (a new epoch) ` +
          `and promotes without fencing. Nothing was changed (--dry-run).\n`,
        { requested: false, dryRun: true, ...planJson(plan) },
      );
      return ExitCode.OK;
    }
    const req = await requestSwitchover(t.store, plan, {
      by: requester(),
      timeoutMs: timeoutS * 1000,
      ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    });
    if (!opts.wait) {
      out(
        `switchover ${req.id} requested: ${req.from} -> ${req.to} (valid until ${req.expiresAt}); ` +
          `hafc status shows its progress\n`,
        { requested: true, id: req.id, from: req.from, to: req.to, expiresAt: req.expiresAt },
      );
      return ExitCode.OK;
    }
    const o = await awaitSwitchover(t.store, t.cluster, req);
    const json = {
      requested: true,
      id: req.id,
      from: req.from,
      to: req.to,
      outcome: o.outcome,
      detail: o.detail,
      handoverMs: o.handoverMs ?? null,
      epoch: o.epoch ?? null,
    };
    if (o.outcome === 'done') {
      out(
        `switchover ${req.id} done: ${req.from} -> ${req.to}` +
          `${o.handoverMs !== undefined ? `, handover ${o.handoverMs} ms (${req.from} standby -> ${req.to} active)` : ''}` +
          `${o.epoch ? `, epoch ${o.epoch}` : ''}\n`,
        json,
      );
      return ExitCode.OK;
    }
    if (opts.json) out('', json);
    else process.stderr.write(`hafc failover: switchover ${req.id} ${o.outcome}: ${o.detail}\n`);
    return o.outcome === 'expired' ? ExitCode.TIMED_OUT : ExitCode.FAILED;
  });
}
