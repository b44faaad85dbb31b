import { describe, expect, it } from 'vitest';
import { createPeerRecord, decodeFrame, encodeControl, Identity, NodeId, seededRandom, signPeerRecord, toHex, utf8Encode, WireError } from '@deccom/core';
import { decodeMessage, encodeMessage, encodeResponse, KADEMLIA_PROTOCOL, MESSAGE, messageLength, type KademliaMessage } from '../src/index.js';

const alice = createPeerRecord(Identity.fromString('alice').public, { host: '10.0.0.1', port: 4000 });
const ed = Identity.fromSeed(new Uint8Array(32).fill(5));
const signed = signPeerRecord(createPeerRecord(ed.public, { host: '2001:db8::1', port: 7 }, 8), ed);
const target = NodeId.ofString('target').bytes;

const control = (bytes: Uint8Array) => {
  const frame = decodeFrame(bytes, KADEMLIA_PROTOCOL);
  if (frame.kind !== 'control') throw new Error('not a control frame');
  return frame;
};

const messages: KademliaMessage[] = [
  { type: MESSAGE.introduce, peer: alice },
  { type: MESSAGE.askId, peer: signed },
  { type: MESSAGE.findNode, requestId: 7, target, peer: alice },
  { type: MESSAGE.findTopic, requestId: 0xffff_ffff, target, peer: signed },
  { type: MESSAGE.response, requestId: 9, part: 0, parts: 1, providers: [alice], nodes: [signed, alice] },
  { type: MESSAGE.response, requestId: 9, part: 2, parts: 3, providers: [], nodes: [] },
  { type: MESSAGE.announce, requestId: 10, topic: target, ttlSeconds: 600, peer: alice },
  { type: MESSAGE.announceAck, requestId: 11 },
  { type: MESSAGE.withdraw, topic: target, peer: signed },
];

