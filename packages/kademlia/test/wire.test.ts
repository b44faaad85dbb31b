import { describe, expect, it } from 'vitest';
import { createPeerRecord, encodeControl, Identity, NodeId, seededRandom, signPeerRecord, toHex, WireError, decodeFrame } from '@deccom/core';
import { decodeMessage, encodeAnnounce, encodeFind, encodeIntroduce, encodeResponse, KADEMLIA_PROTOCOL, MESSAGE } from '../src/index.js';
import { encodeAnnounceAck } from '../src/wire.js';
import { buildNetwork, runLookups, stopAll } from '../src/simulation.js';

const alice = createPeerRecord(Identity.fromString('alice').public, { host: '10.0.0.1', port: 4000 });
const ed = Identity.fromSeed(new Uint8Array(32).fill(5));
const signed = signPeerRecord(createPeerRecord(ed.public, { host: '2001:db8::1', port: 7 }, 8), ed);
const target = NodeId.ofString('target').bytes;

const body = (bytes: Uint8Array) => {
  const frame = decodeFrame(bytes, KADEMLIA_PROTOCOL);
  if (frame.kind !== 'control') throw new Error('not control');
  return frame;
};

function validMessages(): Uint8Array[] {
  return [
    encodeIntroduce(MESSAGE.introduce, alice),
    encodeIntroduce(MESSAGE.askId, signed),
    encodeFind(MESSAGE.findNode, 7, target, alice),
    encodeFind(MESSAGE.findTopic, 8, target, signed),
    ...encodeResponse(9, [alice], [signed, alice], 1400),
    encodeAnnounce(10, target, 600, alice),
    encodeAnnounceAck(11),
  ];
}

describe('kademlia wire', () => {
  it('has golden bytes', () => {
    expect(toHex(encodeAnnounceAck(0x01020304))).toBe('0108010701020304');
    expect(toHex(encodeIntroduce(MESSAGE.introduce, alice))).toBe(`01080101010105${toHex(new TextEncoder().encode('alice'))}0a0000010fa0`);
  });

  it('round-trips every message', () => {
    for (const bytes of validMessages()) {
      const frame = body(bytes);
      const message = decodeMessage(frame.type, frame.body);
      expect(message.type).toBe(frame.type);
    }
    const find = body(encodeFind(MESSAGE.findNode, 0xdeadbeef, target, signed));
    expect(decodeMessage(find.type, find.body)).toMatchObject({ requestId: 0xdeadbeef, target });
  });

  it('splits a large response into parts that each fit a datagram and stand alone', () => {
    const many = Array.from({ length: 60 }, (_, i) => signPeerRecord(createPeerRecord(Identity.fromSeed(new Uint8Array(32).fill(i + 1)).public, { host: '10.0.0.1', port: i + 1 }), Identity.fromSeed(new Uint8Array(32).fill(i + 1))));
    const parts = encodeResponse(3, many.slice(0, 5), many.slice(5), 600);
    expect(parts.length).toBeGreaterThan(5);
    let providers = 0;
    let nodes = 0;
    parts.forEach((part, index) => {
      expect(part.length).toBeLessThanOrEqual(600);
      const frame = body(part);
      const message = decodeMessage(frame.type, frame.body);
      if (message.type !== MESSAGE.response) throw new Error('type');
      expect(message.part).toBe(index);
      expect(message.parts).toBe(parts.length);
      providers += message.providers.length;
      nodes += message.nodes.length;
    });
    expect([providers, nodes]).toEqual([5, 55]);
    expect(() => encodeResponse(1, [], [alice], 100)).toThrow(RangeError);
  });

  it('rejects malformed messages with WireError', () => {
    expect(() => decodeMessage(99, new Uint8Array(4))).toThrow(expect.objectContaining({ code: 'WIRE_UNKNOWN_TYPE' }));
    const response = body(encodeResponse(1, [], [alice], 1400)[0]!);
    const badPart = response.body.slice();
    badPart[4] = 3; // part 3 of 1
    expect(() => decodeMessage(MESSAGE.response, badPart)).toThrow(/part 3 of 1/);
    const extra = new Uint8Array([...body(encodeAnnounceAck(1)).body, 0]);
    expect(() => decodeMessage(MESSAGE.announceAck, extra)).toThrow(expect.objectContaining({ code: 'WIRE_TRAILING_BYTES' }));
  });

  it('survives 100,000 random and mutated inputs for each message type', () => {
    const random = seededRandom(1);
    const valid = validMessages().map(body);
    const types = Object.values(MESSAGE);
    for (const type of types) {
      const samples = valid.filter((v) => v.type === type).map((v) => v.body);
      let rejected = 0;
      for (let i = 0; i < 100_000; i++) {
        let input: Uint8Array;
        if (samples.length === 0 || random.int(3) === 0) input = random.bytes(random.int(120));
        else {
          input = samples[random.int(samples.length)]!.slice();
          const flips = 1 + random.int(3);
          for (let f = 0; f < flips; f++) {
            const at = random.int(input.length);
            input[at] = input[at]! ^ (1 << random.int(8));
          }
          if (random.int(3) === 0) input = input.subarray(0, random.int(input.length + 1));
        }
        try {
          decodeMessage(type, input);
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
          rejected++;
        }
      }
      expect(rejected).toBeGreaterThan(10_000);
    }
  }, 60_000);

  it('a node fed garbage keeps serving lookups', async () => {
    const sim = await buildNetwork(40, { link: { latencyMs: 10 } });
    const victim = sim.nodes[3]!;
    const random = seededRandom(77);
    const attacker = sim.network.bind(sim.network.allocateHost(), 0, { deliver: () => {} });
    const valid = validMessages();
    for (let i = 0; i < 5000; i++) {
      let bytes: Uint8Array = valid[random.int(valid.length)]!.slice();
      const at = 1 + random.int(bytes.length - 1);
      bytes[at] = bytes[at]! ^ (1 << random.int(8));
      if (random.int(4) === 0) bytes = random.bytes(random.int(64));
      // Framed as the memory transport's DATA so it reaches the Kademlia layer.
      sim.network.send(attacker, victim.localAddress(), new Uint8Array([0, ...bytes]));
    }
    await sim.clock.advance(1000);
    expect(victim.counters()['kademlia']!['dropped']).toBeGreaterThan(1000);
    sim.alive = sim.nodes.filter((n) => n !== victim);
    const results = await runLookups({ ...sim, alive: [victim, ...sim.nodes.slice(10, 20)] }, 40);
    expect(results.every((r) => r.ok)).toBe(true);
    await stopAll(sim);
  }, 30_000);

  it('ignores control messages for other protocols', () => {
    expect(() => decodeFrame(encodeControl({ id: 0x09, version: 1, name: 'x' }, 1), KADEMLIA_PROTOCOL)).toThrow(WireError);
  });
});
