/**
 * The election's store (election/store.ts) on one ZooKeeper session: the lock, breadcrumb and
 * member znodes of one cluster (docs/znodes.md), plus the skeleton `hafc init` creates.
 *
 * Ownership of the lock is decided ONLY by `ephemeralOwner === our sessionId`, never by the
 * record inside it: after a CONNECTION_LOSS during create, a NODE_EXISTS may well be our own node.
 */
import { RecordError, ZkError } from '../errors.js';
import { HISTORY_LIMIT, type HistoryEntry } from '../election/records.js';
import type {
  BreadcrumbView,
  ControlView,
  ElectionConnection,
  ElectionStore,
  LockHolder,
  LockView,
  MemberList,
  MemberPut,
} from '../election/store.js';
import type { ClusterPaths } from './paths.js';
import {
  appendToHistory,
  decodeControl,
  decodeHistory,
  decodeRecord,
  encodeControl,
  encodeRecord,
  type ControlRecord,
  type BreadcrumbRecord,
  type LockRecord,
  type MemberRecord,
} from './records.js';
import { Perm, type Acl, type Stat, type ZkSession } from './types.js';

export const PERSISTENT_OWNER = '0000000000000000';

/** Member znodes read at once: enough to pipeline, few enough not to flood one connection. */
const MEMBER_READS_IN_FLIGHT = 32;
const MEMBER_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function isCode(err: unknown, ...codes: string[]): err is ZkError {
  return err instanceof ZkError && codes.includes(err.zkCode);
}

