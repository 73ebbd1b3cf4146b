import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAgent } from '../../../agents/index.js';
import { ShellAgent } from '../../../agents/shell.js';
import type { ShellServiceConfig } from '../../../src/config/types.js';
import { ConfigError, HookFailedError, HookTimeoutError } from '../../../src/errors.js';
import { createLogger, silentLogger, type LogFields } from '../../../src/log.js';
import type { HookContext, ServiceAgent } from '../../../src/service/agent.js';
import { frozenFsForSuite } from '../../fixtures/hooks/frozen-fs.js';
import { hook, strayFixtureProcesses } from '../../fixtures/hooks/paths.js';
import { waitFor } from '../../../harness/wait.js';

const ctx: HookContext = { cluster: 'ns1', nodeId: 'nn1', role: 'active', epoch: 42n, reason: 'elected' };
const never = new AbortController().signal;

let tmp: string;
let logs: LogFields[] = [];
const logger = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l) as LogFields) });

function agent(over: Partial<ShellServiceConfig> = {}): ShellAgent {
  return new ShellAgent(
    {
      agent: 'shell',
      toActive: [hook('exit-with.sh'), '0'],
      toStandby: 'exit 0',
      hookTimeoutMs: 5000,
      ...over,
    },
    logger,
  );
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hafc-shell-'));
});
beforeEach(() => {
  logs = [];
});
afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await waitFor('no fixture processes left', () => strayFixtureProcesses().length === 0, { timeoutMs: 5000 });
});

describe('ShellAgent transitions', () => {
  it('runs toActive with the hook environment and logs its output', async () => {
    const out = join(tmp, 'env-active');
    await agent({ toActive: [hook('record-env.sh'), out] }).toActive(ctx, never);
    const env = readFileSync(out, 'utf8');
    expect(env).toContain('HAFC_ROLE=active\n');
    expect(env).toContain('HAFC_EPOCH=42\n');
    expect(env).toContain('HAFC_NODE_ID=nn1\n');
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'toActive hook succeeded', exitCode: 0, epoch: '42' }),
    );
  });

  it('runs toStandby; a failure throws HookFailedError and is logged as a warning', async () => {
    const a = agent({ toStandby: 'echo cannot demote >&2; exit 2' });
    await expect(a.toStandby({ ...ctx, role: 'standby' }, never)).rejects.toThrow(
      /^toStandby hook `echo cannot demote >&2; exit 2` exited with code 2 after \d+ ms; stderr: cannot demote$/,
    );
    await expect(a.toStandby(ctx, never)).rejects.toThrow(HookFailedError);
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'warn', msg: 'toStandby hook failed', stderr: 'cannot demote\n' }),
    );
  });

  it('a hanging hook is killed after hookTimeoutMs', async () => {
    const a = agent({ toActive: [hook('sleep-forever.sh')], hookTimeoutMs: 300 });
    await expect(a.toActive(ctx, never)).rejects.toThrow(HookTimeoutError);
    await expect(a.toActive(ctx, never)).rejects.toThrow(
      /^toActive hook `.*sleep-forever\.sh` timed out after 300 ms/,
    );
  });

  it("an abort (the lease watchdog's) ends a toActive hook that ignores SIGTERM at once", async () => {
    const ready = join(tmp, 'to-active-ready');
    const ac = new AbortController();
    const a = agent({ toActive: [hook('ignore-term.sh'), ready], hookTimeoutMs: 30_000 });
    const started = performance.now();
    const pending = a.toActive(ctx, ac.signal).catch((e: unknown) => e);
    await waitFor('the hook to ignore SIGTERM', () => existsSync(ready));
    ac.abort();
    const err = await pending;
    expect(err).toBeInstanceOf(HookFailedError);
    expect((err as Error).message).toMatch(
      /^toActive hook `.*` was aborted after \d+ ms and killed \(SIGKILL\)/,
    );
    // No kill grace between the abort and the caller getting control back for toStandby.
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('toStandbyTimeoutMs is hookTimeoutMs', () => {
    expect(agent({ hookTimeoutMs: 5000 }).toStandbyTimeoutMs).toBe(5000);
  });

  it('has no graceful fencing', () => {
    expect((agent() as ServiceAgent).fenceGraceful).toBeUndefined();
  });
});

