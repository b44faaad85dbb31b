/**
 * Wycheproof ChaCha20-Poly1305 and X25519 (`../shared/vectors/wycheproof/`) on both crypto
 * paths. The node path sends short messages to the JavaScript ChaCha20-Poly1305 and long
 * ones to node:crypto, so its run covers both; the JavaScript one also runs alone, on
 * every message length.
 */
import { describe, expect, it } from 'vitest';
import { chachaPolyOpen, chachaPolySealInto } from '../src/chacha20poly1305.js';
import { NoiseError, nobleNoiseCrypto, nodeNoiseCrypto, type NoiseCrypto } from '../src/index.js';
import { hex, readVectors, unhex, vectorsPresent } from './helpers.js';

interface AeadGroup {
  ivSize: number;
  keySize: number;
  tagSize: number;
  tests: { tcId: number; key: string; iv: string; aad: string; msg: string; ct: string; tag: string; result: 'valid' | 'invalid'; flags: string[] }[];
}
interface XdhGroup {
  curve: string;
  tests: { tcId: number; public: string; private: string; shared: string; result: 'valid' | 'acceptable' | 'invalid'; flags: string[] }[];
}

const present = vectorsPresent();
const paths: [string, NoiseCrypto][] = [['noble', nobleNoiseCrypto]];
const node = nodeNoiseCrypto();
if (node) paths.push(['node', node]);

describe.skipIf(!present)('Wycheproof', () => {
  it('ChaCha20-Poly1305: every 96-bit-nonce test on the JavaScript implementation, at every length', () => {
    const file = readVectors<{ testGroups: AeadGroup[] }>('wycheproof/chacha20_poly1305_test.json');
    let ran = 0;
    let longest = 0;
    const failures: string[] = [];
    for (const group of file.testGroups) {
      if (group.ivSize !== 96) continue;
      for (const test of group.tests) {
        ran++;
        const [key, iv, aad, msg] = [unhex(test.key), unhex(test.iv), unhex(test.aad), unhex(test.msg)];
        longest = Math.max(longest, msg.length);
        const opened = chachaPolyOpen(key, iv, aad, unhex(test.ct + test.tag));
        if (test.result === 'valid') {
          const sealed = new Uint8Array(msg.length + 16);
          chachaPolySealInto(key, iv, aad, msg, sealed, 0);
          if (hex(sealed) !== test.ct + test.tag) failures.push(`${test.tcId}: seal`);
          if (opened === undefined || hex(opened) !== test.msg) failures.push(`${test.tcId}: open`);
        } else if (opened !== undefined) {
          failures.push(`${test.tcId}: accepted an invalid ciphertext`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(ran).toBeGreaterThan(300);
    expect(longest).toBeGreaterThan(256);
  });

  for (const [name, crypto] of paths) {
    it(`ChaCha20-Poly1305: every test on the ${name} path`, () => {
      const file = readVectors<{ testGroups: AeadGroup[]; numberOfTests: number }>('wycheproof/chacha20_poly1305_test.json');
      const aead = crypto.cipher('ChaChaPoly');
      let ran = 0;
      const failures: string[] = [];
      for (const group of file.testGroups) {
        for (const test of group.tests) {
          ran++;
          const key = unhex(test.key);
          const iv = unhex(test.iv);
          const aad = unhex(test.aad);
          const sealed = unhex(test.ct + test.tag);
          if (group.ivSize !== 96) {
            // Only the 96-bit nonce of RFC 8439 exists in Noise; other sizes must be refused.
            expect(test.result).toBe('invalid');
            expect(() => aead.seal(key, iv, aad, unhex(test.msg))).toThrow(RangeError);
            expect(() => aead.open(key, iv, aad, sealed)).toThrow(RangeError);
            continue;
          }
          const opened = aead.open(key, iv, aad, sealed);
          if (test.result === 'valid') {
            if (opened === undefined || hex(opened) !== test.msg) failures.push(`${test.tcId}: open`);
            if (hex(aead.seal(key, iv, aad, unhex(test.msg))) !== test.ct + test.tag) failures.push(`${test.tcId}: seal`);
          } else if (opened !== undefined) {
            failures.push(`${test.tcId}: accepted an invalid ciphertext`);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(ran).toBe(file.numberOfTests);
    });

    it(`X25519: every test on the ${name} path`, () => {
      const file = readVectors<{ testGroups: XdhGroup[]; numberOfTests: number }>('wycheproof/x25519_test.json');
      const dh = crypto.dh('25519');
      let ran = 0;
      let refusedZero = 0;
      const failures: string[] = [];
      for (const group of file.testGroups) {
        expect(group.curve).toBe('curve25519');
        for (const test of group.tests) {
          ran++;
          const pair = dh.keyPairFromSecret(unhex(test.private));
          let shared: Uint8Array | undefined;
          let error: unknown;
          try {
            shared = dh.dh(pair, unhex(test.public));
          } catch (e) {
            error = e;
          }
          if (/^0+$/.test(test.shared)) {
            // An all-zero shared secret (a low-order public key) is refused, as Noise section 12.1 permits
            // and as WireGuard does; Wycheproof marks these "acceptable" either way.
            if (!(error instanceof NoiseError && error.code === 'DH_FAILED')) failures.push(`${test.tcId}: zero secret not refused`);
            else refusedZero++;
          } else if (test.result === 'invalid') {
            if (error === undefined) failures.push(`${test.tcId}: accepted an invalid input`);
          } else if (shared === undefined || hex(shared) !== test.shared) {
            failures.push(`${test.tcId}: ${shared ? hex(shared) : String(error)} != ${test.shared}`);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(ran).toBe(file.numberOfTests);
      expect(refusedZero).toBeGreaterThan(0);
    });
  }
});
