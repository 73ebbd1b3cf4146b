/**
 * What systemd tells a Type=notify service through its environment: where to send notifications
 * (NOTIFY_SOCKET) and whether it expects watchdog pings (WATCHDOG_USEC, for WATCHDOG_PID).
 *
 * The variables are taken OUT of the environment, as sd_notify(3) does with unset_environment:
 * hooks inherit the agent's environment, and a service a hook starts (postgres under pg_ctl is
 * built with sd_notify support) would otherwise report READY=1 or STOPPING=1 to OUR unit, and a
 * STOPPING=1 from a child makes systemd stop the agent.
 */

export interface NotifyTarget {
  /** A socket path, or `@name` for the abstract namespace, passed on to systemd-notify as is. */
  socket: string;
  /** Watchdog timeout systemd enforces (WatchdogSec=), or null when it expects no pings. */
  watchdogMs: number | null;
}

export interface NotifyEnv {
  /** Null: not run by systemd as Type=notify (or unusable settings, see problems): send nothing. */
  target: NotifyTarget | null;
  /** Settings that were present but could not be used, to be logged once a logger exists. */
  problems: string[];
}

export const NOTIFY_VARS = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

export function takeNotifyEnv(env: NodeJS.ProcessEnv, pid: number): NotifyEnv {
  const socket = env.NOTIFY_SOCKET;
  const usec = env.WATCHDOG_USEC;
  const watchdogPid = env.WATCHDOG_PID;
  for (const name of NOTIFY_VARS) delete env[name];

  const problems: string[] = [];
  if (socket === undefined || socket === '') return { target: null, problems };
  // systemd hands out a path or an abstract name; newer versions also vsock:CID:PORT.
  if (!/^[/@]/.test(socket) && !socket.startsWith('vsock:')) {
    problems.push(
      `NOTIFY_SOCKET ${JSON.stringify(socket)} is neither a socket path, an abstract name (@...) nor vsock: ` +
        'nothing is sent to the service manager',
    );
    return { target: null, problems };
  }

  let watchdogMs: number | null = null;
  if (usec !== undefined && usec !== '') {
    if (!/^[0-9]{1,15}$/.test(usec) || Number(usec) === 0) {
      problems.push(
        `WATCHDOG_USEC ${JSON.stringify(usec)} is not a positive number of microseconds: no watchdog pings`,
      );
    } else if (watchdogPid !== undefined && watchdogPid !== '' && watchdogPid !== String(pid)) {
      // Meant for another process (a wrapper that exec'd something else): not ours to ping.
      problems.push(
        `WATCHDOG_PID ${JSON.stringify(watchdogPid)} is not this process (${pid}): no watchdog pings`,
      );
    } else {
      watchdogMs = Number(usec) / 1000;
    }
  }
  return { target: { socket, watchdogMs }, problems };
}
