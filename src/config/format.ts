/**
 * Wording shared by the structural validator and the timing rules, so that the same fault gets the
 * same message whichever of them finds it (tests assert full strings).
 */

const MAX_SHOWN = 80;

/**
 * Characters that would let a config file rewrite the operator's terminal or hide text in a
 * message: C0 and C1 controls, DEL, line and paragraph separators, bidirectional overrides,
 * invisible format characters and unpaired surrogates. JSON.stringify escapes only C0.
 */
const UNSAFE =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with every unsafe character written as an escape (\n, \t, \r or \uXXXX). */
export function escapeControls(text: string): string {
  return text.replace(
    UNSAFE,
    (ch) => NAMED[ch] ?? `\\u${(ch.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`,
  );
}

/** At most `max` characters, marked with "..." when cut. */
export function clip(text: string, max = MAX_SHOWN): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** Renders a value from the YAML file the way the operator would recognise it in the file. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return escapeControls(JSON.stringify(clip(value)));
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // A YAML file cannot produce a cycle through toJS, but a programmatic caller could.
    text = Object.prototype.toString.call(value);
  }
  return escapeControls(clip(text));
}

export function integerRule(min: number, max?: number): string {
  return max === undefined ? `must be an integer >= ${min}` : `must be an integer from ${min} to ${max}`;
}

export function isInteger(value: unknown, min: number, max?: number): value is number {
  return (
    Number.isInteger(value) && (value as number) >= min && (max === undefined || (value as number) <= max)
  );
}

/** Levenshtein distance; the inputs are config keys, so the quadratic table is tiny. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * The closest candidate to a misspelt word, if it is close enough to be a plausible typo. Short
 * words get a tighter bound, or every two-letter key would "suggest" every other one.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const limit = lower.length <= 3 ? 1 : lower.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    // The distance is at least the difference in length: skip the table for a hostile long key.
    if (Math.abs(candidate.length - lower.length) > limit) continue;
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
