import { describe, expect, it } from 'vitest';
import type { ControllerStatus } from '../../../src/controller/controller.js';
import { statusJson, toJson } from '../../../src/http/status-json.js';

const status: ControllerStatus = {
  cluster: 'ns1',
  node: 'nn1',
  role: 'active',
  health: 'HEALTHY',
  electable: true,
  elector: {
    state: 'ACTIVE',
    epoch: '18446744073709551615',
    sessionId: '0123456789abcdef',
    sessionState: 'connected',
    electable: true,
    leaseRemainingMs: 2100,
    leaseBudgetMs: -Infinity,
    lastFailure: { reason: 'fencing nn2 failed', atMs: 1000 },
    lastDecision: { action: 'kept', reason: 'lock held' },
    backoffRemainingMs: 0,
    holdingServiceWithoutLock: false,
    fatal: null,
    paused: { by: 'http:127.0.0.1:5555', at: '2024-01-01T00:00:01.000Z', reason: 'upgrade' },
    switchover: null,
  },
  lastTransition: {
    to: 'active',
    result: 'ok',
    reason: 'elected',
    epoch: '18446744073709551615',
    durationMs: 12,
    at: '2024-01-01T00:00:00.000Z',
  },
  lastFenceFailure: null,
  reloads: { applied: 1, unchanged: 0, refused: 0 },
  lastReload: { at: '2024-01-01T00:00:02.000Z', result: 'applied', changed: ['health.intervalMs'] },
  follow: {
    target: 'nn2',
    epoch: '7',
    result: 'failed',
    at: '2024-01-01T00:00:03.000Z',
    durationMs: 40,
    error: 'pg_rewind: exit 1',
  },
};

describe('GET /status JSON', () => {
  it('maps the controller status to the documented fields', () => {
    const j = statusJson(status, { version: '0.1.0', mayBeActive: true, nowMs: 4500 });
    expect(JSON.parse(toJson(j))).toEqual({
      cluster: 'ns1',
      node: 'nn1',
      version: '0.1.0',
      role: 'active',
      mayBeActive: true,
      health: 'HEALTHY',
      electable: true,
      epoch: '18446744073709551615',
      zookeeper: { sessionId: '0123456789abcdef', state: 'connected' },
      lease: { remainingMs: 2100, budgetMs: null },
      lastDecision: { action: 'kept', reason: 'lock held' },
      lastFailure: { reason: 'fencing nn2 failed', agoMs: 3500 },
      backoffRemainingMs: 0,
      holdingServiceWithoutLock: false,
      fatal: null,
      paused: { by: 'http:127.0.0.1:5555', at: '2024-01-01T00:00:01.000Z', reason: 'upgrade' },
      switchover: null,
      lastTransition: status.lastTransition,
      lastFenceFailure: null,
      reloads: { applied: 1, unchanged: 0, refused: 0 },
      lastReload: status.lastReload,
      follow: status.follow,
    });
  });

  it('writes bigints as decimal strings', () => {
    expect(toJson({ e: 2n ** 64n - 1n })).toBe('{"e":"18446744073709551615"}');
  });
});
