import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chachaPolyOpen, chachaPolySealInto, JS_AEAD_LIMIT, poly1305FinishForTest } from '../src/chacha20poly1305.js';
import { nobleNoiseCrypto, nodeNoiseCrypto } from '../src/crypto.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function opensslSeal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): string {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]).toString('hex');
}

function jsSeal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + 16);
  chachaPolySealInto(key, nonce, ad, plaintext, out, 0);
  return out;
}

describe('JavaScript ChaCha20-Poly1305', () => {
  it('matches the RFC 8439 section 2.8.2 example', () => {
    const key = Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex');
    const nonce = Buffer.from('070000004041424344454647', 'hex');
    const ad = Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex');
    const plaintext = Buffer.from(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    const sealed = jsSeal(key, nonce, ad, plaintext);
    expect(hex(sealed.subarray(plaintext.length))).toBe('1ae10b594f09e26a7e902ecbd0600691');
    expect(hex(sealed.subarray(0, 16))).toBe('d31a8d34648e60db7b86afbc53ef7ec2');
    expect(Buffer.from(chachaPolyOpen(key, nonce, ad, sealed)!).equals(plaintext)).toBe(true);
  });

  it('matches OpenSSL for 3,000 random keys, nonces, ADs (0..99 bytes) and messages (0..1,199 bytes)', () => {
    for (let i = 0; i < 3_000; i++) {
      const [key, nonce, ad, plaintext] = [randomBytes(32), randomBytes(12), randomBytes(i % 100), randomBytes((i * 7) % 1_200)];
      const expected = opensslSeal(key, nonce, ad, plaintext);
      const sealed = jsSeal(key, nonce, ad, plaintext);
      expect(hex(sealed), `case ${i}`).toBe(expected);
      expect(hex(chachaPolyOpen(key, nonce, ad, sealed)!)).toBe(plaintext.toString('hex'));
    }
  });

  it("Poly1305's final reduction is exact for accumulators at and around the modulus and with unnormalised limbs", () => {
    const P = (1n << 130n) - 5n;
    const valueOf = (limbs: readonly number[]): bigint => limbs.reduce((sum, limb, i) => sum + (BigInt(limb) << BigInt(13 * i)), 0n);
    const expected = (limbs: readonly number[], s: Uint8Array): string => {
      const tag = ((valueOf(limbs) % P) + BigInt('0x' + Buffer.from(s).reverse().toString('hex'))) % (1n << 128n);
      return Buffer.from(tag.toString(16).padStart(32, '0'), 'hex').reverse().toString('hex');
    };
    const top = 8191;
    const cases: number[][] = [
      new Array(10).fill(0),
      new Array(10).fill(top), // 2^130 - 1
      [top - 4, ...new Array(9).fill(top)], // p
      [top - 5, ...new Array(9).fill(top)], // p - 1
      [top - 3, ...new Array(9).fill(top)], // p + 1
      [8192 + 4, ...new Array(9).fill(top)], // 2^130 + 4, limb 0 unnormalised
      [8191, 8192, 8191, 8191, 8191, 8191, 8191, 8191, 8191, 8190], // limb 1 unnormalised
      [16383, 16383, 8191, 8191, 8191, 8191, 8191, 8191, 8191, 8191],
      [16383, 8191, 8191, 8191, 8191, 8191, 8191, 8191, 8191, 16383],
      [5, 0, 0, 0, 0, 0, 0, 0, 0, 8192],
      // The top carry folds back into limb 0, whose carry then lands on a full limb 1.
      [8190, 8191, 0, 0, 0, 0, 0, 0, 0, 8192],
      [8190, 8191, 8191, 0, 0, 0, 0, 0, 0, 8192],
    ];
    for (let i = 0; i < 2_000; i++) cases.push(Array.from({ length: 10 }, () => Math.floor(Math.random() * 16384)));
    for (const limbs of cases) {
      for (const s of [new Uint8Array(16), new Uint8Array(16).fill(0xff), randomBytes(16)]) {
        expect(hex(poly1305FinishForTest(limbs, s)), `limbs ${limbs.join(',')}`).toBe(expected(limbs, s));
      }
    }
  });

  it('seals at an offset without touching the bytes around it', () => {
    const [key, nonce, plaintext] = [randomBytes(32), randomBytes(12), randomBytes(70)];
    const out = new Uint8Array(4 + 70 + 16 + 4).fill(0xee);
    chachaPolySealInto(key, nonce, new Uint8Array(0), plaintext, out, 4);
    expect(hex(out.subarray(4, 90))).toBe(opensslSeal(key, nonce, new Uint8Array(0), plaintext));
    expect([...out.subarray(0, 4), ...out.subarray(90)]).toEqual(new Array(8).fill(0xee));
  });

  it('rejects every single-bit change to ciphertext, tag or AD, and a wrong key or nonce', () => {
    const [key, nonce, ad, plaintext] = [randomBytes(32), randomBytes(12), randomBytes(20), randomBytes(40)];
    const sealed = jsSeal(key, nonce, ad, plaintext);
    let rejected = 0;
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const tampered = sealed.slice();
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      if (chachaPolyOpen(key, nonce, ad, tampered) === undefined) rejected++;
    }
    expect(rejected).toBe(sealed.length * 8);
    for (let bit = 0; bit < ad.length * 8; bit++) {
      const changed = Buffer.from(ad);
      changed[bit >> 3]! ^= 1 << (bit & 7);
      expect(chachaPolyOpen(key, nonce, changed, sealed)).toBeUndefined();
    }
    expect(chachaPolyOpen(randomBytes(32), nonce, ad, sealed)).toBeUndefined();
    expect(chachaPolyOpen(key, randomBytes(12), ad, sealed)).toBeUndefined();
    expect(chachaPolyOpen(key, nonce, ad, sealed.subarray(0, 15))).toBeUndefined();
    expect(chachaPolyOpen(key, nonce, ad, sealed.subarray(0, sealed.length - 1))).toBeUndefined();
  });

  it('the node path agrees with noble on both sides of its JavaScript limit, and in place', () => {
    const node = nodeNoiseCrypto()!.cipher('ChaChaPoly');
    const noble = nobleNoiseCrypto.cipher('ChaChaPoly');
    for (const length of [0, 1, 32, JS_AEAD_LIMIT - 33, JS_AEAD_LIMIT - 32, JS_AEAD_LIMIT, JS_AEAD_LIMIT + 1, 5_000]) {
      const [key, nonce, ad, plaintext] = [randomBytes(32), randomBytes(12), randomBytes(32), randomBytes(length)];
      const sealed = node.seal(key, nonce, ad, plaintext);
      expect(hex(sealed), `seal ${length}`).toBe(hex(noble.seal(key, nonce, ad, plaintext)));
      expect(hex(node.open(key, nonce, ad, sealed)!), `open ${length}`).toBe(plaintext.toString('hex'));
      const out = new Uint8Array(length + 16 + 3);
      node.sealInto(key, nonce, ad, plaintext, out, 3);
      expect(hex(out.subarray(3))).toBe(hex(sealed));
      // In place: the plaintext sits where the ciphertext goes.
      const buffer = new Uint8Array(length + 16);
      buffer.set(plaintext);
      node.sealInto(key, nonce, ad, buffer.subarray(0, length), buffer, 0);
      expect(hex(buffer), `in place ${length}`).toBe(hex(sealed));
    }
    expect(() => node.seal(randomBytes(31), randomBytes(12), new Uint8Array(0), new Uint8Array(8))).toThrow(RangeError);
    expect(() => node.open(randomBytes(32), randomBytes(8), new Uint8Array(0), new Uint8Array(24))).toThrow(RangeError);
  });
});