export class ZkElectionStore implements ElectionStore {
  /** Member znodes already reported as bad, by path and version: warn once, not per round. */
  private readonly reported = new Map<string, string>();

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
        if (!isCode(err, 'NODE_EXISTS')) throw err;
      }
    }
  }

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

  async viewLock(onChange?: () => void): Promise<LockView> {
    const stat = await this.session.exists(this.paths.lock, onChange ? () => onChange() : undefined);
    return stat ? this.classify(stat) : { state: 'free' };
  }

  async lockHolder(): Promise<LockHolder | null> {
    let got;
    try {
      got = await this.session.getData(this.paths.lock);
    } catch (err) {
      if (isCode(err, 'NO_NODE')) return null;
      throw err;
    }
    const holder: LockHolder = { owner: got.stat.ephemeralOwner, epoch: got.stat.czxid };
    try {
      holder.record = decodeRecord('lock', this.paths.lock, got.data);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      holder.recordError = err.message;
    }
    return holder;
  }

  async tryAcquire(record: LockRecord): Promise<LockView> {
    try {
      await this.session.create(this.paths.lock, encodeRecord(record), { mode: 'ephemeral', acl: this.acl });
    } catch (err) {
      if (!isCode(err, 'NODE_EXISTS')) throw err;
    }
    return this.viewLock();
  }

  async releaseLock(): Promise<void> {
    const view = await this.viewLock();
    if (view.state !== 'ours') return;
    try {
      await this.session.remove(this.paths.lock, view.version);
    } catch (err) {
      if (!isCode(err, 'NO_NODE')) throw err;
    }
  }

  async removeLockOf(owner: string): Promise<boolean> {
    const stat = await this.session.exists(this.paths.lock);
    if (!stat || stat.ephemeralOwner !== owner) return false;
    try {
      await this.session.remove(this.paths.lock, stat.version);
      return true;
    } catch (err) {
      if (isCode(err, 'NO_NODE', 'BAD_VERSION')) return false;
      throw err;
    }
  }

  async readBreadcrumb(onChange?: () => void): Promise<BreadcrumbView> {
    const watcher = onChange ? () => onChange() : undefined;
    let got;
    try {
      got = await this.session.getData(this.paths.breadcrumb, watcher);
    } catch (err) {
      if (!isCode(err, 'NO_NODE')) throw err;
      // getData leaves no watch on a missing node; exists does (it fires on creation).
      if (watcher && (await this.session.exists(this.paths.breadcrumb, watcher)) !== null) {
        return this.readBreadcrumb();
      }
      return null;
    }
    try {
      return {
        record: decodeRecord('breadcrumb', this.paths.breadcrumb, got.data),
        version: got.stat.version,
      };
    } catch (err) {
      if (err instanceof RecordError) return { error: err.message, version: got.stat.version };
      throw err;
    }
  }

  async writeBreadcrumb(record: BreadcrumbRecord, expectedVersion: number | null): Promise<void> {
    const data = encodeRecord(record);
    if (expectedVersion !== null) await this.session.setData(this.paths.breadcrumb, data, expectedVersion);
    else await this.session.create(this.paths.breadcrumb, data, { mode: 'persistent', acl: this.acl });
  }

  async readControl(onChange?: () => void): Promise<ControlView> {
    const watcher = onChange ? () => onChange() : undefined;
    let got;
    try {
      got = await this.session.getData(this.paths.control, watcher);
    } catch (err) {
      if (!isCode(err, 'NO_NODE')) throw err;
      if (watcher && (await this.session.exists(this.paths.control, watcher)) !== null)
        return this.readControl();
      return { record: null, version: null };
    }
    try {
      return { record: decodeControl(this.paths.control, got.data), version: got.stat.version };
    } catch (err) {
      if (err instanceof RecordError) return { error: err.message, version: got.stat.version };
      throw err;
    }
  }

  async writeControl(record: ControlRecord, expectedVersion: number | null): Promise<boolean> {
    const data = encodeControl(record);
    try {
      if (expectedVersion !== null) await this.session.setData(this.paths.control, data, expectedVersion);
      else await this.session.create(this.paths.control, data, { mode: 'persistent', acl: this.acl });
      return true;
    } catch (err) {
      if (isCode(err, 'BAD_VERSION', 'NODE_EXISTS', 'NO_NODE')) return false;
      throw err;
    }
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      let version: number | null = null;
      let rec;
      try {
        const got = await this.session.getData(this.paths.history);
        version = got.stat.version;
        rec = decodeHistory(this.paths.history, got.data).record;
      } catch (err) {
        if (isCode(err, 'NO_NODE')) rec = decodeHistory(this.paths.history, null).record;
        else if (err instanceof RecordError) {
          // An unreadable history is replaced rather than blocking every future entry.
          rec = decodeHistory(this.paths.history, null).record;
        } else throw err;
      }
      rec.cluster = this.paths.cluster.slice(this.paths.cluster.lastIndexOf('/') + 1);
      const data = Buffer.from(JSON.stringify(appendToHistory(rec, entry, HISTORY_LIMIT)), 'utf8');
      try {
        if (version === null)
          await this.session.create(this.paths.history, data, { mode: 'persistent', acl: this.acl });
        else await this.session.setData(this.paths.history, data, version);
        return;
      } catch (err) {
        if (!isCode(err, 'BAD_VERSION', 'NODE_EXISTS')) throw err;
      }
    }
    throw new ZkError('BAD_VERSION', `history ${this.paths.history}: too many concurrent writers`);
  }

  async putMember(record: MemberRecord, replaceable: ReadonlySet<string>): Promise<MemberPut> {
    const path = this.paths.member(record.id);
    const data = encodeRecord(record);
    for (let attempt = 0; attempt < 3; attempt++) {
      const stat = await this.session.exists(path);
      try {
        if (!stat) {
          await this.session.create(path, data, { mode: 'ephemeral', acl: this.acl });
          return { ok: true };
        }
        if (stat.ephemeralOwner === this.session.sessionId) {
          await this.session.setData(path, data, stat.version);
          return { ok: true };
        }
        if (stat.ephemeralOwner === PERSISTENT_OWNER || replaceable.has(stat.ephemeralOwner)) {
          // Left by an earlier session of ours, or a persistent impostor no live agent owns:
          // replace it, so that it disappears with THIS session.
          await this.session.remove(path, stat.version);
          await this.session.create(path, data, { mode: 'ephemeral', acl: this.acl });
          return { ok: true };
        }
      } catch (err) {
        // Someone else changed it between our look and our write: look again.
        if (isCode(err, 'NODE_EXISTS', 'NO_NODE', 'BAD_VERSION')) continue;
        throw err;
      }
      const conflict: MemberPut = { ok: false, owner: stat.ephemeralOwner };
      try {
        const { data: theirs } = await this.session.getData(path);
        conflict.record = decodeRecord('member', path, theirs);
      } catch (err) {
        if (err instanceof RecordError) conflict.recordError = err.message;
        else if (!isCode(err, 'NO_NODE')) throw err;
      }
      return conflict;
    }
    throw new ZkError('BAD_VERSION', `ZooKeeper ${path} kept changing while we published our member record`, {
      path,
    });
  }

  /**
   * Only ephemeral members count: a persistent znode there is no live agent, whatever it claims.
   * Reads are pipelined; each bad znode is reported once per version, not once per election round.
   */
  async listMembers(): Promise<MemberList> {
    const members: MemberRecord[] = [];
    const problems: string[] = [];
    let names: string[];
    try {
      names = await this.session.getChildren(this.paths.members);
    } catch (err) {
      if (isCode(err, 'NO_NODE')) return { members, problems };
      throw err;
    }
    const report = (path: string, version: string, message: string) => {
      if (this.reported.get(path) === version) return;
      this.reported.set(path, version);
      problems.push(message);
    };
    const seen = new Set<string>();
    const readOne = async (name: string): Promise<void> => {
      const path = this.paths.member(name);
      seen.add(path);
      if (!MEMBER_NAME.test(name)) {
        report(path, 'name', `znode ${path}: not a node id, ignored`);
        return;
      }
      let got;
      try {
        got = await this.session.getData(path);
      } catch (err) {
        if (isCode(err, 'NO_NODE')) return;
        throw err;
      }
      const version = `${got.stat.czxid}/${got.stat.version}`;
      if (got.stat.ephemeralOwner === PERSISTENT_OWNER) {
        report(path, version, `znode ${path}: persistent, so no live agent owns it; ignored`);
        return;
      }
      try {
        members.push(decodeRecord('member', path, got.data));
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
        report(path, version, err.message);
      }
    };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) await readOne(names[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(MEMBER_READS_IN_FLIGHT, names.length) }, worker));
    for (const path of this.reported.keys()) if (!seen.has(path)) this.reported.delete(path);
    return { members, problems };
  }
}

/** An ElectionConnection over one ZooKeeper session. */
export class ZkElectionConnection implements ElectionConnection {
  readonly store: ZkElectionStore;

  constructor(
    readonly session: ZkSession,
    paths: ClusterPaths,
    acl?: Acl[],
    /** After close(): e.g. forget the session file (a closed session cannot be resumed). */
    private readonly onClosed?: () => void,
  ) {
    this.store = new ZkElectionStore(session, paths, acl);
  }

  get generation(): number {
    return this.session.generation;
  }
  get sessionId(): string {
    return this.session.sessionId;
  }
  get resumed(): boolean {
    return this.session.resumed;
  }
  get state() {
    return this.session.state;
  }
  get negotiatedTimeoutMs(): number {
    return this.session.negotiatedTimeoutMs;
  }
  get relayAllowanceMs(): number {
    return this.session.relayAllowanceMs;
  }
  get expiryNotBefore(): number {
    return this.session.expiryNotBefore;
  }

  onState(listener: Parameters<ElectionConnection['onState']>[0]): void {
    this.session.on('state', listener);
  }

  async close(): Promise<void> {
    await this.session.close();
    this.onClosed?.();
  }
}