describe('kademlia wire', () => {
  it('has golden bytes', () => {
    expect(toHex(encodeMessage({ type: MESSAGE.announceAck, requestId: 0x01020304 }))).toBe('0108010701020304');
    // Peer record: version 1, flags 1 (string identity), length 5, "alice", 10.0.0.1, port 4000.
    const record = `010105${toHex(utf8Encode('alice'))}0a0000010fa0`;
    expect(toHex(encodeMessage({ type: MESSAGE.introduce, peer: alice }))).toBe(`01080101${record}`);
    expect(toHex(encodeMessage({ type: MESSAGE.findNode, requestId: 1, target: new Uint8Array(32).fill(0xab), peer: alice }))).toBe(
      `0108010300000001${'ab'.repeat(32)}${record}`,
    );
    expect(toHex(encodeMessage({ type: MESSAGE.response, requestId: 2, part: 0, parts: 1, providers: [], nodes: [alice] }))).toBe(
      `010801050000000200010001${record}`,
    );
    expect(toHex(encodeMessage({ type: MESSAGE.announce, requestId: 3, topic: new Uint8Array(32), ttlSeconds: 600, peer: alice }))).toBe(
      `0108010600000003${'00'.repeat(32)}00000258${record}`,
    );
    expect(toHex(encodeMessage({ type: MESSAGE.withdraw, topic: new Uint8Array(32).fill(1), peer: alice }))).toBe(`01080108${'01'.repeat(32)}${record}`);
  });

  it('round-trips every message at its exact length', () => {
    for (const message of messages) {
      const bytes = encodeMessage(message);
      expect(bytes.length).toBe(messageLength(message));
      const frame = control(bytes);
      expect(frame.type).toBe(message.type);
      const decoded = decodeMessage(frame.type, frame.body);
      expect(toHex(encodeMessage(decoded))).toBe(toHex(bytes));
      expect(decoded).toMatchObject({ type: message.type });
    }
    const find = control(encodeMessage(messages[3]!));
    expect(decodeMessage(find.type, find.body)).toMatchObject({ requestId: 0xffff_ffff, target });
  });

  it('refuses to encode values out of range', () => {
    expect(() => encodeMessage({ type: MESSAGE.announceAck, requestId: -1 })).toThrow(RangeError);
    expect(() => encodeMessage({ type: MESSAGE.findNode, requestId: 1, target: new Uint8Array(31), peer: alice })).toThrow(RangeError);
    expect(() => encodeMessage({ type: MESSAGE.announce, requestId: 1, topic: target, ttlSeconds: 0, peer: alice })).toThrow(RangeError);
    expect(() => encodeMessage({ type: MESSAGE.response, requestId: 1, part: 1, parts: 1, providers: [], nodes: [] })).toThrow(RangeError);
  });

  it('splits a large response into parts that each fit a datagram and stand alone', () => {
    const many = Array.from({ length: 60 }, (_, i) => {
      const identity = Identity.fromSeed(new Uint8Array(32).fill(i + 1));
      return signPeerRecord(createPeerRecord(identity.public, { host: '10.0.0.1', port: i + 1 }), identity);
    });
    for (const size of [300, 600, 1400]) {
      const parts = encodeResponse(3, many.slice(0, 5), many.slice(5), size);
      expect(parts.length).toBeGreaterThan(1);
      let providers = 0;
      let nodes = 0;
      const seen: string[] = [];
      parts.forEach((part, index) => {
        expect(part.length).toBeLessThanOrEqual(size);
        const frame = control(part);
        const message = decodeMessage(frame.type, frame.body);
        if (message.type !== MESSAGE.response) throw new Error('type');
        expect(message.part).toBe(index);
        expect(message.parts).toBe(parts.length);
        providers += message.providers.length;
        nodes += message.nodes.length;
        for (const record of [...message.providers, ...message.nodes]) seen.push(record.id.hex);
      });
      expect([providers, nodes]).toEqual([5, 55]);
      expect(seen).toEqual(many.map((record) => record.id.hex));
    }
    // A small response is one part; an empty one too.
    expect(encodeResponse(1, [], [alice], 1400)).toHaveLength(1);
    expect(encodeResponse(1, [], [], 1400)).toHaveLength(1);
    expect(() => encodeResponse(1, [], [alice], 100)).toThrow(RangeError);
  });

  it('rejects malformed messages with typed WireErrors', () => {
    const expectCode = (type: number, body: Uint8Array, code: string) => expect(() => decodeMessage(type, body)).toThrow(expect.objectContaining({ code }));
    expectCode(99, new Uint8Array(4), 'WIRE_UNKNOWN_TYPE');
    expectCode(0, new Uint8Array(0), 'WIRE_UNKNOWN_TYPE');
    const response = control(encodeMessage(messages[4]!)).body;
    const badPart = response.slice();
    badPart[4] = 3; // part 3 of 1
    expect(() => decodeMessage(MESSAGE.response, badPart)).toThrow(/part 3 of 1/);
    const noParts = response.slice();
    noParts[5] = 0;
    expectCode(MESSAGE.response, noParts, 'WIRE_MALFORMED');
    const tooMany = response.slice();
    tooMany[7] = 200; // 200 node records cannot fit
    expectCode(MESSAGE.response, tooMany, 'WIRE_TRUNCATED');
    expectCode(MESSAGE.announceAck, new Uint8Array([0, 0, 0, 1, 0]), 'WIRE_TRAILING_BYTES');
    expectCode(MESSAGE.announceAck, new Uint8Array([0, 0, 1]), 'WIRE_TRUNCATED');
    const announce = control(encodeMessage(messages[6]!)).body.slice();
    announce.set([0, 0, 0, 0], 4 + 32); // TTL 0
    expectCode(MESSAGE.announce, announce, 'WIRE_MALFORMED');
    const find = control(encodeMessage(messages[2]!)).body;
    expectCode(MESSAGE.findNode, find.subarray(0, 30), 'WIRE_TRUNCATED');
    expectCode(MESSAGE.findNode, find.subarray(0, find.length - 1), 'WIRE_TRUNCATED');
    // A control frame of another protocol or version is not ours.
    expect(() => decodeFrame(encodeControl({ id: 0x09, version: 1, name: 'x' }, 1), KADEMLIA_PROTOCOL)).toThrow(WireError);
    expect(() => decodeFrame(encodeControl({ id: 0x08, version: 2, name: 'x' }, 1), KADEMLIA_PROTOCOL)).toThrow(expect.objectContaining({ code: 'WIRE_UNSUPPORTED_VERSION' }));
  });

  it('survives 100,000 random and mutated inputs for each message type', () => {
    const random = seededRandom(1);
    const valid = messages.map((message) => control(encodeMessage(message)));
    for (const type of Object.values(MESSAGE)) {
      const samples = valid.filter((frame) => frame.type === type).map((frame) => frame.body);
      let rejected = 0;
      let accepted = 0;
      for (let i = 0; i < 100_000; i++) {
        let input: Uint8Array;
        if (random.int(3) === 0) input = random.bytes(random.int(160));
        else {
          input = samples[random.int(samples.length)]!.slice();
          const flips = 1 + random.int(3);
          for (let f = 0; f < flips; f++) {
            const at = random.int(input.length);
            input[at] = input[at]! ^ (1 << random.int(8));
          }
          const cut = random.int(4);
          if (cut === 0) input = input.subarray(0, random.int(input.length + 1));
          else if (cut === 1) input = new Uint8Array([...input, ...random.bytes(1 + random.int(8))]);
        }
        try {
          const message = decodeMessage(type, input);
          // Whatever decodes re-encodes to the same bytes: the decoder accepted nothing loosely.
          expect(toHex(encodeMessage(message).subarray(4))).toBe(toHex(input));
          accepted++;
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
          rejected++;
        }
      }
      expect(rejected + accepted).toBe(100_000);
      expect(rejected).toBeGreaterThan(10_000);
    }
  }, 120_000);
});
