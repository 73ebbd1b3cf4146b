/**
 * The ZooKeeper session an agent hands to its own next run: id and password in a 0600 file in
 * the runtime directory (systemd's RuntimeDirectory, kept across restarts with
 * RuntimeDirectoryPreserve). An agent restarted within the session timeout (kill -9, a crash,
 * Restart=on-failure) resumes the session, so its lock and member znodes never vanish and no
 * standby takes over; the elector then re-validates the lock, the breadcrumb and the service.
 *
 * The password is a capability over the session, so the file is refused unless it is ours and
 * private, and it is never logged. It is ignored (a fresh session is opened) when it names
 * another cluster, node or ensemble, comes from an earlier boot, or when the process that wrote
 * it is still alive (a second agent with the same config: two clients on one session would take
 * turns on it, so the duplicate-id check must see them as two).
 */
import fs from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../errors.js';

export interface SessionFileRecord {
  formatVersion: 1;
  cluster: string;
  node: string;
  connect: string;
  sessionId: string;
  /** hex of the 16-byte session password */
  password: string;
  pid: number;
  /** /proc/<pid>/stat start time (clock ticks since boot): tells a reused pid apart */
  pidStart: string | null;
  bootId: string | null;
  writtenAt: string;
}

export interface Resumable {
  sessionId: string;
  password: Buffer;
}

function readProc(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

export function bootId(): string | null {
  return readProc('/proc/sys/kernel/random/boot_id')?.trim() ?? null;
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command, which may contain spaces). */
export function processStart(pid: number): string | null {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return null;
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19] ?? null;
}

export class SessionFile {
  readonly file: string;

  constructor(
    readonly dir: string,
    private readonly ident: { cluster: string; node: string; connect: string },
  ) {
    this.file = path.join(dir, `${ident.cluster}-${ident.node}.session`);
  }

  /** What a new run may resume, or null with the reason (for one log line). */
  load(): { resume: Resumable | null; why: string } {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(this.file);
    } catch {
      return { resume: null, why: 'no session file' };
    }
    if (!st.isFile()) return { resume: null, why: `${this.file} is not a regular file` };
    if ((st.mode & 0o077) !== 0)
      return {
        resume: null,
        why: `${this.file} is readable by others (mode ${(st.mode & 0o777).toString(8)})`,
      };
    if (typeof process.getuid === 'function' && st.uid !== process.getuid())
      return { resume: null, why: `${this.file} belongs to uid ${st.uid}, not to us` };
    // Claimed by an atomic rename: of two processes started at once with this config (a unit
    // started twice after a crash), only one can resume the session; the other opens its own and
    // meets the duplicate-id check.
    const claimed = `${this.file}.claimed-${process.pid}`;
    try {
      fs.renameSync(this.file, claimed);
    } catch {
      return { resume: null, why: 'the session file was claimed by another process' };
    }
    const verdict = this.check(claimed);
    if (verdict.giveBack) {
      try {
        if (!fs.existsSync(this.file)) fs.renameSync(claimed, this.file);
      } catch {
        // a file of its own will be written by its owner's next session
      }
    }
    fs.rmSync(claimed, { force: true });
    return { resume: verdict.resume, why: verdict.why };
  }

  private check(file: string): { resume: Resumable | null; why: string; giveBack?: boolean } {
    let rec: SessionFileRecord;
    try {
      rec = JSON.parse(fs.readFileSync(file, 'utf8')) as SessionFileRecord;
    } catch (err) {
      return { resume: null, why: `${this.file} is unreadable: ${errorMessage(err)}` };
    }
    if (
      rec?.formatVersion !== 1 ||
      typeof rec.sessionId !== 'string' ||
      !/^[0-9a-f]{16}$/.test(rec.sessionId) ||
      typeof rec.password !== 'string' ||
      !/^[0-9a-f]{32}$/.test(rec.password) ||
      typeof rec.pid !== 'number'
    )
      return { resume: null, why: `${this.file} is not a session file of this hafc` };
    if (
      rec.cluster !== this.ident.cluster ||
      rec.node !== this.ident.node ||
      rec.connect !== this.ident.connect
    )
      return { resume: null, why: 'the session file is for another cluster, node or ZooKeeper ensemble' };
    const boot = bootId();
    if (rec.bootId !== null && boot !== null && rec.bootId !== boot)
      return { resume: null, why: 'the session file is from an earlier boot' };
    if (rec.pid !== process.pid) {
      const start = processStart(rec.pid);
      if (start !== null && (rec.pidStart === null || start === rec.pidStart))
        return {
          resume: null,
          why: `the agent that wrote it (pid ${rec.pid}) is still running`,
          giveBack: true,
        };
    }
    return {
      resume: { sessionId: rec.sessionId, password: Buffer.from(rec.password, 'hex') },
      why: 'resumable',
    };
  }

  /** Atomically (write + rename), 0600. Never throws: resumption is an optimisation. */
  save(sessionId: string, password: Buffer): string | null {
    const rec: SessionFileRecord = {
      formatVersion: 1,
      cluster: this.ident.cluster,
      node: this.ident.node,
      connect: this.ident.connect,
      sessionId,
      password: password.toString('hex'),
      pid: process.pid,
      pidStart: processStart(process.pid),
      bootId: bootId(),
      writtenAt: new Date().toISOString(),
    };
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600 });
      fs.renameSync(tmp, this.file);
      return null;
    } catch (err) {
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        // nothing to clean
      }
      return errorMessage(err);
    }
  }

  /** Removes the file if it still names `sessionId` (a closed session cannot be resumed). */
  forget(sessionId: string): void {
    try {
      const rec = JSON.parse(fs.readFileSync(this.file, 'utf8')) as SessionFileRecord;
      if (rec.sessionId === sessionId) fs.rmSync(this.file, { force: true });
    } catch {
      // missing or unreadable: nothing to forget
    }
  }
}

/** Where session files go: $HAFC_RUNTIME_DIR, else systemd's $RUNTIME_DIRECTORY; null = off. */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const d = env.HAFC_RUNTIME_DIR || env.RUNTIME_DIRECTORY?.split(':')[0];
  return d ? d : null;
}
