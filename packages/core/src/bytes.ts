/**
 * Bounds-checked byte reading and writing. Every decoder in DecCom reads through
 * {@link ByteReader}, which throws {@link WireError} instead of reading past the end, so a
 * truncated or lying length field can never turn into an out-of-range read.
 */
import { WireError } from './errors.js';

const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Reads big-endian integers and byte runs from a view, checking every length. */
export class ByteReader {
  private readonly view: DataView;
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  private need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new WireError('WIRE_TRUNCATED', `${what}: needs ${n} bytes at offset ${this.offset}, ${this.remaining} left`);
    }
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.bytes[this.offset++]!;
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const value = this.view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  /** An unsigned 64-bit integer that must fit a JS number (< 2^53). */
  u53(what = 'u53'): number {
    this.need(8, what);
    const high = this.view.getUint32(this.offset);
    const low = this.view.getUint32(this.offset + 4);
    if (high > 0x1fffff) throw new WireError('WIRE_MALFORMED', `${what}: value exceeds 2^53`);
    this.offset += 8;
    return high * 0x1_0000_0000 + low;
  }

  /** A view of the next `n` bytes without consuming them, or undefined if fewer remain. */
  peek(n: number): Uint8Array | undefined {
    if (n > this.remaining) return undefined;
    return this.bytes.subarray(this.offset, this.offset + n);
  }

  /** A view (not a copy) of the next `n` bytes. */
  bytesView(n: number, what = 'bytes'): Uint8Array {
    if (!Number.isInteger(n) || n < 0) throw new WireError('WIRE_MALFORMED', `${what}: invalid length ${n}`);
    this.need(n, what);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** A copy of the next `n` bytes (safe to keep after the input buffer is reused). */
  bytesCopy(n: number, what = 'bytes'): Uint8Array {
    return this.bytesView(n, what).slice();
  }

  /** A u8 length followed by that many bytes (a view). */
  bytes8(what = 'bytes8'): Uint8Array {
    return this.bytesView(this.u8(what), what);
  }

  /** A u16 length followed by that many bytes (a view). */
  bytes16(what = 'bytes16'): Uint8Array {
    return this.bytesView(this.u16(what), what);
  }

  /** UTF-8 text of `n` bytes; invalid UTF-8 is a WireError. */
  utf8(n: number, what = 'utf8'): string {
    const raw = this.bytesView(n, what);
    try {
      return textDecoder.decode(raw);
    } catch (cause) {
      throw new WireError('WIRE_MALFORMED', `${what}: invalid UTF-8`, { cause });
    }
  }

  /** Everything left, as a view. */
  rest(): Uint8Array {
    const out = this.offset === 0 ? this.bytes : this.bytes.subarray(this.offset);
    this.offset = this.bytes.byteLength;
    return out.byteLength === 0 ? EMPTY : out;
  }

  /** Throws unless every byte was consumed. */
  end(what = 'message'): void {
    if (this.remaining !== 0) {
      throw new WireError('WIRE_TRAILING_BYTES', `${what}: ${this.remaining} unexpected trailing bytes`);
    }
  }
}

/** Writes into a buffer of a known exact size; writing past it is a programming error. */
export class ByteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private offset = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  get position(): number {
    return this.offset;
  }

  private room(n: number): void {
    if (this.offset + n > this.bytes.byteLength) {
      throw new RangeError(`ByteWriter: writing ${n} bytes at ${this.offset} overflows ${this.bytes.byteLength}`);
    }
  }

  u8(value: number): this {
    this.room(1);
    this.bytes[this.offset++] = value & 0xff;
    return this;
  }

  u16(value: number): this {
    this.room(2);
    this.view.setUint16(this.offset, value);
    this.offset += 2;
    return this;
  }

  u32(value: number): this {
    this.room(4);
    this.view.setUint32(this.offset, value >>> 0);
    this.offset += 4;
    return this;
  }

  u53(value: number): this {
    this.room(8);
    this.view.setUint32(this.offset, Math.floor(value / 0x1_0000_0000));
    this.view.setUint32(this.offset + 4, value >>> 0);
    this.offset += 8;
    return this;
  }

  raw(data: Uint8Array): this {
    this.room(data.byteLength);
    this.bytes.set(data, this.offset);
    this.offset += data.byteLength;
    return this;
  }

  bytes8(data: Uint8Array): this {
    if (data.byteLength > 0xff) throw new RangeError(`bytes8: ${data.byteLength} bytes exceed 255`);
    return this.u8(data.byteLength).raw(data);
  }

  bytes16(data: Uint8Array): this {
    if (data.byteLength > 0xffff) throw new RangeError(`bytes16: ${data.byteLength} bytes exceed 65535`);
    return this.u16(data.byteLength).raw(data);
  }

  /** The written bytes; throws if the declared size was not filled exactly. */
  finish(): Uint8Array {
    if (this.offset !== this.bytes.byteLength) {
      throw new RangeError(`ByteWriter: wrote ${this.offset} of ${this.bytes.byteLength} declared bytes`);
    }
    return this.bytes;
  }
}

export function utf8Encode(text: string): Uint8Array {
  return textEncoder.encode(text);
}

export function utf8Decode(bytes: Uint8Array): string {
  return textDecoder.decode(bytes);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!];
  return out;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`fromHex: not an even-length hex string`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.byteLength;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
