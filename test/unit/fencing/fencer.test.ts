import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HttpAgent } from '../../../agents/http.js';
import { ShellAgent } from '../../../agents/shell.js';
import type { FenceMethodConfig } from '../../../src/config/types.js';
import { terminationBoundMs } from '../../../src/exec/run.js';
import { Fencer, attemptBoundMs, type FenceOutcome } from '../../../src/fencing/fencer.js';
import { FakeClock } from '../../support/fake-clock.js';
import { frozenFsForSuite } from '../../fixtures/hooks/frozen-fs.js';
import { createLogger, silentLogger, type LogFields } from '../../../src/log.js';
import type { FenceTarget, HookContext, ServiceAgent } from '../../../src/service/agent.js';
import { hook, isGone, strayFixtureProcesses } from '../../fixtures/hooks/paths.js';
import { waitFor } from '../../../harness/wait.js';
import { hang, json, startServer, text, type TestServer } from '../agents/http-server.js';

const ctx: HookContext = {
  cluster: 'ns1',
  nodeId: 'nn2',
  role: 'active',
  epoch: 1001n,
  reason: 'nn1 unhealthy',
};
const target: FenceTarget = {
  id: 'nn1',
  host: '127.0.0.1',
  port: 8020,
  address: '127.0.0.1:8020',
  epoch: 1000n,
};

let tmp: string;
let server: TestServer;
let order: string[];

const shellAgent = new ShellAgent(
  { agent: 'shell', toActive: 'true', toStandby: 'true', hookTimeoutMs: 5000 },
  silentLogger,
);

/** An agent whose graceful fencing is scripted by the test and records that it ran. */
function fakeAgent(graceful: (signal: AbortSignal) => Promise<void>): ServiceAgent {
  return {
    kind: 'fake',
    toStandbyTimeoutMs: 1000,
    check: async () => {},
    toActive: async () => {},
    toStandby: async () => {},
    fenceGraceful: async (_t, _c, signal) => {
      order.push('graceful');
      await graceful(signal);
    },
  };
}

/** A shell fencing method that records its environment and its turn, then exits with `code`. */
function shellMethod(name: string, code: number): FenceMethodConfig {
  return {
    kind: 'shell',
    command: [hook('record-env.sh'), join(tmp, `env-${name}`), String(code), name, join(tmp, 'order')],
  };
}
const ran = (): string[] =>
  existsSync(join(tmp, 'order')) ? readFileSync(join(tmp, 'order'), 'utf8').split('\n').filter(Boolean) : [];

beforeAll(async () => {
  server = await startServer();
});
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hafc-fence-'));
  order = [];
  server.received.length = 0;
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});
afterAll(async () => {
  await server.close();
  await waitFor('no fixture processes left', () => strayFixtureProcesses().length === 0, { timeoutMs: 5000 });
});

