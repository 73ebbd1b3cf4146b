/**
 * `hafc history [cluster options] [--limit N] [--json]`: the bounded list of transitions the
 * agents append to the history znode (activations, demotions, failed activations, switchovers,
 * pauses), oldest first like a log, so the latest is at the bottom of the screen. --html FILE
 * also draws them as a timeline page (render/timeline-html.ts, the chaos suite's renderer).
 */
import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { RecordError, ZkError } from '../errors.js';
import { decodeHistory } from '../zk/records.js';
import { addClusterOptions, withClusterTarget, type ClusterTargetOptions } from './cluster-target.js';
import { ExitCode } from './exit-codes.js';
import { renderHistory } from './render/history-text.js';
import { historyTimeline } from './render/history-timeline.js';
import { renderTimelineHtml } from './render/timeline-html.js';
import { newest, normaliseHistory, type HistoryJson } from './render/history-view.js';

interface HistoryOptions extends ClusterTargetOptions {
  limit?: number;
  json?: boolean;
  html?: string;
}

function parseLimit(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || !Number.isSafeInteger(Number(value)))
    throw new InvalidArgumentError(`--limit must be a positive whole number, got ${value}`);
  return Number(value);
}

export function registerHistory(program: Command): void {
  addClusterOptions(
    program
      .command('history')
      .description(
        "list the cluster's recorded transitions (activations, demotions, switchovers), oldest first",
      ),
  )
    .option('--limit <n>', 'only the newest N entries', parseLimit)
    .option('--json', 'print one JSON object (schemaVersion 1, see docs/cli.md) instead of the table')
    .option('--html <file>', 'also write a self-contained HTML timeline of the entries to FILE')
    .action(async (opts: HistoryOptions) => {
      process.exitCode = await runHistory(opts);
    });
}

export async function runHistory(opts: HistoryOptions): Promise<number> {
  return withClusterTarget('history', opts, async (t) => {
    let data: Buffer | null = null;
    try {
      data = (await t.session.getData(t.paths.history)).data;
    } catch (err) {
      // An older `hafc init` made no history znode: nothing recorded yet.
      if (!(err instanceof ZkError && err.zkCode === 'NO_NODE')) throw err;
    }
    let decoded;
    try {
      decoded = decodeHistory(t.paths.history, data);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      process.stderr.write(`hafc history: ${err.message}\n`);
      return ExitCode.FAILED;
    }
    const { items, skipped } = normaliseHistory(decoded.record.entries);
    const out: HistoryJson = {
      schemaVersion: 1,
      cluster: t.cluster,
      path: t.paths.cluster,
      order: 'oldest-first',
      total: items.length,
      skipped: decoded.skipped + skipped,
      entries: newest(items, opts.limit),
    };
    if (opts.html !== undefined) {
      try {
        fs.writeFileSync(opts.html, renderTimelineHtml(historyTimeline(out, Date.now())));
      } catch (err) {
        process.stderr.write(`hafc history: cannot write --html ${opts.html}: ${(err as Error).message}\n`);
        return ExitCode.FAILED;
      }
    }
    process.stdout.write(opts.json ? `${JSON.stringify(out, null, 2)}\n` : renderHistory(out));
    return ExitCode.OK;
  });
}
