/**
 * YAML text to plain data, in time linear in the text and with bounded recursion, whatever the
 * text. yaml's own duplicate-key check (uniqueKeys) compares every key with every other (20k keys
 * take 4 s, 700k over 11 minutes), so it is off and replaced by a Set per mapping; and yaml
 * composes nested collections recursively (100k nested "[" overflowed the stack), so nesting is
 * measured without recursion and refused past MAX_DEPTH before composing.
 */
import { Composer, CST, isScalar, Lexer, LineCounter, Parser, visit, type Document } from 'yaml';
import { errorMessage } from '../errors.js';
import { clip } from './format.js';
import { MAX_PROBLEMS } from './problems.js';

/** hafc's own keys nest 6 deep (fencing.methods[0].http.expectStatus[0]); this leaves room. */
export const MAX_DEPTH = 32;

export interface YamlResult {
  /** Present only when `problems` is empty. */
  data?: unknown;
  problems: string[];
  /** Problems past MAX_PROBLEMS, counted but not worded. */
  omitted?: number;
}

type Position = (offset: number) => string;

function positions(text: string): Position {
  const lines = new LineCounter();
  // The line starts of the whole text; the parser would record them too, but a text refused
  // before parsing needs them as well.
  lines.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  return (offset) => {
    const { line, col } = lines.linePos(offset);
    return `line ${line}, column ${col}`;
  };
}

function tooDeep(at: Position, offset: number): string {
  return `${at(offset)}: nested deeper than ${MAX_DEPTH} levels, the limit for a config file; hafc's keys nest at most 6 deep`;
}

const OPENS = new Set(['flow-map-start', 'flow-seq-start']);
const CLOSES = new Set(['flow-map-end', 'flow-seq-end']);
/** Block indicators that open a collection in place: "- - - x" nests three sequences. */
const COMPACT = new Set(['seq-item-ind', 'explicit-key-ind', 'map-value-ind']);

/**
 * The CST of `text`, or where it first nests past MAX_DEPTH within a line: flow collections
 * ("[[[[", "{a: {a:") or compact block items ("- - - -"). Checked token by token as the lexer
 * yields them, so a megabyte of either is refused after MAX_DEPTH tokens rather than after
 * parsing it all (yaml's parser takes seconds for that, and its composer would then recurse).
 */
function parseCst(text: string): { tokens: CST.Token[] } | { tooDeepAt: number } {
  const parser = new Parser();
  const tokens: CST.Token[] = [];
  let flow = 0;
  let compact = 0;
  let scalarNext = false;
  for (const lexeme of new Lexer().lex(text)) {
    // After a scalar marker comes the scalar's source, whatever it looks like.
    const type = scalarNext ? 'scalar-source' : CST.tokenType(lexeme);
    scalarNext = lexeme === CST.SCALAR;
    if (type !== null && OPENS.has(type)) {
      if (++flow > MAX_DEPTH) return { tooDeepAt: parser.offset };
    } else if (type !== null && CLOSES.has(type)) {
      flow = Math.max(0, flow - 1);
    }
    if (type !== null && COMPACT.has(type)) {
      if (++compact > MAX_DEPTH) return { tooDeepAt: parser.offset };
    } else if (type !== 'space' && !scalarNext) {
      compact = 0;
    }
    for (const token of parser.next(lexeme)) tokens.push(token);
  }
  for (const token of parser.end()) tokens.push(token);
  return { tokens };
}

/** Where any collection (block or flow) first nests past MAX_DEPTH, walking the CST with a stack. */
function cstTooDeep(tokens: readonly CST.Token[]): number | undefined {
  const stack: Array<[CST.Token, number]> = tokens.map((token) => [token, 0]);
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [token, depth] = next;
    if (token.type === 'document') {
      if (token.value) stack.push([token.value, depth]);
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth + 1 > MAX_DEPTH) return token.offset;
      for (const item of token.items) {
        if ('key' in item && item.key) stack.push([item.key, depth + 1]);
        if (item.value) stack.push([item.value, depth + 1]);
      }
    }
  }
  return undefined;
}

/**
 * Duplicate keys, as yaml's uniqueKeys would report them but with a Set per mapping. Keys are
 * compared as the strings they become in the data: `1` and `"1"` would silently overwrite.
 */
function duplicateKeys(doc: Document.Parsed, at: Position): YamlResult {
  const problems: string[] = [];
  let omitted = 0;
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, number>();
      for (const pair of map.items) {
        const key = pair.key;
        if (!isScalar(key)) continue;
        const name = String(key.value);
        const offset = key.range?.[0] ?? 0;
        const first = seen.get(name);
        if (first === undefined) seen.set(name, offset);
        else if (problems.length >= MAX_PROBLEMS) omitted++;
        else
          problems.push(
            `${at(offset)}: invalid YAML: duplicate key ${JSON.stringify(clip(name))} (first at ${at(first)}); a key may appear once per mapping`,
          );
      }
    },
  });
  return { problems, omitted };
}

export function parseYaml(text: string): YamlResult {
  const at = positions(text);
  const cst = parseCst(text);
  if ('tooDeepAt' in cst) return { problems: [tooDeep(at, cst.tooDeepAt)] };
  const { tokens } = cst;
  // Indentation nests too; a line can only start so far right, so this bound is cheap to reach.
  const deep = cstTooDeep(tokens);
  if (deep !== undefined) return { problems: [tooDeep(at, deep)] };

  const docs = [...new Composer({ uniqueKeys: false }).compose(tokens, true, text.length)];
  const [doc, second] = docs;
  if (doc === undefined) return { data: null, problems: [] };
  // Warnings too (e.g. an unresolved !tag): a safety-critical file should mean exactly one thing.
  const problems = [...doc.errors, ...doc.warnings].map(
    (err) => `${at(err.pos[0])}: invalid YAML: ${err.message.split('\n')[0] ?? ''}`,
  );
  if (second !== undefined) {
    problems.push(
      `${at(second.range[0])}: invalid YAML: a second YAML document starts here; a config file holds exactly one`,
    );
  }
  if (problems.length > 0) return { problems };
  const duplicates = duplicateKeys(doc, at);
  if (duplicates.problems.length > 0) return duplicates;
  try {
    return { data: doc.toJS(), problems: [] };
  } catch (err) {
    // e.g. an alias to an undefined anchor, or an alias expansion past yaml's safety limit.
    return { problems: [`invalid YAML: ${errorMessage(err)}`] };
  }
}
