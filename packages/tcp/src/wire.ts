/**
 * TCP layer wire format (version 1). A connection carries a sequence of frames, all
 * integers big-endian:
 *
 * | bytes | field |
 * |---|---|
 * | 1 | frame type (table below) |
 * | 4 | body length L (u32) |
 * | L | body |
 *
 * | type | name | body |
 * |---|---|---|
 * | `0x01` | HELLO | magic `"DecC"` (4), protocol id `0x0d` (1), version `1` (1), flags `0` (1), stream limit (u8), stream window (u32), max message bytes (u32), peer record (rest) |
 * | `0x02` | MESSAGE | the message |
 * | `0x03` | STREAM_OPEN | stream id (u32) |
 * | `0x04` | STREAM_CHUNK | stream id (u32), data (1 .. {@link MAX_CHUNK_BYTES}) |
 * | `0x05` | STREAM_END | stream id (u32) |
 * | `0x06` | STREAM_RESET | stream id (u32), code (u8): the sender gives up on its stream |
 * | `0x07` | STREAM_CANCEL | stream id (u32), code (u8): the receiver refuses or stops reading |
 * | `0x08` | WINDOW | stream id (u32), credit increment (u32) |
 * | `0x09` | GOAWAY | empty: "I will start nothing more on this connection" |
 * | `0x0a` | STREAM_DONE | stream id (u32): the receiver got the whole stream |
 *
 * Stream ids belong to the side that opened the stream: OPEN / CHUNK / END / RESET name
 * the sender's streams, CANCEL / WINDOW / DONE the receiver's view of them, so the two
 * directions never collide. After GOAWAY a side still sends flow control (WINDOW,
 * CANCEL, DONE) for the other side's streams, nothing else. Each side announces in its HELLO how many unacknowledged
 * stream bytes it accepts per stream (its window); a sender never has more than that
 * in flight, and the receiver grants more as its consumer reads (credit-based flow
 * control, as in HTTP/2 RFC 9113 section 5.2, so one slow stream never blocks the
 * others or the messages sharing the connection).
 *
 * The HELLO's stream limit is how many of the other side's streams the sender of the
 * HELLO accepts open at once (1 to 254; 255 means 255 or more). A side opens no more
 * than that (a stream counts from its OPEN until its END or RESET is written, which the
 * receiver reads in the same order) and queues the rest. The byte was reserved (always
 * 0) before: 0 announces no limit, and such a peer may refuse streams beyond its own.
 */
import {
  ByteReader,
  ByteWriter,
  decodePeerRecord,
  encodePeerRecord,
  PEER_RECORD_MAX_LENGTH,
  peerRecordLength,
  PROTOCOL,
  protocolId,
  WireError,
  type PeerRecord,
} from '@deccom/core';

export const TCP_PROTOCOL = protocolId('deccom/tcp', PROTOCOL.tcp, 1);

/** `"DecC"`: the first body bytes of every HELLO. */
export const MAGIC = Uint8Array.of(0x44, 0x65, 0x63, 0x43);

export const FRAME_HELLO = 0x01;
export const FRAME_MESSAGE = 0x02;
export const FRAME_STREAM_OPEN = 0x03;
export const FRAME_STREAM_CHUNK = 0x04;
export const FRAME_STREAM_END = 0x05;
export const FRAME_STREAM_RESET = 0x06;
export const FRAME_STREAM_CANCEL = 0x07;
export const FRAME_WINDOW = 0x08;
export const FRAME_GOAWAY = 0x09;
export const FRAME_STREAM_DONE = 0x0a;

/** Codes of STREAM_RESET (sender side). */
export const RESET_SOURCE_ERROR = 1;
export const RESET_CLOSING = 2;
export const RESET_CANCELLED = 3;
/** Codes of STREAM_CANCEL (receiver side). */
export const CANCEL_BY_CONSUMER = 1;
export const CANCEL_NO_RECEIVER = 2;
export const CANCEL_TOO_MANY_STREAMS = 3;

