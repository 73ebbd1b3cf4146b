/**
 * Reading a config file (CONTRACT.md section 4): YAML text in, a validated and defaulted
 * HafcConfig out, or one ConfigError listing every problem, each prefixed with the file name.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument, type YAMLError } from 'yaml';
import { ConfigError, errorMessage } from '../errors.js';
import type { HafcConfig } from './types.js';
import { validateConfig, type ValidateOptions } from './validate.js';

export {
  validateTiming,
  leaseBudgetMs,
  detectionTimeMs,
  worstCaseFailoverMs,
  transitionTimeoutMs,
} from './timing.js';

/**
 * A config that failed validation. `problems` holds the message's lines, one per problem, each
 * `config SOURCE: ...`, so callers can print or count them without splitting the message.
 */
export class InvalidConfigError extends ConfigError {
  readonly source: string;
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    const lines = problems.map((problem) => `config ${source}: ${problem}`);
    super(lines.join('\n'));
    this.source = source;
    this.problems = lines;
  }
}

/** yaml's pretty messages end with " at line L, column C:" and a source excerpt; we keep the reason. */
function yamlProblem(err: YAMLError): string {
  const reason = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
  const pos = err.linePos?.[0];
  return pos === undefined
    ? `invalid YAML: ${reason}`
    : `line ${pos.line}, column ${pos.col}: invalid YAML: ${reason}`;
}

/** Parses and validates config text; `source` names it in messages (usually the file path). */
export function parseConfig(text: string, source: string, options: ValidateOptions = {}): HafcConfig {
  const doc = parseDocument(text, { prettyErrors: true });
  // Warnings too (e.g. an unresolved !tag): a safety-critical file should mean exactly one thing.
  const yamlProblems = [...doc.errors, ...doc.warnings].map(yamlProblem);
  if (yamlProblems.length > 0) throw new InvalidConfigError(source, yamlProblems);
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // e.g. an alias to an undefined anchor, or an alias expansion past yaml's safety limit.
    throw new InvalidConfigError(source, [`invalid YAML: ${errorMessage(err)}`]);
  }
  const result = validateConfig(data, options);
  if (result.config === undefined) throw new InvalidConfigError(source, result.problems);
  return result.config;
}

/** Reads and validates a config file; unreadable files are a ConfigError naming path and cause. */
export async function loadConfig(path: string, options: ValidateOptions = {}): Promise<HafcConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config ${path}: cannot read the file: ${errorMessage(err)}`, { cause: err });
  }
  return parseConfig(text, path, options);
}
