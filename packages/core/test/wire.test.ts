import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ByteReader,
  ByteWriter,
  decodeFrame,
  decodePeerRecord,
  encodeControl,
  encodeData,
  encodePeerRecord,
  fromHex,
  Identity,
  createPeerRecord,
  peerRecordLength,
  protocolId,
  PROTOCOL,
  seededRandom,
  signPeerRecord,
  toHex,
  verifyPeerRecord,
  WireError,
  PEER_RECORD_MAX_LENGTH,
  bytesToIp,
  ipToBytes,
} from '../src/index.js';

const TEST_PROTOCOL = protocolId('deccom/test', 0x90, 1);
const FUZZ_RUNS = 100_000;

/** Random bytes plus mutations (bit flips, truncation, extension, splices) of valid encodings. */
function* fuzzInputs(valid: readonly Uint8Array[], runs: number, seed: number): Generator<Uint8Array> {
  const random = seededRandom(seed);
  for (let i = 0; i < runs; i++) {
    const mode = random.int(6);
    if (mode === 0 || valid.length === 0) {
      yield random.bytes(random.int(200));
      continue;
    }
    const base = valid[random.int(valid.length)]!.slice();
    switch (mode) {
      case 1: {
        const flips = 1 + random.int(4);
        for (let f = 0; f < flips; f++) base[random.int(base.length)]! ^= 1 << random.int(8);
        yield base;
        break;
      }
      case 2:
        yield base.subarray(0, random.int(base.length));
        break;
      case 3: {
        const extra = random.bytes(1 + random.int(16));
        const out = new Uint8Array(base.length + extra.length);
        out.set(base);
        out.set(extra, base.length);
        yield out;
        break;
      }
      case 4: {
        base[random.int(base.length)] = [0, 0xff, 0x7f, 0x80][random.int(4)]!;
        yield base;
        break;
      }
      default: {
        const other = valid[random.int(valid.length)]!;
        const cut = random.int(Math.min(base.length, other.length) + 1);
        const out = new Uint8Array(other.length);
        out.set(base.subarray(0, cut));
        out.set(other.subarray(cut), cut);
        yield out;
      }
    }
  }
}

function expectOnlyWireErrors(decode: (bytes: Uint8Array) => unknown, inputs: Iterable<Uint8Array>): { ok: number; rejected: number } {
  let ok = 0;
  let rejected = 0;
  for (const input of inputs) {
    try {
      decode(input);
      ok++;
    } catch (error) {
      if (!(error instanceof WireError)) throw new Error(`non-WireError escaped for ${toHex(input)}: ${String(error)}`);
      rejected++;
    }
  }
  return { ok, rejected };
}

describe('ByteReader / ByteWriter', () => {
  it('round-trips integers and byte runs', () => {
    const writer = new ByteWriter(1 + 2 + 4 + 8 + 1 + 3 + 2 + 2);
    writer.u8(0xab).u16(0xbeef).u32(0xdeadbeef).u53(2 ** 53 - 1).bytes8(Uint8Array.of(1, 2, 3)).bytes16(Uint8Array.of(9, 9));
    const reader = new ByteReader(writer.finish());
    expect(reader.u8()).toBe(0xab);
    expect(reader.u16()).toBe(0xbeef);
    expect(reader.u32()).toBe(0xdeadbeef);
    expect(reader.u53()).toBe(2 ** 53 - 1);
    expect([...reader.bytes8()]).toEqual([1, 2, 3]);
    expect([...reader.bytes16()]).toEqual([9, 9]);
    expect(() => reader.end()).not.toThrow();
  });

  it('throws WireError instead of reading past the end', () => {
    const reader = new ByteReader(Uint8Array.of(5, 1, 2));
    expect(() => reader.bytes8()).toThrow(WireError);
    expect(() => new ByteReader(Uint8Array.of(1)).u16()).toThrow(/needs 2 bytes at offset 0, 1 left/);
    expect(() => new ByteReader(Uint8Array.of(1, 2)).end()).toThrow(expect.objectContaining({ code: 'WIRE_TRAILING_BYTES' }));
    expect(() => new ByteReader(fromHex('ffffffffffffffff')).u53()).toThrow(expect.objectContaining({ code: 'WIRE_MALFORMED' }));
  });

  it('refuses to write past its declared size or finish short', () => {
    expect(() => new ByteWriter(1).u16(1)).toThrow(RangeError);
    expect(() => new ByteWriter(2).u8(1).finish()).toThrow(/wrote 1 of 2/);
  });
});

