/**
 * What a string value must look like. Shared by the reader (messages), the JSON Schema (pattern,
 * where a regular expression can say it exactly) and the reference (the `expect` text).
 */
import { isIP } from 'node:net';
import { isInteger } from './format.js';

/**
 * `expect` completes "key: ..." in messages; `test` returns true when the text is fine, else a
 * detail saying what exactly is wrong ("" for none). `pattern` is only set when it is exact.
 */
export interface StringRule {
  expect: string;
  test(value: string): true | string;
  pattern?: string;
  /** How the reference names the type, when `expect` is too long for it. */
  type?: string;
}

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const NAME: StringRule = {
  expect:
    'must match [a-z0-9][a-z0-9_-]{0,62} (lower-case letters, digits, "_" and "-"; at most 63 characters)',
  test: (value) => NAME_PATTERN.test(value) || '',
  pattern: NAME_PATTERN.source,
  type: 'name: [a-z0-9][a-z0-9_-]{0,62}',
};

// Underscores are not DNS but are common in container and compose service names, and resolve.
export const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

function isHost(value: string): boolean {
  return HOSTNAME.test(value) || isIP(value) !== 0;
}

export const HOST: StringRule = {
  expect: 'must be a host name or an IP address',
  test: (value) => isHost(value) || '',
};

/** `host:port`, IPv6 in brackets; returns the parts or what is wrong. */
export function parseHostPort(value: string, minPort: number): { host: string; port: number } | string {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]+)$/.exec(value);
  if (match === null) return '';
  const host = match[1] ?? match[2] ?? '';
  if (match[1] !== undefined ? isIP(host) !== 6 : !isHost(host))
    return `"${host}" is not a host name or IP address`;
  const port = Number(match[3]);
  if (!isInteger(port, minPort, 65535)) return `port ${match[3]} is not from ${minPort} to 65535`;
  return { host, port };
}

export function hostPort(minPort: number): StringRule {
  return {
    expect: 'must be host:port',
    test: (value) => {
      const parsed = parseHostPort(value, minPort);
      return typeof parsed === 'string' ? parsed : true;
    },
  };
}

export const URL_RULE: StringRule = {
  expect: 'must be an http:// or https:// URL',
  test: (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:' || '';
    } catch {
      return '';
    }
  },
};

export const URL_PATH: StringRule = {
  expect: 'must be a URL path starting with "/"',
  test: (value) => value.startsWith('/') || '',
  pattern: '^/',
};

/**
 * Files are read by the agent under systemd, whose working directory is "/": a relative path
 * would silently mean something else than in the shell where the operator tried it.
 */
export const ABSOLUTE_PATH: StringRule = {
  expect: 'must be an absolute file path',
  test: (value) => value.startsWith('/') || '',
  pattern: '^/',
};

const USER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export const USER: StringRule = {
  expect: 'must be a user name',
  test: (value) => USER_PATTERN.test(value) || '',
  pattern: USER_PATTERN.source,
};

export const REGEX: StringRule = {
  expect: 'must be a valid regular expression',
  test: (value) => {
    try {
      new RegExp(value);
      return true;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  },
};

/** What is wrong with `value` as an absolute znode path without trailing slash, if anything. */
function znodePath(value: string): true | string {
  if (!value.startsWith('/')) return 'it does not start with "/"';
  if (value === '/' || value.endsWith('/')) return 'it ends with "/"';
  const parts = value.slice(1).split('/');
  if (parts.some((part) => part === '')) return 'it has an empty segment';
  if (parts.some((part) => part === '.' || part === '..')) return 'it has a "." or ".." segment';
  // ZooKeeper rejects these code points in paths (PathUtils.validatePath).
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]/.test(value))
    return 'it has a control or reserved character';
  if (parts[0] === 'zookeeper') return '/zookeeper is reserved by ZooKeeper';
  return true;
}

export const ROOT: StringRule = {
  expect: 'must be an absolute znode path without a trailing slash, e.g. /hafc',
  test: znodePath,
};

/**
 * The client we use (node-zookeeper-client) splits each server on ":" and has no IPv6 form, so
 * only host names and IPv4 addresses are accepted here.
 */
export const CONNECT: StringRule = {
  expect: 'must be host:port[,host:port...][/chroot]',
  test: (value) => {
    const slash = value.indexOf('/');
    const servers = slash === -1 ? value : value.slice(0, slash);
    if (slash !== -1) {
      const chroot = znodePath(value.slice(slash));
      if (chroot !== true) return `bad chroot: ${chroot}`;
      // Legal in a znode name, but the connect string would read as two server lists.
      if (/[\s,]/.test(value.slice(slash))) return 'bad chroot: it has whitespace or a comma';
    }
    if (servers === '') return 'no server';
    for (const server of servers.split(',')) {
      const match = /^([^:]*):([^:]*)$/.exec(server);
      if (match === null) return `"${server}" is not host:port`;
      const [, host = '', port = ''] = match;
      if (!HOSTNAME.test(host)) return `"${host}" is not a host name or IPv4 address`;
      if (!/^[0-9]+$/.test(port) || !isInteger(Number(port), 1, 65535))
        return `port "${port}" is not from 1 to 65535`;
    }
    return true;
  },
};
