/**
 * A fencing target is read from ZooKeeper (the breadcrumb), i.e. from outside. Where its host or
 * port must appear in a URL or an ssh argv, they are first checked to be plainly a host name /
 * IP address and a port number, so a foreign or malicious record cannot redirect a request or
 * smuggle options or shell syntax.
 */
import { RecordError } from '../errors.js';
import type { FenceTarget } from '../service/agent.js';

const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

export function validTargetPort(target: FenceTarget): number {
  const { port } = target;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RecordError(
      `fencing target ${JSON.stringify(target.id)} has an invalid port ${JSON.stringify(port)}`,
    );
  }
  return port;
}

/** The host as given, if it is a host name, IPv4 or IPv6 address; never starts with "-". */
export function validTargetHost(target: FenceTarget): string {
  const { host } = target;
  if (
    typeof host === 'string' &&
    host.length <= 253 &&
    (HOSTNAME.test(host) || (host.includes(':') && IPV6.test(host)))
  ) {
    return host;
  }
  throw new RecordError(
    `fencing target ${JSON.stringify(target.id)} has an invalid host ${JSON.stringify(host)}`,
  );
}

/** `host:port` (IPv6 in brackets) for a URL authority. */
export function targetHostPort(target: FenceTarget): string {
  const host = validTargetHost(target);
  const port = validTargetPort(target);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
