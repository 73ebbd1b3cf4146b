/**
 * Config input that is not a config: FIFOs, devices, huge or binary files, quadratic YAML, deep
 * nesting, control characters. Real files in a temp dir; every case must end in a ConfigError
 * that names the thing and the value, fast, and never in a hang, a crash or a raw control byte.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from '../../../src/errors.js';
import {
  InvalidConfigError,
  loadConfig,
  MAX_CONFIG_BYTES,
  MAX_DEPTH,
  MAX_PROBLEMS,
  parseConfig,
} from '../../../src/config/load.js';

const scratch = mkdtempSync(join(tmpdir(), 'hafc-hostile-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const VALID = {
  cluster: 'ns1',
  node: { id: 'nn1', port: 8020 },
  zookeeper: { connect: 'zk1:2181' },
  service: { agent: 'http', url: 'http://127.0.0.1:8008' },
};

async function loadError(path: string): Promise<ConfigError> {
  const err = await loadConfig(path, { hostname: 'h' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

function parseProblems(text: string): readonly string[] {
  try {
    parseConfig(text, 'x.yaml', { hostname: 'h' });
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return (err as InvalidConfigError).problems;
  }
  throw new Error('expected an InvalidConfigError');
}

/** Distinct keys of `width` characters from [a-z0-9], in order. */
function keys(count: number, width: number): string[] {
  return Array.from({ length: count }, (_, i) => i.toString(36).padStart(width, '0'));
}

/** Runs `f`, returning its result and how long it took; the measurements are logged. */
async function timed<T>(what: string, f: () => Promise<T> | T): Promise<T> {
  const start = performance.now();
  const result = await f();
  console.log(`${what}: ${Math.round(performance.now() - start)} ms`);
  return result;
}

