/**
 * The kit the config is declared with (schema.ts): each key once, with its type, bounds, default
 * and meaning. The reader (read.ts) validates with it, json-schema.ts and reference.ts describe
 * it, and `Infer` turns it into the TypeScript type the rest of the code reads.
 *
 * Why not zod, valibot or typebox (all three were tried on this config): none reports the value
 * at fault with the key in our wording without a custom message on nearly every node; none puts
 * a derived default (requestTimeoutMs from sessionTimeoutMs) or a shorthand form (`- ssh`,
 * `check: {tcp: "h:p"}`) into its JSON Schema, so those would be hand-written anyway; and each
 * adds a runtime dependency (2-8 MB installed) to a safety-critical agent for what is here ~200 lines.
 */
import type { StringRule } from './rules.js';
import type { Problems } from './problems.js';

/** What a key does when the file leaves it out. */
export type Presence = 'required' | 'default' | 'optional';

/** What a derived default may read besides the section's other values. */
export interface Context {
  hostname: string;
}

/** A default computed when the config is read; `text` is how the reference shows it. */
export interface Derived<T> {
  text: string;
  derive(section: Readonly<Record<string, unknown>>, ctx: Context): T;
}

/** A JSON Schema fragment (draft-07). */
export type JsonSchema = { [key: string]: unknown };

interface Common {
  doc: string;
  presence: Presence;
  /** A literal, or a Derived computed from the section's other keys. */
  default?: unknown;
}

export interface IntegerSpec extends Common {
  kind: 'integer';
  min: number;
  max: number;
  unit?: 'ms';
}

export interface BooleanSpec extends Common {
  kind: 'boolean';
}

export interface EnumSpec extends Common {
  kind: 'enum';
  values: readonly string[];
}

export interface StringSpec extends Common {
  kind: 'string';
  rule: StringRule;
  /** Applied to a valid value, e.g. dropping a trailing slash. */
  normalize?: (value: string) => string;
}

/**
 * One input form (or option of one) of a custom key, for the reference: a declared field, or
 * a type and meaning in words.
 */
export type Form = { key: string } & ({ field: Spec } | { type: string; doc: string });

/** A key with its own reader: several input forms normalised into one output type. */
export interface CustomSpec extends Common {
  kind: 'custom';
  /** Its type in the reference, e.g. "command" or "list of fencing methods". */
  type: string;
  schema: JsonSchema;
  /** How the default is shown in the reference when it is not a plain literal. */
  defaultText?: string;
  forms?: readonly Form[];
  read(p: Problems, value: unknown, path: string, ctx: Context): unknown;
}

export interface SectionSpec extends Common {
  kind: 'section';
  keys: Shape;
}

export interface VariantSpec {
  doc: string;
  keys: Shape;
  /** Whether the agent can ask another node's service to demote (graceful fencing). */
  gracefulFencing: boolean;
  /**
   * The key (of this variant) whose value bounds the agent's to-standby: the lease budget
   * subtracts it. One declaration, so that the timing rules and the agent cannot disagree.
   */
  toStandbyKey: string;
}

/** A mapping whose keys depend on the value of one of them (service.agent). */
export interface VariantsSpec extends Common {
  kind: 'variants';
  tag: string;
  tagDoc: string;
  variants: Readonly<Record<string, VariantSpec>>;
  /** Named in the contract, not built yet: refused as "not available", not as unknown. */
  planned: readonly string[];
}

export type Spec =
  IntegerSpec | BooleanSpec | EnumSpec | StringSpec | CustomSpec | SectionSpec | VariantsSpec;

/** A declared key; `T` (the value the code reads) and `P` exist for `Infer` only. */
export type Field<T, P extends Presence = Presence> = Spec & { presence: P; readonly __out?: T };

/** What a builder returns: its own kind of spec, so its options stay readable (e.g. `.doc`). */
export type Typed<S extends Spec, T, P extends Presence> = S & { presence: P; readonly __out?: T };

export type Shape = Readonly<Record<string, Field<unknown>>>;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type OutOf<F> = F extends { readonly __out?: infer T } ? T : never;

type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends Field<unknown, 'optional'> ? K : never;
}[keyof S];

