/**
 * Fuzzing: every decoder gets >= 100,000 random and mutated inputs and may only throw
 * WireError; the layer's receive path gets 100,000 hostile datagrams and never throws.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom, WireError, type Random } from '@deccom/core';
import {
  decodeCookie,
  decodeHandshakeReply,
  decodeIdentityProof,
  decodeInitiation,
  decodeTransport,
  decodeUnknownSession,
  encodeCookie,
  encodeHandshakeReply,
  encodeIdentityProof,
  encodeInitiation,
  encodeUnknownSession,
  MESSAGE,
  decodeSealedMessage,
  decodeStreamFrame,
  decodeStreamHeader,
} from '../src/index.js';
import { makeNetwork, makeNoiseNode, text } from './harness.js';

const RUNS = 100_000;

function randomBytes(random: Random, max: number): Uint8Array {
  const out = new Uint8Array(random.int(max + 1));
  for (let i = 0; i < out.length; i++) out[i] = random.int(256);
  return out;
}

/** A mutation of `valid`: flipped bytes, truncation, extension, or a splice of random bytes. */
function mutate(random: Random, valid: Uint8Array): Uint8Array {
  const kind = random.int(5);
  if (kind === 0) return randomBytes(random, valid.length + 8);
  if (kind === 1) return valid.subarray(0, random.int(valid.length + 1));
  if (kind === 2) {
    const out = new Uint8Array(valid.length + 1 + random.int(16));
    out.set(valid);
    for (let i = valid.length; i < out.length; i++) out[i] = random.int(256);
    return out;
  }
  const out = valid.slice();
  const flips = 1 + random.int(4);
  for (let i = 0; i < flips && out.length > 0; i++) out[random.int(out.length)] = random.int(256);
  return out;
}

const random32 = (random: Random, n = 32): Uint8Array => Uint8Array.from({ length: n }, () => random.int(256));

describe('decoder fuzz', () => {
  const seed = seededRandom('noise-fuzz');
  const samples: [string, Uint8Array, (bytes: Uint8Array) => unknown][] = [
    ['initiation', encodeInitiation(7, undefined, random32(seed)).subarray(4), decodeInitiation],
    ['initiation+cookie', encodeInitiation(7, random32(seed, 16), random32(seed)).subarray(4), decodeInitiation],
    ['response', encodeHandshakeReply(MESSAGE.response, 1, 2, random32(seed, 180)).subarray(4), decodeHandshakeReply],
    ['transport', Uint8Array.of(1, 7, 1, 4, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 3, ...random32(seed, 40)), decodeTransport],
    ['cookie', encodeCookie(5, random32(seed, 16)).subarray(4), decodeCookie],
    ['unknown-session', encodeUnknownSession(5).subarray(4), decodeUnknownSession],
    ['identity proof', encodeIdentityProof({ publicKey: random32(seed), signature: random32(seed, 64) }), decodeIdentityProof],
    ['sealed message', Uint8Array.of(4, 0, 0, 0, 0, 0, 0, 0, 7, ...random32(seed, 40)), decodeSealedMessage],
    ['stream header', Uint8Array.of(5, ...random32(seed, 8)), decodeStreamHeader],
    ['stream frame', Uint8Array.of(0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 9, ...random32(seed, 21)), decodeStreamFrame],
  ];
  for (const [name, valid, decode] of samples) {
    it(`${name}: ${RUNS.toLocaleString('en')} random and mutated inputs throw nothing but WireError`, { timeout: 120_000 }, () => {
      const random = seededRandom(name);
      let accepted = 0;
      let rejected = 0;
      expect(() => decode(valid)).not.toThrow();
      for (let i = 0; i < RUNS; i++) {
        const input = i % 4 === 0 ? randomBytes(random, 200) : mutate(random, valid);
        try {
          decode(input);
          accepted++;
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
          rejected++;
        }
      }
      expect(accepted + rejected).toBe(RUNS);
      expect(rejected).toBeGreaterThan(0);
    });
  }
});

describe('receive path fuzz', () => {
  const nodes: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.stop();
  });

  it(`${RUNS.toLocaleString('en')} hostile datagrams (mutations of real traffic) never throw and are never delivered`, { timeout: 300_000 }, async () => {
    const net = makeNetwork();
    const a = makeNoiseNode(net);
    const b = makeNoiseNode(net);
    nodes.push(a.node, b.node);
    await a.node.start();
    await b.node.start();
    a.tap.record = true;
    b.tap.record = true;
    a.node.sendDatagram(b.node.localAddress(), text('genuine'));
    await net.clock.runUntil(() => b.delivered.length === 1, { maxMs: 5_000 });
    b.node.sendDatagram(a.node.localAddress(), text('genuine reply'));
    await net.clock.runUntil(() => a.delivered.length === 1, { maxMs: 5_000 });
    const corpus = [...a.tap.sent.map((s) => s.data), ...b.tap.sent.map((s) => s.data)];
    expect(corpus.length).toBeGreaterThanOrEqual(5);
    a.tap.record = false;
    b.tap.record = false;
    // Replies to hostile input go nowhere.
    b.tap.outgoing = () => false;
    const random = seededRandom('receive-fuzz');
    const from = a.node.localAddress();
    for (let i = 0; i < RUNS; i++) {
      const valid = corpus[random.int(corpus.length)]!;
      const input = i % 10 === 0 ? randomBytes(random, 300) : mutate(random, valid);
      // Vary the source too: the session's address and strangers.
      b.tap.inject(input, i % 3 === 0 ? { host: '10.77.0.1', port: 1 + (i % 50) } : from);
      if (i % 10_000 === 0) await net.clock.advance(10);
    }
    const counters = b.node.counters()['noise']!;
    expect(counters['handler-errors'] ?? 0).toBe(0);
    expect(counters['dropped']).toBeGreaterThan(RUNS / 2);
    // Only the one genuine message was ever delivered (mutations that happen to be exact replays are refused too).
    expect(b.delivered.map((d) => d.data)).toEqual(['genuine']);
    // And the session still works.
    b.tap.outgoing = undefined;
    a.node.sendDatagram(b.node.localAddress(), text('still fine'));
    expect(await net.clock.runUntil(() => b.delivered.length === 2, { maxMs: 5_000 })).toBe(true);
  });
});
