/**
 * The election's znode operations (lock, breadcrumb, members) on one ZooKeeper session.
 * Ownership of the lock is decided ONLY by `ephemeralOwner === our sessionId`, never by the
 * record inside it: after a CONNECTION_LOSS during create, a NODE_EXISTS may well be our own node.
 */
import { RecordError, ZkError } from '../errors.js';
import type { ClusterPaths } from './paths.js';
import {
  decodeRecord,
  encodeRecord,
  type BreadcrumbRecord,
  type LockRecord,
  type MemberRecord,
} from './records.js';
import { Perm, type Acl, type Stat, type Watcher, type ZkSession } from './types.js';

export const PERSISTENT_OWNER = '0000000000000000';

export type LockView =
  | { state: 'free' }
  | { state: 'ours'; epoch: bigint; version: number }
  | { state: 'theirs'; owner: string; epoch: bigint; record?: LockRecord; recordError?: string }
  /** A persistent node where our ephemeral lock belongs: nobody can ever acquire it. */
  | { state: 'foreign'; detail: string };

export class ClusterStore {
  constructor(
    readonly session: ZkSession,
    readonly paths: ClusterPaths,
    private readonly acl?: Acl[],
  ) {}

  async clusterExists(): Promise<boolean> {
    return (await this.session.exists(this.paths.cluster)) !== null;
  }

  /**
   * `hafc init`: the persistent skeleton. Idempotent. The root (e.g. /hafc) stays open so that
   * clusters with different credentials can share it; the cluster's own subtree gets our ACL.
   */
  async ensureLayout(): Promise<void> {
    const parent = this.paths.cluster.slice(0, this.paths.cluster.lastIndexOf('/'));
    if (parent) await this.session.mkdirp(parent);
    for (const p of [this.paths.cluster, this.paths.members, this.paths.control, this.paths.history]) {
      try {
        await this.session.create(p, null, { mode: 'persistent', acl: this.acl });
      } catch (err) {
        if (!(err instanceof ZkError && err.zkCode === 'NODE_EXISTS')) throw err;
      }
    }
  }

  /**
   * With digest auth configured: the cluster znode must let only our credentials change anything.
   * Returns what is wrong (empty when fine).
   */
  async aclProblems(): Promise<string[]> {
    if (!this.acl) return [];
    const { acl } = await this.session.getACL(this.paths.cluster);
    const problems: string[] = [];
    const writeBits = Perm.WRITE | Perm.CREATE | Perm.DELETE | Perm.ADMIN;
    for (const entry of acl) {
      const ours = this.acl.some((a) => a.scheme === entry.scheme && a.id === entry.id);
      if (!ours && (entry.perms & writeBits) !== 0) {
        problems.push(`${entry.scheme}:${entry.id} may change it (perms ${entry.perms})`);
      }
    }
    const digest = this.acl.find((a) => a.scheme === 'digest');
    if (digest && !acl.some((a) => a.scheme === 'digest' && a.id === digest.id)) {
      problems.push(`our credentials (${digest.id.split(':')[0]}) have no entry`);
    }
    return problems;
  }

  private classify(stat: Stat): LockView {
    if (stat.ephemeralOwner === PERSISTENT_OWNER) {
      return {
        state: 'foreign',
        detail: `${this.paths.lock} is a persistent znode (czxid ${stat.czxid}), not an ephemeral lock`,
      };
    }
    if (stat.ephemeralOwner === this.session.sessionId) {
      return { state: 'ours', epoch: stat.czxid, version: stat.version };
    }
    return { state: 'theirs', owner: stat.ephemeralOwner, epoch: stat.czxid };
  }

  /** Reads the lock (and leaves a watch that fires on its creation, change or deletion). */
  async viewLock(watcher?: Watcher): Promise<LockView> {
    const stat = await this.session.exists(this.paths.lock, watcher);
    return stat ? this.classify(stat) : { state: 'free' };
  }

  /** Holder details for status/logs: never throws on garbage data. */
  async describeLock(): Promise<LockView> {
    try {
      const { data, stat } = await this.session.getData(this.paths.lock);
      const view = this.classify(stat);
      if (view.state === 'theirs') {
        try {
          view.record = decodeRecord('lock', this.paths.lock, data);
        } catch (err) {
          if (!(err instanceof RecordError)) throw err;
          view.recordError = err.message;
        }
      }
      return view;
    } catch (err) {
      if (err instanceof ZkError && err.zkCode === 'NO_NODE') return { state: 'free' };
      throw err;
    }
  }

  /**
   * Creates the ephemeral lock. Returns the view afterwards: 'ours' with the epoch (czxid) on
   * success, otherwise whoever holds it.
   */
  async tryAcquire(record: LockRecord): Promise<LockView> {
    try {
      await this.session.create(this.paths.lock, encodeRecord(record), { mode: 'ephemeral', acl: this.acl });
    } catch (err) {
      if (!(err instanceof ZkError && err.zkCode === 'NODE_EXISTS')) throw err;
    }
    return this.viewLock();
  }