describe('ShellAgent with a hook that SIGKILL cannot end (write to a frozen filesystem)', () => {
  const fixture = frozenFsForSuite();

  it('a toStandby hook that SIGKILL cannot end: rejects and says so, logging pid and state', async () => {
    const a = agent({ toStandby: [hook('write-to.sh'), join(fixture.current.dir, 'f')], hookTimeoutMs: 200 });
    fixture.current.freeze();
    let err: unknown;
    try {
      err = await a.toStandby({ ...ctx, role: 'standby' }, never).catch((e: unknown) => e);
    } finally {
      fixture.current.thaw();
    }
    expect(err).toBeInstanceOf(HookTimeoutError);
    expect((err as Error).message).toMatch(
      /^toStandby hook `.*` timed out after 200 ms and did not die after SIGKILL \(pid \d+, state D \(disk sleep\)\)/,
    );
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'toStandby hook failed',
        abandoned: true,
        pid: expect.any(Number) as unknown,
        procState: 'D (disk sleep)',
      }),
    );
  });
});

describe('ShellAgent state', () => {
  it.each([
    ['active', 'active'],
    ['standby', 'standby'],
    ['  standby  ', 'standby'],
    ['ACTIVE', 'active'],
  ] as const)('parses %j as %s', async (printed, expected) => {
    const a = agent({ state: [hook('say.sh'), printed] });
    expect(await a.state!(ctx, never)).toBe(expected);
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it.each([
    ['garbage', 'garbage\n'],
    ['active standby', 'active standby\n'],
    ['', '\n'],
  ])('treats %j as unknown and warns naming the output', async (printed, shown) => {
    const a = agent({ state: [hook('say.sh'), printed] });
    expect(await a.state!(ctx, never)).toBe('unknown');
    expect(logs.filter((l) => l.level === 'warn')).toEqual([
      expect.objectContaining({
        msg: 'state hook printed neither "active" nor "standby"; treating the state as unknown',
        output: shown,
      }),
    ]);
  });

  it('truncates long garbage in the warning', async () => {
    const a = agent({ state: 'head -c 5000 /dev/zero | tr "\\0" q' });
    expect(await a.state!(ctx, never)).toBe('unknown');
    const warn = logs.find((l) => l.level === 'warn')!;
    expect(warn.output).toBe('q'.repeat(100) + '...');
  });

  it('a failing state hook throws (we could not ask), it is not "unknown"', async () => {
    const a = agent({ state: 'echo active; exit 1' });
    await expect(a.state!(ctx, never)).rejects.toThrow(
      /^state hook `echo active; exit 1` exited with code 1/,
    );
  });

  it('is absent without a state hook, so callers can tell "cannot ask" from "unknown"', () => {
    expect(agent().state).toBeUndefined();
  });
});

describe('ShellAgent check', () => {
  it('exit 0 is healthy, non-zero throws', async () => {
    await agent({ check: [hook('exit-with.sh'), '0'] }).check(ctx, never);
    await expect(agent({ check: [hook('exit-with.sh'), '1'] }).check(ctx, never)).rejects.toThrow(
      /^check hook `.*exit-with\.sh 1` exited with code 1 after \d+ ms; stderr: err:1$/,
    );
  });

  it('without a check command, says so', async () => {
    await expect(agent().check(ctx, never)).rejects.toThrow(ConfigError);
    await expect(agent().check(ctx, never)).rejects.toThrow(
      'health.check is "agent" but service.check is not set: the shell agent has no check command to run',
    );
  });

  it('honours abort', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await expect(agent({ check: [hook('sleep-forever.sh')] }).check(ctx, ac.signal)).rejects.toThrow(
      /was aborted/,
    );
  });
});

describe('createAgent', () => {
  it('builds the agent the config names', async () => {
    expect(
      (
        await createAgent(
          { agent: 'shell', toActive: 'true', toStandby: 'true', hookTimeoutMs: 5000 },
          silentLogger,
        )
      ).kind,
    ).toBe('shell');
    const http = await createAgent(
      {
        agent: 'http',
        url: 'http://127.0.0.1:1',
        rolePath: '/r',
        statePath: '/s',
        healthPath: '/h',
        requestTimeoutMs: 10,
        gracefulFenceTimeoutMs: 10,
      },
      silentLogger,
    );
    expect(http.kind).toBe('http');
    expect(http.toStandbyTimeoutMs).toBe(10);
  });
});
