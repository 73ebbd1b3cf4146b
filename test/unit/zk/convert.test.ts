import { describe, expect, it } from 'vitest';

import { ZkError } from '../../../src/errors.js';
import {
  checkAcl,
  hex64,
  toStat,
  toWatchEventType,
  toZkError,
  type RawStat,
} from '../../../src/zk/convert.js';

function long(value: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(value);
  return b;
}

describe('toStat', () => {
  it('turns 8-byte fields into bigints, times into ms and the owner into 16 hex digits', () => {
    const raw: RawStat = {
      czxid: long(0x1_0000_0002n),
      mzxid: long(0x7fff_ffff_ffff_fffen),
      pzxid: long(3n),
      ctime: long(1_700_000_000_123n),
      mtime: long(1_700_000_000_456n),
      version: 4,
      cversion: 5,
      aversion: 6,
      ephemeralOwner: long(0x0100_000b_6629_0000n),
      dataLength: 7,
      numChildren: 8,
    };
    expect(toStat(raw)).toEqual({
      czxid: 0x1_0000_0002n,
      mzxid: 0x7fff_ffff_ffff_fffen,
      pzxid: 3n,
      ctime: 1_700_000_000_123,
      mtime: 1_700_000_000_456,
      version: 4,
      cversion: 5,
      aversion: 6,
      ephemeralOwner: '0100000b66290000',
      dataLength: 7,
      numChildren: 8,
    });
  });

  it('refuses a malformed 64-bit field instead of guessing', () => {
    expect(() => hex64(Buffer.alloc(7), 'session id')).toThrow(/session id is not an 8-byte value/);
    expect(hex64(Buffer.alloc(8))).toBe('0000000000000000');
  });
});

describe('errors, events and ACLs', () => {
  it('maps a library exception to ZkError with its code name', () => {
    const lib = Object.assign(new Error('Exception: QUOTA_EXCEEDED[-125]'), {
      code: -125,
      name: 'QUOTA_EXCEEDED',
    });
    const err = toZkError(lib, 'create', '/q/b');
    expect(err).toBeInstanceOf(ZkError);
    expect(err.zkCode).toBe('QUOTA_EXCEEDED');
    expect(err.code).toBe('EZK_QUOTA_EXCEEDED');
    expect(err.path).toBe('/q/b');
    expect(err.message).toBe('ZooKeeper create /q/b failed: QUOTA_EXCEEDED (-125)');
    expect(err.cause).toBe(lib);
  });

  it('never rethrows: unknown shapes become CLIENT_ERROR or UNKNOWN', () => {
    expect(toZkError(new TypeError('boom'), 'getData', '/x').zkCode).toBe('CLIENT_ERROR');
    expect(toZkError('a string', 'getData', '/x').message).toContain('a string');
    expect(toZkError({ code: -999, name: 'Error' }, 'exists', '/x').zkCode).toBe('UNKNOWN');
  });

  it('maps watch event types and drops unknown ones', () => {
    expect([1, 2, 3, 4, 5, -1].map(toWatchEventType)).toEqual([
      'created',
      'deleted',
      'dataChanged',
      'childrenChanged',
      undefined,
      undefined,
    ]);
  });

  it('checks ACL entries with messages naming the entry', () => {
    expect(() => checkAcl({ scheme: 'world', id: 'anyone', perms: 31 }, 0)).not.toThrow();
    expect(() => checkAcl({ scheme: 'digest', id: 'u:h', perms: 32 }, 1)).toThrow(
      /ACL entry #2 \(digest:u:h\) has perms 32; expected 1\.\.31/,
    );
    expect(() => checkAcl({ scheme: '', id: 'x', perms: 1 }, 0)).toThrow(/#1 has an empty scheme/);
  });
});
