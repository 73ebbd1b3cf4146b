/**
 * The agent under systemd's notification protocol, with a real unix datagram socket standing in
 * for systemd (test/fixtures/systemd/notify-listener.py), real `hafc agent` processes, the real
 * systemd-notify and real ZooKeeper. Every test ends with the split-brain checker's verdict.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../../harness/demo-service-proc.js';
import { HaCluster, KILL_BY_PIDFILE, type HaClusterOptions } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { NotifyListener } from '../support/notify-listener.js';

const WEDGE_HEALTH = path.join(repoRoot(), 'test/fixtures/inject/wedge-health.mjs');
const WATCHDOG_USEC = 1_000_000; // pings every 500 ms
let seq = 0;

describe('systemd Type=notify', () => {
  let zk: ZkEnsemble;
  let resource: SharedResource;
  let cluster: HaCluster | null = null;
  let listener: NotifyListener | null = null;

  beforeAll(async () => {
    zk = await ZkEnsemble.start();
  });
  afterAll(async () => {
    await zk?.stop();
  });
  beforeEach(async () => {
    resource = await SharedResource.start();
  });
  afterEach(async (ctx) => {
    const diag = cluster?.describe();
    if (ctx.task.result?.state === 'fail') {
      if (diag) console.log(`agent logs of the failed test:\n${diag}`);
      console.log(`notifications:\n${JSON.stringify(listener?.messages() ?? [])}`);
    }
    await cluster?.stop();
    cluster = null;
    await listener?.stop();
    listener = null;
    await resource.close();
    if (resource.violations.length) throw new Error(`split brain!\n${resource.describeHistory()}\n${diag}`);
  });

  const start = async (
    opts: Partial<HaClusterOptions> & { socket: string; env?: Record<string, string> },
  ) => {
    listener = await NotifyListener.start(opts.socket);
    cluster = await HaCluster.start({
      ensemble: zk,
      resource,
      nodes: 1,
      cluster: `sd${++seq}`,
      ...opts,
      agentOptions: (id) => ({
        ...opts.agentOptions?.(id),
        env: { NOTIFY_SOCKET: opts.socket, WATCHDOG_USEC: String(WATCHDOG_USEC), ...opts.env },
      }),
    });
    return cluster;
  };

  /** The values of `key` the agent `pid` sent, in order. */
  const sent = (pid: number, key: string) =>
    listener!
      .messages()
      .filter((m) => m.pid === pid && m.field.startsWith(`${key}=`))
      .map((m) => ({ value: m.field.slice(key.length + 1), atMs: m.atMs }));

  for (const kind of ['path', 'abstract'] as const) {
    it(`READY=1 once connected and healthy, STATUS with role and epoch, WATCHDOG=1 pings, STOPPING=1 (${kind} socket)`, async () => {
      const c = await start({
        socket:
          kind === 'abstract'
            ? `@hafc-sd-${process.pid}-${seq}`
            : path.join(fs.mkdtempSync('/tmp/hafc-sd-'), 'notify'),
      });
      const agent = c.node('nn1').agent!;
      await agent.waitForRole('active');
      const activated = agent.find((l) => /^role \w+ -> active$/.test(l.msg));
      const epoch = String(activated?.epoch);
      expect(epoch).toMatch(/^\d+$/);
      // Messages are attributed by the sender's pid: the agent's own (systemd-notify claims its
      // parent's when privileged), which NotifyAccess=main requires.
      await waitFor('a STATUS line with the role and epoch', () =>
        sent(agent.pid, 'STATUS').find((s) => s.value.startsWith(`active epoch ${epoch} health HEALTHY`)),
      );
      expect(sent(agent.pid, 'READY')).toHaveLength(1);
      const ready = sent(agent.pid, 'READY')[0]!;
      // READY came with the first health verdict and a connected session, not before.
      const statusAtReady = sent(agent.pid, 'STATUS').find((s) => s.atMs === ready.atMs);
      expect(statusAtReady?.value).toMatch(/health HEALTHY zk connected/);
      await waitFor('four watchdog pings', () => sent(agent.pid, 'WATCHDOG').length >= 4, {
        timeoutMs: 5000,
      });
      const pings = sent(agent.pid, 'WATCHDOG').map((p) => p.atMs);
      const gaps = pings.slice(1).map((t, i) => t - pings[i]!);
      // Half the watchdog timeout apart, give or take the timer and the spawn.
      for (const g of gaps) expect(g).toBeLessThan(WATCHDOG_USEC / 1000 / 2 + 300);
      expect(listener!.messages().every((m) => m.pid === agent.pid)).toBe(true);
      expect(await agent.stop()).toBe(0);
      expect(sent(agent.pid, 'STOPPING')).toHaveLength(1);
    });
  }

  it('a wedged health monitor (event loop alive, still active) stops the watchdog pings', async () => {
    const c = await start({
      socket: `@hafc-sd-wedge-${process.pid}-${seq}`,
      agentOptions: () => ({ nodeArgs: ['--import', WEDGE_HEALTH] }),
    });
    const agent = c.node('nn1').agent!;
    await agent.waitForRole('active');
    await waitFor('watchdog pings', () => sent(agent.pid, 'WATCHDOG').length >= 2);
    agent.child.kill('SIGUSR2');
    const withheld = await agent.waitForLog('the watchdog pings withheld', (l) =>
      l.msg.startsWith('watchdog pings withheld'),
    );
    expect(String(withheld.stuck)).toMatch(
      /^the health monitor made no progress for \d+ ms \(limit 700 ms\)$/,
    );
    const lastPing = sent(agent.pid, 'WATCHDOG').at(-1)!.atMs;
    c.node('nn1').service.setHealthy(false); // nobody notices: the monitor is wedged
    // An absence is measured over a window (three ping periods), not waited for.
    await new Promise((r) => setTimeout(r, 1500));
    expect(sent(agent.pid, 'WATCHDOG').at(-1)!.atMs).toBe(lastPing);
    // Why the event loop being alive is not enough: the agent runs on, active for a dead service.
    expect(agent.role()).toBe('active');
    expect(agent.hasExited()).toBe(false);
    // What systemd then does (WatchdogSignal=SIGTERM): the clean stop cannot finish (the monitor
    // never ends), so the guard demotes the service and exits 1, which Restart=on-failure restarts.
    expect(await agent.stop(30_000)).toBe(1);
    expect(agent.find((l) => l.msg === 'service demoted before exit')).toBeDefined();
    expect(resource.holder()).toBeNull();
  });

  /** A systemd-notify first on PATH that records who ran it, then does `then`. */
  const fakeNotify = (dir: string, then: string) => {
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, 'systemd-notify'),
      `#!/bin/sh\necho "$PPID $*" >> ${JSON.stringify(path.join(dir, 'notify-calls'))}\n${then}\n`,
      { mode: 0o755 },
    );
    return { PATH: `${bin}:${process.env.PATH ?? ''}` };
  };

  it('hooks never see NOTIFY_SOCKET or WATCHDOG_*; an agent without NOTIFY_SOCKET never runs systemd-notify', async () => {
    const dir = fs.mkdtempSync('/tmp/hafc-sd-');
    const socket = path.join(dir, 'notify');
    const pathEnv = fakeNotify(dir, 'exec /usr/bin/systemd-notify "$@"');
    const dump = `env > "$HAFC_TEST_DIR/hook-env-$HAFC_NODE_ID"; ${KILL_BY_PIDFILE}`;
    listener = await NotifyListener.start(socket);
    const c = await HaCluster.start({
      ensemble: zk,
      resource,
      cluster: `sd${++seq}`,
      fencingMethods: () => [`- shell: ${JSON.stringify(dump)}`],
      // nn1 (no NOTIFY_SOCKET) becomes active first; nn2 (notifying) takes over and fences it.
      beforeAgents: (c) => c.node('nn2').service.setHealthy(false),
      agentOptions: (id) => ({
        env:
          id === 'nn2'
            ? { ...pathEnv, NOTIFY_SOCKET: socket, WATCHDOG_USEC: String(WATCHDOG_USEC) }
            : pathEnv,
      }),
    });
    cluster = c;
    const nn1 = c.node('nn1').agent!;
    const nn2 = c.node('nn2').agent!;
    await nn1.waitForRole('active');
    c.node('nn2').service.setHealthy(true);
    await nn2.waitForRole('standby');
    await nn1.kill('SIGKILL');
    await nn2.waitForRole('active', 20_000);
    const envFile = path.join(c.dir, 'hook-env-nn2');
    await waitFor('the fencing hook to dump its environment', () => fs.existsSync(envFile));
    const env = fs.readFileSync(envFile, 'utf8');
    expect(env).toMatch(/^HAFC_NODE_ID=nn2$/m);
    expect(env).not.toMatch(/^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/m);
    const callers = fs
      .readFileSync(path.join(dir, 'notify-calls'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => Number(l.split(' ')[0]));
    expect(callers.length).toBeGreaterThan(2);
    expect(new Set(callers)).toEqual(new Set([nn2.pid]));
    await waitFor("nn2's STATUS to say active", () =>
      sent(nn2.pid, 'STATUS').some((s) => s.value.startsWith('active epoch')),
    );
  });

  it('a failing systemd-notify costs a log line, never the agent', async () => {
    const dir = fs.mkdtempSync('/tmp/hafc-sd-');
    const c = await start({
      socket: path.join(dir, 'notify'),
      env: fakeNotify(dir, 'echo refused >&2; exit 1'),
    });
    const agent = c.node('nn1').agent!;
    await agent.waitForRole('active');
    const warned = await agent.waitForLog(
      'the notify failure',
      (l) => l.msg === 'could not notify systemd; retrying',
    );
    expect(String(warned.error)).toMatch(/systemd-notify exited with code 1: refused/);
    // It keeps trying (READY=1 must not be lost) and keeps working.
    await waitFor(
      'more attempts',
      () => fs.readFileSync(path.join(dir, 'notify-calls'), 'utf8').split('\n').length > 4,
    );
    expect(agent.hasExited()).toBe(false);
    expect(agent.logs().filter((l) => l.msg === 'could not notify systemd; retrying')).toHaveLength(1);
    expect(await agent.stop()).toBe(0);
  });
});
