/** The CLI's answer to no verb, help and unknown verbs (the built binary, as an operator runs it). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = join(import.meta.dirname, '../../../dist/src/cli/entry.js');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('hafc usage', () => {
  it('no verb: the usage on stderr, exit 2', () => {
    const r = run();
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Usage: hafc');
  });

  it('help asked for: exit 0', () => {
    for (const args of [['--help'], ['help'], ['help', 'agent'], ['agent', '--help'], ['-V']]) {
      expect(run(...args).status, args.join(' ')).toBe(0);
    }
  });

  it('an unknown verb: exit 2 naming it', () => {
    const r = run('bogus');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'bogus'");
  });
});
