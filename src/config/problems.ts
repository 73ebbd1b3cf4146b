/**
 * The problems found in one config, collected rather than thrown: an operator fixing a file
 * wants the whole list at once. Every message is escaped here, so a key or value with control
 * characters cannot reach the terminal raw whichever rule wrote the message.
 */
import { clip, escapeControls } from './format.js';

/** Long enough for any honest message; a hostile value cannot make one message megabytes long. */
const MAX_MESSAGE = 1000;
/** A path segment longer than this is a hostile key, not a typo worth printing whole. */
const MAX_KEY_SHOWN = 80;

export type Mapping = Record<string, unknown>;

export function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function has(m: Mapping, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(m, key) && m[key] !== undefined;
}

/** `base.key`; a key from the file is escaped and clipped, since it goes into messages. */
export function join(base: string, key: string): string {
  const safe = escapeControls(clip(key, MAX_KEY_SHOWN));
  return base === '' ? safe : `${base}.${safe}`;
}

function inside(path: string, parent: string): boolean {
  return path.startsWith(`${parent}.`) || path.startsWith(`${parent}[`);
}

/**
 * The most problems listed. A real file has a handful; a hostile one (150k unknown keys) would
 * otherwise print megabytes, burying the first problems, which are the ones to fix first.
 */
export const MAX_PROBLEMS = 100;

/** The line that stands for the problems not listed. */
export function omittedLine(count: number): string {
  return `... and ${count} more problems; fix the ones above first`;
}

export class Problems {
  readonly messages: string[] = [];
  /** Problems found past `limit`: counted, not worded. */
  omitted = 0;
  private readonly badPaths: string[] = [];

  constructor(private readonly limit = Infinity) {}

  /** Whether further messages are only counted (so callers can skip wording them). */
  get full(): boolean {
    return this.messages.length >= this.limit;
  }

  private add(message: () => string): void {
    if (this.full) this.omitted++;
    else this.messages.push(clip(escapeControls(message()), MAX_MESSAGE));
  }

  fail(path: string, message: string): undefined {
    this.add(() => `${path}: ${message}`);
    this.badPaths.push(path);
    return undefined;
  }

  unknownKey(path: string, suggestion: string | undefined): void {
    const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
    this.add(() => `unknown key "${path}"${hint}`);
    this.badPaths.push(path);
  }

  /** Whether `path`, a section or list containing it, or a key or item inside it was reported. */
  isBad(path: string): boolean {
    return this.badPaths.some((bad) => bad === path || inside(path, bad) || inside(bad, path));
  }
}
