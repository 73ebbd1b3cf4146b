/**
 * Checks that patches/node-zookeeper-client+1.1.3.patch is applied to the installed library
 * (postinstall runs patch-package). The integration tests show the behaviour against a server;
 * this fails fast, and says why, when an install skipped the patch.
 */
import { createRequire } from 'node:module';
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
const ConnectionManager = require('node-zookeeper-client/lib/ConnectionManager.js') as new (
  connect: string,
  options: { sessionTimeout: number; spinDelay: number },
  listener: (state: number) => void,
) => { close(): void; state: number; connectTimeout: number };
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