describe('Fencer', () => {
  it('tries methods in order and stops at the first success', async () => {
    const agent = fakeAgent(async () => {
      throw new Error('old active unreachable');
    });
    const fencer = new Fencer(
      [{ kind: 'graceful' }, shellMethod('first', 1), shellMethod('second', 0), shellMethod('third', 0)],
      5000,
      agent,
      silentLogger,
    );
    const out = await fencer.fence(target, ctx);
    expect(out.ok).toBe(true);
    expect(out.method).toBe('shell');
    expect(out.attempts.map((a) => [a.method, a.ok])).toEqual([
      ['graceful', false],
      ['shell', false],
      ['shell', true],
    ]);
    expect(out.attempts[0]!.error).toBe('old active unreachable');
    expect(out.attempts[1]!.error).toMatch(
      /^shell fencing command `.*record-env\.sh .* 1 first .*` exited with code 1/,
    );
    expect(out.attempts[2]!.error).toBeUndefined();
    expect(order).toEqual(['graceful']);
    expect(ran()).toEqual(['first', 'second']);
  });

  it('a successful graceful fence runs nothing else', async () => {
    const fencer = new Fencer(
      [{ kind: 'graceful' }, shellMethod('never', 0)],
      5000,
      fakeAgent(async () => {}),
      silentLogger,
    );
    const out = await fencer.fence(target, ctx);
    expect(out).toEqual({
      ok: true,
      method: 'graceful',
      attempts: [expect.objectContaining({ method: 'graceful', ok: true })],
    });
    expect(ran()).toEqual([]);
  });

  it('when every method fails: ok false with every reason, logged as an error, no throw', async () => {
    server.route('POST /stonith', text(500, 'PDU offline'));
    const logs: LogFields[] = [];
    const logger = createLogger({ write: (l) => logs.push(JSON.parse(l) as LogFields) });
    const fencer = new Fencer(
      [
        { kind: 'graceful' },
        shellMethod('only', 2),
        { kind: 'http', url: server.url + '/stonith', method: 'POST', expectStatus: [200] },
        { kind: 'shell', command: ['/nonexistent/fence'] },
      ],
      5000,
      shellAgent,
      logger,
    );
    const out = await fencer.fence(target, ctx);
    expect(out.ok).toBe(false);
    expect(out.method).toBeUndefined();
    expect(out.attempts.map((a) => [a.method, a.ok])).toEqual([
      ['graceful', false],
      ['shell', false],
      ['http', false],
      ['shell', false],
    ]);
    const errors = out.attempts.map((a) => a.error);
    expect(errors[0]).toBe('graceful fencing not supported by the shell agent');
    expect(errors[1]).toMatch(/exited with code 2 after \d+ ms; no output$/);
    expect(errors[2]).toBe(
      `http fencing request POST ${server.url}/stonith answered HTTP 500, expected 200; body: "PDU offline"`,
    );
    expect(errors[3]).toMatch(/^shell fencing command `\/nonexistent\/fence` could not be started: ENOENT/);
    const final = logs.find((l) => l.level === 'error')!;
    expect(final.msg).toBe('fencing nn1 failed by every method (4 tried)');
    expect(final.attempts).toHaveLength(4);
  });

  it('bounds each attempt by the timeout, even a method that ignores its signal', async () => {
    const pidFile = join(tmp, 'pids');
    const agent = fakeAgent(() => new Promise<void>(() => {})); // never settles, ignores abort
    const fencer = new Fencer(
      [
        { kind: 'graceful' },
        { kind: 'shell', command: [hook('hang-with-grandchild.sh'), pidFile] },
        { kind: 'http', url: server.url + '/hang', method: 'POST', expectStatus: [200] },
        shellMethod('last', 0),
      ],
      400,
      agent,
      silentLogger,
    );
    server.route('POST /hang', hang);
    const started = performance.now();
    const out = await fencer.fence(target, ctx);
    const took = performance.now() - started;
    expect(out.ok).toBe(true);
    expect(out.method).toBe('shell');
    const [graceful, shell, http] = out.attempts;
    expect(graceful!.error).toBe('fencing method graceful did not finish within 400 ms and was abandoned');
    expect(graceful!.durationMs).toBeGreaterThanOrEqual(400);
    expect(graceful!.durationMs).toBeLessThan(1500);
    expect(shell!.error).toMatch(/timed out after \d+ ms and was killed \(SIGTERM, then SIGKILL\)/);
    // The attempt's remaining time, so a few ms under 400.
    expect(http!.error).toMatch(
      new RegExp(`^http fencing request POST ${server.url}/hang timed out after (39\\d|400) ms$`),
    );
    expect(took).toBeLessThan(8000);
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    await waitFor('timed-out fence script and its grandchild gone', () => pids.every(isGone), {
      timeoutMs: 2000,
    });
  });

  it('gives the shell method the fencing environment, ZKFC names included', async () => {
    const fencer = new Fencer([shellMethod('env', 0)], 5000, shellAgent, silentLogger);
    expect((await fencer.fence(target, ctx)).ok).toBe(true);
    const env = readFileSync(join(tmp, 'env-env'), 'utf8');
    for (const line of [
      'HAFC_CLUSTER=ns1',
      'HAFC_NODE_ID=nn2',
      'HAFC_EPOCH=1001',
      'HAFC_REASON=nn1 unhealthy',
      'HAFC_TARGET_ID=nn1',
      'HAFC_TARGET_HOST=127.0.0.1',
      'HAFC_TARGET_PORT=8020',
      'HAFC_TARGET_ADDRESS=127.0.0.1:8020',
      'HAFC_TARGET_EPOCH=1000',
      'target_host=127.0.0.1',
      'target_port=8020',
      'target_address=127.0.0.1:8020',
    ]) {
      expect(env.split('\n')).toContain(line);
    }
  });

  it('graceful fencing through the http agent asks the old active to become standby', async () => {
    server.route('POST /role', json(200, { role: 'standby' }));
    const agent = new HttpAgent(
      {
        agent: 'http',
        url: 'http://127.0.0.1:9',
        rolePath: '/role',
        statePath: '/role',
        healthPath: '/health',
        requestTimeoutMs: 2000,
        gracefulFenceTimeoutMs: 2000,
      },
      silentLogger,
    );
    const fencer = new Fencer([{ kind: 'graceful' }], 5000, agent, silentLogger);
    const out = await fencer.fence(
      { ...target, port: server.port, address: `127.0.0.1:${server.port}` },
      ctx,
    );
    expect(out.ok).toBe(true);
    expect(JSON.parse(server.received[0]!.body)).toEqual({
      role: 'standby',
      epoch: '1001',
      reason: 'fenced by nn2',
    });
  });

  it('http method: sends the target as JSON and accepts only expectStatus', async () => {
    server.route('PUT /stonith', text(202, 'accepted'));
    const fencer = new Fencer(
      [{ kind: 'http', url: server.url + '/stonith', method: 'PUT', expectStatus: [200, 202] }],
      5000,
      shellAgent,
      silentLogger,
    );
    expect(await fencer.fence(target, ctx)).toMatchObject({ ok: true, method: 'http' });
    const req = server.received[0]!;
    expect(req.method).toBe('PUT');
    expect(JSON.parse(req.body)).toEqual({
      action: 'fence',
      cluster: 'ns1',
      fencedBy: 'nn2',
      epoch: '1001',
      reason: 'nn1 unhealthy',
      target: { id: 'nn1', host: '127.0.0.1', port: 8020, address: '127.0.0.1:8020', epoch: '1000' },
    });
  });

  it('http method with GET puts the target in the query string, encoded', async () => {
    server.route('GET /stonith', text(200, 'ok'));
    const fencer = new Fencer(
      [{ kind: 'http', url: server.url + '/stonith?token=abc', method: 'GET', expectStatus: [200] }],
      5000,
      shellAgent,
      silentLogger,
    );
    const odd = { ...target, id: 'a&b=c' };
    expect((await fencer.fence(odd, ctx)).ok).toBe(true);
    const q = new URL(server.url + server.received[0]!.url).searchParams;
    expect(q.get('token')).toBe('abc');
    expect(q.get('target')).toBe('a&b=c');
    expect(q.get('targetEpoch')).toBe('1000');
  });

  it('an outer abort stops fencing: ok false, later methods never run', async () => {
    const ac = new AbortController();
    const fencer = new Fencer(
      [{ kind: 'shell', command: [hook('sleep-forever.sh')] }, shellMethod('after', 0)],
      10_000,
      shellAgent,
      silentLogger,
    );
    setTimeout(() => ac.abort(), 200);
    const out = await fencer.fence(target, ctx, ac.signal);
    expect(out.ok).toBe(false);
    expect(out.attempts).toHaveLength(1);
    expect(out.attempts[0]!.error).toMatch(/^aborted: shell fencing command .* was aborted after \d+ ms/);
    expect(ran()).toEqual([]);
  });

  it('an outer abort SIGKILLs a fencing script at once, even one that ignores SIGTERM', async () => {
    const ready = join(tmp, 'ready');
    const ac = new AbortController();
    const fencer = new Fencer(
      [{ kind: 'shell', command: [hook('ignore-term.sh'), ready] }],
      10_000,
      shellAgent,
      silentLogger,
    );
    const pending = fencer.fence(target, ctx, ac.signal);
    await waitFor('the fencing script to ignore SIGTERM', () => existsSync(ready));
    ac.abort();
    const out = await pending;
    expect(out.ok).toBe(false);
    expect(out.attempts[0]!.error).toMatch(
      /^aborted: shell fencing command .* was aborted after \d+ ms and killed \(SIGKILL\)/,
    );
    // No 2 s SIGTERM grace before the SIGKILL.
    expect(out.attempts[0]!.durationMs).toBeLessThan(1000);
  });

  it('a host that does not resolve: the http method says "cannot resolve host"', async () => {
    const url = 'http://hafc-no-such-host.invalid/stonith';
    const out = await new Fencer(
      [{ kind: 'http', url, method: 'POST', expectStatus: [200] }],
      5000,
      shellAgent,
      silentLogger,
    ).fence(target, ctx);
    expect(out.ok).toBe(false);
    expect(out.attempts[0]!.error).toMatch(
      /^http fencing request POST http:\/\/hafc-no-such-host\.invalid\/stonith failed after \d+ ms: cannot resolve host hafc-no-such-host\.invalid \((ENOTFOUND|EAI_AGAIN)\)$/,
    );
  });

  it('runs its deadlines on the given clock', async () => {
    const clock = new FakeClock();
    const fencer = new Fencer(
      [{ kind: 'graceful' }],
      400,
      fakeAgent(() => new Promise<void>(() => {})),
      silentLogger,
      clock,
    );
    const realStart = performance.now();
    const pending = fencer.fence(target, ctx);
    await clock.advance(attemptBoundMs('graceful', 400));
    const out = await pending;
    expect(out.attempts).toEqual([
      {
        method: 'graceful',
        ok: false,
        durationMs: attemptBoundMs('graceful', 400),
        error: 'fencing method graceful did not finish within 400 ms and was abandoned',
      },
    ]);
    expect(performance.now() - realStart).toBeLessThan(5000);
  });

  it('with no methods configured, does not fence', async () => {
    expect(await new Fencer([], 1000, shellAgent, silentLogger).fence(target, ctx)).toEqual({
      ok: false,
      attempts: [],
    });
  });

  it('rejects a nonsensical timeout at construction', () => {
    expect(() => new Fencer([], 0, shellAgent, silentLogger)).toThrow(
      'Fencer: timeoutMs must be a positive number, got 0',
    );
  });
});

