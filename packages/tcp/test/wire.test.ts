import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createPeerRecord, Identity, ScopedClock, seededRandom, systemClock, toHex, WireError, type Random } from '@deccom/core';
import { Connection, type ConnectionHost, type HotCounters } from '../src/connection.js';
import {
  CANCEL_BY_CONSUMER,
  decodeHello,
  encodeChunkHeader,
  encodeGoaway,
  encodeHello,
  encodeMessage,
  encodeStreamCode,
  encodeStreamFrame,
  encodeWindow,
  FRAME_MESSAGE,
  FRAME_STREAM_CANCEL,
  FRAME_STREAM_CHUNK,
  FRAME_STREAM_DONE,
  FRAME_STREAM_END,
  FRAME_STREAM_OPEN,
  FRAME_STREAM_RESET,
  FrameDecoder,
  MAX_CHUNK_BYTES,
  RESET_SOURCE_ERROR,
  WINDOW_FRAME_LENGTH,
  writeChunkHeader,
  writeWindow,
  type Hello,
} from '../src/wire.js';

const record = createPeerRecord(Identity.fromString('alice').public, { host: '127.0.0.1', port: 4000 }, 4001);
const hello: Hello = { streamWindow: 0x0010_0000, maxMessageBytes: 0x0100_0000, peer: record };

interface Decoded {
  frames: { type: number; body: string }[];
  chunks: Map<number, number[]>;
}

