/**
 * No debugger port may be opened by a signal. Node 20 starts its inspector on 127.0.0.1:9229 when
 * the process gets SIGUSR1 (there is no --disable-sigusr1 before Node 22.14), and whoever connects
 * to that port runs code as the agent - usually root - so any local user could take the agent
 * over after a stray `kill -USR1` (or `pkill -USR1 node` meant for something else).
 *
 * Measured on Node 20: a JS listener for SIGUSR1 replaces Node's own handler, so the inspector is
 * not started. Removing the listener again would put the default disposition back, and SIGUSR1
 * would then KILL the agent, so the listener is installed once and never removed.
 *
 * This module installs it when it is evaluated: `agent.ts` imports it first, so the window in
 * which Node's handler is still in place is only Node's bootstrap and the loading of the module
 * graph. An inspector a signal opened inside that window is closed here, as soon as it shows. An inspector asked for explicitly (--inspect on the command
 * line or in NODE_OPTIONS) is the operator's choice, not a signal's, and is left alone.
 */
import inspector from 'node:inspector';

let onSigusr1: () => void = () => {};
let report: ((url: string) => void) | null = null;
const closedBeforeReport: string[] = [];

process.on('SIGUSR1', () => {
  // Whatever the callback does, a throw here would be an uncaught exception: keep the guard dumb.
  try {
    onSigusr1();
  } catch {
    // the callback logs; nothing else to do
  }
  check();
});

function check(): void {
  const url = closeStrayInspector();
  if (url === undefined) return;
  if (report) report(url);
  else closedBeforeReport.push(url);
}

check();
// A SIGUSR1 that reached Node's handler just before ours was installed opens the inspector a
// little later, at Node's next interrupt check (measured: often just after the check above). So
// look again, every few milliseconds while the process is young, then once a second for good.
// The timer never keeps the process alive.
const FAST_CHECKS_UNTIL_UPTIME_S = 3;
const tick = () => {
  check();
  setTimeout(tick, process.uptime() < FAST_CHECKS_UNTIL_UPTIME_S ? 10 : 1000).unref();
};
setTimeout(tick, 0).unref();

/** What to do when SIGUSR1 arrives (log it); the signal itself never opens anything. */
export function setSigusr1Handler(fn: () => void): void {
  onSigusr1 = fn;
}

/** Tells `fn` the URL of every stray inspector closed, including those closed before this call. */
export function onStrayInspectorClosed(fn: (url: string) => void): void {
  report = fn;
  for (const url of closedBeforeReport.splice(0)) fn(url);
}

const INSPECT_FLAG = /^--inspect(?:-brk|-wait)?(?:=|$)/;

/** True when the inspector was asked for on the command line or in NODE_OPTIONS. */
export function inspectorRequested(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): boolean {
  const words = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  return words.some((w) => INSPECT_FLAG.test(w));
}

/**
 * Closes an inspector nobody asked for and returns its URL (undefined when none was open).
 * Never throws. Note: inspector.close() waits for connected debuggers to leave, which is why the
 * check runs early and often - before anyone has had the time to connect.
 */
export function closeStrayInspector(): string | undefined {
  try {
    const url = inspector.url();
    if (url === undefined || inspectorRequested()) return undefined;
    inspector.close();
    return url;
  } catch {
    return undefined;
  }
}
