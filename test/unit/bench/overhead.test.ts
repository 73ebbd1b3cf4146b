import { describe, expect, it } from 'vitest';
import { cpuSecondsPerHour, cpuTicks, parseMntr, parseZxid } from '../../../bench/overhead.js';

describe('parseMntr', () => {
  it('keeps the numeric keys and drops the rest', () => {
    const text = 'zk_version\t3.8.0-1, built on 2023\nzk_packets_received\t1234\nzk_avg_latency\t0.5\n\n';
    expect(parseMntr(text)).toEqual({ zk_packets_received: 1234, zk_avg_latency: 0.5 });
  });
});

describe('parseZxid', () => {
  it('splits the srvr zxid into epoch and counter', () => {
    const srvr = 'Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.4/12\nZxid: 0x20000012f\nMode: leader\n';
    expect(parseZxid(srvr)).toEqual({ epoch: 2, counter: 0x12f });
  });

  it('names what it got when there is no zxid', () => {
    expect(() => parseZxid('This ZooKeeper instance is not currently serving requests\n')).toThrow(
      /no "Zxid: 0x\.\.\." line.*not currently serving/,
    );
  });
});

describe('cpuTicks', () => {
  it('adds utime and stime, counting fields after the command name', () => {
    // A command name with a space and a parenthesis, as node's thread names can have.
    const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 9000 0 12 0 731 219 0 0 20 0 11 0 1000 0 0';
    expect(cpuTicks(stat)).toBe(950);
  });

  it('refuses text that is not a stat line', () => {
    expect(() => cpuTicks('garbage')).toThrow(/not a \/proc\/<pid>\/stat line: "garbage"/);
    expect(() => cpuTicks('1 (a) S 1 2')).toThrow(/no utime\/stime/);
  });
});

describe('cpuSecondsPerHour', () => {
  it('scales the window rate to an hour', () => {
    // 50 ticks of 1/100 s over 20 s: 0.025 s per second, 90 s per hour.
    expect(cpuSecondsPerHour(50, 100, 20_000)).toBeCloseTo(90);
  });

  it('refuses an empty window', () => {
    expect(() => cpuSecondsPerHour(1, 100, 0)).toThrow(/window must be > 0 ms, got 0/);
  });
});
