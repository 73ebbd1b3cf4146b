/**
 * hafc import-hadoop on the conf dir of a REAL NameNode HA pair (harness/hadoop.ts): the built
 * CLI writes one config per NameNode, and `hafc check-config` (preflight included: the fencing
 * command's bash must exist here) accepts each. The pair is started so that the conf dir is one
 * that real NameNodes ran with, not a hand-written imitation.
 *
 * Gated on the cached Hadoop jars; under CI (which runs setup) a missing cache fails instead.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hafcBin } from '../../harness/agent-proc.js';
import { hadoopAvailable, HadoopHaPair } from '../../harness/hadoop.js';

const run = promisify(execFile);
const enabled = hadoopAvailable() || process.env.CI === 'true';
const QUORUM = '127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183';

describe.runIf(enabled)('hafc import-hadoop on a real NameNode pair', () => {
  let pair: HadoopHaPair;
  let out: string;

  beforeAll(async () => {
    pair = await HadoopHaPair.start({
      hdfsSite: { 'ha.zookeeper.quorum': QUORUM, 'ha.health-monitor.check-interval.ms': '400' },
    });
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-import-it-'));
  }, 240_000);

  afterAll(async () => {
    await pair?.stop();
    if (out) fs.rmSync(out, { recursive: true, force: true });
  });

  it('writes a config per NameNode that check-config accepts', async () => {
    const r = await run(
      process.execPath,
      [hafcBin, 'import-hadoop', '--conf-dir', pair.clientConfDir, '--out', out],
      {
        timeout: 20_000,
      },
    );
    expect(r.stdout).toContain(`wrote ${out}/hdfs-ns1-nn1.yaml (NameNode nn1 of nameservice ns1)`);
    // The pair's shared edits are a local directory, so the import chose demote and said why.
    expect(r.stderr).toContain('not qjournal://');
    for (const nn of pair.nameNodes) {
      const file = path.join(out, `hdfs-ns1-${nn.id}.yaml`);
      const cfg = parse(fs.readFileSync(file, 'utf8'));
      expect(cfg.service.rpcAddress).toBe(nn.rpcAddress);
      expect(cfg.service.httpUrl).toBe(`http://127.0.0.1:${nn.httpPort}`);
      expect(cfg.zookeeper.connect).toBe(QUORUM);
      expect(cfg.health.intervalMs).toBe(400);
      expect(cfg.fencing.methods).toEqual(['graceful', { shell: ['bash', '-e', '-c', '/bin/true'] }]);
      const check = await run(process.execPath, [hafcBin, 'check-config', file], { timeout: 20_000 });
      expect(check.stdout).toContain(`${file}: ok`);
      expect(check.stdout).toContain(`node ${nn.id} at 127.0.0.1:${nn.rpcPort}`);
    }
  });
});
