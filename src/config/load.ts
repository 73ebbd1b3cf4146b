/**
 * Reading a config file (docs/config.md): YAML text in, a validated and defaulted
 * HafcConfig out, or one ConfigError listing every problem, each prefixed with the file name.
 */
import { ConfigError } from '../errors.js';
import { escapeControls } from './format.js';
import { MAX_PROBLEMS, omittedLine } from './problems.js';
import { readConfigFile } from './read-file.js';
import type { HafcConfig } from './types.js';
import { validateConfig, type ValidateOptions } from './validate.js';
import { parseYaml } from './yaml.js';

export {
  validateTiming,
  leaseBudgetMs,
  detectionTimeMs,
  worstCaseFailoverMs,
  transitionTimeoutMs,
} from './timing.js';
export { MAX_CONFIG_BYTES } from './read-file.js';
export { MAX_DEPTH } from './yaml.js';
export { MAX_PROBLEMS } from './problems.js';

/**
 * A config that failed validation. `problems` holds the message's lines, one per problem, each
 * `config SOURCE: ...`, so callers can print or count them without splitting the message.
 */
export class InvalidConfigError extends ConfigError {
  readonly source: string;
  readonly problems: readonly string[];
  /** `omitted`: problems found but not worded (past MAX_PROBLEMS), counted in the last line. */
  constructor(source: string, problems: readonly string[], omitted = 0) {
    const prefix = `config ${escapeControls(source)}`;
    // Escaped again here (it is idempotent): no message reaches a terminal with a control byte.
    const lines = problems.slice(0, MAX_PROBLEMS).map((problem) => `${prefix}: ${escapeControls(problem)}`);
    const more = Math.max(0, problems.length - MAX_PROBLEMS) + omitted;
    if (more > 0) lines.push(`${prefix}: ${omittedLine(more)}`);
    super(lines.join('\n'));
    this.source = source;
    this.problems = lines;
  }
}

/** Parses and validates config text; `source` names it in messages (usually the file path). */
export function parseConfig(text: string, source: string, options: ValidateOptions = {}): HafcConfig {
  const yaml = parseYaml(text);
  if (yaml.problems.length > 0) throw new InvalidConfigError(source, yaml.problems, yaml.omitted);
  const result = validateConfig(yaml.data, options);
  if (result.config === undefined) throw new InvalidConfigError(source, result.problems, result.omitted);
  return result.config;
}

/** Reads and validates a config file; unreadable files are a ConfigError naming path and cause. */
export async function loadConfig(path: string, options: ValidateOptions = {}): Promise<HafcConfig> {
  return parseConfig(await readConfigFile(path), path, options);
}
