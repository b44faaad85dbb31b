import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nobleNoiseCrypto, nodeNoiseCrypto } from '../src/crypto.js';
import { dropHmacKey, hkdf, hmacKey, hmacWith, JS_HASH_LIMIT, sha256 } from '../src/sha256.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** `bytes` cut at `cuts` positions (sorted, within bounds). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const cut of cuts) {
    parts.push(bytes.subarray(from, cut));
    from = cut;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

describe('JavaScript SHA-256', () => {
  it('matches the FIPS 180-4 examples', () => {
    expect(hex(sha256([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(sha256([Buffer.from('abc')]))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex(sha256([Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')]))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('matches node:crypto for every length 0..1,100 (across padding and block edges), in one part and in pieces', () => {
    for (let length = 0; length <= 1_100; length++) {
      const message = randomBytes(length);
      const expected = createHash('sha256').update(message).digest('hex');
      expect(hex(sha256([message])), `length ${length}`).toBe(expected);
      const cuts = [Math.floor(length / 3), Math.floor(length / 2), length - (length % 7)].sort((a, b) => a - b);
      expect(hex(sha256(split(message, cuts))), `length ${length} in pieces`).toBe(expected);
    }
  });

  it('matches node:crypto HMAC for keys of 0..64 bytes and messages up to 300 bytes', () => {
    for (let keyLength = 0; keyLength <= 64; keyLength++) {
      for (const length of [0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 119, 120, 128, 300]) {
        const key = randomBytes(keyLength);
        const message = randomBytes(length);
        const prepared = hmacKey(key);
        expect(hex(hmacWith(prepared, split(message, [length >> 1]))), `key ${keyLength}, message ${length}`).toBe(
          createHmac('sha256', key).update(message).digest('hex'),
        );
        // A prepared key serves any number of messages until dropped.
        expect(hex(hmacWith(prepared, [message]))).toBe(createHmac('sha256', key).update(message).digest('hex'));
        dropHmacKey(prepared);
        expect(prepared.inner.every((word) => word === 0) && prepared.outer.every((word) => word === 0)).toBe(true);
      }
    }
  });

  it('refuses an HMAC key longer than a block (RFC 2104 says to hash it first; callers do)', () => {
    expect(() => hmacKey(new Uint8Array(65))).toThrow(RangeError);
  });

  it("matches RFC 5869 HKDF with empty info (Noise's HKDF is that construction) for 2 and 3 outputs", () => {
    for (let i = 0; i < 200; i++) {
      const chainingKey = randomBytes(32);
      const material = randomBytes(i % 3 === 0 ? 0 : 32);
      const expected = Buffer.from(hkdfSync('sha256', material, chainingKey, new Uint8Array(0), 96)).toString('hex');
      expect(hkdf(chainingKey, material, 2).map(hex).join('')).toBe(expected.slice(0, 128));
      expect(hkdf(chainingKey, material, 3).map(hex).join('')).toBe(expected);
    }
  });

  it("gives the node:crypto SHA256 functions the same answers as noble's, on both sides of the JavaScript limit", () => {
    const node = nodeNoiseCrypto()!.hash('SHA256');
    const noble = nobleNoiseCrypto.hash('SHA256');
    expect(node.hkdf).toBeTypeOf('function');
    for (const length of [0, 32, 64, JS_HASH_LIMIT, JS_HASH_LIMIT + 1, 4_000]) {
      const parts = split(randomBytes(length), [length >> 2]);
      const key = randomBytes(32);
      const longKey = randomBytes(100);
      expect(hex(node.hash(...parts)), `hash ${length}`).toBe(hex(noble.hash(...parts)));
      expect(hex(node.hmac(key, ...parts)), `hmac ${length}`).toBe(hex(noble.hmac(key, ...parts)));
      expect(hex(node.hmac(longKey, ...parts)), `hmac long key ${length}`).toBe(hex(noble.hmac(longKey, ...parts)));
      expect(node.hkdf!(key, parts[0]!, 3).map(hex)).toEqual(
        [1, 2, 3].map((_, i, all) => hex(Buffer.from(hkdfSync('sha256', parts[0]!, key, new Uint8Array(0), 32 * all.length)).subarray(32 * i, 32 * i + 32))),
      );
    }
  });
});