function collector(): { sink: ConstructorParameters<typeof FrameDecoder>[1]; out: Decoded } {
  const out: Decoded = { frames: [], chunks: new Map() };
  return {
    out,
    sink: {
      frame: (type, body) => void out.frames.push({ type, body: toHex(body) }),
      chunk: (id, data) => {
        const list = out.chunks.get(id) ?? [];
        list.push(...data);
        out.chunks.set(id, list);
      },
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** Pushes `bytes` into `decoder` in random-sized runs. */
function pushSplit(decoder: FrameDecoder, bytes: Uint8Array, random: Random): void {
  let offset = 0;
  while (offset < bytes.length) {
    const n = 1 + random.int(Math.min(bytes.length - offset, random.float() < 0.3 ? 7 : 4096));
    decoder.push(bytes.subarray(offset, offset + n));
    offset += n;
  }
}

function session(): Uint8Array {
  const chunkData = Uint8Array.of(9, 8, 7, 6, 5);
  return concat([
    encodeHello(hello),
    encodeMessage(Uint8Array.of(1, 2, 3)),
    encodeMessage(new Uint8Array(0)),
    encodeStreamFrame(FRAME_STREAM_OPEN, 1),
    encodeChunkHeader(1, chunkData.length),
    chunkData,
    encodeWindow(1, 1000),
    encodeStreamCode(FRAME_STREAM_CANCEL, 3, CANCEL_BY_CONSUMER),
    encodeStreamFrame(FRAME_STREAM_END, 1),
    encodeStreamFrame(FRAME_STREAM_DONE, 2),
    encodeStreamCode(FRAME_STREAM_RESET, 2, RESET_SOURCE_ERROR),
    encodeGoaway(),
  ]);
}

describe('tcp wire', () => {
  it('encodes frames to the documented bytes', () => {
    expect(toHex(encodeMessage(Uint8Array.of(0xaa, 0xbb)))).toBe('0200000002aabb');
    expect(toHex(encodeChunkHeader(7, 3))).toBe('040000000700000007');
    expect(toHex(encodeStreamFrame(FRAME_STREAM_OPEN, 0x01020304))).toBe('030000000401020304');
    expect(toHex(encodeStreamCode(FRAME_STREAM_CANCEL, 5, 2))).toBe('07000000050000000502');
    expect(toHex(encodeWindow(5, 0x10000))).toBe('08000000080000000500010000');
    expect(toHex(encodeGoaway())).toBe('0900000000');
    // HELLO: type, length, "DecC", protocol 0x0d, version 1, flags, reserved, window, max message, record.
    const bytes = encodeHello(hello);
    expect(toHex(bytes.subarray(0, 21))).toBe(`01${(bytes.length - 5).toString(16).padStart(8, '0')}44656343` + '0d010000' + '00100000' + '01000000');
    expect(toHex(bytes.subarray(21, 24))).toBe('010505'); // peer record v1, flags string+tcp, 5-byte identity
  });

  it('writes chunk headers and WINDOW frames in place, byte for byte as encoded, and refuses what does not fit', () => {
    const target = new Uint8Array(40).fill(0xee);
    writeChunkHeader(target, 3, 0xfedc_ba98, MAX_CHUNK_BYTES);
    writeWindow(target, 20, 0x0102_0304, 0xffff_ffff);
    expect(toHex(target.subarray(3, 12))).toBe(toHex(encodeChunkHeader(0xfedc_ba98, MAX_CHUNK_BYTES)));
    expect(toHex(target.subarray(20, 20 + WINDOW_FRAME_LENGTH))).toBe(toHex(encodeWindow(0x0102_0304, 0xffff_ffff)));
    expect(toHex(target.subarray(3, 12))).toBe('04' + (MAX_CHUNK_BYTES + 4).toString(16).padStart(8, '0') + 'fedcba98');
    // Bytes around what was written are untouched.
    expect([target[2], target[12], target[19], target[20 + WINDOW_FRAME_LENGTH]]).toEqual([0xee, 0xee, 0xee, 0xee]);
    expect(() => writeChunkHeader(target, 32, 1, 1)).toThrow(RangeError);
    expect(() => writeChunkHeader(target, 0, 1, 0)).toThrow(RangeError);
    expect(() => writeChunkHeader(target, 0, 1, MAX_CHUNK_BYTES + 1)).toThrow(RangeError);
    expect(() => writeWindow(target, 28, 1, 1)).toThrow(RangeError);
    expect(() => writeWindow(target, 0, 1, 0)).toThrow(RangeError);
  });

  it('round-trips a HELLO', () => {
    const decoded = decodeHello(encodeHello(hello).subarray(5));
    expect(decoded.streamWindow).toBe(hello.streamWindow);
    expect(decoded.maxMessageBytes).toBe(hello.maxMessageBytes);
    expect(decoded.peer.id.equals(record.id)).toBe(true);
    expect(decoded.peer.tcpPort).toBe(4001);
  });

  it("carries the sender's stream limit in one byte: exact up to 254, 255 for more, absent as 0", () => {
    const limit = (maxIncomingStreams: number | undefined) => {
      const body = encodeHello({ ...hello, maxIncomingStreams }).subarray(5);
      return { byte: body[7], decoded: decodeHello(body).maxIncomingStreams };
    };
    expect(limit(16)).toEqual({ byte: 16, decoded: 16 });
    expect(limit(1)).toEqual({ byte: 1, decoded: 1 });
    expect(limit(254)).toEqual({ byte: 254, decoded: 254 });
    expect(limit(1_000_000)).toEqual({ byte: 255, decoded: 255 });
    // An older peer wrote 0 in this (then reserved) byte: no limit announced.
    expect(limit(undefined)).toEqual({ byte: 0, decoded: undefined });
  });

  it('rejects a HELLO with a wrong magic, protocol, version, flags or window', () => {
    const body = encodeHello(hello).subarray(5);
    for (const [offset, value, code] of [
      [0, 0x45, 'WIRE_MALFORMED'],
      [4, 0x0c, 'WIRE_MALFORMED'],
      [5, 2, 'WIRE_UNSUPPORTED_VERSION'],
      [6, 1, 'WIRE_MALFORMED'],
    ] as const) {
      const bad = body.slice();
      bad[offset] = value;
      expect(() => decodeHello(bad)).toThrow(expect.objectContaining({ code }));
    }
    const zeroWindow = body.slice();
    zeroWindow.fill(0, 8, 12);
    expect(() => decodeHello(zeroWindow)).toThrow(WireError);
    expect(() => decodeHello(body.subarray(0, 10))).toThrow(WireError);
  });

  it('decodes a session identically whatever the socket read sizes', () => {
    const bytes = session();
    const reference = collector();
    new FrameDecoder({ maxMessageBytes: 1000 }, reference.sink).push(bytes);
    expect(reference.out.frames.map((f) => f.type)).toEqual([1, 2, 2, 3, 8, 7, 5, 10, 6, 9]);
    expect(reference.out.chunks.get(1)).toEqual([9, 8, 7, 6, 5]);
    const random = seededRandom('splits');
    for (let i = 0; i < 500; i++) {
      const split = collector();
      pushSplit(new FrameDecoder({ maxMessageBytes: 1000 }, split.sink), bytes, random);
      expect(split.out).toEqual(reference.out);
    }
  });

  it('assembles a message spread over many reads into one buffer', () => {
    const data = new Uint8Array(100_000).map((_, i) => i * 7);
    const frames: Uint8Array[] = [];
    const decoder = new FrameDecoder({ maxMessageBytes: 200_000 }, { frame: (_t, body) => void frames.push(body), chunk: () => undefined });
    pushSplit(decoder, encodeMessage(data), seededRandom(3));
    expect(frames).toHaveLength(1);
    expect(Buffer.from(frames[0]!).equals(Buffer.from(data))).toBe(true);
  });

  it('rejects unknown types, oversized and wrongly sized frames before allocating', () => {
    const decode = (bytes: number[], max = 100) => () => new FrameDecoder({ maxMessageBytes: max }, collector().sink).push(Uint8Array.from(bytes));
    expect(decode([0x7f, 0, 0, 0, 0])).toThrow(expect.objectContaining({ code: 'WIRE_UNKNOWN_TYPE' }));
    expect(decode([0x00, 0, 0, 0, 0])).toThrow(expect.objectContaining({ code: 'WIRE_UNKNOWN_TYPE' }));
    expect(decode([FRAME_MESSAGE, 0xff, 0xff, 0xff, 0xff])).toThrow(expect.objectContaining({ code: 'WIRE_OVERSIZED' }));
    expect(decode([FRAME_MESSAGE, 0, 0, 0, 101])).toThrow(expect.objectContaining({ code: 'WIRE_OVERSIZED' }));
    const chunkTooBig = 4 + MAX_CHUNK_BYTES + 1;
    expect(decode([FRAME_STREAM_CHUNK, chunkTooBig >>> 24, (chunkTooBig >>> 16) & 0xff, (chunkTooBig >>> 8) & 0xff, chunkTooBig & 0xff])).toThrow(
      expect.objectContaining({ code: 'WIRE_OVERSIZED' }),
    );
    expect(decode([FRAME_STREAM_CHUNK, 0, 0, 0, 4])).toThrow(expect.objectContaining({ code: 'WIRE_MALFORMED' }));
    expect(decode([FRAME_STREAM_END, 0, 0, 0, 5])).toThrow(expect.objectContaining({ code: 'WIRE_MALFORMED' }));
    expect(decode([0x09, 0, 0, 0, 1])).toThrow(expect.objectContaining({ code: 'WIRE_MALFORMED' }));
    expect(decode([0x01, 0, 0, 0, 2])).toThrow(expect.objectContaining({ code: 'WIRE_MALFORMED' }));
    // Once failed, it stays failed.
    const decoder = new FrameDecoder({ maxMessageBytes: 10 }, collector().sink);
    expect(() => decoder.push(Uint8Array.of(0x7f, 0, 0, 0, 0))).toThrow(WireError);
    expect(() => decoder.push(encodeGoaway())).toThrow(WireError);
  });
});

/** Random bytes, or a valid session with a few bytes flipped, cut, duplicated or spliced. */
function fuzzInput(random: Random, valid: Uint8Array): Uint8Array {
  const kind = random.int(4);
  if (kind === 0) return random.bytes(random.int(64));
  const bytes = Array.from(valid);
  const edits = 1 + random.int(4);
  for (let e = 0; e < edits; e++) {
    const at = random.int(bytes.length + 1);
    switch (random.int(5)) {
      case 0:
        bytes[at % bytes.length] = random.int(256);
        break;
      case 1:
        bytes.splice(at, 1 + random.int(8));
        break;
      case 2:
        bytes.splice(at, 0, ...random.bytes(1 + random.int(8)));
        break;
      case 3:
        bytes.length = Math.min(bytes.length, at);
        break;
      default:
        // A length field near the limits.
        bytes.splice(at, 0, random.int(11), 0xff, 0xff, random.int(256), random.int(256));
    }
  }
  return Uint8Array.from(bytes);
}

describe('tcp wire fuzz', () => {
  it('the frame decoder and HELLO decoder survive 100,000 random and mutated inputs with only WireError', () => {
    const random = seededRandom('tcp-decoder-fuzz');
    const valid = session();
    const helloBody = encodeHello(hello).subarray(5);
    let wireErrors = 0;
    for (let i = 0; i < 100_000; i++) {
      const input = fuzzInput(random, valid);
      const decoder = new FrameDecoder({ maxMessageBytes: 1 + random.int(2000) }, { frame: () => undefined, chunk: () => undefined });
      try {
        pushSplit(decoder, input, random);
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
        wireErrors++;
      }
      try {
        decodeHello(fuzzInput(random, helloBody));
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
      }
    }
    expect(wireErrors).toBeGreaterThan(10_000);
  });

  it('the connection receive path never throws on 100,000 hostile inputs, and counts what it drops', () => {
    const random = seededRandom('tcp-receive-fuzz');
    const clock = new ScopedClock(systemClock);
    const counts = new Map<string, number>();
    const hot: HotCounters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, streamBytesIn: 0, streamBytesOut: 0 };
    const localHello = encodeHello({ ...hello, peer: createPeerRecord(Identity.fromString('bob').public, { host: '127.0.0.1', port: 1 }, 2) });
    const host: ConnectionHost = {
      clock,
      hot,
      settings: { maxMessageBytes: 1000, streamWindowBytes: 4096, maxPendingBytes: 1 << 20, maxIncomingStreams: 4, handshakeTimeoutMs: 60_000, closeTimeoutMs: 60_000 },
      hello: () => localHello,
      count: (name) => void counts.set(name, (counts.get(name) ?? 0) + 1),
      established: () => undefined,
      message: () => undefined,
      stream: (_c, stream) => {
        void (async () => {
          for await (const _chunk of stream) void _chunk;
        })().catch(() => undefined);
        return random.float() < 0.8;
      },
      goaway: (c) => c.drain(),
      closed: () => undefined,
    };
    const valid = session();
    for (let i = 0; i < 100_000; i++) {
      const socket = new Duplex({ read: () => undefined, write: (_chunk, _encoding, callback) => callback() });
      const connection = new Connection(socket as unknown as Socket, random.float() < 0.5, host, undefined);
      const input = fuzzInput(random, valid);
      let offset = 0;
      while (offset < input.length) {
        const n = 1 + random.int(input.length - offset);
        // 'data' listeners run synchronously here: anything thrown would reach us.
        socket.emit('data', Buffer.from(input.subarray(offset, offset + n)));
        offset += n;
      }
      connection.destroy();
    }
    clock.clearAll();
    expect(counts.get('protocol-errors') ?? 0).toBeGreaterThan(10_000);
    expect(counts.get('dropped') ?? 0).toBe(counts.get('protocol-errors'));
  });
});
