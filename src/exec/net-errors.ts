/**
 * One wording for "could not reach it", whoever tried (the http client, the tcp check): a message
 * names the host and the reason, and a DNS failure reads like any other unreachable server
 * instead of as getaddrinfo's jargon.
 */

/** What getaddrinfo failures surface as in Node (EAI_NONAME / EAI_NODATA become ENOTFOUND). */
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL']);

/** `host` is what was asked for; the error's own `hostname` wins when it has one. */
export function describeNetworkError(err: unknown, host?: string): string {
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    code?: unknown;
    hostname?: unknown;
    message?: unknown;
  };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  if (code !== undefined && DNS_CODES.has(code)) {
    const name = typeof e.hostname === 'string' && e.hostname !== '' ? e.hostname : host;
    return `cannot resolve host ${name ?? '(unknown)'} (${code})`;
  }
  // "socket hang up" alone says little; its code (ECONNRESET) says what happened.
  if (code !== undefined && !message.includes(code)) return `${message} (${code})`;
  return message;
}
