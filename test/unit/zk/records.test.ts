import { describe, expect, it } from 'vitest';
import { RecordError } from '../../../src/errors.js';
import {
  decodeRecord,
  encodeRecord,
  FORMAT_VERSION,
  type BreadcrumbRecord,
} from '../../../src/zk/records.js';

const P = '/hafc/ns1/breadcrumb';
const good: BreadcrumbRecord = {
  formatVersion: FORMAT_VERSION,
  kind: 'breadcrumb',
  cluster: 'ns1',
  id: 'nn1',
  host: 'nn1.example.com',
  port: 8020,
  epoch: '18446744073709551615',
  writtenAt: '2026-11-22T00:00:00.000Z',
};

function decodeErr(data: Buffer | null): string {
  try {
    decodeRecord('breadcrumb', P, data);
  } catch (err) {
    expect(err).toBeInstanceOf(RecordError);
    return (err as Error).message;
  }
  throw new Error('decodeRecord accepted bad data');
}

describe('znode records', () => {
  it('round-trips a record, including the largest u64 epoch', () => {
    expect(decodeRecord('breadcrumb', P, encodeRecord(good))).toEqual(good);
  });

  it('names the znode and the value for garbage', () => {
    expect(decodeErr(null)).toBe(`znode ${P}: empty, expected a breadcrumb record`);
    expect(decodeErr(Buffer.from('\u0000garbage{'))).toBe(`znode ${P}: not JSON, got "?garbage{"`);
    expect(decodeErr(Buffer.from('[1,2]'))).toBe(`znode ${P}: expected a JSON object, got "[1,2]"`);
    expect(decodeErr(Buffer.from('{"x":1}'))).toBe(
      `znode ${P}: formatVersion must be a positive integer, got undefined (not written by hafc?)`,
    );
  });

  it('refuses a newer major format clearly', () => {
    const msg = decodeErr(encodeRecord({ ...good, formatVersion: FORMAT_VERSION + 1 }));
    expect(msg).toBe(
      `znode ${P}: record format ${FORMAT_VERSION + 1} is newer than this agent understands (${FORMAT_VERSION}); upgrade hafc on this host`,
    );
  });

  it('refuses a record of another kind', () => {
    expect(decodeErr(encodeRecord({ ...good, kind: 'lock' } as never))).toBe(
      `znode ${P}: kind must be "breadcrumb", got "lock"`,
    );
  });

  it('validates fields a fencing hook will receive', () => {
    expect(decodeErr(encodeRecord({ ...good, epoch: '18446744073709551616' }))).toBe(
      `znode ${P}: field epoch is invalid, got "18446744073709551616"`,
    );
    expect(decodeErr(encodeRecord({ ...good, id: 'NN1; rm -rf /' }))).toBe(
      `znode ${P}: field id is invalid, got "NN1; rm -rf /"`,
    );
    expect(decodeErr(encodeRecord({ ...good, port: 70000 }))).toBe(
      `znode ${P}: field port is invalid, got 70000`,
    );
  });

  it('refuses oversized data before parsing it', () => {
    expect(decodeErr(Buffer.alloc(100_000, 0x20))).toBe(
      `znode ${P}: 100000 bytes is larger than a breadcrumb record may be (65536)`,
    );
  });
});
