import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { InvalidConfigError, parseConfig } from '../../../src/config/load.js';
import {
  detectionTimeMs,
  leaseBudgetMs,
  relayAllowanceMs,
  transitionTimeoutMs,
  validateTiming,
  worstCaseFailoverMs,
} from '../../../src/config/timing.js';
import type { HafcConfig } from '../../../src/config/types.js';

const BASE = {
  cluster: 'ns1',
  node: { id: 'nn1', port: 8020 },
  zookeeper: { connect: 'zk1:2181' },
  service: { agent: 'shell', toActive: 'promote', toStandby: 'demote', check: 'probe' },
  // The shell agent has no graceful fencing, the default, so a shell config names its methods.
  fencing: { methods: [{ shell: 'fence' }] },
};

function config(sections: Record<string, Record<string, unknown>> = {}): HafcConfig {
  const doc: Record<string, unknown> = { ...BASE };
  for (const [key, value] of Object.entries(sections)) {
    doc[key] = { ...((doc[key] as object | undefined) ?? {}), ...value };
  }
  return parseConfig(stringify(doc), 'ns1.yaml', { hostname: 'h' });
}

function loadProblems(sections: Record<string, Record<string, unknown>>): readonly string[] {
  try {
    config(sections);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return (err as InvalidConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

/** A defaulted config with some values changed in code, bypassing the loader. */
function edited(edit: (cfg: HafcConfig) => void): HafcConfig {
  const cfg = config();
  edit(cfg);
  return cfg;
}

describe('timing rules at load', () => {
  it('health.timeoutMs < health.intervalMs x health.fall', () => {
    expect(loadProblems({ health: { timeoutMs: 6000 } })).toEqual([
      'config ns1.yaml: health.timeoutMs (6000) must be less than health.intervalMs x health.fall (3000), or a hung check could never count as a failure in time',
    ]);
    expect(loadProblems({ health: { timeoutMs: 3000 } })).toHaveLength(1);
    expect(config({ health: { timeoutMs: 2999 } }).health.timeoutMs).toBe(2999);
  });

  it('health.fastIntervalMs <= health.intervalMs; its default is a quarter of the interval, at most 50 ms', () => {
    expect(loadProblems({ health: { intervalMs: 2000, fastIntervalMs: 2001, fall: 2 } })).toEqual([
      'config ns1.yaml: health.fastIntervalMs (2001) must be at most health.intervalMs (2000): it is the shorter wait after a definite failure',
    ]);
    const fast = (health: Record<string, unknown>) =>
      config({ health: { timeoutMs: 1, ...health } }).health.fastIntervalMs;
    expect(fast({ intervalMs: 200, fastIntervalMs: 200 })).toBe(200);
    expect(fast({ intervalMs: 200 })).toBe(50);
    expect(fast({ intervalMs: 3 })).toBe(1);
    expect(fast({ intervalMs: 201 })).toBe(50);
    expect(fast({ intervalMs: 3000, fall: 3 })).toBe(50);
    expect(config().health.fastIntervalMs).toBe(50);
  });

  it('health.pidFile must be an absolute path', () => {
    expect(loadProblems({ health: { pidFile: 'run/svc.pid' } })).toHaveLength(1);
    expect(loadProblems({ health: { pidFile: 'run/svc.pid' } })[0]).toContain('health.pidFile');
    expect(config({ health: { pidFile: '/run/svc.pid' } }).health.pidFile).toBe('/run/svc.pid');
    expect(config().health.pidFile).toBeUndefined();
  });

  it('health.intervalMs x health.fall < zookeeper.sessionTimeoutMs', () => {
    expect(loadProblems({ health: { intervalMs: 2000, fall: 5 } })).toEqual([
      'config ns1.yaml: health.intervalMs x health.fall (10000) must be less than zookeeper.sessionTimeoutMs (10000), or a failed service would be noticed later than a dead agent',
    ]);
    expect(config({ health: { intervalMs: 3000, fall: 3 } }).health.intervalMs).toBe(3000);
  });

  it('zookeeper.requestTimeoutMs < zookeeper.sessionTimeoutMs', () => {
    expect(loadProblems({ zookeeper: { requestTimeoutMs: 10000 } })).toEqual([
      'config ns1.yaml: zookeeper.requestTimeoutMs (10000) must be less than zookeeper.sessionTimeoutMs (10000), or a single request could outlast the session it was sent in',
    ]);
  });

  it('the lease budget must be at least 1000 ms with onConnectionLoss demote (shell agent)', () => {
    expect(loadProblems({ service: { hookTimeoutMs: 8001 } })).toEqual([
      'config ns1.yaml: lease budget zookeeper.sessionTimeoutMs (10000) - zookeeper.safetyMarginMs (1000) - service.hookTimeoutMs (8001) = 999 ms must be at least 1000 ms, because an active node that loses ZooKeeper must finish demoting itself before its session can expire on the server; raise zookeeper.sessionTimeoutMs, lower service.hookTimeoutMs or zookeeper.safetyMarginMs, or set zookeeper.onConnectionLoss: hold if the service fences itself',
    ]);
    expect(leaseBudgetMs(config({ service: { hookTimeoutMs: 8000 } }))).toBe(1000);
  });

  it('the lease budget uses service.requestTimeoutMs for the http agent', () => {
    const http = {
      agent: 'http',
      url: 'http://127.0.0.1:8008',
      toActive: undefined,
      toStandby: undefined,
      check: undefined,
    };
    expect(loadProblems({ zookeeper: { sessionTimeoutMs: 6000 }, service: http })).toEqual([
      'config ns1.yaml: lease budget zookeeper.sessionTimeoutMs (6000) - zookeeper.safetyMarginMs (1000) - service.requestTimeoutMs (5000) = 0 ms must be at least 1000 ms, because an active node that loses ZooKeeper must finish demoting itself before its session can expire on the server; raise zookeeper.sessionTimeoutMs, lower service.requestTimeoutMs or zookeeper.safetyMarginMs, or set zookeeper.onConnectionLoss: hold if the service fences itself',
    ]);
  });

  it('does not apply the lease budget with onConnectionLoss hold', () => {
    const cfg = config({ zookeeper: { onConnectionLoss: 'hold', safetyMarginMs: 9000 } });
    expect(leaseBudgetMs(cfg)).toBe(-4000);
    expect(validateTiming(cfg)).toEqual([]);
  });

  it('checks ranges', () => {
    expect(loadProblems({ zookeeper: { sessionTimeoutMs: 600001 } })).toEqual([
      'config ns1.yaml: zookeeper.sessionTimeoutMs: must be an integer from 1000 to 600000, got 600001',
    ]);
    expect(loadProblems({ health: { intervalMs: 0, rise: 0 } })).toEqual([
      'config ns1.yaml: health.intervalMs: must be an integer from 1 to 600000, got 0',
      'config ns1.yaml: health.rise: must be an integer from 1 to 100, got 0',
    ]);
    expect(loadProblems({ zookeeper: { safetyMarginMs: -1 } })).toEqual([
      'config ns1.yaml: zookeeper.safetyMarginMs: must be an integer from 0 to 600000, got -1',
    ]);
  });
});

describe('validateTiming on a config built in code', () => {
  it('is empty for the defaults', () => {
    expect(validateTiming(config())).toEqual([]);
  });

  it('reports ranges and relations without the source prefix', () => {
    expect(
      validateTiming(
        edited((c) => {
          c.health.timeoutMs = 6000;
          c.zookeeper.requestTimeoutMs = 12000;
        }),
      ),
    ).toEqual([
      'health.timeoutMs (6000) must be less than health.intervalMs x health.fall (3000), or a hung check could never count as a failure in time',
      'zookeeper.requestTimeoutMs (12000) must be less than zookeeper.sessionTimeoutMs (10000), or a single request could outlast the session it was sent in',
    ]);
    expect(
      validateTiming(
        edited((c) => {
          if (c.service.agent === 'shell') c.service.hookTimeoutMs = 0;
        }),
      ),
    ).toEqual(['service.hookTimeoutMs: must be an integer from 1 to 600000, got 0']);
  });

  it('skips the relations that read a value out of range', () => {
    // Session 500 would also break the request-timeout and lease rules; one message is enough.
    expect(
      validateTiming(
        edited((c) => {
          c.health.fall = 0;
          c.zookeeper.sessionTimeoutMs = 500;
        }),
      ),
    ).toEqual([
      'zookeeper.sessionTimeoutMs: must be an integer from 1000 to 600000, got 500',
      'health.fall: must be an integer from 1 to 100, got 0',
    ]);
  });
});

describe('derived timings', () => {
  it('computes detection, lease budget and worst-case failover', () => {
    const cfg = config({ fencing: { methods: ['ssh', { shell: 'fence' }] } });
    expect(detectionTimeMs(cfg)).toBe(3000);
    expect(transitionTimeoutMs(cfg.service)).toBe(5000);
    expect(leaseBudgetMs(cfg)).toBe(10000 - 1000 - 5000);
    expect(worstCaseFailoverMs(cfg)).toBe(3000 + 10000 + 2 * 30000 + 5000);
  });
});

describe('the summary check-config prints', () => {
  it('states the lease formula and what the agent subtracts at runtime', async () => {
    const { summarize } = await import('../../../src/cli/check-config.js');
    expect(relayAllowanceMs(2000)).toBe(1250);
    expect(relayAllowanceMs(3001)).toBe(1876);
    expect(
      summarize(config({ zookeeper: { sessionTimeoutMs: 20000 } }))
        .split('\n')
        .slice(2, 4),
    ).toEqual([
      'detection 3000 ms (every 1000 ms x fall 3), lease budget 13000 ms (session 20000 - margin 2000 - to-standby 5000),',
      'less the ZooKeeper relay allowance at runtime (tickTime/2 + slack: 1250 ms for the default tickTime 2000), and with the session timeout the servers negotiate in place of 20000;',
    ]);
    expect(summarize(config({ zookeeper: { onConnectionLoss: 'hold' } })).split('\n')[2]).toBe(
      'detection 3000 ms (every 1000 ms x fall 3), no lease budget (onConnectionLoss: hold, the service fences itself),',
    );
  });
});

describe('relay allowance', () => {
  it('is the figure the session layer derives from a minSessionTimeout of 2 x tickTime', async () => {
    const { relayAllowanceMs } = await import('../../../src/config/timing.js');
    const { relayAllowanceFromMinSessionMs } = await import('../../../src/zk/session.js');
    for (const tick of [100, 200, 500, 1000, 2000, 3000, 10_000]) {
      expect(relayAllowanceMs(tick)).toBe(relayAllowanceFromMinSessionMs(2 * tick));
    }
    expect(relayAllowanceMs(2000)).toBe(1250);
  });
});