export type ShapeOut<S extends Shape> = Simplify<
  { -readonly [K in Exclude<keyof S, OptionalKeys<S>>]: OutOf<S[K]> } & {
    -readonly [K in OptionalKeys<S>]?: OutOf<S[K]>;
  }
>;

/** The TypeScript type of a declared key's value. */
export type Infer<F> = OutOf<F>;

interface Doc {
  doc: string;
}

type PresenceOf<O> = O extends { default: unknown }
  ? 'default'
  : O extends { optional: true }
    ? 'optional'
    : 'required';

function presence(o: { default?: unknown; optional?: true }): Presence {
  return o.default !== undefined ? 'default' : o.optional ? 'optional' : 'required';
}

interface Options<T> extends Doc {
  default?: T | Derived<T>;
  optional?: true;
}

export function integer<const O extends Options<number> & { min: number; max: number; unit?: 'ms' }>(
  o: O,
): Typed<IntegerSpec, number, PresenceOf<O>> {
  return { kind: 'integer', presence: presence(o), ...o } as unknown as Typed<
    IntegerSpec,
    number,
    PresenceOf<O>
  >;
}

export function boolean<const O extends Options<boolean>>(o: O): Typed<BooleanSpec, boolean, PresenceOf<O>> {
  return { kind: 'boolean', presence: presence(o), ...o } as unknown as Typed<
    BooleanSpec,
    boolean,
    PresenceOf<O>
  >;
}

export function oneOf<const V extends readonly string[], const O extends Options<V[number]>>(
  values: V,
  o: O,
): Typed<EnumSpec, V[number], PresenceOf<O>> {
  return { kind: 'enum', values, presence: presence(o), ...o } as unknown as Typed<
    EnumSpec,
    V[number],
    PresenceOf<O>
  >;
}

export function string<
  const O extends Options<string> & { rule: StringRule; normalize?: (value: string) => string },
>(o: O): Typed<StringSpec, string, PresenceOf<O>> {
  return { kind: 'string', presence: presence(o), ...o } as unknown as Typed<
    StringSpec,
    string,
    PresenceOf<O>
  >;
}

export function custom<T>() {
  return <const O extends Options<T> & Omit<CustomSpec, keyof Common | 'kind'>>(
    o: O,
  ): Typed<CustomSpec, T, PresenceOf<O>> =>
    ({ kind: 'custom', presence: presence(o), ...o }) as unknown as Typed<CustomSpec, T, PresenceOf<O>>;
}

type SectionPresence<O> = O extends { required: true }
  ? 'required'
  : O extends { optional: true }
    ? 'optional'
    : 'default';

/**
 * A mapping of keys. `required`: the file must have it; `optional`: absent means absent (e.g.
 * zookeeper.auth); neither: absent or null means every key takes its default.
 */
export function section<const S extends Shape, const O extends Doc & { required?: true; optional?: true }>(
  keys: S,
  o: O,
): Typed<SectionSpec & { keys: S }, ShapeOut<S>, SectionPresence<O>> {
  const p: Presence = o.required ? 'required' : o.optional ? 'optional' : 'default';
  return { kind: 'section', keys, doc: o.doc, presence: p } as unknown as Typed<
    SectionSpec & { keys: S },
    ShapeOut<S>,
    SectionPresence<O>
  >;
}

export interface Variant<S extends Shape> extends VariantSpec {
  keys: S;
}

type VariantsOut<Tag extends string, M extends Record<string, Variant<Shape>>> = {
  [V in keyof M & string]: Simplify<{ [K in Tag]: V } & ShapeOut<M[V]['keys']>>;
}[keyof M & string];

/** A required mapping whose `tag` key picks its other keys (one variant per value). */
export function variants<const Tag extends string, const M extends Record<string, Variant<Shape>>>(
  tag: Tag,
  o: Doc & { tagDoc: string; variants: M; planned: readonly string[] },
): Typed<VariantsSpec & { variants: M }, VariantsOut<Tag, M>, 'required'> {
  return { kind: 'variants', tag, presence: 'required', ...o } as unknown as Typed<
    VariantsSpec & { variants: M },
    VariantsOut<Tag, M>,
    'required'
  >;
}

export function isDerived(value: unknown): value is Derived<unknown> {
  return typeof value === 'object' && value !== null && 'derive' in value && 'text' in value;
}
