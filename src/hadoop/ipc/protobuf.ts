/**
 * The few proto2 wire-format pieces Hadoop's RPC headers and HAServiceProtocol need, by hand.
 *
 * Why not a library: the messages are a handful of small ones, and what matters is exactly what a
 * library may get wrong for us: proto2 field presence (a required enum whose value is 0, like
 * REQUEST_BY_USER, must still be written; an optional field never set must not be), the field
 * order the Java encoder uses (ascending field number, checked byte for byte against captured
 * frames), and a decoder that is strict and bounded on hostile input. Each message is encoded and
 * decoded by explicit code in headers.ts / ha-service.ts, so presence is visible in the source.
 */
import { IpcProtocolError } from './errors.js';

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private varint(value: bigint): void {
    // Negative int32/int64/enum values go on the wire as their 64-bit two's complement (10 bytes).
    let v = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    while (v >= 0x80n) {
      bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(Number(v));
    this.parts.push(Buffer.from(bytes));
  }

  private tag(no: number, wire: number): void {
    this.varint(BigInt((no << 3) | wire));
  }

  uint32(no: number, value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`protobuf field ${no}: uint32 out of range: ${value}`);
    }
    this.tag(no, WIRE_VARINT);
    this.varint(BigInt(value));
    return this;
  }

  /** int32 and enum fields share this encoding. */
  int32(no: number, value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
      throw new RangeError(`protobuf field ${no}: int32 out of range: ${value}`);
    }
    this.tag(no, WIRE_VARINT);
    this.varint(BigInt(value));
    return this;
  }

  enum(no: number, value: number): this {
    return this.int32(no, value);
  }

  sint32(no: number, value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
      throw new RangeError(`protobuf field ${no}: sint32 out of range: ${value}`);
    }
    this.tag(no, WIRE_VARINT);
    this.varint(BigInt(((value << 1) ^ (value >> 31)) >>> 0));
    return this;
  }

  bool(no: number, value: boolean): this {
    this.tag(no, WIRE_VARINT);
    this.varint(value ? 1n : 0n);
    return this;
  }

  bytes(no: number, value: Uint8Array): this {
    this.tag(no, WIRE_LEN);
    this.varint(BigInt(value.length));
    this.parts.push(Buffer.from(value));
    return this;
  }

  string(no: number, value: string): this {
    return this.bytes(no, Buffer.from(value, 'utf8'));
  }

  message(no: number, encoded: Buffer): this {
    return this.bytes(no, encoded);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function encodeVarint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** A message prefixed with its varint length: what Java's writeDelimitedTo produces. */
export function delimited(encoded: Buffer): Buffer {
  return Buffer.concat([encodeVarint(encoded.length), encoded]);
}

/** Reads a varint at `offset`; undefined when the buffer ends first. */
export function readVarint(buf: Buffer, offset: number): { value: bigint; next: number } | undefined {
  let result = 0n;
  let shift = 0n;
  for (let i = offset; i < buf.length; i++) {
    const byte = buf[i] as number;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return { value: result, next: i + 1 };
    shift += 7n;
    if (shift >= 70n) throw new IpcProtocolError(`malformed varint at byte ${offset}: longer than 10 bytes`);
  }
  return undefined;
}

export type Field =
  | { no: number; wire: 'varint'; value: bigint }
  | { no: number; wire: 'len'; value: Buffer }
  | { no: number; wire: 'fixed' };

/** Iterates the fields of one encoded message; unknown fields are the caller's to skip. */
export function* readFields(buf: Buffer, what: string): Generator<Field> {
  let pos = 0;
  while (pos < buf.length) {
    const tag = readVarint(buf, pos);
    if (!tag) throw new IpcProtocolError(`${what}: truncated field tag at byte ${pos}`);
    pos = tag.next;
    const no = Number(tag.value >> 3n);
    const wire = Number(tag.value & 7n);
    if (no === 0) throw new IpcProtocolError(`${what}: field number 0 at byte ${pos}`);
    switch (wire) {
      case WIRE_VARINT: {
        const v = readVarint(buf, pos);
        if (!v) throw new IpcProtocolError(`${what}: truncated varint in field ${no}`);
        pos = v.next;
        yield { no, wire: 'varint', value: v.value };
        break;
      }
      case WIRE_LEN: {
        const len = readVarint(buf, pos);
        if (!len) throw new IpcProtocolError(`${what}: truncated length of field ${no}`);
        const end = len.next + Number(len.value);
        if (len.value > BigInt(buf.length) || end > buf.length) {
          throw new IpcProtocolError(
            `${what}: field ${no} claims ${len.value} bytes but only ${buf.length - len.next} remain`,
          );
        }
        yield { no, wire: 'len', value: buf.subarray(len.next, end) };
        pos = end;
        break;
      }
      case WIRE_I64:
      case WIRE_I32: {
        const size = wire === WIRE_I64 ? 8 : 4;
        if (pos + size > buf.length) throw new IpcProtocolError(`${what}: truncated fixed field ${no}`);
        pos += size;
        yield { no, wire: 'fixed' };
        break;
      }
      default:
        throw new IpcProtocolError(`${what}: field ${no} has unsupported wire type ${wire}`);
    }
  }
}

/** The low 32 bits of a varint as a signed int32 (how Java reads int32, enum and uint32). */
export function asInt32(v: bigint): number {
  return Number(BigInt.asIntN(32, v));
}

export function asUint32(v: bigint): number {
  return Number(BigInt.asUintN(32, v));
}

export function asSint32(v: bigint): number {
  const n = asUint32(v);
  return (n >>> 1) ^ -(n & 1);
}

export function expectVarint(f: Field, what: string): bigint {
  if (f.wire !== 'varint')
    throw new IpcProtocolError(`${what}: field ${f.no} should be a varint, got ${f.wire}`);
  return f.value;
}

export function expectLen(f: Field, what: string): Buffer {
  if (f.wire !== 'len') {
    throw new IpcProtocolError(`${what}: field ${f.no} should be length-delimited, got ${f.wire}`);
  }
  return f.value;
}