describe('frame', () => {
  it('has golden bytes', () => {
    expect(toHex(encodeData(Uint8Array.of(0xaa, 0xbb)))).toBe('00aabb');
    expect(toHex(encodeControl(TEST_PROTOCOL, 7, Uint8Array.of(1)))).toBe('0190010701');
  });

  it('never takes application data for a control message, whatever it contains', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (payload) => {
        const frame = decodeFrame(encodeData(payload), TEST_PROTOCOL);
        return frame.kind === 'data' && toHex(frame.payload) === toHex(payload);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips control messages', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 64 }), (type, body) => {
        const frame = decodeFrame(encodeControl(TEST_PROTOCOL, type, body), TEST_PROTOCOL);
        return frame.kind === 'control' && frame.type === type && toHex(frame.body) === toHex(body);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects other protocols, other versions, unknown frame bytes and truncation', () => {
    expect(() => decodeFrame(new Uint8Array(0), TEST_PROTOCOL)).toThrow(expect.objectContaining({ code: 'WIRE_TRUNCATED' }));
    expect(() => decodeFrame(Uint8Array.of(2, 0), TEST_PROTOCOL)).toThrow(expect.objectContaining({ code: 'WIRE_UNKNOWN_TYPE' }));
    expect(() => decodeFrame(Uint8Array.of(1, 0x90, 1), TEST_PROTOCOL)).toThrow(expect.objectContaining({ code: 'WIRE_TRUNCATED' }));
    expect(() => decodeFrame(encodeControl(protocolId('x', PROTOCOL.udp, 1), 1), TEST_PROTOCOL)).toThrow(expect.objectContaining({ code: 'WIRE_MALFORMED' }));
    expect(() => decodeFrame(encodeControl(protocolId('x', 0x90, 2), 1), TEST_PROTOCOL)).toThrow(expect.objectContaining({ code: 'WIRE_UNSUPPORTED_VERSION' }));
  });

  it(`survives ${FUZZ_RUNS} random and mutated inputs`, () => {
    const valid = [encodeData(Uint8Array.of(1, 2, 3)), encodeControl(TEST_PROTOCOL, 1, Uint8Array.of(4, 5)), encodeControl(TEST_PROTOCOL, 2)];
    const { ok, rejected } = expectOnlyWireErrors((b) => decodeFrame(b, TEST_PROTOCOL), fuzzInputs(valid, FUZZ_RUNS, 1));
    expect(ok + rejected).toBe(FUZZ_RUNS);
    expect(rejected).toBeGreaterThan(1000);
  });
});

describe('IP literals', () => {
  it('round-trips IPv4 and IPv6 to canonical text', () => {
    for (const [text, canonical] of [
      ['127.0.0.1', '127.0.0.1'],
      ['::1', '::1'],
      ['::', '::'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['fe80::1%lo', 'fe80::1'],
      ['::ffff:1.2.3.4', '::ffff:102:304'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ] as const) {
      expect(bytesToIp(ipToBytes(text))).toBe(canonical);
    }
  });
});

describe('peer record', () => {
  const ed = Identity.fromSeed(new Uint8Array(32).fill(7));
  const records = [
    createPeerRecord(Identity.fromString('alice').public, { host: '127.0.0.1', port: 4000 }),
    createPeerRecord(ed.public, { host: '::1', port: 65535 }, 443),
    signPeerRecord(createPeerRecord(ed.public, { host: '10.1.2.3', port: 1 }, 2), ed),
    signPeerRecord(createPeerRecord(ed.public, { host: '2001:db8::7', port: 9 }), ed),
  ];

  it('has golden bytes', () => {
    expect(toHex(encodePeerRecord(records[0]!))).toBe(`010105${toHex(new TextEncoder().encode('alice'))}7f0000010fa0`);
  });

  it('round-trips with exact lengths, within the maximum', () => {
    for (const record of records) {
      const bytes = encodePeerRecord(record);
      expect(bytes.length).toBe(peerRecordLength(record));
      expect(bytes.length).toBeLessThanOrEqual(PEER_RECORD_MAX_LENGTH);
      const decoded = decodePeerRecord(bytes);
      expect(decoded.id.equals(record.id)).toBe(true);
      expect(decoded.address).toEqual(record.address);
      expect(decoded.tcpPort).toBe(record.tcpPort);
      expect(toHex(encodePeerRecord(decoded))).toBe(toHex(bytes));
    }
  });

  it('verifies signatures and rejects a record whose address was changed', () => {
    const signed = records[2]!;
    expect(verifyPeerRecord(decodePeerRecord(encodePeerRecord(signed)))).toBe(true);
    expect(verifyPeerRecord({ ...signed, address: { host: '10.1.2.4', port: 1 } })).toBe(false);
    expect(verifyPeerRecord(records[1]!)).toBe(false);
  });

  it('rejects malformed records with typed errors', () => {
    const good = encodePeerRecord(records[0]!);
    const badVersion = good.slice();
    badVersion[0] = 2;
    expect(() => decodePeerRecord(badVersion)).toThrow(expect.objectContaining({ code: 'WIRE_UNSUPPORTED_VERSION' }));
    const badFlags = good.slice();
    badFlags[1] = 0x41;
    expect(() => decodePeerRecord(badFlags)).toThrow(expect.objectContaining({ code: 'WIRE_MALFORMED' }));
    const badKeyLength = encodePeerRecord(records[1]!).slice();
    badKeyLength[2] = 31;
    expect(() => decodePeerRecord(badKeyLength)).toThrow(/identity length 31 is invalid/);
    expect(() => decodePeerRecord(good.subarray(0, good.length - 1))).toThrow(expect.objectContaining({ code: 'WIRE_TRUNCATED' }));
    expect(() => decodePeerRecord(new Uint8Array([...good, 0]))).toThrow(expect.objectContaining({ code: 'WIRE_TRAILING_BYTES' }));
    const badUtf8 = good.slice();
    badUtf8[3] = 0xff;
    expect(() => decodePeerRecord(badUtf8)).toThrow(/not UTF-8/);
  });

  it(`survives ${FUZZ_RUNS} random and mutated inputs`, () => {
    const valid = records.map(encodePeerRecord);
    const { ok, rejected } = expectOnlyWireErrors(decodePeerRecord, fuzzInputs(valid, FUZZ_RUNS, 2));
    expect(ok + rejected).toBe(FUZZ_RUNS);
    expect(ok).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(FUZZ_RUNS / 2);
  });
});
