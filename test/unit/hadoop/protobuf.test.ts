import { describe, expect, it } from 'vitest';
import { decodeServiceStatus } from '../../../src/hadoop/ha-service.js';
import { IpcProtocolError } from '../../../src/hadoop/ipc/errors.js';
import {
  decodeResponseHeader,
  encodeRpcRequestHeader,
  splitResponse,
} from '../../../src/hadoop/ipc/headers.js';
import { asSint32, ProtoWriter, readFields, readVarint } from '../../../src/hadoop/ipc/protobuf.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('proto2 wire encoding', () => {
  it("varints: multi-byte, and negative int32 as ten bytes (two's complement, as Java writes it)", () => {
    expect(hex(new ProtoWriter().uint32(1, 300).finish())).toBe('08ac02');
    expect(hex(new ProtoWriter().int32(1, -1).finish())).toBe('08ffffffffffffffffff01');
    expect(hex(new ProtoWriter().uint32(1, 0xffffffff).finish())).toBe('08ffffffff0f');
  });

  it('sint32 is zigzag: -3 (connection context call id) is 5, -1 (retry count) is 1', () => {
    expect(hex(new ProtoWriter().sint32(3, -3).finish())).toBe('1805');
    expect(hex(new ProtoWriter().sint32(5, -1).finish())).toBe('2801');
    expect(hex(new ProtoWriter().sint32(3, -2147483648).finish())).toBe('18ffffffff0f');
    expect(asSint32(5n)).toBe(-3);
    expect(asSint32(0xffffffffn)).toBe(-2147483648);
  });

  it('rejects out-of-range values with the field number and the value', () => {
    expect(() => new ProtoWriter().uint32(3, -1)).toThrow('protobuf field 3: uint32 out of range: -1');
    expect(() => new ProtoWriter().sint32(3, 2 ** 31)).toThrow(
      'protobuf field 3: sint32 out of range: 2147483648',
    );
  });

  it('the RPC request header keeps field order 1,2,3,4,5(,7) and writes zero-valued fields', () => {
    const clientId = Buffer.alloc(16, 0xab);
    const h = encodeRpcRequestHeader({ callId: 0, clientId, retryCount: 0 });
    expect(hex(h)).toBe(`0802100018002210${'ab'.repeat(16)}2800`);
    const fields = [...readFields(h, 'header')].map((f) => f.no);
    expect(fields).toEqual([1, 2, 3, 4, 5]);
  });

  it('a varint longer than ten bytes is an error, not a loop', () => {
    expect(() => readVarint(Buffer.alloc(12, 0xff), 0)).toThrow(IpcProtocolError);
    expect(readVarint(Buffer.from([0x80, 0x80]), 0)).toBeUndefined();
  });

  it('a length-delimited field longer than its message is named', () => {
    expect(() => [...readFields(Buffer.from('0a05abcd', 'hex'), 'Msg')]).toThrow(
      'Msg: field 1 claims 5 bytes but only 2 remain',
    );
  });

  it('wire types 3/4 (groups) are refused', () => {
    expect(() => [...readFields(Buffer.from('0b', 'hex'), 'Msg')]).toThrow(
      'Msg: field 1 has unsupported wire type 3',
    );
  });
});

describe('response decoding', () => {
  it('reads a negative call id written as uint32 (-1: authorization failed)', () => {
    const h = new ProtoWriter().uint32(1, 0xffffffff).enum(2, 2).string(4, 'x.Y').finish();
    expect(decodeResponseHeader(h)).toMatchObject({ callId: -1, status: 'FATAL', exceptionClassName: 'x.Y' });
  });

  it('missing required fields are errors naming them', () => {
    expect(() => decodeResponseHeader(new ProtoWriter().enum(2, 0).finish())).toThrow(
      'RpcResponseHeaderProto: required field callId (1) missing',
    );
    expect(() => decodeResponseHeader(new ProtoWriter().uint32(1, 0).finish())).toThrow(
      'RpcResponseHeaderProto: required field status (2) missing',
    );
    expect(() => decodeServiceStatus(new ProtoWriter().bool(2, true).finish())).toThrow(
      'GetServiceStatusResponseProto: required field state (1) missing',
    );
  });

  it('unknown status values and unknown service states are errors', () => {
    expect(() => decodeResponseHeader(new ProtoWriter().uint32(1, 0).enum(2, 7).finish())).toThrow(
      'RpcResponseHeaderProto: unknown status 7',
    );
    expect(() => decodeServiceStatus(new ProtoWriter().enum(1, 9).finish())).toThrow(
      'unknown HAServiceStateProto value 9',
    );
  });

  it('keeps presence: an absent readyToBecomeActive stays undefined, a false one is false', () => {
    expect(decodeServiceStatus(new ProtoWriter().enum(1, 1).finish()).readyToBecomeActive).toBeUndefined();
    expect(
      decodeServiceStatus(new ProtoWriter().enum(1, 2).bool(2, false).string(3, 'safemode').finish()),
    ).toEqual({ state: 'standby', readyToBecomeActive: false, notReadyReason: 'safemode' });
  });

  it('skips fields it does not know (newer servers add state ids)', () => {
    const h = new ProtoWriter().uint32(1, 4).enum(2, 0).uint32(9, 77).bytes(10, Buffer.from('zz')).finish();
    expect(decodeResponseHeader(h)).toMatchObject({ callId: 4, status: 'SUCCESS' });
  });

  it('a frame whose message length disagrees with the frame is refused', () => {
    const header = new ProtoWriter().uint32(1, 0).enum(2, 0).finish();
    const body = Buffer.concat([Buffer.from([header.length]), header, Buffer.from([5, 1, 2])]);
    expect(() => splitResponse(body)).toThrow('message claims 5 bytes but 2 follow the header');
  });
});
