/** Slow suite: 1,000,000 mutated inputs per wire decoder, and 20,000 round trips each. */
import { describe, expect, it } from 'vitest';
import { CODECS, checkRoundTrip, fuzzDecoder } from '../src/hardening/fuzz.js';

describe('wire decoders: 1,000,000 mutated inputs each', () => {
  for (const codec of CODECS) {
    it(`${codec.name}: only WireError, no crash`, { timeout: 900_000 }, () => {
      checkRoundTrip(codec, 20_000, 12);
      const result = fuzzDecoder(codec, 1_000_000, 5);
      expect(result.examples).toEqual([]);
      expect(result.crashes).toBe(0);
      expect(result.accepted + result.rejected).toBe(1_000_000);
    });
  }
});