export const FRAME_HEADER_LENGTH = 5;
/** Type, length and stream id in front of a chunk's data. */
export const CHUNK_HEADER_LENGTH = FRAME_HEADER_LENGTH + 4;
/** Largest data in one STREAM_CHUNK frame. */
export const MAX_CHUNK_BYTES = 1024 * 1024;
/** HELLO body without the peer record. */
export const HELLO_FIXED_LENGTH = 16;
export const HELLO_MAX_BODY = HELLO_FIXED_LENGTH + PEER_RECORD_MAX_LENGTH;
/** Largest length a u32 field can hold, and so the largest message. */
export const MAX_U32 = 0xffff_ffff;

export interface Hello {
  /** Stream bytes the sender of this HELLO buffers per stream before it grants more. */
  readonly streamWindow: number;
  /** Largest message the sender of this HELLO accepts. */
  readonly maxMessageBytes: number;
  /**
   * Streams the sender of this HELLO accepts open at once, at most
   * {@link MAX_ANNOUNCED_STREAMS} on the wire (larger limits are announced as that);
   * undefined when it announces none.
   */
  readonly maxIncomingStreams?: number | undefined;
  readonly peer: PeerRecord;
}

/** The largest stream limit a HELLO carries (one byte); it means "this many or more". */
export const MAX_ANNOUNCED_STREAMS = 255;

function header(type: number, length: number): Uint8Array {
  return new ByteWriter(FRAME_HEADER_LENGTH).u8(type).u32(length).finish();
}

/** The 5-byte header of a frame of `type` with a body of `length` bytes. */
export function encodeFrameHeader(type: number, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > MAX_U32) throw new RangeError(`frame length ${length} is out of range`);
  return header(type, length);
}

export function helloLength(hello: Hello): number {
  return FRAME_HEADER_LENGTH + HELLO_FIXED_LENGTH + peerRecordLength(hello.peer);
}

export function encodeHello(hello: Hello): Uint8Array {
  const record = encodePeerRecord(hello.peer);
  const body = HELLO_FIXED_LENGTH + record.byteLength;
  return new ByteWriter(FRAME_HEADER_LENGTH + body)
    .u8(FRAME_HELLO)
    .u32(body)
    .raw(MAGIC)
    .u8(TCP_PROTOCOL.id)
    .u8(TCP_PROTOCOL.version)
    .u8(0)
    .u8(Math.min(hello.maxIncomingStreams ?? 0, MAX_ANNOUNCED_STREAMS))
    .u32(hello.streamWindow)
    .u32(hello.maxMessageBytes)
    .raw(record)
    .finish();
}

/** Decodes a HELLO body. Throws {@link WireError} on a wrong magic, protocol, version or record. */
export function decodeHello(body: Uint8Array): Hello {
  const reader = new ByteReader(body);
  const magic = reader.bytesView(4, 'tcp hello magic');
  if (magic[0] !== MAGIC[0] || magic[1] !== MAGIC[1] || magic[2] !== MAGIC[2] || magic[3] !== MAGIC[3]) {
    throw new WireError('WIRE_MALFORMED', 'tcp hello: bad magic (not a DecCom peer)');
  }
  const id = reader.u8('tcp hello protocol');
  if (id !== TCP_PROTOCOL.id) throw new WireError('WIRE_MALFORMED', `tcp hello: protocol 0x${id.toString(16)} is not deccom/tcp`);
  const version = reader.u8('tcp hello version');
  if (version !== TCP_PROTOCOL.version) throw new WireError('WIRE_UNSUPPORTED_VERSION', `tcp hello: version ${version} is not supported`);
  const flags = reader.u8('tcp hello flags');
  if (flags !== 0) throw new WireError('WIRE_MALFORMED', `tcp hello: unknown flags 0x${flags.toString(16)}`);
  const streams = reader.u8('tcp hello stream limit');
  const streamWindow = reader.u32('tcp hello stream window');
  if (streamWindow === 0) throw new WireError('WIRE_MALFORMED', 'tcp hello: stream window 0');
  const maxMessageBytes = reader.u32('tcp hello max message');
  const peer = decodePeerRecord(reader.rest());
  return { streamWindow, maxMessageBytes, maxIncomingStreams: streams === 0 ? undefined : streams, peer };
}

