import { describe, expect, it } from 'vitest';
import { ago, clean, formatDuration, table } from '../../../src/cli/render/text.js';

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [850, '850ms'],
    [1000, '1s'],
    [59_999, '59s'],
    [60_000, '1m00s'],
    [192_000, '3m12s'],
    [3_599_000, '59m59s'],
    [3_600_000, '1h00m'],
    [7_500_000, '2h05m'],
    [86_400_000, '1d00h'],
    [273_600_000, '3d04h'],
    [-5000, '-5s'],
    [NaN, '?'],
  ])('%d ms -> %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('ago', () => {
  const now = Date.parse('2026-12-01T10:00:00.000Z');
  it('says how long ago, flags a future time as skew, and ? for nonsense', () => {
    expect(ago('2026-12-01T09:56:48.000Z', now)).toBe('3m12s');
    expect(ago('2026-12-01T10:00:03.000Z', now)).toBe('in 3s (clock skew?)');
    expect(ago('yesterday-ish', now)).toBe('?');
    expect(ago(undefined, now)).toBe('?');
  });
});

describe('clean', () => {
  it('replaces control characters (terminal escapes from a znode) and bounds the length', () => {
    expect(clean('ok\x1b[2Jgone\nnext\x9b')).toBe('ok?[2Jgone?next?');
    expect(clean('x'.repeat(50), 10)).toBe('xxxxxxx...');
    expect(clean(42)).toBe('42');
  });
});

describe('table', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(
      table(
        ['A', 'LONGER', 'LAST'],
        [
          ['xyz', 'b', 'tail'],
          ['', 'bb', ''],
        ],
      ),
    ).toEqual(['A    LONGER  LAST', 'xyz  b       tail', '     bb']);
  });
});
