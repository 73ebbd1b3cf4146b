/**
 * Force a server-side session expiry, the way ZooKeeper's own test suites do it: attach a second
 * client to the same session id and password, then close that client. Closing ends the session
 * for everyone, so the original client's next contact with any server is answered "expired".
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

// node-zookeeper-client ships no types, and only src/zk/session.ts may own a full declaration:
// this is the sliver of the API (and of its internals) that the helper touches.
interface ConnectionManagerInternals {
  state: number;
  socket?: { destroy(): void };
  onSocketConnected: () => void;
}
interface NzkClient extends EventEmitter {
  connect(): void;
  close(): void;
  connectionManager: ConnectionManagerInternals;
}
interface NzkModule {
  createClient(
    connectString: string,
    options: {
      sessionTimeout: number;
      spinDelay: number;
      retries: number;
      sessionId: Buffer;
      sessionPassword: Buffer;
    },
  ): NzkClient;
}

const require = createRequire(import.meta.url);
const zookeeper = require('node-zookeeper-client') as NzkModule;

/** ConnectionManager.STATES.CLOSING: in this state a closed socket is never reconnected. */
const CM_CLOSING = -1;

type AttachOutcome = 'closed' | 'expired';

/**
 * Expire `sessionId` (16 hex digits) on the ensemble reachable through `connect`. Resolves only
 * once a fresh attach to the session is answered "expired", so the expiry is committed
 * ensemble-wide, not merely requested. Rejects after `timeoutMs` saying which step was stuck.
 */
export async function expireSession(
  connect: string,
  sessionId: string,
  password: Buffer,
  timeoutMs = 15_000,
): Promise<void> {
  if (!/^[0-9a-fA-F]{16}$/.test(sessionId)) {
    throw new Error(`expireSession: sessionId must be 16 hex digits, got '${sessionId}'`);
  }
  if (!Buffer.isBuffer(password) || password.length !== 16) {
    throw new Error(`expireSession: password must be a 16-byte Buffer, got ${describe(password)}`);
  }
  const id = Buffer.from(sessionId, 'hex');
  const deadline = Date.now() + timeoutMs;
  const history: AttachOutcome[] = [];
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new Error(
        `expireSession(0x${sessionId}): not expired after ${timeoutMs} ms (attach outcomes: ${history.join(', ') || 'none'})`,
      );
    }
    let outcome: AttachOutcome;
    try {
      outcome = await attachOnce(connect, id, password, remaining);
    } catch (err) {
      throw new Error(
        `expireSession(0x${sessionId}) via ${connect}: ${(err as Error).message} (earlier attach outcomes: ${history.join(', ') || 'none'})`,
      );
    }
    history.push(outcome);
    if (outcome === 'expired') return;
  }
}

/** Attach to the session: if it is alive, close it; report what the server said. */
function attachOnce(
  connect: string,
  id: Buffer,
  password: Buffer,
  timeoutMs: number,
): Promise<AttachOutcome> {
  const client = zookeeper.createClient(connect, {
    sessionTimeout: 10_000,
    spinDelay: 100,
    retries: 0,
    sessionId: id,
    sessionPassword: password,
  });
  return new Promise<AttachOutcome>((resolve, reject) => {
    let phase: 'connecting' | 'closing' | 'done' = 'connecting';
    const timer = setTimeout(() => {
      if (phase === 'done') return;
      const was = phase;
      phase = 'done';
      abandon(client);
      reject(
        new Error(
          was === 'connecting'
            ? `no server answered the attach within ${timeoutMs} ms`
            : `close of the attached session not acknowledged within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const finish = (outcome: AttachOutcome): void => {
      if (phase === 'done') return;
      phase = 'done';
      clearTimeout(timer);
      resolve(outcome);
    };
    client.on('connected', () => {
      if (phase !== 'connecting') return;
      phase = 'closing';
      // Only safe once connected: close() during the handshake makes the library misread the
      // handshake reply as a response (and it may throw from its socket handler).
      client.close();
    });
    client.on('disconnected', () => {
      // After close() the library never reconnects; before it, a disconnect just means it is
      // trying the next server.
      if (phase === 'closing') finish('closed');
    });
    client.on('expired', () => {
      abandon(client);
      finish('expired');
    });
    client.on('authenticationFailed', () => {
      abandon(client);
      if (phase !== 'done') {
        phase = 'done';
        clearTimeout(timer);
        reject(new Error('server answered AUTH_FAILED'));
      }
    });
    client.connect();
  });
}

/**
 * Stop a client without its close(): close() mid-handshake is unsafe (see above). In the CLOSING
 * state a socket close is final; a socket still being opened is destroyed as soon as it connects.
 */
function abandon(client: NzkClient): void {
  const cm = client.connectionManager;
  cm.state = CM_CLOSING;
  cm.onSocketConnected = function (this: ConnectionManagerInternals) {
    this.socket?.destroy();
  };
  cm.socket?.destroy();
}

function describe(value: unknown): string {
  return Buffer.isBuffer(value) ? `${value.length} bytes` : typeof value;
}
