import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { configDocs, repo } from '../../../scripts/config-docs.js';
import { entries } from '../../../src/config/reference.js';
import { renderJsonSchema } from '../../../src/config/json-schema.js';
import { schemaErrors } from './json-schema-subset.js';

const schema = renderJsonSchema();
const examples = readdirSync(join(repo, 'config'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => join(repo, 'config', f));
const read = (file: string): unknown => parse(readFileSync(file, 'utf8'));

describe('generated config docs', () => {
  it('docs/config.md and docs/hafc.schema.json are what the declaration generates now', async () => {
    for (const file of await configDocs()) {
      const committed = readFileSync(join(repo, file.path), 'utf8');
      expect(committed, `${file.path} is stale: run npm run docs:config and commit it`).toBe(file.text);
    }
  });

  it('documents every key with a type, a default and a meaning', () => {
    const list = entries();
    expect(list.map((e) => e.path)).toEqual(expect.arrayContaining(['zookeeper.auth.credentialsFile']));
    expect(new Set(list.map((e) => e.path)).size, 'duplicate key paths').toBe(list.length);
    for (const e of list) {
      expect(e.type, e.path).not.toBe('');
      expect(e.doc, e.path).toMatch(/\.$/);
    }
  });
});

describe('the JSON Schema', () => {
  it('accepts every example config and the minimal one', () => {
    const files = [...examples, join(repo, 'test/unit/config/fixtures/minimal.yaml')];
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) expect(schemaErrors(schema, read(file)), file).toEqual([]);
  });

  it('refuses what the loader refuses by shape: unknown keys, bounds, the keys of another agent', () => {
    const base = read(join(repo, 'config/http.yaml')) as Record<string, Record<string, unknown>>;
    const edit = (section: string, patch: Record<string, unknown>) => ({
      ...base,
      [section]: { ...base[section], ...patch },
    });
    expect(schemaErrors(schema, edit('zookeeper', { sesionTimeoutMs: 1 }))).toEqual([
      '$.zookeeper: unknown sesionTimeoutMs',
    ]);
    expect(schemaErrors(schema, edit('fencing', { timeoutMs: 2 ** 31 }))).toEqual([
      '$.fencing.timeoutMs: maximum',
    ]);
    expect(schemaErrors(schema, edit('service', { toActive: 'x' }))).toEqual(['$.service: unknown toActive']);
    expect(schemaErrors(schema, edit('service', { agent: 'mysql' }))).toEqual(['$.service.agent: enum']);
    expect(schemaErrors(schema, edit('health', { check: { tcp: 'h:1', command: 'x' } }))).toEqual([
      '$.health.check: oneOf (0 match)',
    ]);
    expect(schemaErrors(schema, { ...base, fencing: { methods: ['graceful', { stonith: 1 }] } })).toEqual([
      '$.fencing.methods[1]: oneOf (0 match)',
    ]);
  });

  it('takes sections that are all commented out (null) where the loader does', () => {
    const base = read(join(repo, 'config/http.yaml')) as Record<string, unknown>;
    expect(schemaErrors(schema, { ...base, health: null, log: null })).toEqual([]);
    expect(schemaErrors(schema, { ...base, node: null })).toEqual(['$.node: type object']);
  });
});