describe('what the config path names', () => {
  it('refuses a FIFO at once instead of blocking on its open', async () => {
    const fifo = join(scratch, 'config.fifo');
    execFileSync('mkfifo', [fifo]);
    // No writer ever opens it: a blocking open would hang here until the test timeout.
    const err = await loadError(fifo);
    expect(err.message).toBe(
      `config ${fifo}: is a FIFO (named pipe), not a regular file; give the path of a YAML file`,
    );
  });

  it('refuses /dev/urandom and /dev/zero without reading them', async () => {
    const before = process.memoryUsage().rss;
    for (const dev of ['/dev/urandom', '/dev/zero']) {
      const err = await loadError(dev);
      expect(err.message).toBe(
        `config ${dev}: is a character device, not a regular file; give the path of a YAML file`,
      );
    }
    // Reading either would allocate without bound (1.1 GB for /dev/urandom before this check).
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a directory', async () => {
    const err = await loadError(scratch);
    expect(err.message).toBe(
      `config ${scratch}: is a directory, not a regular file; give the path of a YAML file`,
    );
  });

  it('refuses a file over the size limit before reading it, naming its size', async () => {
    const big = join(scratch, 'big.yaml');
    writeFileSync(big, `${stringify(VALID)}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    const err = await timed('reject a file 100 bytes over the limit', () => loadError(big));
    expect(err.message).toMatch(
      new RegExp(
        `^config ${big}: the file is \\d+ bytes, over the limit of 262144 bytes \\(256 KiB\\) for a config file; is this the right file\\?$`,
      ),
    );
  });

  it('reads a file of exactly the limit', async () => {
    const text = `${stringify(VALID)}#`;
    const file = join(scratch, 'max.yaml');
    writeFileSync(file, `${text}${'x'.repeat(MAX_CONFIG_BYTES - text.length - 1)}\n`);
    const cfg = await timed('load a valid file of the maximum size (one long comment)', () =>
      loadConfig(file, { hostname: 'h' }),
    );
    expect(cfg.cluster).toBe('ns1');
  });

  it('refuses binary content: a NUL byte or invalid UTF-8', async () => {
    const nul = join(scratch, 'nul.yaml');
    writeFileSync(nul, Buffer.from('cluster: ns1\n\0\n'));
    expect((await loadError(nul)).message).toBe(
      `config ${nul}: has a NUL byte at offset 13; a config file is YAML text`,
    );
    const latin1 = join(scratch, 'latin1.yaml');
    writeFileSync(latin1, Buffer.from('cluster: caf\xe9\n', 'latin1'));
    expect((await loadError(latin1)).message).toBe(
      `config ${latin1}: is not UTF-8 text; a config file is YAML text in UTF-8`,
    );
  });
});

describe('YAML that is expensive to parse', () => {
  it('parses a max-size file of 37k distinct keys, listing the first problems', async () => {
    // "kabcd:\n", 7 bytes, is about the shortest distinct key line (digits alone would read as
    // numbers, and 0000 and 0 are then the same key): 256 KiB holds 37449 of them.
    const count = Math.floor(MAX_CONFIG_BYTES / 7);
    const file = join(scratch, 'keys.yaml');
    writeFileSync(
      file,
      keys(count, 4)
        .map((k) => `k${k}:\n`)
        .join(''),
    );
    const err = (await timed(`reject a max-size file of ${count} unknown keys`, () =>
      loadError(file),
    )) as InvalidConfigError;
    expect(err.problems).toHaveLength(MAX_PROBLEMS + 1);
    expect(err.problems[0]).toBe(`config ${file}: unknown key "k0000"`);
    expect(err.problems[MAX_PROBLEMS]).toBe(
      `config ${file}: ... and ${count + 4 - MAX_PROBLEMS} more problems; fix the ones above first`,
    );
  });

  it('takes time proportional to the keys, not their square', async () => {
    // With yaml's own duplicate check, doubling the keys quadrupled the time (20k keys: 4 s).
    const time = (count: number) => {
      const text = keys(count, 5)
        .map((k) => `${k}: 1\n`)
        .join('');
      const start = performance.now();
      parseProblems(text);
      return performance.now() - start;
    };
    time(5000); // warm up the JIT
    // 4x the keys: linear is 4x the time, quadratic 16x; 8x leaves room for a busy machine.
    const small = await timed('20k keys', () => time(20_000));
    const large = await timed('80k keys', () => time(80_000));
    expect(large).toBeLessThan(small * 8);
  });

  it('checks a max-size file of one key repeated (52k duplicates)', async () => {
    const count = Math.floor(MAX_CONFIG_BYTES / 5);
    const problems = await timed(`reject ${count} duplicates of one key`, () =>
      parseProblems('a: 1\n'.repeat(count)),
    );
    expect(problems).toHaveLength(MAX_PROBLEMS + 1);
    expect(problems[0]).toBe(
      'config x.yaml: line 2, column 1: invalid YAML: duplicate key "a" (first at line 1, column 1); a key may appear once per mapping',
    );
    expect(problems[MAX_PROBLEMS]).toBe(
      `config x.yaml: ... and ${count - 1 - MAX_PROBLEMS} more problems; fix the ones above first`,
    );
  });

  it('reports a duplicate key with the line and column of both', () => {
    expect(parseProblems('cluster: a\nnode:\n  id: x\n  port: 1\n  id: y\n')).toEqual([
      'config x.yaml: line 5, column 3: invalid YAML: duplicate key "id" (first at line 3, column 3); a key may appear once per mapping',
    ]);
    // They are the same key once read: the second would silently win.
    expect(parseProblems('1: a\n"1": b\n')[0]).toBe(
      'config x.yaml: line 2, column 1: invalid YAML: duplicate key "1" (first at line 1, column 1); a key may appear once per mapping',
    );
  });

  it('refuses 100k nested flow collections with the depth limit, at once', async () => {
    const text = `cluster: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
    const problems = await timed('reject 100k nested [', () => parseProblems(text));
    expect(problems).toEqual([
      `config x.yaml: line 1, column ${10 + MAX_DEPTH}: nested deeper than 32 levels, the limit for a config file; hafc's keys nest at most 6 deep`,
    ]);
    const maxSize = `${'{a: '.repeat(MAX_CONFIG_BYTES / 4)}`;
    expect((await timed('reject a max-size file of nested {a:', () => parseProblems(maxSize)))[0]).toMatch(
      /nested deeper than 32 levels/,
    );
  });

  it('refuses deep block nesting (compact "- - -" sequences) with the depth limit', async () => {
    const text = `cluster:\n${'- '.repeat(MAX_CONFIG_BYTES / 2 - 10)}x\n`;
    const problems = await timed('reject a max-size file of nested "- "', () => parseProblems(text));
    expect(problems).toEqual([
      `config x.yaml: line 2, column ${2 * MAX_DEPTH + 1}: nested deeper than 32 levels, the limit for a config file; hafc's keys nest at most 6 deep`,
    ]);
  });

  it('accepts nesting up to the limit (then validation speaks)', () => {
    // The top-level mapping is level 1, so the value can nest MAX_DEPTH - 1 more.
    const ok = `cluster: ${'['.repeat(MAX_DEPTH - 1)}${']'.repeat(MAX_DEPTH - 1)}\n`;
    expect(parseProblems(ok)[0]).toMatch(/^config x\.yaml: cluster: must match /);
    const over = `cluster: ${'['.repeat(MAX_DEPTH)}${']'.repeat(MAX_DEPTH)}\n`;
    expect(parseProblems(over)[0]).toMatch(/nested deeper than 32 levels/);
  });

  it('refuses an alias expansion bomb', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    expect(parseProblems(lines.join('\n'))).toEqual([
      'config x.yaml: invalid YAML: Excessive alias count indicates a resource exhaustion attack',
    ]);
  });
});

describe('control characters in messages', () => {
  it('escapes them in unknown keys, values and YAML errors', () => {
    const text = `${stringify(VALID)}"evil\\e[2J\\u202ekey": 1\nlog: { level: "loud\\u0085\\u0007" }\n`;
    expect(parseProblems(text)).toEqual([
      'config x.yaml: unknown key "evil\\u001b[2J\\u202ekey"',
      'config x.yaml: log.level: must be one of debug, info, warn, error, got "loud\\u0085\\u0007"',
    ]);
    for (const problem of parseProblems(`cluster: !tag\u009b31m x\n`)) {
      // eslint-disable-next-line no-control-regex
      expect(problem).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    }
  });

  it('escapes them in the file name', async () => {
    const file = join(scratch, 'bell\u0007.yaml');
    writeFileSync(file, 'cluster: [\n');
    const err = await loadError(file);
    expect(err.message.startsWith(`config ${join(scratch, 'bell\\u0007.yaml')}: line 2`)).toBe(true);
  });

  it('clips a huge key to what a person can read', () => {
    // An explicit key ("? KEY"): yaml itself refuses implicit keys over 1024 characters.
    const key = 'k'.repeat(100_000);
    expect(parseProblems(`${stringify(VALID)}? ${key}\n: 1\n`)).toEqual([
      `config x.yaml: unknown key "${'k'.repeat(77)}..."`,
    ]);
  });
});
