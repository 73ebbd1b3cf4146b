/**
 * Checks that patches/node-zookeeper-client+1.1.3.patch is applied to the installed library
 * (postinstall runs patch-package). The integration tests show the behaviour against a server;
 * this fails fast, and says why, when an install skipped the patch.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);

interface LibException {
  code: number;
  name: string;
  message: string;
}

const Exception = require('node-zookeeper-client/lib/Exception.js') as {
  create(code: number, path?: string): LibException;
};
const Transaction = require('node-zookeeper-client/lib/Transaction.js') as new (cm: unknown) => {
  ops: Array<{ version?: number }>;
  check(path: string, version?: number): unknown;
  setData(path: string, data: Buffer | null, version?: number): unknown;
  remove(path: string, version?: number): unknown;
};
interface LibRecord {
  deserialize(buffer: Buffer, offset: number): number;
  [field: string]: unknown;
}
const jute = require('node-zookeeper-client/lib/jute/index.js') as {
  protocol: Record<string, new (...args: unknown[]) => LibRecord>;
  Request: new (header: unknown, payload: unknown) => { toBuffer(): Buffer };
};
interface LibConnectionManager {
  close(): void;
  state: number;
  connectTimeout: number;
  handshaking: boolean;
  socket: net.Socket;
  pendingBuffer: Buffer | null;
  pendingQueue: Array<{ request: { header: { xid: number; type: number } }; callback: () => void }>;
  onSocketData(chunk: Buffer): void;
  on(event: 'protocolError', listener: (err: Error) => void): void;
}
const ConnectionManager = require('node-zookeeper-client/lib/ConnectionManager.js') as new (
  connect: string,
  options: { sessionTimeout: number; spinDelay: number },
  listener: (state: number) => void,
) => LibConnectionManager;
const WatcherManager = require('node-zookeeper-client/lib/WatcherManager.js') as new () => {
  emit(event: { type: number; path: string }): void;
};

describe('node-zookeeper-client patch', () => {
  it('knows the error codes of ZooKeeper 3.8 and maps unknown ones without throwing', () => {
    expect(Exception.create(-125).name).toBe('QUOTA_EXCEEDED');
    expect(Exception.create(-127).name).toBe('THROTTLED_OP');
    expect(Exception.create(-118).name).toBe('SESSION_MOVED');
    const unknown = Exception.create(-999, '/x');
    expect(unknown).toMatchObject({ code: -999, name: 'UNKNOWN', message: 'Exception: UNKNOWN[-999]@/x' });
  });

  it('keeps version 0 in transactions', () => {
    const cm = new ConnectionManager('127.0.0.1:1', { sessionTimeout: 1000, spinDelay: 10 }, () => {});
    const tx = new Transaction(cm);
    tx.check('/a', 0);
    tx.setData('/a', Buffer.from('x'), 0);
    tx.remove('/a', 0);
    tx.remove('/a');
    expect(tx.ops.map((o) => o.version)).toEqual([0, 0, 0, -1]);
  });

  it('gives each server at most a third of the session to answer the handshake', () => {
    const opts = { sessionTimeout: 3000, spinDelay: 10 };
    expect(new ConnectionManager('127.0.0.1:1', opts, () => {}).connectTimeout).toBe(1000);
    expect(new ConnectionManager('a:1,b:1', opts, () => {}).connectTimeout).toBe(1000);
    expect(new ConnectionManager('a:1,b:1,c:1,d:1,e:1', opts, () => {}).connectTimeout).toBe(600);
  });

  it('close() before connect() closes instead of throwing', () => {
    const states: number[] = [];
    const cm = new ConnectionManager('127.0.0.1:1', { sessionTimeout: 1000, spinDelay: 10 }, (s) =>
      states.push(s),
    );
    expect(() => cm.close()).not.toThrow();
    expect(cm.state).toBe(-2); // CLOSED
  });

  it('ignores watch events of a type it does not know', () => {
    expect(() => new WatcherManager().emit({ type: 7, path: '/x' })).not.toThrow();
  });
});

describe('node-zookeeper-client patch: malformed replies', () => {
  /** A GetDataResponse frame body: data, then a Stat (68 bytes of zeros). */
  function getDataBody(declaredLength: number, data: Buffer): Buffer {
    const len = Buffer.alloc(4);
    len.writeInt32BE(declaredLength, 0);
    return Buffer.concat([len, data, Buffer.alloc(68)]);
  }

  it('decodes a length field only when its bytes are all there', () => {
    const ok = new jute.protocol.GetDataResponse!();
    expect(ok.deserialize(getDataBody(3, Buffer.from('abc')), 0)).toBe(4 + 3 + 68);
    expect(ok.data).toEqual(Buffer.from('abc'));
    const nul = new jute.protocol.GetDataResponse!();
    nul.deserialize(getDataBody(-1, Buffer.alloc(0)), 0);
    expect(nul.data).toBeUndefined();

    // Unpatched: 100 bytes allocated, 71 copied, the rest zeros, delivered as the node's data.
    const cut = getDataBody(100, Buffer.from('abc'));
    expect(() => new jute.protocol.GetDataResponse!().deserialize(cut, 0)).toThrow(
      /jute buffer length 100 at offset 4 exceeds the 75-byte frame/,
    );
    expect(() =>
      new jute.protocol.GetDataResponse!().deserialize(getDataBody(-2, Buffer.alloc(0)), 0),
    ).toThrow(RangeError);
    // Unpatched: a 2 GiB allocation.
    expect(() =>
      new jute.protocol.GetDataResponse!().deserialize(getDataBody(0x7fffffff, Buffer.alloc(0)), 0),
    ).toThrow(RangeError);
  });

  it('bounds a vector count by the bytes left, and a long by its 8 bytes', () => {
    const count = Buffer.alloc(4);
    count.writeInt32BE(0x7fffffff, 0);
    const children = new jute.protocol.GetChildren2Response!();
    expect(() => children.deserialize(Buffer.concat([count, Buffer.alloc(68)]), 0)).toThrow(
      /jute vector<ustring> length 2147483647/,
    );
    // Unpatched: a Stat cut short decoded its longs as zeros.
    expect(() => new jute.protocol.ExistsResponse!().deserialize(Buffer.alloc(60), 0)).toThrow(/jute long/);
  });

  it('ends the ConnectRequest with the readOnly byte (false)', () => {
    const request = new jute.Request(
      null,
      new jute.protocol.ConnectRequest!(0, Buffer.alloc(8), 4000, Buffer.alloc(8), Buffer.alloc(16)),
    ).toBuffer();
    expect(request.readInt32BE(0)).toBe(45);
    expect(request.length).toBe(49);
    expect(request.at(-1)).toBe(0);
  });

  /** A manager past its handshake, on a real (unconnected) socket it can destroy. */
  function connectedManager(): { cm: LibConnectionManager; errors: Error[] } {
    const cm = new ConnectionManager('127.0.0.1:1', { sessionTimeout: 3000, spinDelay: 10 }, () => {});
    cm.socket = new net.Socket();
    cm.handshaking = false;
    cm.state = 2; // CONNECTED
    const errors: Error[] = [];
    cm.on('protocolError', (err) => errors.push(err));
    return { cm, errors };
  }

  function pingReplies(n: number): Buffer {
    const reply = Buffer.alloc(20);
    reply.writeInt32BE(16, 0);
    reply.writeInt32BE(-2, 4); // xid of a ping
    return Buffer.concat(Array.from({ length: n }, () => reply));
  }

  it('reads any number of replies from one buffer (the recursion it replaces overflowed the stack)', () => {
    const { cm, errors } = connectedManager();
    const burst = pingReplies(20_000);
    // Split inside a frame: the tail must wait for the rest of it.
    expect(() => cm.onSocketData(burst.subarray(0, burst.length - 7))).not.toThrow();
    expect(cm.pendingBuffer?.length).toBe(13);
    cm.onSocketData(burst.subarray(burst.length - 7));
    expect(cm.pendingBuffer).toBeNull();
    expect(errors).toEqual([]);
    expect(cm.socket.destroyed).toBe(false);
  });

  it.each([
    ['over 16 MiB', 16 * 1024 * 1024 + 1],
    ['negative', -5],
  ])('drops the connection on a length prefix %s instead of buffering', (_name, size) => {
    const { cm, errors } = connectedManager();
    const prefix = Buffer.alloc(4);
    prefix.writeInt32BE(size, 0);
    cm.onSocketData(Buffer.concat([pingReplies(1), prefix, Buffer.alloc(100)]));
    expect(cm.socket.destroyed).toBe(true);
    expect(cm.pendingBuffer).toBeNull();
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringContaining(`frame length ${size} is not between 0 and 16777216; dropped the connection`),
    ]);
  });

  it('keeps a request whose reply was bad queued, so the connection loss fails it', () => {
    const { cm, errors } = connectedManager();
    const packet = { request: { header: { xid: 7, type: 4 } }, callback: () => {} };
    cm.pendingQueue.push(packet);
    const reply = Buffer.alloc(20 + 10);
    reply.writeInt32BE(26, 0);
    reply.writeInt32BE(7, 4); // the right xid, err 0, then a GetDataResponse cut short
    reply.writeInt32BE(50, 20);
    cm.onSocketData(reply);
    expect(cm.socket.destroyed).toBe(true);
    expect(cm.pendingQueue).toEqual([packet]);
    expect(errors[0]?.message).toMatch(/reply to request type 4: jute buffer length 50/);
  });
});
