import { describe, expect, it } from 'vitest';
import { createNode, seededRandom, toHex, WireError, type Random } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { rudp } from '../src/index.js';
import {
  ackLength,
  checksum32,
  chunkCount,
  chunkLength,
  chunkPacketLength,
  decodePacket,
  encodeAck,
  encodeCancel,
  encodeChunk,
  encodeRefuse,
  ACK_FIXED_LENGTH,
  CANCEL_LENGTH,
  CHUNK_HEADER_LENGTH,
  CONTROL_LENGTH,
  MAX_ACK_RANGES,
  PACKET_ACK,
  PACKET_CANCEL,
  PACKET_CHUNK,
  PACKET_REFUSE,
  REFUSE_LENGTH,
  RUDP_PROTOCOL,
  type Ack,
  type ChunkHeader,
} from '../src/wire.js';

const source = { hi: 0x01020304, lo: 0x05060708 };
const destination = { hi: 0x11121314, lo: 0x15161718 };
const header: ChunkHeader = {
  source,
  destination,
  packetNumber: 2 ** 40 + 5,
  counter: 7,
  floor: 3,
  messageLength: 3000,
  chunkSize: 1200,
  chunkIndex: 2,
};
const lastPayload = new Uint8Array(600).map((_, i) => i & 0xff);
const ack: Ack = {
  source: destination,
  destination: source,
  windowBytes: 123_456,
  ackDelayMicros: 250,
  ranges: [
    { high: 100, low: 90 },
    { high: 50, low: 50 },
    { high: 10, low: 0 },
  ],
};

/** Recomputes the checksum of a (mutated) packet so the field checks behind it are reached. */
function reseal(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength < CONTROL_LENGTH + 4) return bytes;
  const sum = checksum32(bytes, CONTROL_LENGTH + 4, bytes.byteLength, bytes[3]!);
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(CONTROL_LENGTH, sum);
  return bytes;
}

