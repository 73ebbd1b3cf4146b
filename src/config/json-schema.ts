/**
 * docs/hafc.schema.json, generated from the declaration (schema.ts) by `npm run docs:config`, so
 * editors can complete and check hafc YAML files. Draft-07, the draft editors support best. It
 * describes the input forms; what only the loader can say (timing relations, host:port syntax)
 * stays the loader's, so a file the schema accepts may still be refused, never the reverse.
 */
import { isDerived, type JsonSchema, type Shape, type Spec } from './declare.js';
import { CONFIG } from './schema.js';

function shapeSchema(shape: Shape): { properties: JsonSchema; required: string[] } {
  const properties: JsonSchema = {};
  const required: string[] = [];
  for (const [key, field] of Object.entries(shape)) {
    properties[key] = fieldSchema(field);
    if (field.presence === 'required') required.push(key);
  }
  return { properties, required };
}

function closed(shape: Shape, extra: JsonSchema = {}): JsonSchema {
  const { properties, required } = shapeSchema(shape);
  return {
    properties: { ...extra, ...properties },
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
  };
}

function typed(field: Spec): JsonSchema {
  switch (field.kind) {
    case 'integer':
      return { type: 'integer', minimum: field.min, maximum: field.max };
    case 'boolean':
      return { type: 'boolean' };
    case 'enum':
      return { type: 'string', enum: [...field.values] };
    case 'string':
      return { type: 'string', ...(field.rule.pattern === undefined ? {} : { pattern: field.rule.pattern }) };
    case 'custom':
      return field.schema;
    case 'section':
      // A section whose lines are all commented out is null in YAML, and means its defaults.
      return { type: field.presence === 'default' ? ['object', 'null'] : 'object', ...closed(field.keys) };
    case 'variants': {
      const names = Object.keys(field.variants);
      return {
        type: 'object',
        properties: { [field.tag]: { enum: names, description: field.tagDoc } },
        required: [field.tag],
        allOf: Object.entries(field.variants).map(([name, variant]) => ({
          if: { properties: { [field.tag]: { const: name } }, required: [field.tag] },
          then: { description: variant.doc, ...closed(variant.keys, { [field.tag]: { const: name } }) },
        })),
      };
    }
  }
}

function fieldSchema(field: Spec): JsonSchema {
  const literal = field.default !== undefined && !isDerived(field.default) && field.kind !== 'custom';
  return {
    description: isDerived(field.default) ? `${field.doc} Default: ${field.default.text}.` : field.doc,
    ...typed(field),
    ...(literal ? { default: field.default } : {}),
  };
}

export function renderJsonSchema(): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'hafc config',
    ...fieldSchema(CONFIG),
  };
}
