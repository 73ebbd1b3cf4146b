/**
 * Parsers for the idle-cost measurement: ZooKeeper's 4-letter-word answers and /proc. Pure, so
 * a change in a server's output format fails a unit test rather than print a silent zero.
 */

/** `mntr`: tab-separated key/value lines; the numeric ones. */
export function parseMntr(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.split('\t');
    if (k && v !== undefined && /^-?\d+(\.\d+)?$/.test(v.trim())) out[k] = Number(v);
  }
  return out;
}

/**
 * The zxid from `srvr` ("Zxid: 0x20000012f"). Every write the ensemble commits (a create, a
 * set, a session opened or closed, the session layer's no-op writes) takes the next one, so the
 * leader's difference over a window counts the writes; across an epoch change (a new leader) it
 * does not, and the caller must not compare zxids of two epochs.
 */
export function parseZxid(srvr: string): { epoch: number; counter: number } {
  const m = /^Zxid: 0x([0-9a-fA-F]+)\s*$/m.exec(srvr);
  if (!m) throw new Error(`no "Zxid: 0x..." line in the srvr answer: ${JSON.stringify(srvr.slice(0, 200))}`);
  const z = BigInt(`0x${m[1]}`);
  return { epoch: Number(z >> 32n), counter: Number(z & 0xffffffffn) };
}

/** utime + stime of a process, in clock ticks, from the text of /proc/<pid>/stat. */
export function cpuTicks(stat: string): number {
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(stat.slice(0, 100))}`);
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) {
    throw new Error(`no utime/stime in /proc/<pid>/stat: ${JSON.stringify(stat.slice(0, 200))}`);
  }
  return utime + stime;
}

/** CPU seconds per hour at the rate seen over `windowMs`. */
export function cpuSecondsPerHour(ticks: number, ticksPerSecond: number, windowMs: number): number {
  if (!(windowMs > 0)) throw new Error(`cpuSecondsPerHour: the window must be > 0 ms, got ${windowMs}`);
  return (ticks / ticksPerSecond / (windowMs / 1000)) * 3600;
}
