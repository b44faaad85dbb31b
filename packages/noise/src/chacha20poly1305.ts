/**
 * ChaCha20-Poly1305 (RFC 8439) in plain JavaScript, for short messages.
 *
 * node:crypto builds a cipher object for every message (an OpenSSL context, a native
 * wrapper, a tag read-back): ~5.5 us on this project's machines for a 32-byte message,
 * whatever its size. A handshake seals and opens eight short fields (static keys and
 * payloads), and small datagrams pay the same. Here a 32-byte message costs ~2 us; past a
 * few hundred bytes node:crypto's vector code wins, so the node path sends only messages
 * up to {@link JS_AEAD_LIMIT} bytes here.
 *
 * Constant time: ChaCha20 is additions, rotations and exclusive-ors of 32-bit words.
 * Poly1305 keeps its 130-bit numbers in ten 13-bit limbs held in doubles: every product
 * and sum is an integer below 2^53 (exact), carries are taken by multiplying by 2^-13 and
 * flooring (no division, whose latency can depend on the operands), the final reduction
 * selects with arithmetic rather than a branch, and tags are compared with an OR of
 * differences. Scratch space holding key material is zeroed after each call.
 */

/** The node path handles a message here when its AD and plaintext (or ciphertext without tag) add up to at most this many bytes. */
export const JS_AEAD_LIMIT = 512;

const TAG_LENGTH = 16;
const INV_LIMB = 1 / 8192;
const LIMB = 8192;

/** Scratch: key and nonce words, the block state, a keystream block, Poly1305 state. */
const KEY = new Int32Array(8);
const NONCE = new Int32Array(3);
const KEYSTREAM = new Uint8Array(64);
const R = new Float64Array(10);
const H = new Float64Array(10);
const G = new Float64Array(10);
const PAD = new Uint8Array(16);
const PARTIAL = new Uint8Array(16);
const LENGTHS = new Uint8Array(16);
const TAG = new Uint8Array(16);

function word(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24);
}

/** One ChaCha20 block (RFC 8439 section 2.3) for `counter` into {@link KEYSTREAM}. */
function chachaBlock(counter: number): void {
  const k = KEY;
  const n = NONCE;
  const j0 = 0x61707865;
  const j1 = 0x3320646e;
  const j2 = 0x79622d32;
  const j3 = 0x6b206574;
  const j4 = k[0]!;
  const j5 = k[1]!;
  const j6 = k[2]!;
  const j7 = k[3]!;
  const j8 = k[4]!;
  const j9 = k[5]!;
  const j10 = k[6]!;
  const j11 = k[7]!;
  const j12 = counter | 0;
  const j13 = n[0]!;
  const j14 = n[1]!;
  const j15 = n[2]!;
  let x0 = j0;
  let x1 = j1;
  let x2 = j2;
  let x3 = j3;
  let x4 = j4;
  let x5 = j5;
  let x6 = j6;
  let x7 = j7;
  let x8 = j8;
  let x9 = j9;
  let x10 = j10;
  let x11 = j11;
  let x12 = j12;
  let x13 = j13;
  let x14 = j14;
  let x15 = j15;
  for (let round = 0; round < 10; round++) {
    // Column rounds.
    x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 16) | (x12 >>> 16);
    x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 12) | (x4 >>> 20);
    x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 8) | (x12 >>> 24);
    x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 7) | (x4 >>> 25);
    x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 16) | (x13 >>> 16);
    x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 12) | (x5 >>> 20);
    x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 8) | (x13 >>> 24);
    x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 7) | (x5 >>> 25);
    x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 16) | (x14 >>> 16);
    x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 12) | (x6 >>> 20);
    x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 8) | (x14 >>> 24);
    x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 7) | (x6 >>> 25);
    x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 16) | (x15 >>> 16);
    x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 12) | (x7 >>> 20);
    x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 8) | (x15 >>> 24);
    x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 7) | (x7 >>> 25);
    // Diagonal rounds.
    x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 16) | (x15 >>> 16);
    x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 12) | (x5 >>> 20);
    x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 8) | (x15 >>> 24);
    x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 7) | (x5 >>> 25);
    x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 16) | (x12 >>> 16);
    x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 12) | (x6 >>> 20);
    x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 8) | (x12 >>> 24);
    x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 7) | (x6 >>> 25);
    x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 16) | (x13 >>> 16);
    x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 12) | (x7 >>> 20);
    x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 8) | (x13 >>> 24);
    x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 7) | (x7 >>> 25);
    x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 16) | (x14 >>> 16);
    x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 12) | (x4 >>> 20);
    x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 8) | (x14 >>> 24);
    x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 7) | (x4 >>> 25);
  }
  const out = KEYSTREAM;
  put(out, 0, x0 + j0);
  put(out, 4, x1 + j1);
  put(out, 8, x2 + j2);
  put(out, 12, x3 + j3);
  put(out, 16, x4 + j4);
  put(out, 20, x5 + j5);
  put(out, 24, x6 + j6);
  put(out, 28, x7 + j7);
  put(out, 32, x8 + j8);
  put(out, 36, x9 + j9);
  put(out, 40, x10 + j10);
  put(out, 44, x11 + j11);
  put(out, 48, x12 + j12);
  put(out, 52, x13 + j13);
  put(out, 56, x14 + j14);
  put(out, 60, x15 + j15);
}

