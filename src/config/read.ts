/**
 * Reads plain data (from YAML) against a declaration: unknown keys with a did-you-mean, required
 * keys, bounds, defaults. A bad value is reported and replaced by its default (or left out), so
 * reading goes on and every problem is found in one pass.
 */
import {
  isDerived,
  type Context,
  type Field,
  type SectionSpec,
  type Shape,
  type Spec,
  type VariantsSpec,
} from './declare.js';
import { closest, integerRule, isInteger, show } from './format.js';
import { has, isMapping, join, Problems, type Mapping } from './problems.js';
import type { StringRule } from './rules.js';

export function didYouMean(word: unknown, candidates: readonly string[]): string {
  const suggestion = typeof word === 'string' ? closest(word, candidates) : undefined;
  return suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
}

export function badString(rule: StringRule, value: unknown): string {
  const detail = typeof value === 'string' ? rule.test(value) : '';
  return `${rule.expect}, got ${show(value)}${detail === true || detail === '' ? '' : ` (${detail})`}`;
}

/** Reports every key of `m` not in `keys`; the suggestion is the closest declared key. */
export function unknownKeys(p: Problems, m: Mapping, path: string, keys: readonly string[]): void {
  for (const key of Object.keys(m)) {
    if (keys.includes(key)) continue;
    const suggestion = p.full ? undefined : closest(key, keys);
    p.unknownKey(join(path, key), suggestion === undefined ? undefined : join(path, suggestion));
  }
}

/**
 * The keys of `shape` read from `value` (null counts as empty: that is what YAML makes of a
 * section whose every line is commented out). Undefined when `value` is not a mapping.
 */
export function readShape(
  p: Problems,
  shape: Shape,
  value: unknown,
  path: string,
  ctx: Context,
  extraKeys: readonly string[] = [],
): Mapping | undefined {
  if (value === null) value = {};
  if (!isMapping(value)) return p.fail(path, `must be a mapping, got ${show(value)}`);
  unknownKeys(p, value, path, [...extraKeys, ...Object.keys(shape)]);
  const out: Mapping = {};
  const derived: string[] = [];
  for (const [key, field] of Object.entries(shape)) {
    // A derived default reads the section's other values, so it is computed after them.
    if (!has(value, key) && isDerived(field.default)) {
      derived.push(key);
      continue;
    }
    const v = readKey(p, field, value, key, path, ctx);
    if (v !== undefined) out[key] = v;
  }
  for (const key of derived) {
    const field = shape[key];
    if (field !== undefined) out[key] = fallback(field, out, ctx);
  }
  return out;
}

/** The value of a key that is absent or bad: its default, or defaults all through a section. */
function fallback(field: Spec, siblings: Mapping, ctx: Context): unknown {
  if (isDerived(field.default)) return field.default.derive(siblings, ctx);
  if (field.default !== undefined) return structuredClone(field.default);
  if (field.kind === 'section' && field.presence !== 'optional') return placeholder(field, ctx);
  if (field.kind === 'variants') return placeholder(field, ctx);
  return undefined;
}

/**
 * A section's defaults without reporting its required keys: what the rest of the reader (and the
 * timing rules, which skip bad keys) work with after the section itself was reported.
 */
function placeholder(field: SectionSpec | VariantsSpec, ctx: Context): unknown {
  const quiet = new Problems();
  if (field.kind === 'section') return readShape(quiet, field.keys, {}, '', ctx);
  const [tag, variant] = Object.entries(field.variants)[0] ?? [];
  if (tag === undefined || variant === undefined) return undefined;
  return { [field.tag]: tag, ...readShape(quiet, variant.keys, {}, '', ctx) };
}

/** Reads `m[key]` as declared by `field`; `path` is the path of `m`. */
export function readKey(
  p: Problems,
  field: Field<unknown>,
  m: Mapping,
  key: string,
  path: string,
  ctx: Context,
): unknown {
  const full = join(path, key);
  if (!has(m, key) || (field.kind === 'section' && field.presence === 'required' && m[key] === null)) {
    if (field.presence === 'required') {
      p.fail(full, 'is required');
      return fallback(field, m, ctx);
    }
    if (field.presence === 'optional') return undefined;
    return fallback(field, m, ctx);
  }
  const value = m[key];
  const ok = readValue(p, field, value, full, ctx);
  return ok === undefined ? fallback(field, m, ctx) : ok;
}

/** The value read, or undefined after reporting it. */
export function readValue(p: Problems, field: Spec, value: unknown, path: string, ctx: Context): unknown {
  switch (field.kind) {
    case 'integer':
      if (isInteger(value, field.min, field.max)) return value;
      return p.fail(path, `${integerRule(field.min, field.max)}, got ${show(value)}`);
    case 'boolean':
      if (typeof value === 'boolean') return value;
      return p.fail(path, `must be true or false, got ${show(value)}`);
    case 'enum':
      if (typeof value === 'string' && field.values.includes(value)) return value;
      return p.fail(
        path,
        `must be one of ${field.values.join(', ')}, got ${show(value)}${didYouMean(value, field.values)}`,
      );
    case 'string':
      if (typeof value === 'string' && field.rule.test(value) === true)
        return field.normalize ? field.normalize(value) : value;
      return p.fail(path, badString(field.rule, value));
    case 'custom':
      return field.read(p, value, path, ctx);
    case 'section':
      return readShape(p, field.keys, value, path, ctx);
    case 'variants':
      return readVariant(p, field, value, path, ctx);
  }
}

function readVariant(p: Problems, field: VariantsSpec, value: unknown, path: string, ctx: Context): unknown {
  if (!isMapping(value)) return p.fail(path, `must be a mapping, got ${show(value)}`);
  const tagPath = join(path, field.tag);
  const names = Object.keys(field.variants);
  const available = `available: ${names.join(', ')}`;
  const tag = value[field.tag];
  if (tag === undefined || tag === null) return p.fail(tagPath, `is required (${available})`);
  if (typeof tag === 'string' && field.planned.includes(tag))
    return p.fail(tagPath, `${show(tag)} is not available in this version (${available})`);
  const variant = typeof tag === 'string' && has(field.variants, tag) ? field.variants[tag] : undefined;
  if (variant === undefined) {
    const hint = didYouMean(tag, [...names, ...field.planned]);
    return p.fail(tagPath, `must be one of ${names.join(', ')}, got ${show(tag)}${hint}`);
  }
  const keys = readShape(p, variant.keys, value, path, ctx, [field.tag]);
  return { [field.tag]: tag, ...keys };
}