describe('Fencer with a fencing script that SIGKILL cannot end (write to a frozen filesystem)', () => {
  const fixture = frozenFsForSuite();

  it("the runner's report arrives within the attempt's bound, and the next method runs", async () => {
    const fencer = new Fencer(
      [
        { kind: 'shell', command: [hook('write-to.sh'), join(fixture.current.dir, 'f')] },
        shellMethod('next', 0),
      ],
      300,
      shellAgent,
      silentLogger,
    );
    fixture.current.freeze();
    let out: FenceOutcome;
    try {
      out = await fencer.fence(target, ctx);
    } finally {
      fixture.current.thaw();
    }
    expect(out).toMatchObject({ ok: true, method: 'shell' });
    const stuck = out.attempts[0]!;
    // The runner's own words (not the fencer's "abandoned" backstop): its hard deadline leaves room
    // for the kill grace and the abandon grace.
    expect(stuck.error).toMatch(
      /^shell fencing command `.*write-to\.sh .*` timed out after \d+ ms and did not die after SIGKILL \(pid \d+, state D \(disk sleep\)\); stopped waiting for it after \d+ ms, it may still be running; no output$/,
    );
    expect(stuck.durationMs).toBeGreaterThanOrEqual(300 + terminationBoundMs() - 20);
    expect(stuck.durationMs).toBeLessThan(attemptBoundMs('shell', 300));
    expect(ran()).toEqual(['next']);
  });
});