describe('rudp wire', () => {
  it('round-trips a CHUNK with its exact length', () => {
    const bytes = encodeChunk(header, lastPayload);
    expect(bytes.byteLength).toBe(chunkPacketLength(600));
    expect(bytes.byteLength).toBe(CHUNK_HEADER_LENGTH + 600);
    expect(CHUNK_HEADER_LENGTH).toBe(54);
    const packet = decodePacket(bytes);
    expect(packet.type).toBe(PACKET_CHUNK);
    if (packet.type !== PACKET_CHUNK) return;
    expect({ ...packet.packet, payload: undefined }).toEqual({ ...header, payload: undefined });
    expect(Buffer.from(packet.packet.payload).equals(Buffer.from(lastPayload))).toBe(true);
  });

  it('has stable golden bytes', () => {
    const bytes = encodeChunk({ ...header, messageLength: 300, chunkSize: 256, chunkIndex: 1 }, new Uint8Array([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff].concat(Array(38).fill(1))));
    expect(toHex(bytes.subarray(0, CHUNK_HEADER_LENGTH))).toBe(
      // frame, protocol 6, version 1, type 1 | checksum | source | destination | packet number | counter | floor | length | chunk size | index
      '01060101' + toHex(bytes.subarray(4, 8)) + '0102030405060708' + '1112131415161718' + '0000010000000005' + '00000007' + '00000003' + '000000000000012c' + '0100' + '00000001',
    );
    expect(toHex(bytes.subarray(4, 8))).toBe('4614d17c');
    expect(toHex(encodeRefuse({ source, destination, counter: 9, reason: 'memory' }))).toBe(
      '01060103' + toHex(encodeRefuse({ source, destination, counter: 9, reason: 'memory' }).subarray(4, 8)) + '0102030405060708' + '1112131415161718' + '00000009' + '02',
    );
  });

  it('round-trips ACK, REFUSE and CANCEL with exact lengths', () => {
    const ackBytes = encodeAck(ack);
    expect(ackBytes.byteLength).toBe(ackLength(3));
    expect(ackBytes.byteLength).toBe(ACK_FIXED_LENGTH + 3 * 16);
    expect(decodePacket(ackBytes)).toEqual({ type: PACKET_ACK, packet: ack });
    const refuse = { source, destination, counter: 42, reason: 'expired' as const };
    const refuseBytes = encodeRefuse(refuse);
    expect(refuseBytes.byteLength).toBe(REFUSE_LENGTH);
    expect(decodePacket(refuseBytes)).toEqual({ type: PACKET_REFUSE, packet: refuse });
    const cancel = { source, destination: { hi: 0, lo: 0 }, counter: 2 ** 32 - 1 };
    const cancelBytes = encodeCancel(cancel);
    expect(cancelBytes.byteLength).toBe(CANCEL_LENGTH);
    expect(decodePacket(cancelBytes)).toEqual({ type: PACKET_CANCEL, packet: cancel });
  });

  it('counts chunks', () => {
    expect(chunkCount(0, 1200)).toBe(1);
    expect(chunkCount(1200, 1200)).toBe(1);
    expect(chunkCount(1201, 1200)).toBe(2);
    expect(chunkLength(1201, 1200, 1)).toBe(1);
    expect(chunkLength(0, 1200, 0)).toBe(0);
  });

  it('refuses to encode what it could not decode', () => {
    expect(() => encodeChunk({ ...header, chunkSize: 100 }, lastPayload)).toThrow(RangeError);
    expect(() => encodeChunk({ ...header, floor: 8 }, lastPayload)).toThrow(RangeError);
    expect(() => encodeChunk({ ...header, chunkIndex: 3 }, lastPayload)).toThrow(RangeError);
    expect(() => encodeChunk(header, lastPayload.subarray(1))).toThrow(RangeError);
    expect(() => encodeAck({ ...ack, ranges: [] })).toThrow(RangeError);
    expect(() => encodeAck({ ...ack, ranges: [{ high: 5, low: 0 }, { high: 6, low: 6 }] })).toThrow(RangeError);
    expect(() => encodeAck({ ...ack, ranges: [{ high: 6, low: 5 }, { high: 4, low: 0 }] })).toThrow(RangeError);
    expect(() => encodeAck({ ...ack, ranges: Array.from({ length: MAX_ACK_RANGES + 1 }, (_, i) => ({ high: 1000 - 3 * i, low: 1000 - 3 * i })) })).toThrow(RangeError);
  });

  it('rejects malformed input with WireError', () => {
    const good = encodeChunk(header, lastPayload);
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['truncated header', good.subarray(0, 20)],
      ['truncated payload', reseal(good.slice(0, good.byteLength - 1))],
      ['trailing bytes', reseal(Uint8Array.from([...good, 0]))],
      ['data frame', Uint8Array.from([0, ...good.subarray(1)])],
      ['other protocol', reseal(Uint8Array.from([1, 7, ...good.subarray(2)]))],
      ['other version', reseal(Uint8Array.from([1, RUDP_PROTOCOL.id, 2, ...good.subarray(3)]))],
      ['unknown type', reseal(Uint8Array.from([1, RUDP_PROTOCOL.id, 1, 9, ...good.subarray(4)]))],
      ['bad checksum', Uint8Array.from(good).fill(0, 60, 61)],
    ];
    const mutate = (at: number, value: number, bytes = good): Uint8Array => {
      const copy = bytes.slice();
      copy[at] = value;
      return reseal(copy);
    };
    cases.push(['zero source instance', reseal(Uint8Array.from(good).fill(0, 8, 16))]);
    cases.push(['floor above counter', mutate(8 + 16 + 8 + 7, 9)]);
    cases.push(['chunk size below minimum', mutate(8 + 16 + 8 + 16, 0)]);
    cases.push(['index beyond the message', mutate(8 + 16 + 8 + 18 + 3, 3)]);
    cases.push(['packet number over 2^53', mutate(24, 0xff)]);
    const ackBytes = encodeAck(ack);
    cases.push(['ack with no ranges', mutate(ACK_FIXED_LENGTH - 1, 0, ackBytes)]);
    cases.push(['ack count beyond the ranges', mutate(ACK_FIXED_LENGTH - 1, 4, ackBytes)]);
    cases.push(['ack reversed range', mutate(ACK_FIXED_LENGTH + 15, 200, ackBytes)]);
    cases.push(['ack ranges out of order', mutate(ACK_FIXED_LENGTH + 16 + 7, 99, ackBytes)]);
    cases.push(['refuse unknown reason', mutate(REFUSE_LENGTH - 1, 9, encodeRefuse({ source, destination, counter: 1, reason: 'memory' }))]);
    cases.push(['cancel trailing byte', reseal(Uint8Array.from([...encodeCancel({ source, destination, counter: 1 }), 0]))]);
    for (const [name, bytes] of cases) {
      expect(() => decodePacket(bytes), name).toThrow(WireError);
    }
  });

  it('detects any single corrupted byte of a chunk', () => {
    const good = encodeChunk(header, lastPayload);
    const random = seededRandom('single-byte');
    for (let i = 0; i < 20_000; i++) {
      const copy = good.slice();
      const at = 4 + random.int(copy.byteLength - 4);
      copy[at] = copy[at]! ^ (1 + random.int(255));
      expect(() => decodePacket(copy)).toThrow(WireError);
    }
  });
});

