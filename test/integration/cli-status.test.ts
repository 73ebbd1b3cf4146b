/**
 * `hafc status` and `hafc history` against a real ZooKeeper and real agents, run as an operator
 * runs them: the built CLI, in its own process.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hafcBin } from '../../harness/agent-proc.js';
import { HaCluster } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { waitFor } from '../../harness/wait.js';
import { fourLetter, ZkEnsemble } from '../../harness/zk-ensemble.js';
import { openSession } from '../../src/zk/session.js';
import type { StatusJson } from '../../src/cli/render/status-view.js';
import type { HistoryJson } from '../../src/cli/render/history-view.js';
import { dumpDom, timelineSummary } from '../support/chromium.js';

const run = promisify(execFile);
/** What formatDuration prints, so tables can be compared without the clock. */
const TIMES = /\b\d+(ms|s|m\d\ds|h\d\dm|d\d\dh)\b/g;

async function hafc(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [hafcBin, ...args], { timeout: 30_000 });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Requests each client session has sent the server, by session id (ZooKeeper's `cons`). */
async function requestsBySession(port: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await fourLetter(port, 'cons')).split('\n')) {
    const sid = /sid=(0x[0-9a-f]+)/.exec(line)?.[1];
    const recved = /recved=(\d+)/.exec(line)?.[1];
    if (sid && recved) out.set(sid, Number(recved));
  }
  return out;
}