function put(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value;
  out[offset + 1] = value >>> 8;
  out[offset + 2] = value >>> 16;
  out[offset + 3] = value >>> 24;
}

/** Poly1305 key from keystream block 0 (r clamped, RFC 8439 section 2.5), accumulator cleared. */
function polyInit(): void {
  const b = KEYSTREAM;
  const t0 = b[0]! | (b[1]! << 8);
  const t1 = b[2]! | (b[3]! << 8);
  const t2 = b[4]! | (b[5]! << 8);
  const t3 = b[6]! | (b[7]! << 8);
  const t4 = b[8]! | (b[9]! << 8);
  const t5 = b[10]! | (b[11]! << 8);
  const t6 = b[12]! | (b[13]! << 8);
  const t7 = b[14]! | (b[15]! << 8);
  // The masks apply the clamp r &= 0x0ffffffc0ffffffc0ffffffc0fffffff while splitting r into limbs.
  R[0] = t0 & 0x1fff;
  R[1] = ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
  R[2] = ((t1 >>> 10) | (t2 << 6)) & 0x1f03;
  R[3] = ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
  R[4] = ((t3 >>> 4) | (t4 << 12)) & 0x00ff;
  R[5] = (t4 >>> 1) & 0x1ffe;
  R[6] = ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
  R[7] = ((t5 >>> 11) | (t6 << 5)) & 0x1f81;
  R[8] = ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
  R[9] = (t7 >>> 5) & 0x007f;
  PAD.set(b.subarray(16, 32));
  H.fill(0);
}

