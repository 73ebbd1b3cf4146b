import { describe, expect, it } from 'vitest';
import { inspectorRequested } from '../../../src/cli/inspector-guard.js';

describe('inspectorRequested: only an explicit --inspect* that enables the inspector counts', () => {
  it.each([
    [['--inspect'], undefined, true],
    [['--inspect=127.0.0.1:9230'], undefined, true],
    [['--inspect-brk'], undefined, true],
    [['--inspect-wait=0'], undefined, true],
    [[], '--max-old-space-size=100 --inspect', true],
    [['--inspect-port=9230'], undefined, false],
    [['--import', 'x.mjs'], '--enable-source-maps', false],
    [[], undefined, false],
  ])('execArgv %j, NODE_OPTIONS %j -> %s', (argv, nodeOptions, want) => {
    expect(inspectorRequested(argv, nodeOptions)).toBe(want);
  });
});
