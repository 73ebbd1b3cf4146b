import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { Controller } from '../../../src/controller/controller.js';
import { Fencer } from '../../../src/fencing/fencer.js';
import { HealthMonitor } from '../../../src/health/monitor.js';
import { silentLogger } from '../../../src/log.js';
import type { ServiceAgent } from '../../../src/service/agent.js';
import { electorStepDeadlineMs } from '../../../src/systemd/wire.js';
import { FakeClock } from '../../support/fake-clock.js';

const YAML = [
  'cluster: ns1',
  'node: { id: a, host: 10.0.0.1, port: 80 }',
  'zookeeper: { connect: "127.0.0.1:2181", sessionTimeoutMs: 20000, requestTimeoutMs: 1500 }',
  'health: { check: { tcp: "127.0.0.1:1" } }',
  'service: { agent: http, url: "http://127.0.0.1:1", requestTimeoutMs: 2500 }',
  'fencing: { methods: [graceful, { shell: "true" }], timeoutMs: 7000 }',
].join('\n');

describe('electorStepDeadlineMs', () => {
  it("is the deadline the Controller gives its elector (the watchdog's limit must not drift from it)", () => {
    const cfg = parseConfig(YAML, 'a.yaml', { hostname: 'test' });
    const clock = new FakeClock();
    const agent = { kind: 'stub', toStandbyTimeoutMs: 2500 } as unknown as ServiceAgent;
    const ctl = new Controller({
      config: cfg,
      agent,
      fencer: new Fencer(cfg.fencing.methods, cfg.fencing.timeoutMs, agent, silentLogger),
      health: new HealthMonitor({
        check: async () => {},
        intervalMs: 1000,
        timeoutMs: 500,
        fall: 2,
        rise: 1,
        clock,
        logger: silentLogger,
      }),
      connect: () => Promise.reject(new Error('not used')),
      agentVersion: 'test',
      clock,
      logger: silentLogger,
    });
    const opts = Reflect.get(ctl.elector, 'opts') as { stepDeadlineMs: number };
    expect(electorStepDeadlineMs(cfg, 2500)).toBe(opts.stepDeadlineMs);
    expect(opts.stepDeadlineMs).toBe(3 * 7500 + 2 * 12_000 + 30 * 1500);
  });
});
