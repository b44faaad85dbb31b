/**
 * The two crypto paths agree beyond what the Noise vectors exercise: hashes and HMACs of
 * every size (the node path hashes small inputs in one call and builds HMAC from two, and
 * falls back to streaming objects for long keys and inputs), and sealing / opening in
 * parts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { CipherState, nobleNoiseCrypto, nodeNoiseCrypto, type HashName } from '../src/index.js';

const node = nodeNoiseCrypto()!;

let seed = 1;
function bytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    out[i] = seed >>> 16;
  }
  return out;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('crypto paths', () => {
  it('hash and HMAC agree for every hash, key and input length (one-shot and streaming)', () => {
    for (const name of ['SHA256', 'SHA512', 'BLAKE2s', 'BLAKE2b'] as HashName[]) {
      const ours = node.hash(name);
      const reference = nobleNoiseCrypto.hash(name);
      for (const keyLength of [0, 1, 32, ours.blockLength - 1, ours.blockLength, ours.blockLength + 1, 300]) {
        for (const lengths of [[], [0], [1], [31, 1], [64, 64, 1], [2047], [2048], [2049], [1000, 1049], [5000]]) {
          const key = bytes(keyLength);
          const parts = lengths.map(bytes);
          expect(hex(ours.hmac(key, ...parts)), `${name} hmac key ${keyLength} parts ${lengths}`).toBe(hex(reference.hmac(key, ...parts)));
          expect(hex(ours.hash(...parts)), `${name} hash parts ${lengths}`).toBe(hex(reference.hash(...parts)));
        }
      }
    }
  });

  it('the hash of one call does not change when later calls reuse the scratch space', () => {
    const sha = node.hash('SHA256');
    const first = sha.hmac(bytes(32), bytes(40));
    const copy = hex(first);
    sha.hmac(bytes(32), bytes(40));
    sha.hash(bytes(10), bytes(20));
    expect(hex(first)).toBe(copy);
  });

  it('sealing and opening in parts match whole messages, on both paths and across them', () => {
    const key = bytes(32);
    const ad = bytes(10);
    for (const sender of [node, nobleNoiseCrypto]) {
      for (const receiver of [node, nobleNoiseCrypto]) {
        const seal = new CipherState(sender.cipher('ChaChaPoly'), key);
        const open = new CipherState(receiver.cipher('ChaChaPoly'), key);
        for (const length of [0, 1, 63, 64, 65, 1000, 65_519]) {
          const plain = bytes(length);
          const whole = seal.encryptAt(length, ad, plain);
          const { ciphertext, tag } = seal.encryptAtParts(length, ad, plain);
          expect(hex(ciphertext) + hex(tag)).toBe(hex(whole));
          // Opened from pieces cut at odd places.
          const cuts = [0, Math.floor(length / 3), Math.floor(length / 3) + 1, length].filter((c, i, all) => i === 0 || c > all[i - 1]!);
          const pieces = cuts.slice(1).map((end, i) => ciphertext.subarray(cuts[i]!, end));
          const opened = open.decryptAtParts(length, ad, pieces, tag);
          expect(opened).toBeDefined();
          expect(hex(Buffer.concat(opened!))).toBe(hex(plain));
          // A flipped bit anywhere fails the whole message, and a wrong nonce or AD too.
          if (length > 0) {
            const bad = ciphertext.slice();
            bad[length - 1]! ^= 1;
            expect(open.decryptAtParts(length, ad, [bad], tag)).toBeUndefined();
          }
          const badTag = tag.slice();
          badTag[0]! ^= 1;
          expect(open.decryptAtParts(length, ad, pieces, badTag)).toBeUndefined();
          expect(open.decryptAtParts(length + 1, ad, pieces, tag)).toBeUndefined();
          expect(open.decryptAtParts(length, bytes(10), pieces, tag)).toBeUndefined();
          expect(open.decryptAtParts(length, ad, pieces, tag.subarray(0, 15))).toBeUndefined();
        }
      }
    }
  });

  it('generated X25519 / X448 key pairs agree in DH and their keys are never export()ed (Node 20 can deadlock there)', async () => {
    // export() holds the key's mutex while allocating; a GC then may destroy the job that
    // generated the key, which takes the same mutex (see nodeDh in src/crypto.ts).
    const keyObjectPrototypes = new Set(Object.values(generateKeyPairSync('x25519')).map((key: object) => Object.getPrototypeOf(key) as { export: unknown }));
    const spies = [...keyObjectPrototypes].map((prototype) => vi.spyOn(prototype as { export: () => unknown }, 'export'));
    try {
      for (const name of ['25519', '448'] as const) {
        const dh = node.dh(name);
        const pairs = Array.from({ length: 40 }, () => dh.generateKeyPair()); // synchronous, and starts the pool
        await new Promise((resolve) => setTimeout(resolve, 100));
        pairs.push(...Array.from({ length: 8 }, () => dh.generateKeyPair())); // from the pool
        for (let i = 1; i < pairs.length; i++) {
          expect(pairs[i]!.publicKey.length).toBe(dh.length);
          expect(hex(dh.dh(pairs[i - 1]!, pairs[i]!.publicKey))).toBe(hex(dh.dh(pairs[i]!, pairs[i - 1]!.publicKey)));
        }
        expect(new Set(pairs.map((pair) => hex(pair.publicKey))).size).toBe(pairs.length);
      }
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});
