/**
 * SHA-256 (FIPS 180-4), HMAC (RFC 2104) and Noise's HKDF (section 4.3) in plain
 * JavaScript, for the short inputs of a handshake.
 *
 * node:crypto hashes fast, but each call crosses into C++ (about 1.9 us on this project's
 * machines, whatever the size of a short input), and an HMAC made of one-shot hashes must
 * hash the padded key again for every call. A handshake makes ~33 hash calls per side,
 * almost all of them over 32 to 200 bytes, and each HKDF computes three or four HMACs
 * under two keys. Here a 64-byte block costs ~0.3-0.5 us and an HMAC key's padded states
 * are hashed once and reused for every output of an HKDF, which halves the handshake's
 * hashing time (per handshake, both sides: ~150 us with one-shot node:crypto calls, ~75 us
 * here). Long inputs stay with node:crypto (see {@link JS_HASH_LIMIT}).
 *
 * The algorithm has no secret-dependent branches or table look-ups (additions, rotations
 * and exclusive-ors of 32-bit words), so running it in JavaScript leaks no more timing
 * than node:crypto does. Scratch space holding key-derived words is zeroed after use.
 */

/** Inputs up to this many bytes are hashed here; longer ones by node:crypto (faster per byte). */
export const JS_HASH_LIMIT = 256;

/** SHA-256 output and block lengths. */
const DIGEST_LENGTH = 32;
const BLOCK_LENGTH = 64;

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** The initial hash value (FIPS 180-4 section 5.3.3). */
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

/** Scratch: the message schedule, the block being filled, and the running state. */
const W = new Int32Array(64);
const BLOCK = new Uint8Array(BLOCK_LENGTH);
const STATE = new Int32Array(8);

/**
 * Absorbs {@link BLOCK} into `state`. It reads only that one array, so the element
 * accesses stay monomorphic (inputs arrive as Buffers and as plain Uint8Arrays, and
 * reading both here made the whole loop slower).
 */
function compress(state: Int32Array): void {
  const w = W;
  const bytes = BLOCK;
  for (let i = 0, offset = 0; i < 16; i++, offset += 4) w[i] = (bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
  for (let i = 16; i < 64; i++) {
    const w15 = w[i - 15]!;
    const w2 = w[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const sigma1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + sigma1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const sigma0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (sigma0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/**
 * Hashes `parts` starting from `start` (the state after `absorbed` bytes, a multiple of
 * 64: 0 from the IV, 64 after an HMAC pad block) and returns the 32-byte digest.
 */
function digest(start: Int32Array, absorbed: number, parts: readonly Uint8Array[]): Uint8Array {
  const state = STATE;
  state.set(start);
  const block = BLOCK;
  let fill = 0;
  let total = absorbed;
  for (const part of parts) {
    const length = part.length;
    total += length;
    if (fill + length < BLOCK_LENGTH) {
      block.set(part, fill);
      fill += length;
      continue;
    }
    let i = 0;
    while (i < length) {
      const n = Math.min(BLOCK_LENGTH - fill, length - i);
      block.set(part.subarray(i, i + n), fill);
      fill += n;
      i += n;
      if (fill === BLOCK_LENGTH) {
        compress(state);
        fill = 0;
      }
    }
  }
  // Padding: 0x80, zeros, then the length in bits as a 64-bit big-endian integer.
  block[fill++] = 0x80;
  if (fill > BLOCK_LENGTH - 8) {
    block.fill(0, fill);
    compress(state);
    fill = 0;
  }
  block.fill(0, fill, BLOCK_LENGTH - 8);
  const high = Math.floor(total / 0x20000000); // (total * 8) / 2^32
  const low = (total * 8) >>> 0;
  block[56] = high >>> 24;
  block[57] = high >>> 16;
  block[58] = high >>> 8;
  block[59] = high;
  block[60] = low >>> 24;
  block[61] = low >>> 16;
  block[62] = low >>> 8;
  block[63] = low;
  compress(state);
  const out = new Uint8Array(DIGEST_LENGTH);
  for (let i = 0; i < 8; i++) {
    const v = state[i]!;
    out[4 * i] = v >>> 24;
    out[4 * i + 1] = v >>> 16;
    out[4 * i + 2] = v >>> 8;
    out[4 * i + 3] = v;
  }
  block.fill(0);
  W.fill(0);
  state.fill(0);
  return out;
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(parts: readonly Uint8Array[]): Uint8Array {
  return digest(IV, 0, parts);
}

/** An HMAC-SHA-256 key: the states after its inner and outer padded blocks. */
export interface HmacKey {
  readonly inner: Int32Array;
  readonly outer: Int32Array;
}

function padState(key: Uint8Array, pad: number): Int32Array {
  const block = BLOCK;
  for (let i = 0; i < BLOCK_LENGTH; i++) block[i] = (i < key.length ? key[i]! : 0) ^ pad;
  const state = IV.slice();
  compress(state);
  block.fill(0);
  W.fill(0);
  return state;
}

/** Prepares `key` (at most 64 bytes: callers hash longer keys first, per RFC 2104). */
export function hmacKey(key: Uint8Array): HmacKey {
  if (key.length > BLOCK_LENGTH) throw new RangeError(`hmacKey: key of ${key.length} bytes, at most ${BLOCK_LENGTH}`);
  return { inner: padState(key, 0x36), outer: padState(key, 0x5c) };
}

/** HMAC-SHA-256 under a prepared key, over the concatenation of `parts`. */
export function hmacWith(key: HmacKey, parts: readonly Uint8Array[]): Uint8Array {
  const inner = digest(key.inner, BLOCK_LENGTH, parts);
  const out = digest(key.outer, BLOCK_LENGTH, [inner]);
  inner.fill(0);
  return out;
}

/** Forgets a prepared key. */
export function dropHmacKey(key: HmacKey): void {
  key.inner.fill(0);
  key.outer.fill(0);
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** Noise's HKDF(chaining key, input key material, 2 or 3 outputs) with SHA-256. */
export function hkdf(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const chaining = hmacKey(chainingKey);
  const tempKey = hmacWith(chaining, [inputKeyMaterial]);
  dropHmacKey(chaining);
  const temp = hmacKey(tempKey);
  tempKey.fill(0);
  const output1 = hmacWith(temp, [ONE]);
  const output2 = hmacWith(temp, [output1, TWO]);
  const result = outputs === 2 ? [output1, output2] : [output1, output2, hmacWith(temp, [output2, THREE])];
  dropHmacKey(temp);
  return result;
}
