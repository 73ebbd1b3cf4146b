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

export class Problems {
  readonly messages: string[] = [];
  private readonly badPaths: string[] = [];

  fail(path: string, message: string): undefined {
    this.messages.push(clip(escapeControls(`${path}: ${message}`), MAX_MESSAGE));
    this.badPaths.push(path);
    return undefined;
  }

  unknownKey(path: string, suggestion: string | undefined): void {
    const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
    this.messages.push(clip(escapeControls(`unknown key "${path}"${hint}`), MAX_MESSAGE));
    this.badPaths.push(path);
  }

  /** Whether `path`, a section or list containing it, or a key or item inside it was reported. */
  isBad(path: string): boolean {
    return this.badPaths.some((bad) => bad === path || inside(path, bad) || inside(bad, path));
  }
}