/** Absorbs `length` bytes of `bytes` from `offset`, the last block zero-padded to 16 bytes (the AEAD's padding). */
function polyUpdate(bytes: Uint8Array, offset: number, length: number): void {
  const r0 = R[0]!;
  const r1 = R[1]!;
  const r2 = R[2]!;
  const r3 = R[3]!;
  const r4 = R[4]!;
  const r5 = R[5]!;
  const r6 = R[6]!;
  const r7 = R[7]!;
  const r8 = R[8]!;
  const r9 = R[9]!;
  // 2^130 = 5 (mod p): limb products that wrap past the top come back times 5.
  const s1 = 5 * r1;
  const s2 = 5 * r2;
  const s3 = 5 * r3;
  const s4 = 5 * r4;
  const s5 = 5 * r5;
  const s6 = 5 * r6;
  const s7 = 5 * r7;
  const s8 = 5 * r8;
  const s9 = 5 * r9;
  let h0 = H[0]!;
  let h1 = H[1]!;
  let h2 = H[2]!;
  let h3 = H[3]!;
  let h4 = H[4]!;
  let h5 = H[5]!;
  let h6 = H[6]!;
  let h7 = H[7]!;
  let h8 = H[8]!;
  let h9 = H[9]!;
  for (let p = 0; p < length; p += 16) {
    let b = bytes;
    let o = offset + p;
    if (length - p < 16) {
      PARTIAL.fill(0);
      PARTIAL.set(bytes.subarray(o, offset + length));
      b = PARTIAL;
      o = 0;
    }
    const t0 = b[o]! | (b[o + 1]! << 8);
    const t1 = b[o + 2]! | (b[o + 3]! << 8);
    const t2 = b[o + 4]! | (b[o + 5]! << 8);
    const t3 = b[o + 6]! | (b[o + 7]! << 8);
    const t4 = b[o + 8]! | (b[o + 9]! << 8);
    const t5 = b[o + 10]! | (b[o + 11]! << 8);
    const t6 = b[o + 12]! | (b[o + 13]! << 8);
    const t7 = b[o + 14]! | (b[o + 15]! << 8);
    h0 += t0 & 0x1fff;
    h1 += ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
    h2 += ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
    h3 += ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
    h4 += ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
    h5 += (t4 >>> 1) & 0x1fff;
    h6 += ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
    h7 += ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
    h8 += ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
    h9 += (t7 >>> 5) | 0x800; // bit 128: every block is a full 16 bytes after padding
    const d0 = h0 * r0 + h1 * s9 + h2 * s8 + h3 * s7 + h4 * s6 + h5 * s5 + h6 * s4 + h7 * s3 + h8 * s2 + h9 * s1;
    let d1 = h0 * r1 + h1 * r0 + h2 * s9 + h3 * s8 + h4 * s7 + h5 * s6 + h6 * s5 + h7 * s4 + h8 * s3 + h9 * s2;
    let d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s9 + h4 * s8 + h5 * s7 + h6 * s6 + h7 * s5 + h8 * s4 + h9 * s3;
    let d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s9 + h5 * s8 + h6 * s7 + h7 * s6 + h8 * s5 + h9 * s4;
    let d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0 + h5 * s9 + h6 * s8 + h7 * s7 + h8 * s6 + h9 * s5;
    let d5 = h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1 + h5 * r0 + h6 * s9 + h7 * s8 + h8 * s7 + h9 * s6;
    let d6 = h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2 + h5 * r1 + h6 * r0 + h7 * s9 + h8 * s8 + h9 * s7;
    let d7 = h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3 + h5 * r2 + h6 * r1 + h7 * r0 + h8 * s9 + h9 * s8;
    let d8 = h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4 + h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * s9;
    let d9 = h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5 + h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
    let c = Math.floor(d0 * INV_LIMB);
    h0 = d0 - c * LIMB;
    d1 += c;
    c = Math.floor(d1 * INV_LIMB);
    h1 = d1 - c * LIMB;
    d2 += c;
    c = Math.floor(d2 * INV_LIMB);
    h2 = d2 - c * LIMB;
    d3 += c;
    c = Math.floor(d3 * INV_LIMB);
    h3 = d3 - c * LIMB;
    d4 += c;
    c = Math.floor(d4 * INV_LIMB);
    h4 = d4 - c * LIMB;
    d5 += c;
    c = Math.floor(d5 * INV_LIMB);
    h5 = d5 - c * LIMB;
    d6 += c;
    c = Math.floor(d6 * INV_LIMB);
    h6 = d6 - c * LIMB;
    d7 += c;
    c = Math.floor(d7 * INV_LIMB);
    h7 = d7 - c * LIMB;
    d8 += c;
    c = Math.floor(d8 * INV_LIMB);
    h8 = d8 - c * LIMB;
    d9 += c;
    c = Math.floor(d9 * INV_LIMB);
    h9 = d9 - c * LIMB;
    h0 += c * 5;
    c = Math.floor(h0 * INV_LIMB);
    h0 -= c * LIMB;
    h1 += c;
  }
  H[0] = h0;
  H[1] = h1;
  H[2] = h2;
  H[3] = h3;
  H[4] = h4;
  H[5] = h5;
  H[6] = h6;
  H[7] = h7;
  H[8] = h8;
  H[9] = h9;
}

/** Absorbs the AD and ciphertext lengths block. */
function polyLengths(adLength: number, ciphertextLength: number): void {
  const b = LENGTHS;
  b.fill(0);
  let a = adLength;
  let c = ciphertextLength;
  for (let i = 0; i < 6; i++) {
    b[i] = a & 0xff;
    a = Math.floor(a / 256);
    b[8 + i] = c & 0xff;
    c = Math.floor(c / 256);
  }
  polyUpdate(b, 0, 16);
}

