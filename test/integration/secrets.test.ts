/**
 * Secrets never reach the log: a real agent (debug level, the most it ever says) with ZooKeeper
 * digest credentials and a control token file, through activation and a clean stop.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../support/http-client.js';
import { HaCluster } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';

describe('secrets in the config files', () => {
  let zk: ZkEnsemble;
  beforeAll(async () => {
    zk = await ZkEnsemble.start();
  });
  afterAll(async () => {
    await zk?.stop();
  });

  it('neither the ZooKeeper password nor the control token appears in the agent output', async () => {
    const password = `pw${randomBytes(12).toString('hex')}`;
    const token = `tok${randomBytes(12).toString('hex')}`;
    const resource = await SharedResource.start();
    let tokenFile = '';
    const c = await HaCluster.start({
      ensemble: zk,
      resource,
      nodes: 1,
      cluster: 'secrets',
      zkAuth: `hafcuser:${password}`,
      beforeAgents: async (c) => {
        tokenFile = path.join(c.dir, 'control.token');
        fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
        const node = c.node('nn1');
        const yaml = fs.readFileSync(node.configFile, 'utf8');
        const withToken = yaml.replace(
          'control: { listen: "127.0.0.1:0" }',
          `control: { listen: "127.0.0.1:0", tokenFile: ${tokenFile} }`,
        );
        expect(withToken).not.toBe(yaml);
        fs.writeFileSync(node.configFile, withToken);
      },
    });
    try {
      const agent = c.node('nn1').agent!;
      await agent.waitForRole('active');
      // Nor in what its HTTP listener serves (/status, /metrics) or answers a control call.
      const l = await agent.waitForLog('its HTTP address', (x) =>
        String(x.msg).startsWith('HTTP listening on'),
      );
      const port = Number(/:(\d+)$/.exec(String(l.address))![1]);
      const served = [
        (await request(port, '/status')).body,
        (await request(port, '/metrics')).body,
        (await request(port, '/pause', { method: 'POST', headers: { authorization: `Bearer ${token}` } }))
          .body,
      ].join('\n');
      expect(served).toContain('"paused"');
      expect(served).not.toContain(password);
      expect(served).not.toContain(token);
      expect(await agent.stop()).toBe(0);
      const out = agent.rawOutput();
      // It did run with both, at debug level: the log is not empty of what surrounds them.
      expect(out).toMatch(/"level":"debug"/);
      expect(fs.readFileSync(c.node('nn1').configFile, 'utf8')).toContain(tokenFile);
      expect(out).not.toContain(password);
      expect(out).not.toContain(token);
      // Nor in what init printed.
      const init = await c
        .hafc(['init', '-c', c.node('nn1').configFile])
        .catch((e: { stdout?: string; stderr?: string }) => e);
      expect(`${init.stdout ?? ''}${init.stderr ?? ''}`).not.toContain(password);
    } finally {
      await c.stop();
      await resource.close();
    }
    expect(resource.violations).toEqual([]);
  });
});
