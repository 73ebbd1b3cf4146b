/**
 * Parsing of the ZooKeeper connect string ("host:port,host:port[/chroot]"). The library accepts
 * almost anything here and fails later and obscurely (an empty host becomes a DNS lookup of "",
 * a typo'd port a connection to port NaN, an IPv6 literal is split at its first colon), so we
 * validate up front and hand the library a normalised string.
 */
import { ConfigError } from '../errors.js';

export interface ZkServerAddress {
  host: string;
  port: number;
}

export interface ParsedConnectString {
  servers: ZkServerAddress[];
  /** undefined when no chroot was given (or just "/"). */
  chroot: string | undefined;
  /** What we pass to the library: whitespace removed, default ports filled in. */
  normalized: string;
}

export const DEFAULT_ZK_PORT = 2181;

const HOST_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/;

export function parseConnectString(value: unknown): ParsedConnectString {
  const fail = (reason: string): never => {
    throw new ConfigError(`zookeeper.connect ${JSON.stringify(value)} is invalid: ${reason}`);
  };
  if (typeof value !== 'string') return fail('it must be a string like "zk1:2181,zk2:2181[/chroot]"');
  const text = value.trim();
  if (text === '') return fail('it is empty; expected "host:port[,host:port...][/chroot]"');

  const slash = text.indexOf('/');
  const hostPart = slash === -1 ? text : text.slice(0, slash);
  const chrootPart = slash === -1 ? '' : text.slice(slash);

  if (hostPart.trim() === '') return fail('no host before the chroot');
  const servers = hostPart.split(',').map((raw, i) => parseServer(raw.trim(), i + 1, fail));
  const chroot = chrootPart === '' || chrootPart === '/' ? undefined : validateChroot(chrootPart, fail);

  const normalized = servers.map((s) => `${s.host}:${s.port}`).join(',') + (chroot ?? '');
  return { servers, chroot, normalized };
}

function parseServer(entry: string, index: number, fail: (reason: string) => never): ZkServerAddress {
  if (entry === '') return fail(`server #${index} is empty (stray comma?)`);
  if (entry.startsWith('[') || (entry.match(/:/g)?.length ?? 0) > 1) {
    return fail(
      `server #${index} "${entry}" looks like an IPv6 literal, which the ZooKeeper client cannot use`,
    );
  }
  const colon = entry.indexOf(':');
  const host = colon === -1 ? entry : entry.slice(0, colon);
  const portText = colon === -1 ? undefined : entry.slice(colon + 1);
  if (host === '') return fail(`server #${index} "${entry}" has no host`);
  if (/\s/.test(host) || !host.split('.').every((label) => HOST_LABEL.test(label))) {
    return fail(`server #${index} "${entry}" has an invalid host name "${host}"`);
  }
  let port = DEFAULT_ZK_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return fail(`server #${index} "${entry}" has an invalid port "${portText}" (expected 1-65535)`);
    }
    port = Number(portText);
  }
  return { host, port };
}

function validateChroot(chroot: string, fail: (reason: string) => never): string {
  if (chroot.endsWith('/')) return fail(`chroot "${chroot}" must not end with "/"`);
  for (const segment of chroot.slice(1).split('/')) {
    if (segment === '') return fail(`chroot "${chroot}" has an empty path segment`);
    if (segment === '.' || segment === '..') return fail(`chroot "${chroot}" must not contain "." or ".."`);
    if (
      /[,\s]/.test(segment) ||
      [...segment].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)
    ) {
      return fail(`chroot "${chroot}" contains whitespace, a comma or a control character`);
    }
  }
  return chroot;
}
