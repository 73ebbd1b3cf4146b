/**
 * The reload sequence (cli/reload.ts) against a real config file on disk and a stand-in for the
 * controller's two reload methods (the controller's own swap is tested in controller.test.ts, the
 * whole thing on real agents in test/integration/reload.test.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../harness/wait.js';
import { Reloader } from '../../../src/cli/reload.js';
import { systemClock } from '../../../src/clock.js';
import { loadConfig } from '../../../src/config/load.js';
import type { Controller, ReloadParts, ReloadRecord } from '../../../src/controller/controller.js';
import { createLogger } from '../../../src/log.js';

const yaml = (o: { priority?: number; level?: string; toActive?: string } = {}) => `
cluster: ns1
node: { id: nn1, host: h1, port: 8020, priority: ${o.priority ?? 0} }
zookeeper: { connect: "127.0.0.1:2181" }
service: { agent: shell, toActive: ${o.toActive ?? '/bin/true'}, toStandby: /bin/true, check: /bin/true }
fencing: { methods: [{ shell: /bin/true }] }
log: { level: ${o.level ?? 'info'} }
`;

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

async function setup(opts: { reload?: (p: ReloadParts) => Promise<void> } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-reload-unit-'));
  dirs.push(dir);
  const file = path.join(dir, 'nn1.yaml');
  fs.writeFileSync(file, yaml());
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'info',
    write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
  });
  const swaps: ReloadParts[] = [];
  const controller = {
    reload: opts.reload ?? (async (p: ReloadParts) => void swaps.push(p)),
    recordReload: (r: Omit<ReloadRecord, 'at'>): ReloadRecord => ({ ...r, at: 'now' }),
    role: () => 'active' as const,
  };
  const reloader = new Reloader({
    configFile: file,
    config: await loadConfig(file),
    controller: controller as unknown as Controller,
    logger,
    clock: systemClock,
  });
  const msgs = () => lines.map((l) => String(l.msg));
  return { file, reloader, swaps, lines, msgs, logger };
}

describe('Reloader', () => {
  it('an unchanged file: nothing is built or swapped', async () => {
    const t = await setup();
    await expect(t.reloader.request()).resolves.toMatchObject({ result: 'unchanged', changed: [] });
    expect(t.swaps).toEqual([]);
    expect(t.msgs()).toEqual([`reload of ${t.file}: nothing changed`]);
  });

  it('a live change: new pieces from the new file are swapped in; the next reload compares with it', async () => {
    const t = await setup();
    fs.writeFileSync(t.file, yaml({ priority: 5, toActive: '/bin/echo' }));
    await expect(t.reloader.request()).resolves.toMatchObject({
      result: 'applied',
      changed: ['node.priority', 'service.toActive'],
    });
    expect(t.swaps).toHaveLength(1);
    expect(t.swaps[0]!.config.node.priority).toBe(5);
    expect(t.swaps[0]!.agent.kind).toBe('shell');
    await expect(t.reloader.request()).resolves.toMatchObject({ result: 'unchanged' });
  });

  it('log.level takes effect for the agent logger, the applied line included', async () => {
    const t = await setup();
    fs.writeFileSync(t.file, yaml({ level: 'debug' }));
    await t.reloader.request();
    t.logger.debug('now visible');
    expect(t.msgs().slice(-2)).toEqual([`reload of ${t.file} applied: log.level`, 'now visible']);
  });

  it('a controller that cannot swap (e.g. a step outlived the wait): refused, the old config stays', async () => {
    const t = await setup({
      reload: () => Promise.reject(new Error('waiting for the election step in flight did not finish')),
    });
    fs.writeFileSync(t.file, yaml({ priority: 5 }));
    await expect(t.reloader.request()).resolves.toMatchObject({
      result: 'refused',
      changed: ['node.priority'],
      error: 'waiting for the election step in flight did not finish',
    });
    expect(t.lines.at(-1)).toMatchObject({ level: 'error', refused: ['node.priority'] });
  });

  it('SIGHUPs during a reload coalesce into one more reload after it', async () => {
    let calls = 0;
    let release!: () => void;
    const t = await setup({
      reload: () => {
        calls++;
        return calls === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve();
      },
    });
    fs.writeFileSync(t.file, yaml({ priority: 5 }));
    const first = t.reloader.request();
    await waitFor('the first swap to be under way', () => calls === 1, { timeoutMs: 5000 });
    fs.writeFileSync(t.file, yaml({ priority: 6 }));
    const second = t.reloader.request();
    const third = t.reloader.request();
    release();
    const outcomes = await Promise.all([first, second, third]);
    expect(calls).toBe(2);
    expect(outcomes.map((o) => o.changed)).toEqual([['node.priority'], ['node.priority'], ['node.priority']]);
    expect(t.msgs().filter((m) => m.includes('applied'))).toHaveLength(2);
  });
});
