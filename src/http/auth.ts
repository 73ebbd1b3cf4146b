/**
 * Bearer-token check for the mutating calls. The token is compared through SHA-256 digests with
 * timingSafeEqual: equal-length inputs whatever the caller sent, so neither the comparison's time
 * nor an early length mismatch tells a caller how much of a guess was right.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError, errorMessage } from '../errors.js';

export type AuthVerdict = 'ok' | 'disabled' | 'missing' | 'wrong';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class BearerAuth {
  private readonly expected: Buffer | null;

  /** `token` null = no token file: every mutating call is refused. */
  constructor(token: string | null) {
    this.expected = token === null ? null : digest(token);
  }

  check(authorization: string | undefined): AuthVerdict {
    if (this.expected === null) return 'disabled';
    if (authorization === undefined) return 'missing';
    const m = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!m) return 'missing';
    return timingSafeEqual(digest(m[1]!), this.expected) ? 'ok' : 'wrong';
  }
}

/**
 * The token in `file` (control.tokenFile), trimmed. Read once at start: a token rotated on disk
 * takes effect at the next restart.
 */
export async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`control.tokenFile: cannot read ${JSON.stringify(file)}: ${errorMessage(err)}`);
  }
  const token = text.trim();
  // The token itself is a secret: say what is wrong with it, never what it is.
  if (token === '')
    throw new ConfigError(
      `control.tokenFile: ${JSON.stringify(file)} is empty; it must hold the bearer token`,
    );
  if (/\s/.test(token))
    throw new ConfigError(
      `control.tokenFile: ${JSON.stringify(file)} must hold one token without spaces or line breaks (got ${token.length} characters with some)`,
    );
  return token;
}
