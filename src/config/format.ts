/**
 * Wording shared by the structural validator and the timing rules, so that the same fault gets the
 * same message whichever of them finds it (tests assert full strings).
 */

const MAX_SHOWN = 80;

/** Renders a value from the YAML file the way the operator would recognise it in the file. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') {
    return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN - 3)}...` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // A YAML file cannot produce a cycle through toJS, but a programmatic caller could.
    text = Object.prototype.toString.call(value);
  }
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 3)}...` : text;
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
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
