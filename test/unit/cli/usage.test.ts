/** The CLI's answer to no verb, help and unknown verbs (the built binary, as an operator runs it). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plainAgentConfig } from '../../../src/cli/agent-argv.js';

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

  it('the top-level help lists every verb, though a verb alone loads only its own module', () => {
    const r = run('--help');
    for (const verb of [
      'agent',
      'init',
      'check-config',
      'status',
      'history',
      'failover',
      'pause',
      'import-hadoop',
    ])
      expect(r.stdout, verb).toMatch(new RegExp(`^  ${verb}\\b`, 'm'));
  });

  it('the agent verb: its own errors whichever way its command line is read', () => {
    const missing = '/nonexistent/hafc-usage-test.yaml';
    for (const args of [['-c', missing], ['--config', missing], [`--config=${missing}`]]) {
      const r = run('agent', ...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(missing);
    }
    const noFile = run('agent');
    expect(noFile.status).toBe(2);
    expect(noFile.stderr).toContain("required option '-c, --config <file>' not specified");
    const extra = run('agent', '-c', missing, '--bogus');
    expect(extra.status).toBe(2);
    expect(extra.stderr).toContain("unknown option '--bogus'");
  });
});

describe('plainAgentConfig', () => {
  const argv = (...args: string[]) => ['node', 'hafc', ...args];

  it('reads the one shape systemd runs', () => {
    expect(plainAgentConfig(argv('agent', '-c', '/etc/hafc/a.yaml'))).toBe('/etc/hafc/a.yaml');
    expect(plainAgentConfig(argv('agent', '--config', 'a.yaml'))).toBe('a.yaml');
    expect(plainAgentConfig(argv('agent', '--config=a.yaml'))).toBe('a.yaml');
  });

  it('leaves everything else to commander', () => {
    for (const args of [
      [],
      ['agent'],
      ['agent', '-c'],
      ['agent', '-c', ''],
      ['agent', '--config='],
      ['agent', '-c', '--help'],
      ['agent', '-c', 'a.yaml', '--help'],
      ['agent', '-ca.yaml'],
      ['status', '-c', 'a.yaml'],
      ['-c', 'a.yaml', 'agent'],
    ])
      expect(plainAgentConfig(argv(...args)), args.join(' ')).toBeUndefined();
  });
});