  /** Deletes the lock only if this session owns it (checked by ownership, then by version). */
  async releaseLock(): Promise<void> {
    const view = await this.viewLock();
    if (view.state !== 'ours') return;
    try {
      await this.session.remove(this.paths.lock, view.version);
    } catch (err) {
      if (err instanceof ZkError && err.zkCode === 'NO_NODE') return;
      throw err;
    }
  }

  /**
   * Deletes the lock if (and only if) it is still owned by session `owner`: used for a lock left
   * by an earlier session of this very agent, which we know nobody acts on any more.
   */
  async removeLockOf(owner: string): Promise<boolean> {
    const stat = await this.session.exists(this.paths.lock);
    if (!stat || stat.ephemeralOwner !== owner) return false;
    try {
      await this.session.remove(this.paths.lock, stat.version);
      return true;
    } catch (err) {
      if (err instanceof ZkError && (err.zkCode === 'NO_NODE' || err.zkCode === 'BAD_VERSION')) return false;
      throw err;
    }
  }

  /** null when absent. A record that cannot be parsed is returned as `error` with the raw stat. */
  async readBreadcrumb(): Promise<
    { record: BreadcrumbRecord; stat: Stat } | { error: string; stat: Stat } | null
  > {
    try {
      const { data, stat } = await this.session.getData(this.paths.breadcrumb);
      try {
        return { record: decodeRecord('breadcrumb', this.paths.breadcrumb, data), stat };
      } catch (err) {
        if (err instanceof RecordError) return { error: err.message, stat };
        throw err;
      }
    } catch (err) {
      if (err instanceof ZkError && err.zkCode === 'NO_NODE') return null;
      throw err;
    }
  }

  /**
   * Writes our breadcrumb with compare-and-set on the version we read, so two racing writers
   * cannot both believe they wrote it (the lock already excludes that; this is belt and braces).
   */
  async writeBreadcrumb(record: BreadcrumbRecord, expected: Stat | null): Promise<void> {
    const data = encodeRecord(record);
    if (expected) await this.session.setData(this.paths.breadcrumb, data, expected.version);
    else await this.session.create(this.paths.breadcrumb, data, { mode: 'persistent', acl: this.acl });
  }

  /** Deletes the breadcrumb only if it is still ours (same node id and epoch). */
  async deleteOwnBreadcrumb(nodeId: string, epoch: bigint): Promise<boolean> {
    const bc = await this.readBreadcrumb();
    if (!bc || !('record' in bc)) return false;
    if (bc.record.id !== nodeId || bc.record.epoch !== epoch.toString()) return false;
    try {
      await this.session.remove(this.paths.breadcrumb, bc.stat.version);
      return true;
    } catch (err) {
      if (err instanceof ZkError && (err.zkCode === 'NO_NODE' || err.zkCode === 'BAD_VERSION')) return false;
      throw err;
    }
  }

  /** Creates or replaces our ephemeral member record. */
  async putMember(record: MemberRecord): Promise<void> {
    const path = this.paths.member(record.id);
    const data = encodeRecord(record);
    try {
      await this.session.setData(path, data, -1);
      const stat = await this.session.exists(path);
      if (stat && stat.ephemeralOwner !== this.session.sessionId) {
        // A record left by an earlier session of ours (or an impostor with our id): replace it
        // so it disappears with THIS session.
        await this.session.remove(path, -1);
        await this.session.create(path, data, { mode: 'ephemeral', acl: this.acl });
      }
    } catch (err) {
      if (err instanceof ZkError && err.zkCode === 'NO_NODE') {
        await this.session.create(path, data, { mode: 'ephemeral', acl: this.acl });
        return;
      }
      throw err;
    }
  }

  /** All readable member records; unreadable ones are reported, not thrown. */
  async listMembers(): Promise<{ members: MemberRecord[]; errors: string[] }> {
    const members: MemberRecord[] = [];
    const errors: string[] = [];
    let names: string[];
    try {
      names = await this.session.getChildren(this.paths.members);
    } catch (err) {
      if (err instanceof ZkError && err.zkCode === 'NO_NODE') return { members, errors };
      throw err;
    }
    for (const name of names) {
      const path = this.paths.member(name);
      try {
        const { data } = await this.session.getData(path);
        members.push(decodeRecord('member', path, data));
      } catch (err) {
        if (err instanceof ZkError && err.zkCode === 'NO_NODE') continue;
        if (err instanceof RecordError) errors.push(err.message);
        else throw err;
      }
    }
    return { members, errors };
  }
}