/** (h mod p + s) mod 2^128 into `out` at `offset`. */
function polyFinish(out: Uint8Array, offset: number): void {
  const h = H;
  // Normalise: every limb below 2^13 and h below 2^130. A pass carries limb to limb and
  // folds what leaves the top back in times 5 (2^130 = 5 mod p), which can leave limb 0 at
  // or above 2^13 again; three passes always end normalised (the second fold adds at most
  // 5 to a value below 2^130, the third carries that), and a fixed count keeps it branch-free.
  let c = 0;
  for (let pass = 0; pass < 3; pass++) {
    c = 0;
    for (let i = 0; i < 10; i++) {
      const v = h[i]! + c;
      c = Math.floor(v * INV_LIMB);
      h[i] = v - c * LIMB;
    }
    h[0] = h[0]! + c * 5;
  }
  // g = h + 5 - 2^130; use it when h + 5 carries out of 130 bits (h >= p), chosen without a branch.
  c = 5;
  for (let i = 0; i < 10; i++) {
    const v = h[i]! + c;
    c = Math.floor(v * INV_LIMB);
    G[i] = v - c * LIMB;
  }
  const useG = c; // 0 or 1
  for (let i = 0; i < 10; i++) h[i] = G[i]! * useG + h[i]! * (1 - useG);
  // 130 bits in 13-bit limbs to 16-bit words (mod 2^128), plus s.
  const h0 = h[0]!;
  const h1 = h[1]!;
  const h2 = h[2]!;
  const h3 = h[3]!;
  const h4 = h[4]!;
  const h5 = h[5]!;
  const h6 = h[6]!;
  const h7 = h[7]!;
  const h8 = h[8]!;
  const h9 = h[9]!;
  const words = [
    (h0 | (h1 << 13)) & 0xffff,
    ((h1 >>> 3) | (h2 << 10)) & 0xffff,
    ((h2 >>> 6) | (h3 << 7)) & 0xffff,
    ((h3 >>> 9) | (h4 << 4)) & 0xffff,
    ((h4 >>> 12) | (h5 << 1) | (h6 << 14)) & 0xffff,
    ((h6 >>> 2) | (h7 << 11)) & 0xffff,
    ((h7 >>> 5) | (h8 << 8)) & 0xffff,
    ((h8 >>> 8) | (h9 << 5)) & 0xffff,
  ];
  let f = 0;
  for (let i = 0; i < 8; i++) {
    f = words[i]! + (PAD[2 * i]! | (PAD[2 * i + 1]! << 8)) + (f >>> 16);
    out[offset + 2 * i] = f;
    out[offset + 2 * i + 1] = f >>> 8;
  }
}

/**
 * For tests: Poly1305's final step on an accumulator given as ten 13-bit limbs (each may
 * exceed 2^13, as between blocks) and a 16-byte `s`.
 */
export function poly1305FinishForTest(limbs: readonly number[], s: Uint8Array): Uint8Array {
  for (let i = 0; i < 10; i++) H[i] = limbs[i]!;
  PAD.set(s);
  const out = new Uint8Array(16);
  polyFinish(out, 0);
  wipe();
  return out;
}

function setup(key: Uint8Array, nonce: Uint8Array): void {
  for (let i = 0; i < 8; i++) KEY[i] = word(key, 4 * i);
  for (let i = 0; i < 3; i++) NONCE[i] = word(nonce, 4 * i);
  chachaBlock(0);
  polyInit();
}

/** XORs `length` bytes of `source` (from `sourceOffset`) with the keystream from block 1 into `target` at `targetOffset`. */
function xorKeystream(source: Uint8Array, sourceOffset: number, target: Uint8Array, targetOffset: number, length: number): void {
  for (let p = 0, counter = 1; p < length; p += 64, counter++) {
    chachaBlock(counter);
    const n = Math.min(64, length - p);
    for (let i = 0; i < n; i++) target[targetOffset + p + i] = source[sourceOffset + p + i]! ^ KEYSTREAM[i]!;
  }
}

function wipe(): void {
  KEY.fill(0);
  NONCE.fill(0);
  KEYSTREAM.fill(0);
  R.fill(0);
  H.fill(0);
  G.fill(0);
  PAD.fill(0);
  PARTIAL.fill(0);
  TAG.fill(0);
}

/**
 * Seals `plaintext` into `out` at `offset`: ciphertext then the 16-byte tag. The caller
 * checks lengths (32-byte key, 12-byte nonce, room in `out`). `out` may not overlap `plaintext`.
 */
export function chachaPolySealInto(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
  setup(key, nonce);
  polyUpdate(ad, 0, ad.length);
  xorKeystream(plaintext, 0, out, offset, plaintext.length);
  polyUpdate(out, offset, plaintext.length);
  polyLengths(ad.length, plaintext.length);
  polyFinish(out, offset + plaintext.length);
  wipe();
}

/** The plaintext of `sealed` (ciphertext then tag), or undefined when it does not authenticate. */
export function chachaPolyOpen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < TAG_LENGTH) return undefined;
  const length = sealed.length - TAG_LENGTH;
  setup(key, nonce);
  polyUpdate(ad, 0, ad.length);
  polyUpdate(sealed, 0, length);
  polyLengths(ad.length, length);
  polyFinish(TAG, 0);
  let difference = 0;
  for (let i = 0; i < TAG_LENGTH; i++) difference |= TAG[i]! ^ sealed[length + i]!;
  if (difference !== 0) {
    wipe();
    return undefined;
  }
  const plaintext = new Uint8Array(length);
  xorKeystream(sealed, 0, plaintext, 0, length);
  wipe();
  return plaintext;
}