describe('Fencer ssh method (semantics, with a stand-in ssh on PATH)', () => {
  const savedPath = process.env.PATH;
  let log: string;
  beforeEach(() => {
    log = join(tmp, 'ssh-log');
    process.env.PATH = `${hook('fake-ssh')}:${savedPath ?? ''}`;
    process.env.FAKE_SSH_LOG = log;
  });
  afterEach(() => {
    process.env.PATH = savedPath;
    delete process.env.FAKE_SSH_LOG;
    delete process.env.FAKE_SSH_FUSER_EXIT;
    delete process.env.FAKE_SSH_NC_EXIT;
  });
  const fencer = () => new Fencer([{ kind: 'ssh', user: 'hdfs', port: 22 }], 5000, shellAgent, silentLogger);
  const remoteCommands = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);

  it('fuser killed the listener (exit 0): fenced', async () => {
    process.env.FAKE_SSH_FUSER_EXIT = '0';
    expect(await fencer().fence(target, ctx)).toMatchObject({ ok: true, method: 'ssh' });
    expect(remoteCommands()).toEqual(['PATH=$PATH:/sbin:/usr/sbin fuser -v -k -n tcp 8020']);
  });

  it('nothing to kill (exit 1) and nothing listening: fenced, as in ZKFC', async () => {
    process.env.FAKE_SSH_FUSER_EXIT = '1';
    process.env.FAKE_SSH_NC_EXIT = '1';
    expect(await fencer().fence(target, ctx)).toMatchObject({ ok: true, method: 'ssh' });
    expect(remoteCommands()).toEqual([
      'PATH=$PATH:/sbin:/usr/sbin fuser -v -k -n tcp 8020',
      'nc -z 127.0.0.1 8020',
    ]);
  });

  it('nothing killed but the port still answers: not fenced', async () => {
    process.env.FAKE_SSH_FUSER_EXIT = '1';
    process.env.FAKE_SSH_NC_EXIT = '0';
    const out = await fencer().fence(target, ctx);
    expect(out.ok).toBe(false);
    expect(out.attempts[0]!.error).toBe(
      'ssh fencing: nothing was killed on 127.0.0.1 but port 8020 still accepts connections',
    );
  });

  it('verification that cannot run (nc missing): not fenced', async () => {
    process.env.FAKE_SSH_FUSER_EXIT = '1';
    process.env.FAKE_SSH_NC_EXIT = '127';
    const out = await fencer().fence(target, ctx);
    expect(out.ok).toBe(false);
    expect(out.attempts[0]!.error).toMatch(
      /^ssh fencing verification `ssh .* 'nc -z 127\.0\.0\.1 8020'` exited with code 127/,
    );
  });

  it('ssh itself failing (exit 255): not fenced, and no verification is tried', async () => {
    process.env.FAKE_SSH_FUSER_EXIT = '255';
    const out = await fencer().fence(target, ctx);
    expect(out.ok).toBe(false);
    expect(out.attempts[0]!.error).toMatch(/^ssh fencing command `ssh -p 22 .*` exited with code 255/);
    expect(remoteCommands()).toHaveLength(1);
  });

  it('a target host from ZooKeeper that is not a host name never reaches ssh', async () => {
    const out = await fencer().fence({ ...target, host: '-oProxyCommand=touch /tmp/x' }, ctx);
    expect(out.ok).toBe(false);
    expect(out.attempts[0]!.error).toBe(
      'fencing target "nn1" has an invalid host "-oProxyCommand=touch /tmp/x"',
    );
    expect(existsSync(log)).toBe(false);
  });
});
