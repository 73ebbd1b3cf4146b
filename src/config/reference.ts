/**
 * docs/config.md, generated from the declaration (schema.ts) by `npm run docs:config`: every key
 * with its type, bounds, default and meaning. A unit test fails when the committed file differs.
 */
import { isDerived, type Field, type Shape, type Spec } from './declare.js';
import { CONFIG, MAX_DURATION_MS } from './schema.js';

export interface Entry {
  path: string;
  type: string;
  /** Markdown. */
  default: string;
  doc: string;
}

function code(text: string): string {
  return `\`${text}\``;
}

function typeOf(field: Spec): string {
  switch (field.kind) {
    case 'integer':
      return `integer, ${field.min} to ${field.max}${field.unit === 'ms' ? ' (ms)' : ''}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return field.values.map(code).join(' or ');
    case 'string':
      return field.rule.type ?? field.rule.expect.replace(/^must be /, '');
    case 'custom':
      return field.type;
    case 'section':
      return 'mapping';
    case 'variants':
      return 'mapping, by agent';
  }
}

function defaultOf(field: Spec): string {
  if (field.presence === 'required') return '**required**';
  if (field.kind === 'custom' && field.defaultText !== undefined) return field.defaultText;
  if (isDerived(field.default)) return field.default.text;
  if (typeof field.default === 'string') return code(field.default);
  if (field.default !== undefined) return code(JSON.stringify(field.default));
  if (field.kind === 'section') return field.presence === 'optional' ? 'none (off)' : 'every key its default';
  return 'none';
}

function entry(path: string, field: Spec): Entry {
  return { path, type: typeOf(field), default: defaultOf(field), doc: field.doc };
}

/**
 * Every key, depth first, in declaration order (the order of the examples and of messages).
 * `variant` marks the keys of one service agent, since agents may share key names.
 */
export function entries(shape: Shape = CONFIG.keys, base = '', variant = ''): Entry[] {
  const out: Entry[] = [];
  for (const [key, field] of Object.entries(shape) as Array<[string, Field<unknown>]>) {
    const path = base === '' ? key : `${base}.${key}`;
    out.push(entry(`${path}${variant}`, field));
    if (field.kind === 'section') out.push(...entries(field.keys, path, variant));
    if (field.kind === 'custom') {
      for (const form of field.forms ?? []) {
        const formPath = `${path}.${form.key}${variant}`;
        out.push(
          'field' in form
            ? entry(formPath, form.field)
            : { path: formPath, type: form.type, default: 'none', doc: form.doc },
        );
      }
    }
    if (field.kind === 'variants') {
      const names = Object.keys(field.variants);
      out.push({
        path: `${path}.${field.tag}`,
        type: names.map(code).join(' or '),
        default: '**required**',
        doc: `${field.tagDoc} Named in the contract, not available yet: ${field.planned.map(code).join(', ')}.`,
      });
      for (const [name, variant] of Object.entries(field.variants)) {
        out.push({
          path: `${path} (${field.tag}: ${name})`,
          type: 'mapping',
          default: '',
          doc: `${variant.doc}${variant.gracefulFencing ? '' : ' It has no graceful fencing.'}`,
        });
        out.push(...entries(variant.keys, path, ` (${field.tag}: ${name})`));
      }
    }
  }
  return out;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function renderReference(): string {
  const list = entries();
  const lines = [
    '# hafc configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`; do not edit. -->',
    '',
    'One YAML file per managed service instance, e.g. `/etc/hafc/NAME.yaml`, checked by',
    '`hafc check-config FILE`. Unknown keys are errors, and every error names the key and the value.',
    `Every duration is in milliseconds and at most ${MAX_DURATION_MS} (10 minutes). A section left out, or`,
    'with every line commented out, takes the defaults of its keys. For completion and checking in an',
    'editor, use the JSON Schema [hafc.schema.json](hafc.schema.json), e.g. with a first line',
    '`# yaml-language-server: $schema=/usr/lib/node_modules/hafc/docs/hafc.schema.json`.',
    '',
    'A command is a list (argv, run without a shell) or a string (run with `/bin/sh -c`).',
    '',
    '| Key | Type | Default |',
    '| --- | --- | --- |',
    ...list.map((e) => `| [${cell(e.path)}](#${anchor(e.path)}) | ${cell(e.type)} | ${cell(e.default)} |`),
    '',
  ];
  for (const e of list) {
    lines.push(`## ${e.path}`, '');
    if (e.default === '') lines.push(`Type: ${e.type}.`, '');
    else lines.push(`Type: ${e.type}. Default: ${e.default}.`, '');
    lines.push(e.doc, '');
  }
  return lines.join('\n');
}

/** GitHub's heading anchors: lower case, spaces to "-", punctuation other than "-" and "_" dropped. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}