/** A whole MESSAGE frame (header and a copy of `data`). */
export function encodeMessage(data: Uint8Array): Uint8Array {
  const length = data.byteLength;
  if (length > MAX_U32) throw new RangeError(`message of ${length} bytes exceeds the u32 length field`);
  // Pooled allocation (this is the hot path of small messages); every byte is written below.
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + length);
  out[0] = FRAME_MESSAGE;
  out.writeUInt32BE(length, 1);
  out.set(data, FRAME_HEADER_LENGTH);
  return out;
}

/** The header in front of a chunk's data: type, length (4 + data), stream id. */
export function encodeChunkHeader(streamId: number, dataLength: number): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER_LENGTH);
  writeChunkHeader(out, 0, streamId, dataLength);
  return out;
}

/**
 * Writes the header of {@link encodeChunkHeader} into `target` at `offset` (the stream
 * hot path: no allocation per chunk). `target` must have {@link CHUNK_HEADER_LENGTH} bytes there.
 */
export function writeChunkHeader(target: Uint8Array, offset: number, streamId: number, dataLength: number): void {
  if (!(dataLength >= 1 && dataLength <= MAX_CHUNK_BYTES)) throw new RangeError(`chunk of ${dataLength} bytes is out of range`);
  if (offset + CHUNK_HEADER_LENGTH > target.byteLength) throw new RangeError('chunk header does not fit');
  target[offset] = FRAME_STREAM_CHUNK;
  writeU32(target, offset + 1, 4 + dataLength);
  writeU32(target, offset + 5, streamId);
}

function writeU32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = value >>> 16;
  target[offset + 2] = value >>> 8;
  target[offset + 3] = value;
}

/** OPEN, END, DONE: a stream id only. */
export function encodeStreamFrame(type: typeof FRAME_STREAM_OPEN | typeof FRAME_STREAM_END | typeof FRAME_STREAM_DONE, streamId: number): Uint8Array {
  return new ByteWriter(FRAME_HEADER_LENGTH + 4).u8(type).u32(4).u32(streamId).finish();
}

/** RESET, CANCEL: a stream id and a code. */
export function encodeStreamCode(type: typeof FRAME_STREAM_RESET | typeof FRAME_STREAM_CANCEL, streamId: number, code: number): Uint8Array {
  return new ByteWriter(FRAME_HEADER_LENGTH + 5).u8(type).u32(5).u32(streamId).u8(code).finish();
}

/** Length of a whole WINDOW frame. */
export const WINDOW_FRAME_LENGTH = FRAME_HEADER_LENGTH + 8;

export function encodeWindow(streamId: number, increment: number): Uint8Array {
  const out = new Uint8Array(WINDOW_FRAME_LENGTH);
  writeWindow(out, 0, streamId, increment);
  return out;
}

/** Writes a whole WINDOW frame ({@link WINDOW_FRAME_LENGTH} bytes) into `target` at `offset`. */
export function writeWindow(target: Uint8Array, offset: number, streamId: number, increment: number): void {
  if (!Number.isInteger(increment) || increment < 1 || increment > MAX_U32) throw new RangeError(`window increment ${increment} is out of range`);
  if (offset + WINDOW_FRAME_LENGTH > target.byteLength) throw new RangeError('window frame does not fit');
  target[offset] = FRAME_WINDOW;
  writeU32(target, offset + 1, 8);
  writeU32(target, offset + 5, streamId);
  writeU32(target, offset + 9, increment);
}

export function encodeGoaway(): Uint8Array {
  return header(FRAME_GOAWAY, 0);
}

/** The stream id and code of a RESET or CANCEL body. */
export function decodeStreamCode(body: Uint8Array): { streamId: number; code: number } {
  const reader = new ByteReader(body);
  const streamId = reader.u32('tcp stream id');
  const code = reader.u8('tcp stream code');
  reader.end('tcp stream code frame');
  return { streamId, code };
}