describe('hafc status and hafc history', () => {
  let zk: ZkEnsemble;
  let resource: SharedResource;
  let cluster: HaCluster | null = null;

  beforeAll(async () => {
    zk = await ZkEnsemble.start({ servers: 1 });
  });
  afterAll(async () => {
    await zk?.stop();
  });
  beforeEach(async () => {
    resource = await SharedResource.start();
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && cluster) console.log(cluster.describe());
    await cluster?.stop();
    cluster = null;
    await resource.close();
    resource.assertNoViolations();
  });

  /** Two nodes after a failover by clean stop: the new one ACTIVE, the restarted old one STANDBY. */
  async function failedOver(name: string) {
    cluster = await HaCluster.start({ ensemble: zk, resource, cluster: name, sessionTimeoutMs: 4000 });
    const { active: first, standby: second } = await cluster.settled();
    expect(await first.agent!.stop()).toBe(0);
    await cluster.waitForActive(20_000, first.id);
    await second.agent!.waitForRole('active');
    cluster.startAgent(first.id);
    await first.agent!.waitForRole('standby');
    return { c: cluster, first, second };
  }

  it('after a failover: the table, --json (the lock epoch as ZooKeeper has it), --zk/--cluster without -c, and the history of it', async () => {
    const { c, first, second } = await failedOver('stat1');
    // The restarted standby publishes its member record on its own step: wait for it to show.
    const json = await waitFor('status --json to show both members', async () => {
      const r = await hafc(['status', '--json', '-c', first.configFile]);
      expect(r.code, r.stderr).toBe(0);
      const v = JSON.parse(r.stdout) as StatusJson;
      return v.members.length === 2 && v.members.every((m) => m.role !== 'INIT') ? v : null;
    });
    const s = await openSession({
      connect: zk.connectString(),
      sessionTimeoutMs: 4000,
      requestTimeoutMs: 2000,
    });
    let czxid: bigint;
    try {
      czxid = (await s.exists('/hafc/stat1/lock'))!.czxid;
    } finally {
      await s.close();
    }
    expect(json).toMatchObject({
      schemaVersion: 1,
      cluster: 'stat1',
      path: '/hafc/stat1',
      healthy: true,
      active: { node: second.id, epoch: czxid.toString() },
      lock: { node: second.id, epoch: czxid.toString(), persistent: false },
      breadcrumb: { node: second.id, epoch: czxid.toString(), demoted: false },
      paused: null,
      switchover: null,
      warnings: [],
      candidates: [{ node: first.id, eligible: true, why: [] }],
    });
    const byId = Object.fromEntries(json.members.map((m) => [m.node, m]));
    expect(byId[second.id]).toMatchObject({
      role: 'ACTIVE',
      health: 'HEALTHY',
      holdsLock: true,
      epoch: czxid.toString(),
    });
    expect(byId[first.id]).toMatchObject({
      role: 'STANDBY',
      health: 'HEALTHY',
      holdsLock: false,
      epoch: '0',
    });
    expect(byId[second.id]!.sinceReason).toContain(`previous active ${first.id} stood down cleanly`);

    const viaZk = ['--zk', zk.connectString(), '--cluster', 'stat1'];
    const table = await hafc(['status', ...viaZk]);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toContain(`cluster stat1 at /hafc/stat1 (ZooKeeper ${zk.connectString()})`);
    expect(table.stdout).toContain(`active: ${second.id} (epoch ${czxid}, lock taken `);
    expect(table.stdout).toMatch(new RegExp(`^\\*  ${second.id} +ACTIVE +HEALTHY +0 +${czxid} `, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^   ${first.id} +STANDBY +HEALTHY +0 +- `, 'm'));
    expect(table.stdout).toContain(`failover target: ${first.id} (priority 0)`);
    expect(table.stdout).not.toContain('warnings:');
    expect((await hafc(['status', '--check', ...viaZk])).code).toBe(0);

    // The elector appends its entries without waiting: the last one may land just after.
    const h = await waitFor('history to hold the second activation', async () => {
      const r = await hafc(['history', '--json', ...viaZk]);
      expect(r.code, r.stderr).toBe(0);
      const v = JSON.parse(r.stdout) as HistoryJson;
      return v.entries.some((e) => e.event === 'activated' && e.node === second.id) ? v : null;
    });
    expect(h).toMatchObject({ schemaVersion: 1, order: 'oldest-first', skipped: 0 });
    expect(h.entries.map((e) => [e.event, e.node])).toEqual([
      ['activated', first.id],
      ['demoted', first.id],
      ['activated', second.id],
    ]);
    const [, demoted, activated] = h.entries;
    expect(demoted!.cause).toBe('agent stopping');
    expect(activated).toMatchObject({ from: first.id, epoch: czxid.toString(), fenced: [] });
    for (const k of ['lockWaitMs', 'fencingMs', 'hookMs'] as const)
      expect(typeof activated!.durations[k], k).toBe('number');
    expect(Date.parse(h.entries[0]!.at)).toBeLessThanOrEqual(Date.parse(activated!.at));

    const text = await hafc(['history', '-c', c.node(second.id).configFile]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('history of cluster stat1 at /hafc/stat1: 3 entries, oldest first');
    expect(text.stdout).toMatch(
      new RegExp(`activated +${second.id} +${first.id} -> ${second.id} +${czxid} +lock wait`),
    );
    const limited = await hafc(['history', '--limit', '1', ...viaZk]);
    expect(limited.stdout).toContain('the newest 1 of 3 entries');
    const rows = limited.stdout.trim().split('\n').slice(2);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^TIME +EVENT/);
    expect(rows[1]).toMatch(new RegExp(`activated +${second.id} `));

    // The same history as a timeline page, drawn by a real browser.
    const html = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-history-html-')), 'history.html');
    const drawn = await hafc(['history', '--html', html, ...viaZk]);
    expect(drawn.code, drawn.stderr).toBe(0);
    expect(drawn.stdout).toContain('3 entries, oldest first');
    const page = fs.readFileSync(html, 'utf8');
    // Self-contained: nothing to fetch (the SVG namespace is a name, not a request).
    expect(page.replace('xmlns="http://www.w3.org/2000/svg"', '')).not.toMatch(/\bsrc=|\bhref=|https?:\/\//);
    const summary = timelineSummary(await dumpDom(html));
    expect(summary.lanes).toEqual([first.id, second.id].sort());
    expect(summary.activeSegments).toBe(2);
    expect(summary.phases).toMatchObject({ 'to-active hook': 2, fencing: 2, 'lock hand-over': 2 });
    expect(summary.violations).toBe(0);
    fs.rmSync(path.dirname(html), { recursive: true, force: true });
    const bad = await hafc(['history', '--html', '/nonexistent-dir/x.html', ...viaZk]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^hafc history: cannot write --html \/nonexistent-dir\/x.html: ENOENT/);
  });

  it('--watch on a non-TTY prints a new table after a failover and exits 0 on SIGTERM', async () => {
    cluster = await HaCluster.start({ ensemble: zk, resource, cluster: 'stat2', sessionTimeoutMs: 4000 });
    const { active, standby } = await cluster.settled();
    const port = zk.servers[0]!.clientPort;
    const before = new Set((await requestsBySession(port)).keys());
    const child = spawn(
      process.execPath,
      [hafcBin, 'status', '--watch', '--interval', '0.2', '--zk', zk.connectString(), '--cluster', 'stat2'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.on('exit', (code, signal) => (exit = { code, signal }));
    try {
      await waitFor(`the first table naming ${active.id} active (stdout ${JSON.stringify(out)})`, () =>
        out.includes(`active: ${active.id} `),
      );
      // At rest nothing changes, so no new table, however many refreshes run: wait until the
      // server has seen three refreshes' worth of requests (about a dozen each) from the watch.
      const [watchSid, atFirst] = await waitFor(
        "the watch's session among the server's connections",
        async () => [...(await requestsBySession(port))].find(([sid]) => !before.has(sid)),
      );
      await waitFor('the watch to refresh three times', async () => {
        const n = (await requestsBySession(port)).get(watchSid) ?? 0;
        return n - atFirst >= 36;
      });
      expect(out.split('\ncluster stat2 at ')).toHaveLength(1);
      expect(await active.agent!.stop()).toBe(0);
      await waitFor(`a later table naming ${standby.id} active (stdout ${JSON.stringify(out)})`, () =>
        out
          .split('\ncluster stat2 at ')
          .slice(1)
          .some((t) => t.includes(`active: ${standby.id} `)),
      );
      child.kill('SIGTERM');
      const ended = await waitFor('status --watch to exit after SIGTERM', () => exit, { timeoutMs: 10_000 });
      expect(ended, err).toEqual({ code: 0, signal: null });
      expect(out).not.toContain('\x1b[');
      // A new table only when something other than the clock changed: with a refresh every
      // 200 ms, a table per refresh would repeat its predecessor but for the relative times.
      const tables = out.split(/\n(?=cluster stat2 at )/).map((t) => t.replace(TIMES, 'T'));
      expect(tables.length).toBeGreaterThanOrEqual(2);
      for (let i = 1; i < tables.length; i++) expect(tables[i], `table ${i}`).not.toBe(tables[i - 1]);
    } finally {
      if (!exit) child.kill('SIGKILL');
    }
  });

  it('exit codes: 3 for an uninitialised cluster, 5 for an unreachable ZooKeeper, 2 for bad usage', async () => {
    const nope = await hafc(['status', '--zk', zk.connectString(), '--cluster', 'nosuch']);
    expect(nope.code).toBe(3);
    expect(nope.stderr).toContain('hafc status: cluster nosuch is not initialised (no /hafc/nosuch at');
    expect((await hafc(['history', '--zk', zk.connectString(), '--cluster', 'nosuch'])).code).toBe(3);

    const port = await closedPort();
    const down = await hafc(['status', '--json', '--zk', `127.0.0.1:${port}`, '--cluster', 'x']);
    expect(down.code).toBe(5);
    expect(down.stderr).toContain(`hafc status: ZooKeeper unreachable at 127.0.0.1:${port}`);
    expect(down.stdout).toBe('');

    const target = ['--zk', zk.connectString(), '--cluster', 'nosuch'];
    const usage: [string[], string][] = [
      [['status'], 'say which cluster'],
      [['history', '--zk', zk.connectString()], 'say which cluster'],
      [['status', '--interval', '0', '--watch', ...target], '--interval must be a number of seconds'],
      [['status', '--interval', 'soon', '--watch', ...target], "argument 'soon' is invalid"],
      [['status', '--interval', '2', ...target], '--interval only applies with --watch'],
      [['status', '--check', '--watch', ...target], 'cannot be combined with --watch'],
      [['history', '--limit', '0', ...target], '--limit must be a positive whole number, got 0'],
      [['history', '--limit', '2.5', ...target], '--limit must be a positive whole number, got 2.5'],
      [['history', '--limit', ...target], '--limit must be a positive whole number, got --zk'],
      [['status', '--cluster', 'Bad Name', '--zk', zk.connectString()], 'is not a cluster name'],
      [['status', '--bogus', ...target], "unknown option '--bogus'"],
    ];
    for (const [args, msg] of usage) {
      const r = await hafc(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(msg);
    }
  });

  it('--watch on a terminal redraws in place and Ctrl-C ends it with exit 0', async () => {
    cluster = await HaCluster.start({
      ensemble: zk,
      resource,
      cluster: 'stat4',
      nodes: 1,
      sessionTimeoutMs: 4000,
    });
    await cluster.waitForActive();
    // util-linux script(1) gives the CLI a real pseudo-terminal; what we write to its stdin is
    // typed on that terminal, so \x03 is a real Ctrl-C (SIGINT from the line discipline).
    const cmd = [process.execPath, hafcBin, 'status', '--watch', '--interval', '0.2']
      .concat(['--zk', zk.connectString(), '--cluster', 'stat4'])
      .map((a) => `'${a}'`)
      .join(' ');
    // `exec`: script(1) runs the command with $SHELL -c (sh without SHELL, as under CI). dash does
    // not exec a lone command, so without this the shell shares the terminal's process group, the
    // Ctrl-C kills it too, and script reports the shell's 130 instead of the CLI's exit code.
    const child = spawn('script', ['-qefc', `exec ${cmd}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.on('exit', (code, signal) => (exit = { code, signal }));
    try {
      const redraws = () => out.split('\x1b[H\x1b[2J').length - 1;
      // On a terminal every refresh redraws, changed or not: the relative times tick.
      await waitFor(`three redraws (output ${JSON.stringify(out.slice(-400))})`, () => redraws() >= 3);
      const last = out.slice(out.lastIndexOf('\x1b[H\x1b[2J'));
      expect(last).toContain('active: nn1 ');
      expect(last).toMatch(/\d\d:\d\d:\d\d UTC, every 0.2 s; Ctrl-C to stop/);
      child.stdin.write('\x03');
      const ended = await waitFor('status --watch to exit after Ctrl-C', () => exit, { timeoutMs: 10_000 });
      expect(ended, out.slice(-400)).toEqual({ code: 0, signal: null });
    } finally {
      if (!exit) child.kill('SIGKILL');
    }
  });

  it('--watch outlives its session: it says why on stderr, opens a new session and prints again', async () => {
    cluster = await HaCluster.start({
      ensemble: zk,
      resource,
      cluster: 'stat3',
      nodes: 1,
      sessionTimeoutMs: 4000,
    });
    await cluster.waitForActive();
    const child = spawn(
      process.execPath,
      [hafcBin, 'status', '--watch', '--interval', '0.5', '--zk', zk.connectString(), '--cluster', 'stat3'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.on('exit', (code, signal) => (exit = { code, signal }));
    const server = zk.servers[0]!;
    try {
      await waitFor(`the first table (stdout ${JSON.stringify(out)})`, () => out.includes('active: nn1 '));
      server.freeze();
      // The watch's session is 10 s: past it, the session layer gives the session up.
      await waitFor(
        `the watch to report its session lost (stderr ${JSON.stringify(err)})`,
        () => /hafc status: cannot read the cluster: .*session [0-9a-f]{16} lost/.test(err),
        { timeoutMs: 30_000 },
      );
      expect(exit).toBeNull();
      server.thaw();
      const printed = out.length;
      await waitFor(
        `a table from a new session (stdout since: ${JSON.stringify(out.slice(printed))}, stderr ${JSON.stringify(err)})`,
        () => out.slice(printed).includes('cluster stat3 at /hafc/stat3'),
        { timeoutMs: 30_000 },
      );
      child.kill('SIGINT');
      const ended = await waitFor('status --watch to exit after SIGINT', () => exit, { timeoutMs: 10_000 });
      expect(ended, err).toEqual({ code: 0, signal: null });
    } finally {
      if (server.isFrozen()) server.thaw();
      if (!exit) child.kill('SIGKILL');
    }
  });
});
