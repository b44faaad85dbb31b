/**
 * Every wire decoder of every package (catalogue in bench/src/hardening/fuzz.ts): round
 * trips as fast-check properties, and mutation fuzzing (valid encodings of generated
 * values with bits flipped, bytes inserted, deleted, duplicated, truncated, spliced,
 * fields set to extremes; plus random bytes). A decoder may only accept or throw
 * WireError. Each package's own tests already run 100,000 fuzzed inputs per decoder, so
 * this suite adds the round trips and a 20,000-input mutation pass per decoder from a
 * generated corpus; the slow suite (fuzz.slow.test.ts) runs 1,000,000 per decoder.
 */
import { describe, expect, it } from 'vitest';
import { CODECS, checkRoundTrip, fuzzDecoder } from '../src/hardening/fuzz.js';

describe('wire decoders: round trips', () => {
  for (const codec of CODECS) {
    it(`${codec.name}: decode(encode(v)) = v`, () => {
      checkRoundTrip(codec, 300, 11);
    });
  }
});

describe('wire decoders: mutation fuzzing', () => {
  for (const codec of CODECS) {
    it(`${codec.name}: 20,000 mutated inputs, only WireError`, { timeout: 120_000 }, () => {
      const result = fuzzDecoder(codec, 20_000, 3);
      expect(result.examples).toEqual([]);
      expect(result.crashes).toBe(0);
      expect(result.accepted + result.rejected).toBe(20_000);
      // The mutations get past the first checks: some inputs decode, most are refused.
      expect(result.rejected).toBeGreaterThan(2_000);
    });
  }
  it('a decoder that throws anything but WireError is caught as a crash', () => {
    const result = fuzzDecoder({ ...CODECS[0]!, decode: (b: Uint8Array) => (b.length > 3 ? b[b.length] !.toFixed() : 0) } as never, 1000, 1);
    expect(result.crashes).toBeGreaterThan(0);
    expect(result.examples[0]!.error).toMatch(/TypeError/);
  });
});