export function decodeStreamId(body: Uint8Array): number {
  const reader = new ByteReader(body);
  const streamId = reader.u32('tcp stream id');
  reader.end('tcp stream frame');
  return streamId;
}

export function decodeWindow(body: Uint8Array): { streamId: number; increment: number } {
  const reader = new ByteReader(body);
  const streamId = reader.u32('tcp window stream id');
  const increment = reader.u32('tcp window increment');
  reader.end('tcp window');
  if (increment === 0) throw new WireError('WIRE_MALFORMED', 'tcp window: zero increment');
  return { streamId, increment };
}

/** Where decoded frames go. */
export interface FrameSink {
  /** A complete frame of any type but STREAM_CHUNK. `body` may be a view into the input. */
  frame(type: number, body: Uint8Array): void;
  /**
   * Data of a STREAM_CHUNK frame, handed on as it arrives (a frame may come in several
   * pieces, never an empty one). A view into the input: no copy on the stream path.
   */
  chunk(streamId: number, data: Uint8Array): void;
}

export interface DecoderLimits {
  /** Largest MESSAGE body accepted; a longer length field is WIRE_OVERSIZED. */
  readonly maxMessageBytes: number;
}

/** Largest body of each fixed-size frame type, and whether the size is exact. */
function bodyLimit(type: number, limits: DecoderLimits): { max: number; min: number } {
  switch (type) {
    case FRAME_HELLO:
      return { min: HELLO_FIXED_LENGTH, max: HELLO_MAX_BODY };
    case FRAME_MESSAGE:
      return { min: 0, max: limits.maxMessageBytes };
    case FRAME_STREAM_OPEN:
    case FRAME_STREAM_END:
    case FRAME_STREAM_DONE:
      return { min: 4, max: 4 };
    case FRAME_STREAM_CHUNK:
      return { min: 5, max: 4 + MAX_CHUNK_BYTES };
    case FRAME_STREAM_RESET:
    case FRAME_STREAM_CANCEL:
      return { min: 5, max: 5 };
    case FRAME_WINDOW:
      return { min: 8, max: 8 };
    case FRAME_GOAWAY:
      return { min: 0, max: 0 };
    default:
      throw new WireError('WIRE_UNKNOWN_TYPE', `tcp: unknown frame type 0x${type.toString(16)}`);
  }
}

const EMPTY = new Uint8Array(0);
const STATE_HEADER = 0;
const STATE_BODY = 1;
const STATE_CHUNK_ID = 2;
const STATE_CHUNK_DATA = 3;
const STATE_FAILED = 4;

/**
 * Incremental frame decoder. Feed it the byte runs a socket delivers, in order; it calls
 * the sink for every frame. Every length is checked against the frame type's limits
 * before anything is allocated, so a lying length costs nothing. Throws
 * {@link WireError} (and stays failed) on an unknown type or a bad length; the
 * connection is then closed.
 *
 * A message body that arrives whole in one run is handed on as a view; a longer one is
 * assembled into one buffer of exactly its length (one copy).
 */
export class FrameDecoder {
  private state = STATE_HEADER;
  private readonly head = new Uint8Array(FRAME_HEADER_LENGTH);
  private headFill = 0;
  private type = 0;
  private remaining = 0;
  private body: Uint8Array = EMPTY;
  private bodyFill = 0;
  private streamId = 0;
  private failure: WireError | undefined;

  constructor(
    private readonly limits: DecoderLimits,
    private readonly sink: FrameSink,
  ) {}

  /** Bytes of a partly received frame held by the decoder (for memory accounting). */
  get buffered(): number {
    return this.state === STATE_BODY ? this.body.byteLength : 0;
  }

