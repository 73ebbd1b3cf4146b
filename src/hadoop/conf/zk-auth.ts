/**
 * ha.zookeeper.auth and ha.zookeeper.acl (and the RM's hadoop.zk.auth / hadoop.zk.acl), with the
 * `@/path` indirection Hadoop's ZKUtil allows: a value starting with "@" is the name of a file
 * whose content (trimmed) is the value. hafc knows one digest credential (zookeeper.auth) and puts
 * its own ACL on its znodes (those credentials may do anything, the world may read), so only that
 * much of ZKFC's setting carries over; the rest is reported.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, errorMessage } from '../../errors.js';
import { digestId } from '../../zk/acl.js';
import type { Lookup } from './configuration.js';

export interface ZkAuthResult {
  /** "user:password" for hafc's credentials file, when a digest auth was found. */
  credentials?: string;
  notes: string[];
}

const DEFAULT_ACL = 'world:anyone:rwcda';

/** The value, or the content of the file it names with "@"; `confDir` anchors a relative path. */
export function resolveIndirection(found: Lookup, confDir: string): string {
  const v = found.value.trim();
  if (!v.startsWith('@')) return v;
  const file = path.resolve(confDir, v.slice(1));
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(
      `${found.where}: ${found.key}: cannot read the file ${JSON.stringify(file)} it names with "@": ${errorMessage(err)}`,
    );
  }
}

/** Splits Hadoop's comma-separated `scheme:auth` list (ZKUtil.parseAuth). */
function parseAuth(value: string, found: Lookup): { scheme: string; auth: string }[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const i = s.indexOf(':');
      if (i <= 0) {
        throw new ConfigError(
          `${found.where}: ${found.key}: ${JSON.stringify(s)} is not scheme:auth (e.g. digest:user:password)`,
        );
      }
      return { scheme: s.slice(0, i), auth: s.slice(i + 1) };
    });
}

export function translateZkAuth(
  auth: Lookup | undefined,
  acl: Lookup | undefined,
  confDir: string,
): ZkAuthResult {
  const notes: string[] = [];
  let credentials: string | undefined;
  if (auth !== undefined) {
    const entries = parseAuth(resolveIndirection(auth, confDir), auth);
    for (const e of entries) {
      const ok = e.scheme === 'digest' && /^[^:]+:.+$/.test(e.auth);
      if (ok && credentials === undefined) credentials = e.auth;
      else {
        const why =
          e.scheme === 'digest'
            ? ok
              ? 'hafc takes one digest credential, and the first one is used'
              : 'it is not digest:user:password'
            : `hafc supports the digest scheme only, not ${e.scheme}`;
        notes.push(`${auth.key}: the ${e.scheme} entry is not mapped, because ${why}`);
      }
    }
  }
  const aclValue = acl === undefined ? DEFAULT_ACL : resolveIndirection(acl, confDir);
  if (credentials === undefined) {
    if (aclValue !== DEFAULT_ACL && acl !== undefined) {
      notes.push(
        `${acl.key}: ${JSON.stringify(aclValue)} is not mapped, because hafc sets an ACL only with zookeeper.auth (digest), and no digest auth was found; hafc's znodes will be open`,
      );
    }
    return { notes, ...(credentials !== undefined ? { credentials } : {}) };
  }
  const ours = digestId(credentials);
  const entries = aclValue
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const matching = entries.some((e) => e.startsWith(`digest:${ours}:`));
  if (!matching) {
    notes.push(
      `${acl?.key ?? 'ha.zookeeper.acl'}: ${JSON.stringify(aclValue)} is not mapped as written: hafc gives its znodes the ACL digest:${ours}:cdrwa (the auth's credentials) plus world:anyone:r`,
    );
  } else if (entries.length > 1 || !entries[0]?.endsWith(':rwcda')) {
    notes.push(
      `${acl?.key ?? 'ha.zookeeper.acl'}: only the entry for the auth's user carries over; hafc's ACL is digest:${ours}:cdrwa plus world:anyone:r`,
    );
  } else {
    notes.push(
      `${acl?.key ?? 'ha.zookeeper.acl'}: hafc's ACL also lets the world read its znodes (world:anyone:r), which ZKFC's ACL does not`,
    );
  }
  return { credentials, notes };
}
