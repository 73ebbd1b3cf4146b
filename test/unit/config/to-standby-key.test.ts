/**
 * The lease budget subtracts the agent's to-standby bound; the timing rules read it from the key
 * each agent variant declares (`toStandbyKey`). If the two disagreed, check-config would accept a
 * file whose agent then refuses to compete (or, worse, a budget too short for the real demotion).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAgent } from '../../../agents/index.js';
import { parseConfig } from '../../../src/config/load.js';
import { CONFIG } from '../../../src/config/schema.js';
import { transitionTimeoutKey, transitionTimeoutMs } from '../../../src/config/timing.js';
import { createLogger } from '../../../src/log.js';

const examples = fs
  .readdirSync(path.join(import.meta.dirname, '../../../config'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => path.join(import.meta.dirname, '../../../config', f));

describe("every agent's declared to-standby key", () => {
  it('names a duration key of its own variant', () => {
    for (const [name, v] of Object.entries(CONFIG.keys.service.variants)) {
      const spec = (v.keys as Record<string, { kind?: string } | undefined>)[v.toStandbyKey];
      expect(spec?.kind, `${name}.${v.toStandbyKey}`).toBe('integer');
    }
  });

  it('is what the agent itself bounds its to-standby by, for every example config', async () => {
    const secret = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-key-')), 'secret');
    fs.writeFileSync(secret, 'pw\n', { mode: 0o600 });
    const seen = new Set<string>();
    for (const file of examples) {
      const text = fs.readFileSync(file, 'utf8');
      const cfg = parseConfig(text, file, { hostname: 'h' });
      // A value no default has, so that agreement cannot be an accident of defaults.
      const key = transitionTimeoutKey(cfg.service).replace(/^service\./, '');
      (cfg.service as unknown as Record<string, number>)[key] = 1234;
      // An agent may read its password file when built (redis); the example's path is not here.
      if ('passwordFile' in cfg.service && cfg.service.passwordFile !== undefined) {
        cfg.service.passwordFile = secret;
      }
      const agent = await createAgent(cfg.service, createLogger({ level: 'error' }));
      expect(agent.toStandbyTimeoutMs, file).toBe(transitionTimeoutMs(cfg.service));
      expect(agent.toStandbyTimeoutMs, file).toBe(1234);
      seen.add(cfg.service.agent);
    }
    // One example config per agent: a new agent without one fails here.
    expect([...seen].sort()).toEqual(Object.keys(CONFIG.keys.service.variants).sort());
  });
});