  push(input: Uint8Array): void {
    if (this.failure) throw this.failure;
    try {
      const length = input.byteLength;
      if (this.state === STATE_CHUNK_DATA && length <= this.remaining && length > 0) {
        // A read that is all chunk data (the common case mid-stream) goes on as it is.
        this.remaining -= length;
        if (this.remaining === 0) this.state = STATE_HEADER;
        this.sink.chunk(this.streamId, input);
        return;
      }
      this.run(input);
    } catch (error) {
      this.state = STATE_FAILED;
      this.body = EMPTY;
      this.failure = error instanceof WireError ? error : new WireError('WIRE_MALFORMED', 'tcp: frame sink failed', { cause: error });
      throw this.failure;
    }
  }

  private run(input: Uint8Array): void {
    let offset = 0;
    const length = input.byteLength;
    while (offset < length) {
      switch (this.state) {
        case STATE_HEADER: {
          // Fast path: a whole header in the input.
          if (this.headFill === 0 && length - offset >= FRAME_HEADER_LENGTH) {
            this.type = input[offset]!;
            this.remaining = ((input[offset + 1]! << 24) >>> 0) + (input[offset + 2]! << 16) + (input[offset + 3]! << 8) + input[offset + 4]!;
            offset += FRAME_HEADER_LENGTH;
          } else {
            const take = Math.min(FRAME_HEADER_LENGTH - this.headFill, length - offset);
            this.head.set(input.subarray(offset, offset + take), this.headFill);
            this.headFill += take;
            offset += take;
            if (this.headFill < FRAME_HEADER_LENGTH) return;
            this.headFill = 0;
            this.type = this.head[0]!;
            this.remaining = ((this.head[1]! << 24) >>> 0) + (this.head[2]! << 16) + (this.head[3]! << 8) + this.head[4]!;
          }
          const { min, max } = bodyLimit(this.type, this.limits);
          if (this.remaining > max) {
            throw new WireError(
              this.type === FRAME_MESSAGE || this.type === FRAME_STREAM_CHUNK ? 'WIRE_OVERSIZED' : 'WIRE_MALFORMED',
              `tcp: frame type 0x${this.type.toString(16)} of ${this.remaining} bytes exceeds ${max}`,
            );
          }
          if (this.remaining < min) throw new WireError('WIRE_MALFORMED', `tcp: frame type 0x${this.type.toString(16)} of ${this.remaining} bytes is shorter than ${min}`);
          if (this.type === FRAME_STREAM_CHUNK) {
            this.state = STATE_CHUNK_ID;
            this.headFill = 0;
          } else if (this.remaining === 0) {
            this.sink.frame(this.type, EMPTY);
          } else if (length - offset >= this.remaining) {
            const body = input.subarray(offset, offset + this.remaining);
            offset += this.remaining;
            this.sink.frame(this.type, body);
          } else {
            this.body = new Uint8Array(this.remaining);
            this.bodyFill = 0;
            this.state = STATE_BODY;
          }
          break;
        }
        case STATE_BODY: {
          const take = Math.min(this.body.byteLength - this.bodyFill, length - offset);
          this.body.set(offset === 0 && take === length ? input : input.subarray(offset, offset + take), this.bodyFill);
          this.bodyFill += take;
          offset += take;
          if (this.bodyFill === this.body.byteLength) {
            const body = this.body;
            this.body = EMPTY;
            this.state = STATE_HEADER;
            this.sink.frame(this.type, body);
          }
          break;
        }
        case STATE_CHUNK_ID: {
          const take = Math.min(4 - this.headFill, length - offset);
          this.head.set(input.subarray(offset, offset + take), this.headFill);
          this.headFill += take;
          offset += take;
          if (this.headFill < 4) return;
          this.headFill = 0;
          this.streamId = ((this.head[0]! << 24) >>> 0) + (this.head[1]! << 16) + (this.head[2]! << 8) + this.head[3]!;
          this.remaining -= 4;
          this.state = STATE_CHUNK_DATA;
          break;
        }
        case STATE_CHUNK_DATA: {
          const take = Math.min(this.remaining, length - offset);
          const piece = offset === 0 && take === length ? input : input.subarray(offset, offset + take);
          offset += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = STATE_HEADER;
          this.sink.chunk(this.streamId, piece);
          break;
        }
        default:
          return;
      }
    }
  }
}