/** A random input, or a valid encoding with a few mutations (resealed half the time so the field checks are reached). */
function fuzzInput(random: Random, valid: readonly Uint8Array[]): Uint8Array {
  const roll = random.int(10);
  if (roll === 0) return random.bytes(random.int(200));
  const base = valid[random.int(valid.length)]!;
  let bytes = base.slice();
  const mutations = 1 + random.int(4);
  for (let m = 0; m < mutations; m++) {
    const kind = random.int(5);
    if (kind === 0 && bytes.byteLength > 0) bytes[random.int(bytes.byteLength)] = random.int(256);
    else if (kind === 1) bytes = bytes.subarray(0, random.int(bytes.byteLength + 1)).slice();
    else if (kind === 2) bytes = Uint8Array.from([...bytes, ...random.bytes(1 + random.int(8))]);
    else if (kind === 3 && bytes.byteLength > 30) bytes[8 + random.int(bytes.byteLength - 8)] = [0, 0xff, 1, 0x80][random.int(4)]!;
    else if (bytes.byteLength > 40) bytes.fill(random.int(2) ? 0xff : 0, 24 + random.int(16), 24 + random.int(16) + random.int(8));
  }
  return random.int(2) === 0 ? reseal(bytes) : bytes;
}

describe('rudp wire fuzz', () => {
  const valid = {
    chunk: [encodeChunk(header, lastPayload), encodeChunk({ ...header, messageLength: 0, chunkIndex: 0, floor: 0 }, new Uint8Array(0)), encodeChunk({ ...header, chunkIndex: 0 }, new Uint8Array(1200))],
    ack: [encodeAck(ack), encodeAck({ ...ack, ranges: [{ high: 2 ** 52, low: 0 }] })],
    refuse: [encodeRefuse({ source, destination, counter: 5, reason: 'too-large' })],
    cancel: [encodeCancel({ source, destination, counter: 5 })],
  };
  for (const [name, inputs] of Object.entries(valid)) {
    it(`${name}: 100,000 random and mutated inputs give a packet or a WireError, nothing else`, () => {
      const random = seededRandom(`rudp-fuzz-${name}`);
      let decoded = 0;
      for (let i = 0; i < 100_000; i++) {
        const input = fuzzInput(random, inputs);
        try {
          const packet = decodePacket(input);
          decoded++;
          // Whatever decodes re-encodes to the same bytes (the codecs are exact).
          const again =
            packet.type === PACKET_CHUNK
              ? encodeChunk(packet.packet, packet.packet.payload)
              : packet.type === PACKET_ACK
                ? encodeAck(packet.packet)
                : packet.type === PACKET_REFUSE
                  ? encodeRefuse(packet.packet)
                  : encodeCancel(packet.packet);
          expect(toHex(again)).toBe(toHex(input));
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
        }
      }
      expect(decoded).toBeGreaterThan(100);
    });
  }

  it('the layer receive path survives 100,000 random and mutated packets and keeps working', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const a = createNode({ clock, random: 1, layers: [memoryTransport(network), rudp({ peerTimeoutMs: 5_000 })] });
    const b = createNode({ clock, random: 2, layers: [memoryTransport(network), rudp()] });
    await a.start();
    await b.start();
    const received: Uint8Array[] = [];
    b.handle('reliable-message', (data) => void received.push(data));
    b.handle('datagram', () => undefined);
    const random = seededRandom('rudp-receive-fuzz');
    const all = [...valid.chunk, ...valid.ack, ...valid.refuse, ...valid.cancel];
    // Raw bytes straight into b's rudp layer, as the transport would hand them up.
    const transportSend = (data: Uint8Array): void => network.send(a.localAddress(), b.localAddress(), Uint8Array.from([0, ...data]));
    for (let i = 0; i < 100_000; i++) {
      transportSend(fuzzInput(random, all));
      if (i % 5000 === 0) await clock.advance(1);
    }
    await clock.advance(100);
    const counters = b.counters().rudp!;
    expect(counters['dropped']).toBeGreaterThan(10_000);
    // b still works afterwards, both ways.
    const data = new Uint8Array(50_000).map((_, i) => i);
    let done = false;
    a.sendReliable(b.localAddress(), data).then(() => (done = true));
    await clock.runUntil(() => done, { maxMs: 30_000 });
    expect(done).toBe(true);
    expect(received.some((m) => m.byteLength === 50_000)).toBe(true);
    await a.stop();
    await b.stop();
  });
});
