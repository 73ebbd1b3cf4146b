/** The hook environment contract (CONTRACT.md section 5), seen from inside real hook processes. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fenceEnv, hookEnv } from '../../../src/exec/hook-env.js';
import { runCommand } from '../../../src/exec/run.js';
import type { FenceTarget, HookContext } from '../../../src/service/agent.js';
import { hook } from '../../fixtures/hooks/paths.js';

const ctx: HookContext = {
  cluster: 'ns1',
  nodeId: 'nn2',
  role: 'active',
  epoch: 18446744073709551615n,
  reason: "lock acquired; it's ours",
};
const target: FenceTarget = {
  id: 'nn1',
  host: 'nn1.example.com',
  port: 8020,
  address: 'nn1.example.com:8020',
  epoch: 4294967296n,
};

/** The test harness exports HAFC_TEST_* to its children; those are not the hook's variables. */
const envLines = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('HAFC_TEST_'));

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hafc-hook-env-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('hook environment', () => {
  afterEach(() => {
    delete process.env.HAFC_INHERITED_PROBE;
  });

  it('is process.env plus the hook variables, with epoch as a decimal string', async () => {
    process.env.HAFC_INHERITED_PROBE = 'from-parent';
    const r = await runCommand('env | grep -E "^(HAFC_|target_)" | grep -v "^HAFC_TEST_" | sort', {
      timeoutMs: 5000,
      env: hookEnv(ctx),
    });
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      'HAFC_CLUSTER=ns1',
      'HAFC_EPOCH=18446744073709551615',
      'HAFC_INHERITED_PROBE=from-parent',
      'HAFC_NODE_ID=nn2',
      "HAFC_REASON=lock acquired; it's ours",
      'HAFC_ROLE=active',
    ]);
  });

  it('opts.env overrides process.env', async () => {
    process.env.HAFC_INHERITED_PROBE = 'from-parent';
    const r = await runCommand('echo "$HAFC_INHERITED_PROBE"', {
      timeoutMs: 5000,
      env: { HAFC_INHERITED_PROBE: 'override' },
    });
    expect(r.stdout).toBe('override\n');
  });

  it('fenceEnv adds the target under our names and ZKFC names', async () => {
    const out = join(tmp, 'fence-env');
    const r = await runCommand([hook('record-env.sh'), out], { timeoutMs: 5000, env: fenceEnv(ctx, target) });
    expect(r.exitCode).toBe(0);
    expect(envLines(readFileSync(out, 'utf8'))).toEqual([
      'HAFC_CLUSTER=ns1',
      'HAFC_EPOCH=18446744073709551615',
      'HAFC_NODE_ID=nn2',
      "HAFC_REASON=lock acquired; it's ours",
      'HAFC_ROLE=active',
      'HAFC_TARGET_ADDRESS=nn1.example.com:8020',
      'HAFC_TARGET_EPOCH=4294967296',
      'HAFC_TARGET_HOST=nn1.example.com',
      'HAFC_TARGET_ID=nn1',
      'HAFC_TARGET_PORT=8020',
      'target_address=nn1.example.com:8020',
      'target_host=nn1.example.com',
      'target_port=8020',
    ]);
  });

  it('hostile values from ZooKeeper stay data: a string command sees them only as variables', async () => {
    const evil: FenceTarget = { ...target, host: '$(touch /tmp/hafc-pwned); `id`', id: "x'; exit 9; '" };
    const r = await runCommand('printf "%s|%s\\n" "$target_host" "$HAFC_TARGET_ID"', {
      timeoutMs: 5000,
      env: fenceEnv(ctx, evil),
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("$(touch /tmp/hafc-pwned); `id`|x'; exit 9; '\n");
    expect(existsSync('/tmp/hafc-pwned')).toBe(false);
  });
});
