import { describe, expect, it } from 'vitest';
import { takeNotifyEnv } from '../../../src/systemd/notify-env.js';

describe('takeNotifyEnv: what systemd asked for, taken out of the environment hooks inherit', () => {
  it('no NOTIFY_SOCKET: nothing to do, and WATCHDOG_* alone are dropped too', () => {
    const env: NodeJS.ProcessEnv = { WATCHDOG_USEC: '30000000', PATH: '/bin' };
    expect(takeNotifyEnv(env, 42)).toEqual({ target: null, problems: [] });
    expect(env).toEqual({ PATH: '/bin' });
  });

  it('a path or an abstract socket, with the watchdog for this pid', () => {
    for (const socket of ['/run/systemd/notify', '@/org/freedesktop/systemd1/notify/123']) {
      const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' };
      expect(takeNotifyEnv(env, 42)).toEqual({ target: { socket, watchdogMs: 30_000 }, problems: [] });
      expect(env).toEqual({});
    }
  });

  it('a watchdog meant for another pid, or a malformed one: no pings, and the reason', () => {
    const other = takeNotifyEnv({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '1000', WATCHDOG_PID: '7' }, 42);
    expect(other.target).toEqual({ socket: '/n', watchdogMs: null });
    expect(other.problems).toEqual([expect.stringContaining('WATCHDOG_PID "7" is not this process (42)')]);
    for (const bad of ['0', '-5', '1.5e6', 'soon', '9999999999999999']) {
      const r = takeNotifyEnv({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: bad }, 42);
      expect(r.target?.watchdogMs).toBeNull();
      expect(r.problems).toEqual([expect.stringContaining(`WATCHDOG_USEC ${JSON.stringify(bad)}`)]);
    }
  });

  it('a NOTIFY_SOCKET that is no socket address: nothing is sent, and it says so', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: 'relative/sock' };
    const r = takeNotifyEnv(env, 1);
    expect(r.target).toBeNull();
    expect(r.problems).toEqual([expect.stringContaining('NOTIFY_SOCKET "relative/sock" is neither')]);
    expect(env.NOTIFY_SOCKET).toBeUndefined();
  });
});
