import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  demoServiceScript,
  httpRequest,
  killAllDemoServices,
  startDemoService,
} from '../../harness/demo-service-proc.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { waitFor } from '../../harness/wait.js';

// Runs the built service (npm test builds first): what the demo and the integration tests run.
describe('demo-service', () => {
  let res: SharedResource;
  beforeAll(async () => {
    res = await SharedResource.start();
  });
  afterAll(async () => {
    await res.close();
  });
  afterEach(async () => {
    await killAllDemoServices();
  });

  const start = (id: string, extra: { resource?: boolean; writeIntervalMs?: number } = {}) =>
    startDemoService({
      id,
      ...(extra.resource ? { resourcePort: res.port } : {}),
      ...(extra.writeIntervalMs !== undefined ? { writeIntervalMs: extra.writeIntervalMs } : {}),
    });

  it('starts standby, promotes and demotes idempotently, and logs each change once', async () => {
    const s = await start('nn1');
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
    expect(await s.role()).toEqual({ role: 'standby', epoch: '0' });

    let r = await s.setRole('active', 12345678901234567890n, 'won the election');
    expect(r).toEqual({ status: 200, body: { role: 'active', epoch: '12345678901234567890' } });
    r = await s.setRole('active', '12345678901234567890');
    expect(r.status).toBe(200);
    expect(await s.request('GET', '/role')).toEqual({
      status: 200,
      body: { id: 'nn1', role: 'active', epoch: '12345678901234567890' },
    });

    r = await s.setRole('standby', '12345678901234567890', 'operator switchover');
    expect(r).toEqual({ status: 200, body: { role: 'standby', epoch: '12345678901234567890' } });
    expect((await s.setRole('standby', '1')).status).toBe(200);

    const events = await waitFor('two role lines', () =>
      s.roleEvents().length >= 2 ? s.roleEvents() : null,
    );
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      id: 'nn1',
      event: 'role',
      from: 'standby',
      to: 'active',
      epoch: '12345678901234567890',
      reason: 'won the election',
    });
    expect(events[1]).toMatchObject({ from: 'active', to: 'standby', reason: 'operator switchover' });
    expect(Object.keys(events[0]!)).toEqual(['time', 'id', 'event', 'from', 'to', 'epoch', 'reason']);
  });

  it('refuses a stale activation with 409 but always accepts demotion', async () => {
    const s = await start('nn1');
    expect((await s.setRole('active', 10n)).status).toBe(200);
    expect((await s.setRole('standby', 20n)).status).toBe(200);
    // The demotion carried epoch 20: a late promotion with 15 is from an older election.
    const stale = await s.setRole('active', 15n, 'late');
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ role: 'standby', epoch: '20' });
    expect((stale.body as { error: string }).error).toBe(
      'stale activation: epoch 15 is lower than the highest epoch seen (20)',
    );
    expect((await s.setRole('active', 21n)).status).toBe(200);
    expect((await s.setRole('standby', 0n)).status).toBe(200);
    expect(await s.role()).toEqual({ role: 'standby', epoch: '21' });
  });

  it('answers bad requests with 400 naming the field and value, and 413 for huge bodies', async () => {
    const s = await start('nn1');
    const err = async (body: unknown) => {
      const r = await s.request('POST', '/role', body);
      expect(r.status).toBe(400);
      return (r.body as { error: string }).error;
    };
    expect(await err('{not json')).toMatch(/^body is not valid JSON: .*got "\{not json"/);
    expect(await err('[1]')).toBe('body must be a JSON object, got [1]');
    expect(await err({ role: 'leader', epoch: '1' })).toBe(
      'field "role" must be "active" or "standby", got "leader"',
    );
    expect(await err({ role: 'active', epoch: 5 })).toMatch(/^field "epoch" must be .*got 5 \(a JSON number/);
    expect(await err({ role: 'active', epoch: '-1' })).toMatch(/field "epoch" .*got "-1"/);
    expect(await err({ role: 'active', epoch: '18446744073709551616' })).toMatch(
      /got "18446744073709551616"/,
    );
    expect(await err({ role: 'active' })).toMatch(/field "epoch" .*got nothing/);
    expect(await err({ role: 'active', epoch: '1', reason: 7 })).toBe(
      'field "reason" must be a string, got 7',
    );

    const big = await s.request('POST', '/role', 'x'.repeat(65 * 1024));
    expect(big.status).toBe(413);
    expect((await s.request('POST', '/fault', { healthy: 'no' })).status).toBe(400);
    expect((await s.request('DELETE', '/role')).status).toBe(405);
    expect((await s.request('GET', '/nope')).status).toBe(404);
    // Nothing above changed the role, and the service is still serving.
    expect(await s.role()).toEqual({ role: 'standby', epoch: '0' });
  });

  it('accepts writes only with the current epoch while active', async () => {
    const s = await start('nn1');
    const write = (epoch?: string) =>
      s.request('POST', '/write', undefined, epoch ? { 'x-epoch': epoch } : {});
    expect((await write('1')).status).toBe(409); // standby
    await s.setRole('active', 8n);
    const ok = await write('8');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, epoch: '8' });
    const stale = await write('7');
    expect(stale.status).toBe(409);
    expect((stale.body as { error: string }).error).toBe('stale epoch 7 < current epoch 8');
    expect((await write('9')).status).toBe(409);
    expect((await write()).status).toBe(400);
    expect((await write('x')).status).toBe(400);
  });

  it('fails /health on an injected fault and hangs /health and /role until cleared', async () => {
    const s = await start('nn1');
    expect(await s.request('GET', '/health')).toEqual({ status: 200, body: { ok: true } });
    await s.setHealthy(false);
    expect((await s.request('GET', '/health')).status).toBe(503);
    await s.setHealthy(true);
    expect((await s.request('GET', '/health')).status).toBe(200);

    await s.setHang(true);
    await expect(httpRequest(`${s.url}/health`, 'GET', undefined, {}, 300)).rejects.toThrow(
      /timed out after 300 ms/,
    );
    // A promotion whose caller gave up during the hang is dropped, not applied late.
    await expect(
      httpRequest(`${s.url}/role`, 'POST', { role: 'active', epoch: '3' }, {}, 300),
    ).rejects.toThrow(/timed out/);
    const pending = httpRequest(`${s.url}/health`, 'GET', undefined, {}, 10_000);
    await s.setHang(false);
    expect((await pending).status).toBe(200);
    expect(await s.role()).toEqual({ role: 'standby', epoch: '0' });
  });

  it('reports TAKE, WRITE and RELEASE to the shared resource', async () => {
    const s = await start('nn1', { resource: true, writeIntervalMs: 20 });
    await waitFor('resource connection', () => s.events().some((e) => e.event === 'resource'));
    await s.setRole('active', 100n);
    expect(await res.waitForHolder('nn1', 5_000)).toEqual({ node: 'nn1', epoch: 100n });
    const before = res.acceptedWrites;
    await waitFor('periodic writes to arrive', () => res.acceptedWrites >= before + 3);
    await s.setRole('standby', 100n);
    await res.waitForHolder(null, 5_000);
    expect(res.history.at(-1)).toMatchObject({ kind: 'release', node: 'nn1', epoch: 100n });
    res.assertNoViolations();
  });

  it('releases the hold when the active service is killed with SIGKILL', async () => {
    const s = await start('nn2', { resource: true });
    await s.setRole('active', 200n);
    await res.waitForHolder('nn2', 5_000);
    const t = res.now();
    await s.kill('SIGKILL');
    await res.waitForHolder(null, 5_000);
    expect(res.history.at(-1)).toMatchObject({
      kind: 'disconnect',
      node: 'nn2',
      note: 'released by disconnect',
    });

    const next = await start('nn3', { resource: true });
    await next.setRole('active', 201n);
    await res.waitForHolder('nn3', 5_000);
    expect(res.gapAfter(t)).toBeGreaterThan(0);
    res.assertNoViolations();
    await next.setRole('standby', 201n);
    await res.waitForHolder(null, 5_000);
  });

  it('a frozen active keeps its hold; its writes after a newer epoch are rejected', async () => {
    // Own resource: this test provokes a violation on purpose.
    const res = await SharedResource.start();
    const start = (id: string, writeIntervalMs?: number) =>
      startDemoService({ id, resourcePort: res.port, ...(writeIntervalMs ? { writeIntervalMs } : {}) });
    const old = await start('nn4', 20);
    await old.setRole('active', 300n);
    await res.waitForHolder('nn4', 5_000);
    old.freeze();
    const other = await start('nn5');
    await other.setRole('active', 301n);
    // Promoting while the frozen one still holds is exactly the split brain the checker reports.
    await waitFor('two-actives violation', () => res.violations.length > 0);
    expect(res.violations).toHaveLength(1);
    expect(res.violations[0]).toMatchObject({ kind: 'two-actives', holder: 'nn4', taker: 'nn5' });
    const rejected = res.rejectedWrites;
    old.thaw();
    await waitFor(
      'stale writes of the thawed old active to be rejected',
      () => res.rejectedWrites > rejected,
    );
    await waitFor('the old active to log the reject', () =>
      old.events().some((e) => e.event === 'resource-reject'),
    );
    await old.kill();
    await other.kill();
    await res.waitForHolder(null, 5_000);
    await res.close();
  });

  it('keeps running and retries while the resource is unreachable, then reports its role', async () => {
    const late = await SharedResource.start();
    const port = late.port;
    await late.close();
    const s = await startDemoService({ id: 'nn6', resourcePort: port });
    await waitFor('a resource error line', () =>
      s.events().some((e) => e.event === 'resource' && e.state === 'error'),
    );
    await s.setRole('active', 7n);
    expect(await s.role()).toEqual({ role: 'active', epoch: '7' });
    expect(s.hasExited()).toBe(false);
    expect(s.events().filter((e) => e.event === 'resource' && e.state === 'error')).toHaveLength(1);
  });

  it('exits 0 on SIGTERM', async () => {
    const s = await start('nn7', { resource: true });
    await s.setRole('active', 400n);
    await res.waitForHolder('nn7', 5_000);
    await s.stop();
    expect(await s.exited).toEqual({ code: 0, signal: null });
    // A clean stop releases explicitly instead of leaving it to the disconnect.
    await res.waitForHolder(null, 5_000);
    expect(res.history.at(-1)).toMatchObject({ kind: 'release', node: 'nn7' });
  });

  it('writes --port-file atomically and rejects bad arguments with exit 2', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-service-'));
    try {
      const file = path.join(dir, 'port');
      const s = await startDemoService({ id: 'nn8', args: ['--port-file', file] });
      expect(fs.readFileSync(file, 'utf8')).toBe(`${s.port}\n`);
      expect(fs.readdirSync(dir)).toEqual(['port']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const child = spawn(process.execPath, [demoServiceScript(), '--id', 'Bad Id'], { stdio: 'pipe' });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(2);
    expect(err).toMatch(/--id must match .*got "Bad Id"/);
  });
});
