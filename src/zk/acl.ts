/** Digest credentials and the ACL every hafc znode gets when `zookeeper.auth` is set. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { Perm, type Acl } from './types.js';

/** Reads "user:password" (first line; surrounding whitespace ignored). */
export async function readDigestCredentials(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`zookeeper.auth.credentialsFile: cannot read "${file}": ${(err as Error).message}`);
  }
  const line = text.split('\n')[0]?.trim() ?? '';
  const i = line.indexOf(':');
  if (i <= 0 || i === line.length - 1) {
    throw new ConfigError(
      `zookeeper.auth.credentialsFile: "${file}" must hold "user:password" on its first line (got ${line.length} characters without that form)`,
    );
  }
  return line;
}

/** ZooKeeper's digest id: user:base64(sha1("user:password")). */
export function digestId(credentials: string): string {
  const user = credentials.slice(0, credentials.indexOf(':'));
  return `${user}:${createHash('sha1').update(credentials).digest('base64')}`;
}

/** Only these credentials may change anything; the world may read (status from any host). */
export function clusterAcl(credentials: string, worldReadable = true): Acl[] {
  const acl: Acl[] = [{ scheme: 'digest', id: digestId(credentials), perms: Perm.ALL }];
  if (worldReadable) acl.push({ scheme: 'world', id: 'anyone', perms: Perm.READ });
  return acl;
}
