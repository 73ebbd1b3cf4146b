/**
 * monitoring/alerts.yaml through the real promtool: the rules parse (`check rules`), their unit
 * tests pass (`test rules`), and those tests bite: a rule weakened on purpose makes them fail.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = path.resolve(import.meta.dirname, '../../../monitoring');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-alerts-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('promtool', args, { cwd, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe('alert rules', () => {
  it('promtool check rules accepts monitoring/alerts.yaml', async () => {
    const r = await promtool(['check', 'rules', 'alerts.yaml'], dir);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS: 8 rules found');
  });

  it('promtool test rules passes monitoring/alerts.test.yaml', async () => {
    const r = await promtool(['test', 'rules', 'alerts.test.yaml'], dir);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
  });

  it.each([
    [
      'two actives tolerated',
      'expr: hafc_cluster:active_agents:sum > 1',
      'expr: hafc_cluster:active_agents:sum > 2',
    ],
    // The first `for: 30s` is HafcNoActive's.
    ['no-active waits 5 minutes', 'for: 30s', 'for: 5m'],
    ['graceful failures warn', 'method!="graceful"', 'method!="none"'],
  ])('the rule tests catch a weakened rule: %s', async (_name, from, to) => {
    const rules = fs.readFileSync(path.join(dir, 'alerts.yaml'), 'utf8');
    expect(rules).toContain(from);
    const sub = fs.mkdtempSync(path.join(tmp, 'm-'));
    fs.writeFileSync(path.join(sub, 'alerts.yaml'), rules.replace(from, to));
    fs.copyFileSync(path.join(dir, 'alerts.test.yaml'), path.join(sub, 'alerts.test.yaml'));
    const r = await promtool(['test', 'rules', 'alerts.test.yaml'], sub);
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toContain('FAILED');
  });
});
