import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  createLogger,
  fdSink,
  MAX_QUEUED_LOG_BYTES,
  setLogOptions,
  streamSink,
  type Logger,
} from '../../src/log.js';

describe('createLogger: a line that cannot be written is dropped and counted, never thrown', () => {
  it('a throwing writer: every lost line is counted, the count is shared with children', () => {
    let fail = true;
    const got: string[] = [];
    const log = createLogger({
      write: (l) => {
        if (fail) throw new Error('ENOSPC');
        got.push(l);
      },
    });
    const child = log.child({ component: 'x' });
    expect(() => log.info('a')).not.toThrow();
    expect(() => child.error('b')).not.toThrow();
    expect(log.droppedLines()).toBe(2);
    expect(child.droppedLines()).toBe(2);
    fail = false;
    child.info('c');
    expect(got).toHaveLength(1);
    expect(log.droppedLines()).toBe(2);
  });

  it('a field whose getter throws costs that line only', () => {
    const log = createLogger({ write: () => {} });
    const evil = Object.defineProperty({}, 'boom', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    expect(() => log.warn('x', evil as Record<string, unknown>)).not.toThrow();
    expect(log.droppedLines()).toBe(1);
  });

  it('lines below the level are not written and not counted', () => {
    const log = createLogger({
      level: 'warn',
      write: () => {
        throw new Error('never called');
      },
    });
    log.debug('d');
    log.info('i');
    expect(log.droppedLines()).toBe(0);
  });
});

describe('streamSink', () => {
  /** A writable that holds every chunk until `release` (a reader that stopped reading). */
  function stalled() {
    const pending: (() => void)[] = [];
    const w = new Writable({
      highWaterMark: 16,
      write(_chunk, _enc, cb) {
        pending.push(() => cb());
      },
    });
    return { w, release: () => pending.splice(0).forEach((f) => f()) };
  }

  it('drops (and counts) lines while more than MAX_QUEUED_LOG_BYTES wait for the reader', () => {
    const { w } = stalled();
    w.on('error', () => {});
    const sink = streamSink(w);
    let dropped = 0;
    const line = 'x'.repeat(1000) + '\n';
    const n = Math.ceil(MAX_QUEUED_LOG_BYTES / line.length) + 50;
    for (let i = 0; i < n; i++) sink.write(line, () => dropped++);
    expect(w.writableLength).toBeLessThanOrEqual(MAX_QUEUED_LOG_BYTES + line.length);
    expect(dropped).toBeGreaterThanOrEqual(49);
    expect(dropped).toBeLessThanOrEqual(50);
  });

  it('an errored stream takes no more lines: each is counted', async () => {
    const w = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    w.on('error', () => {});
    const sink = streamSink(w);
    let dropped = 0;
    sink.write('a\n', () => dropped++);
    await new Promise((r) => w.once('error', r));
    sink.write('b\n', () => dropped++);
    sink.write('c\n', () => dropped++);
    await new Promise((r) => setImmediate(r));
    expect(dropped).toBe(3);
  });
});

describe('fdSink', () => {
  it('/dev/full: each line is counted as dropped', () => {
    const full = fs.openSync('/dev/full', 'w');
    let dropped = 0;
    try {
      fdSink(full).write('x\n', () => dropped++);
      fdSink(full).write('y\n', () => dropped++);
    } finally {
      fs.closeSync(full);
    }
    expect(dropped).toBe(2);
  });

  it('a file gets every line whole', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-log-'));
    const file = path.join(dir, 'log');
    const fd = fs.openSync(file, 'a');
    let dropped = 0;
    try {
      const sink = fdSink(fd);
      for (let i = 0; i < 100; i++) sink.write(`${i} ${'y'.repeat(10_000)}\n`, () => dropped++);
    } finally {
      fs.closeSync(fd);
    }
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    fs.rmSync(dir, { recursive: true, force: true });
    expect(dropped).toBe(0);
    expect(lines).toHaveLength(101);
    expect(lines.slice(0, 100).every((l, i) => l === `${i} ${'y'.repeat(10_000)}`)).toBe(true);
  });
});

describe('setLogOptions (a reload)', () => {
  it('changes level and format of a logger and every child, made before or after', () => {
    const got: string[] = [];
    const log = createLogger({ level: 'info', format: 'json', write: (l) => got.push(l) });
    const before = log.child({ component: 'a' });
    before.debug('hidden');
    expect(setLogOptions(log, { level: 'debug', format: 'pretty' })).toBe(true);
    before.debug('shown');
    log.child({ component: 'b' }).info('also');
    expect(got).toHaveLength(2);
    expect(got[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} DEBUG shown \{"component":"a"\}$/);
    expect(got[1]).toContain(' INFO  also ');
    // A child's setting is the family's: setting it through a child changes the root too.
    expect(setLogOptions(before, { level: 'error', format: 'json' })).toBe(true);
    log.warn('hidden again');
    log.error('json again');
    expect(got).toHaveLength(3);
    expect(JSON.parse(got[2]!)).toMatchObject({ level: 'error', msg: 'json again' });
  });

  it('another logger is left alone: false', () => {
    const other: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => other };
    expect(setLogOptions(other, { level: 'debug' })).toBe(false);
  });
});
