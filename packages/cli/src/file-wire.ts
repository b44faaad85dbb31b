/**
 * The file-transfer format of `deccom send-file` / `receive-file`, the same over rudp
 * (one reliable message) and over a TCP stream:
 *
 * | bytes | field |
 * |---|---|
 * | 4 | magic `DCFT` |
 * | 1 | version = 1 |
 * | 2 | name length N (1..255), big-endian |
 * | N | file name, UTF-8 (a base name; the receiver cleans it again) |
 * | 8 | size S, big-endian |
 * | S | content |
 * | 32 | SHA-256 of the content |
 *
 * The receiver answers with one confirmation (a datagram over rudp, a message over TCP):
 * magic `DCFA`, version 1, status (0 intact, 1 hash differs, 2 could not save), the 32-byte
 * SHA-256 it computed.
 */
import { createHash, type Hash } from 'node:crypto';
import { basename } from 'node:path';

const FILE_MAGIC = [0x44, 0x43, 0x46, 0x54]; // DCFT
const ACK_MAGIC = [0x44, 0x43, 0x46, 0x41]; // DCFA
const VERSION = 1;
export const HASH_BYTES = 32;
export const MAX_NAME_BYTES = 255;
const FIXED_HEADER_BYTES = 4 + 1 + 2;

export const ACK_STATUS = { INTACT: 0, HASH_DIFFERS: 1, NOT_SAVED: 2 } as const;
export type AckStatus = (typeof ACK_STATUS)[keyof typeof ACK_STATUS];

export class FileWireError extends Error {
  override readonly name = 'FileWireError';
}

/** A name safe to create in the output directory: a base name, no control characters, not `.` or `..`. */
export function safeFileName(name: string): string {
  const base = basename(name.replace(/\\/g, '/')).replace(/[\u0000-\u001f\u007f]/g, '_');
  return base === '' || base === '.' || base === '..' ? 'received-file' : base;
}

export function encodeFileHeader(name: string, size: number): Uint8Array {
  let nameBytes = new TextEncoder().encode(safeFileName(name));
  if (nameBytes.byteLength > MAX_NAME_BYTES) nameBytes = new TextEncoder().encode(safeFileName(name).slice(0, 100));
  const header = new Uint8Array(FIXED_HEADER_BYTES + nameBytes.byteLength + 8);
  const view = new DataView(header.buffer);
  header.set(FILE_MAGIC, 0);
  header[4] = VERSION;
  view.setUint16(5, nameBytes.byteLength);
  header.set(nameBytes, FIXED_HEADER_BYTES);
  view.setBigUint64(FIXED_HEADER_BYTES + nameBytes.byteLength, BigInt(size));
  return header;
}

export function encodeAck(status: AckStatus, digest: Uint8Array): Uint8Array {
  const ack = new Uint8Array(4 + 1 + 1 + HASH_BYTES);
  ack.set(ACK_MAGIC, 0);
  ack[4] = VERSION;
  ack[5] = status;
  ack.set(digest.subarray(0, HASH_BYTES), 6);
  return ack;
}

export function decodeAck(data: Uint8Array): { status: AckStatus; digest: Uint8Array } | undefined {
  if (data.byteLength !== 6 + HASH_BYTES) return undefined;
  if (!ACK_MAGIC.every((byte, i) => data[i] === byte) || data[4] !== VERSION) return undefined;
  const status = data[5]!;
  if (status > 2) return undefined;
  return { status: status as AckStatus, digest: data.slice(6) };
}

export interface FileHeader {
  readonly name: string;
  readonly size: number;
}

/**
 * Parses the format incrementally (chunks of any size): calls `onHeader` once, then
 * `onContent` with each piece of content in order; `finish()` checks the trailer.
 * Anything malformed throws FileWireError.
 */
export class FileParser {
  private buffered: Uint8Array = new Uint8Array(0);
  private header: FileHeader | undefined;
  private contentSeen = 0;
  private readonly trailer = new Uint8Array(HASH_BYTES);
  private trailerSeen = 0;
  private readonly hash: Hash = createHash('sha256');

  constructor(
    private readonly onHeader: (header: FileHeader) => void | Promise<void>,
    private readonly onContent: (piece: Uint8Array) => void | Promise<void>,
  ) {}

  get fileHeader(): FileHeader | undefined {
    return this.header;
  }

  get contentBytes(): number {
    return this.contentSeen;
  }

  async push(chunk: Uint8Array): Promise<void> {
    let data = chunk;
    if (this.header === undefined) {
      this.buffered = concat(this.buffered, data);
      const parsed = this.parseHeader();
      if (parsed === undefined) return;
      this.header = parsed.header;
      data = this.buffered.subarray(parsed.length);
      this.buffered = new Uint8Array(0);
      await this.onHeader(this.header);
    }
    const remaining = this.header.size - this.contentSeen;
    if (remaining > 0 && data.byteLength > 0) {
      const piece = data.subarray(0, Math.min(remaining, data.byteLength));
      this.hash.update(piece);
      this.contentSeen += piece.byteLength;
      await this.onContent(piece);
      data = data.subarray(piece.byteLength);
    }
    if (data.byteLength > 0) {
      if (this.trailerSeen + data.byteLength > HASH_BYTES) throw new FileWireError('more bytes than the header announced');
      this.trailer.set(data, this.trailerSeen);
      this.trailerSeen += data.byteLength;
    }
  }

  /** Ends the input: the content and trailer must be complete. Returns both digests. */
  finish(): { expected: Uint8Array; actual: Uint8Array } {
    if (this.header === undefined) throw new FileWireError('the transfer ended before its header');
    if (this.contentSeen !== this.header.size || this.trailerSeen !== HASH_BYTES) {
      throw new FileWireError(`the transfer ended after ${this.contentSeen} of ${this.header.size} bytes`);
    }
    return { expected: this.trailer, actual: new Uint8Array(this.hash.digest()) };
  }

  private parseHeader(): { header: FileHeader; length: number } | undefined {
    const bytes = this.buffered;
    if (bytes.byteLength < FIXED_HEADER_BYTES) return undefined;
    if (!FILE_MAGIC.every((byte, i) => bytes[i] === byte)) throw new FileWireError('not a deccom file transfer');
    if (bytes[4] !== VERSION) throw new FileWireError(`unsupported file-transfer version ${bytes[4]}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const nameLength = view.getUint16(5);
    if (nameLength === 0 || nameLength > MAX_NAME_BYTES) throw new FileWireError(`bad file name length ${nameLength}`);
    const length = FIXED_HEADER_BYTES + nameLength + 8;
    if (bytes.byteLength < length) return undefined;
    let name: string;
    try {
      name = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(FIXED_HEADER_BYTES, FIXED_HEADER_BYTES + nameLength));
    } catch {
      throw new FileWireError('file name is not UTF-8');
    }
    const size = view.getBigUint64(FIXED_HEADER_BYTES + nameLength);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new FileWireError('file size out of range');
    return { header: { name: safeFileName(name), size: Number(size) }, length };
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const joined = new Uint8Array(a.byteLength + b.byteLength);
  joined.set(a, 0);
  joined.set(b, a.byteLength);
  return joined;
}

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
