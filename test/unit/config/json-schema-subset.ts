/**
 * A validator for the subset of JSON Schema draft-07 that src/config/json-schema.ts emits, so the
 * unit tests can check the generated schema against real config files. It throws on a keyword it
 * does not know: a generator change that uses a new keyword must teach it here, not be ignored.
 */
type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set(['$schema', 'title', 'description', 'default']);

function typeOk(type: string, value: unknown): boolean {
  switch (type) {
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'integer':
      return Number.isInteger(value);
    case 'null':
      return value === null;
    default:
      return typeof value === type;
  }
}

/** The reasons `value` fails `schema`, as "path: keyword"; empty when it passes. */
export function schemaErrors(schema: Schema, value: unknown, path = '$'): string[] {
  const errors: string[] = [];
  const fail = (what: string) => errors.push(`${path}: ${what}`);
  for (const [keyword, arg] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword) || keyword === 'then') continue;
    const object = typeOk('object', value) ? (value as Record<string, unknown>) : undefined;
    switch (keyword) {
      case 'type': {
        const types = Array.isArray(arg) ? (arg as string[]) : [arg as string];
        if (!types.some((t) => typeOk(t, value))) fail(`type ${types.join('|')}`);
        break;
      }
      case 'properties':
        for (const [key, sub] of Object.entries(arg as Record<string, Schema>)) {
          if (object && key in object) errors.push(...schemaErrors(sub, object[key], `${path}.${key}`));
        }
        break;
      case 'required':
        for (const key of arg as string[]) if (object && !(key in object)) fail(`required ${key}`);
        break;
      case 'additionalProperties': {
        if (arg !== false) throw new Error(`additionalProperties ${String(arg)} is not supported`);
        const known = Object.keys((schema.properties as Schema | undefined) ?? {});
        for (const key of Object.keys(object ?? {})) if (!known.includes(key)) fail(`unknown ${key}`);
        break;
      }
      case 'enum':
        if (!(arg as unknown[]).includes(value)) fail('enum');
        break;
      case 'const':
        if (value !== arg) fail('const');
        break;
      case 'minimum':
        if (typeof value === 'number' && value < (arg as number)) fail('minimum');
        break;
      case 'maximum':
        if (typeof value === 'number' && value > (arg as number)) fail('maximum');
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(arg as string, 'u').test(value)) fail('pattern');
        break;
      case 'minLength':
        if (typeof value === 'string' && value.length < (arg as number)) fail('minLength');
        break;
      case 'minItems':
        if (Array.isArray(value) && value.length < (arg as number)) fail('minItems');
        break;
      case 'items':
        if (Array.isArray(value))
          value.forEach((item, i) => errors.push(...schemaErrors(arg as Schema, item, `${path}[${i}]`)));
        break;
      case 'oneOf': {
        const passing = (arg as Schema[]).filter((sub) => schemaErrors(sub, value, path).length === 0);
        if (passing.length !== 1) fail(`oneOf (${passing.length} match)`);
        break;
      }
      case 'allOf':
        for (const sub of arg as Schema[]) errors.push(...schemaErrors(sub, value, path));
        break;
      case 'if':
        if (schemaErrors(arg as Schema, value, path).length === 0 && schema.then !== undefined)
          errors.push(...schemaErrors(schema.then as Schema, value, path));
        break;
      default:
        throw new Error(`keyword ${keyword} is not supported by this test validator`);
    }
  }
  return errors;
}
