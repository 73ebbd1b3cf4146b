/**
 * `hafc status [cluster options] [--json] [--check] [--watch [--interval S]]`: who is active,
 * each live member, pause and switchover, and what an operator must not miss. Read-only: it
 * opens a plain session (not a member), so looking never changes the election.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { errorMessage, ZkError } from '../errors.js';
import { ZkElectionStore } from '../zk/election-store.js';
import type { Watcher } from '../zk/types.js';
import {
  addClusterOptions,
  openClusterTarget,
  VerbError,
  withClusterTarget,
  type ClusterTarget,
  type ClusterTargetOptions,
} from './cluster-target.js';
import { ExitCode } from './exit-codes.js';
import { buildStatus, statusFingerprint, type ClusterSnapshot } from './render/status-view.js';
import { renderStatus } from './render/status-text.js';

interface StatusOptions extends ClusterTargetOptions {
  json?: boolean;
  check?: boolean;
  watch?: boolean;
  interval?: number;
}

/** Clear the screen and go home: a redraw in place, not a scrolling log. */
const CLEAR = '\x1b[H\x1b[2J';

function parseInterval(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !Number.isFinite(n) || n < 0.1 || n > 3600)
    throw new InvalidArgumentError(`--interval must be a number of seconds from 0.1 to 3600, got ${value}`);
  return n;
}

export function registerStatus(program: Command): void {
  addClusterOptions(
    program
      .command('status')
      .description('show the active node, every live member, pause and switchover state, and warnings'),
  )
    .option('--json', 'print one JSON object (schemaVersion 1, see docs/cli.md) instead of the table')
    .option('--check', 'exit 1 unless exactly one member is ACTIVE and holds the lock')
    .option('--watch', 'keep redrawing as the cluster changes, until SIGINT or SIGTERM')
    .option('--interval <seconds>', 'with --watch: refresh at least this often (default 1)', parseInterval)
    .action(async (opts: StatusOptions) => {
      process.exitCode = await runStatus(opts);
    });
}

export async function runStatus(opts: StatusOptions): Promise<number> {
  if (opts.watch && opts.check) {
    process.stderr.write('hafc status: --check answers once; it cannot be combined with --watch\n');
    return ExitCode.USAGE;
  }
  if (opts.interval !== undefined && !opts.watch) {
    process.stderr.write('hafc status: --interval only applies with --watch\n');
    return ExitCode.USAGE;
  }
  return withClusterTarget('status', opts, async (t) => {
    if (opts.watch) return watch(t, opts);
    const view = buildStatus(await readSnapshot(t), Date.now());
    process.stdout.write(opts.json ? `${JSON.stringify(view, null, 2)}\n` : renderStatus(view, Date.now()));
    return opts.check && !view.healthy ? ExitCode.FAILED : ExitCode.OK;
  });
}

function isNoNode(err: unknown): boolean {
  return err instanceof ZkError && err.zkCode === 'NO_NODE';
}

/**
 * One read of everything `status` shows. With `arm`, watches are set BEFORE the reads, so a
 * change that lands between a read and the next one still fires. `arm` must be one function for
 * the whole watch: the session and the library de-duplicate a watcher per path, so re-arming on
 * every refresh does not pile up listeners.
 */
export async function readSnapshot(t: ClusterTarget, arm?: Watcher): Promise<ClusterSnapshot> {
  const s = t.session;
  if (arm) {
    const names = await s.getChildren(t.paths.members, arm).catch((err: unknown) => {
      if (isNoNode(err)) return [] as string[];
      throw err;
    });
    await Promise.all([
      s.exists(t.paths.lock, arm),
      s.exists(t.paths.breadcrumb, arm),
      s.exists(t.paths.control, arm),
      ...names.map((n) => s.exists(t.paths.member(n), arm)),
    ]);
  }
  // A fresh store each time: it reports a bad member znode only once per store, and status must
  // show it on every read.
  const store = new ZkElectionStore(s, t.paths);
  const lock = await store.lockHolder();
  const { members, problems } = await store.listMembers();
  const breadcrumb = await store.readBreadcrumb();
  const control = await store.readControl();
  return {
    cluster: t.cluster,
    connect: t.connect,
    path: t.paths.cluster,
    lock,
    members,
    memberProblems: problems,
    breadcrumb,
    control,
  };
}

/**
 * Redraws on every ZooKeeper watch event and at least every `--interval`. On a terminal the
 * screen is redrawn in place each time (the relative times tick); elsewhere (a pipe, a log file)
 * a new table, or JSON line, is printed only when something other than the time changed.
 * A session that ends (ZooKeeper gone longer than the session timeout) is replaced; failures
 * are shown and retried, never fatal: only a signal ends the watch.
 */
async function watch(first: ClusterTarget, opts: StatusOptions): Promise<number> {
  const intervalMs = Math.round((opts.interval ?? 1) * 1000);
  const tty = process.stdout.isTTY === true;
  let target: ClusterTarget | null = first;
  let stopping = false;
  let pending = false;
  let wake: (() => void) | null = null;
  const kick: Watcher = () => {
    pending = true;
    wake?.();
  };
  const onSignal = () => {
    stopping = true;
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let last: string | null = null;
  try {
    while (!stopping) {
      pending = false;
      let out: string;
      let fingerprint: string;
      let failed = false;
      try {
        if (!target) target = await openClusterTarget('status', opts);
        const now = Date.now();
        const view = buildStatus(await readSnapshot(target, kick), now);
        fingerprint = statusFingerprint(view);
        out = opts.json ? `${JSON.stringify(view)}\n` : renderStatus(view, now);
      } catch (err) {
        failed = true;
        const why = err instanceof VerbError ? err.message.replace(/^hafc status: /, '') : errorMessage(err);
        out = `hafc status: cannot read the cluster: ${why} (retrying every ${intervalMs / 1000} s)\n`;
        fingerprint = out;
        if (target && (target.session.state === 'lost' || target.session.state === 'closed')) {
          if (target !== first) await target.close().catch(() => undefined);
          target = null;
        }
      }
      if (stopping) break;
      if (tty) {
        const stamp = new Date().toISOString().slice(11, 19);
        process.stdout.write(`${CLEAR}${out}\n${stamp} UTC, every ${intervalMs / 1000} s; Ctrl-C to stop\n`);
      } else if (fingerprint !== last) {
        if (failed) process.stderr.write(out);
        else process.stdout.write(opts.json || last === null ? out : `\n${out}`);
      }
      last = fingerprint;
      if (stopping) break;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          wake = null;
          resolve();
        };
        const timer = setTimeout(done, intervalMs);
        wake = done;
        if (pending || stopping) done();
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (target && target !== first) await target.close().catch(() => undefined);
  }
  return ExitCode.OK;
}
