/**
 * The primitives Noise needs (Noise revision 34, section 4: DH, cipher and hash
 * functions), behind one interface with two implementations:
 *
 * - `noble`: `@noble/curves`, `@noble/ciphers`, `@noble/hashes`, pure JavaScript, runs anywhere;
 * - `node`: `node:crypto` (OpenSSL). On this project's machines its ChaCha20-Poly1305 is
 *   ~10x faster than noble on 64 KiB messages and its X25519 ~30x faster, so it carries
 *   the throughput; it is chosen automatically where the platform has it.
 *
 * Both pass the same Noise vectors and the Wycheproof ChaCha20-Poly1305 and X25519 files.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { x448 } from '@noble/curves/ed448.js';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2b, blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { concatBytes, secureRandomBytes } from '@deccom/core';
import { NoiseError } from './errors.js';
import { chachaPolyOpen, chachaPolySealInto, JS_AEAD_LIMIT } from './chacha20poly1305.js';
import { hkdf as jsHkdf, hmacKey, hmacWith, dropHmacKey, JS_HASH_LIMIT, sha256 as jsSha256 } from './sha256.js';

export type DhName = '25519' | '448';
export type CipherName = 'ChaChaPoly' | 'AESGCM';
export type HashName = 'SHA256' | 'SHA512' | 'BLAKE2s' | 'BLAKE2b';

/** A DH key pair. The secret half stays inside the implementation that made it. */
export interface DhKeyPair {
  readonly publicKey: Uint8Array;
}

/** Noise section 4.1. */
export interface DhFunctions {
  readonly name: DhName;
  /** DHLEN: 32 for 25519, 56 for 448. */
  readonly length: number;
  generateKeyPair(): DhKeyPair;
  /** The key pair of a secret key (static keys, and ephemeral keys injected by tests). */
  keyPairFromSecret(secretKey: Uint8Array): DhKeyPair;
  /**
   * DH(key pair, public key) per RFC 7748. Throws {@link NoiseError} `DH_FAILED` when the
   * result is all zeros (a low-order public key) or the key is malformed.
   */
  dh(keyPair: DhKeyPair, publicKey: Uint8Array): Uint8Array;
}

/** An AEAD with a 32-byte key, a 12-byte nonce and a 16-byte tag. */
export interface AeadFunctions {
  readonly name: CipherName;
  /** Ciphertext followed by the tag. Throws RangeError for a wrong key or nonce length. */
  seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Like {@link seal}, writing ciphertext and tag into `out` at `offset` (saves a copy of large messages). */
  sealInto(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void;
  /** The plaintext, or undefined when authentication fails. */
  open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined;
  /**
   * Like {@link seal}, returning the ciphertext and the tag apart, so a large message is
   * never copied to join them (streams hand both to the socket as they are). Optional:
   * {@link CipherState} falls back to {@link seal}.
   */
  sealParts?(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): SealedParts;
  /**
   * Opens a message whose ciphertext arrived in `pieces` (in order) with its `tag` apart,
   * without joining them first: the plaintext in pieces, or undefined when authentication
   * fails (then nothing of the plaintext may be used). Optional: {@link CipherState} falls
   * back to {@link open}.
   */
  openParts?(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, pieces: readonly Uint8Array[], tag: Uint8Array): Uint8Array[] | undefined;
}

/** A sealed message as two arrays: the ciphertext (as long as the plaintext) and the 16-byte tag. */
export interface SealedParts {
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

/** Noise section 4.3. */
export interface HashFunctions {
  readonly name: HashName;
  /** HASHLEN. */
  readonly length: number;
  /** BLOCKLEN. */
  readonly blockLength: number;
  hash(...parts: Uint8Array[]): Uint8Array;
  /** HMAC (RFC 2104) over the concatenation of `parts`. */
  hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
  /**
   * Noise's HKDF (section 4.3): `outputs` arrays of HASHLEN bytes. Optional: the handshake
   * falls back to three or four {@link hmac} calls.
   */
  hkdf?(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, outputs: 2 | 3): Uint8Array[];
}

export interface NoiseCrypto {
  readonly name: 'node' | 'noble';
  dh(name: DhName): DhFunctions;
  cipher(name: CipherName): AeadFunctions;
  hash(name: HashName): HashFunctions;
}

export const AEAD_KEY_LENGTH = 32;
export const AEAD_NONCE_LENGTH = 12;
export const AEAD_TAG_LENGTH = 16;

function checkAead(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== AEAD_KEY_LENGTH) throw new RangeError(`AEAD key must be ${AEAD_KEY_LENGTH} bytes, got ${key.length}`);
  if (nonce.length !== AEAD_NONCE_LENGTH) throw new RangeError(`AEAD nonce must be ${AEAD_NONCE_LENGTH} bytes, got ${nonce.length}`);
}

function isZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

function dhFailed(cause?: unknown): NoiseError {
  return new NoiseError('DH_FAILED', 'DH produced no valid shared secret (invalid or low-order public key)', { cause });
}

// ---------------------------------------------------------------------------
// noble

interface NobleKeyPair extends DhKeyPair {
  readonly secretKey: Uint8Array;
}

function nobleDh(name: DhName): DhFunctions {
  const curve = name === '25519' ? x25519 : x448;
  const length = name === '25519' ? 32 : 56;
  const fromSecret = (secretKey: Uint8Array): NobleKeyPair => {
    if (secretKey.length !== length) throw new NoiseError('INVALID_KEY', `X${name} secret key must be ${length} bytes, got ${secretKey.length}`);
    const copy = secretKey.slice();
    return { secretKey: copy, publicKey: curve.getPublicKey(copy) };
  };
  return {
    name,
    length,
    generateKeyPair: () => fromSecret(secureRandomBytes(length)),
    keyPairFromSecret: fromSecret,
    dh: (keyPair, publicKey) => {
      const secret = (keyPair as NobleKeyPair).secretKey;
      if (secret === undefined) throw new NoiseError('INVALID_KEY', 'key pair was made by another crypto implementation');
      if (publicKey.length !== length) throw dhFailed();
      let shared: Uint8Array;
      try {
        shared = curve.getSharedSecret(secret, publicKey);
      } catch (cause) {
        throw dhFailed(cause);
      }
      if (isZero(shared)) throw dhFailed();
      return shared;
    },
  };
}

function nobleAead(name: CipherName): AeadFunctions {
  const make = name === 'ChaChaPoly' ? chacha20poly1305 : gcm;
  return {
    name,
    seal: (key, nonce, ad, plaintext) => {
      checkAead(key, nonce);
      return make(key, nonce, ad).encrypt(plaintext);
    },
    sealInto: (key, nonce, ad, plaintext, out, offset) => {
      checkAead(key, nonce);
      out.set(make(key, nonce, ad).encrypt(plaintext), offset);
    },
    open: (key, nonce, ad, ciphertext) => {
      checkAead(key, nonce);
      if (ciphertext.length < AEAD_TAG_LENGTH) return undefined;
      try {
        return make(key, nonce, ad).decrypt(ciphertext);
      } catch {
        return undefined;
      }
    },
    sealParts: (key, nonce, ad, plaintext) => {
      checkAead(key, nonce);
      const sealed = make(key, nonce, ad).encrypt(plaintext);
      return { ciphertext: sealed.subarray(0, plaintext.length), tag: sealed.subarray(plaintext.length) };
    },
    openParts: (key, nonce, ad, pieces, tag) => {
      checkAead(key, nonce);
      if (tag.length !== AEAD_TAG_LENGTH) return undefined;
      const sealed = concatBytes(...pieces, tag);
      try {
        return [make(key, nonce, ad).decrypt(sealed)];
      } catch {
        return undefined;
      }
    },
  };
}

function nobleHash(name: HashName): HashFunctions {
  const fn = name === 'SHA256' ? sha256 : name === 'SHA512' ? sha512 : name === 'BLAKE2s' ? blake2s : blake2b;
  return {
    name,
    length: fn.outputLen,
    blockLength: fn.blockLen,
    hash: (...parts) => {
      const h = fn.create();
      for (const part of parts) h.update(part);
      return h.digest();
    },
    hmac: (key, ...parts) => {
      const h = hmac.create(fn, key);
      for (const part of parts) h.update(part);
      return h.digest();
    },
  };
}

function memo<K extends string, V>(make: (key: K) => V): (key: K) => V {
  const cache = new Map<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = make(key);
      cache.set(key, value);
    }
    return value;
  };
}

/** The pure-JavaScript implementation. */
export const nobleNoiseCrypto: NoiseCrypto = {
  name: 'noble',
  dh: memo(nobleDh),
  cipher: memo(nobleAead),
  hash: memo(nobleHash),
};

// ---------------------------------------------------------------------------
// node:crypto

type NodeCrypto = typeof import('node:crypto');
type KeyObject = import('node:crypto').KeyObject;

function loadNodeCrypto(): NodeCrypto | undefined {
  const proc = globalThis.process as (NodeJS.Process & { getBuiltinModule?: (id: string) => unknown }) | undefined;
  try {
    return proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
  } catch {
    return undefined;
  }
}

// PKCS#8 prefix wrapping a raw X25519 / X448 secret key (RFC 8410 section 7).
const PKCS8_PREFIX: Record<DhName, Buffer> = {
  '25519': Buffer.from('302e020100300506032b656e04220420', 'hex'),
  '448': Buffer.from('3046020100300506032b656f043a0438', 'hex'),
};

interface NodeKeyPair extends DhKeyPair {
  readonly privateKey: KeyObject;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Ephemeral key pairs made ahead of use, off the main thread (libuv's thread pool). */
const EPHEMERAL_POOL_SIZE = 32;
/**
 * Key generation jobs on the thread pool at once. A finished job is seen (and the next
 * one started) only when the event loop polls again, so under a stream of handshakes a
 * single job at a time left the pool empty for more than half of the handshakes, which
 * then generated their keys on the main thread; a job per libuv thread keeps it filled.
 */
const EPHEMERAL_JOBS = 4;
/**
 * Recently used public keys, least recently used dropped first: a handshake uses the
 * peer's ephemeral key in two DHs and its static key in one, and a peer met again (a
 * reconnect) brings the same static key, which a use moves to the back of the queue so
 * the ephemeral keys passing through do not push it out.
 */
const PUBLIC_KEY_CACHE_SIZE = 256;

/** Key generation asking the job for the public key as JWK (and the private key as a KeyObject). */
const JWK_PUBLIC = { publicKeyEncoding: { type: 'spki', format: 'jwk' } } as const;
type JwkPublicKey = { readonly x: string };
type GenerateSync = (type: 'x25519' | 'x448', options: typeof JWK_PUBLIC) => { publicKey: JwkPublicKey; privateKey: KeyObject };
type GenerateAsync = (
  type: 'x25519' | 'x448',
  options: typeof JWK_PUBLIC,
  callback: (error: Error | null, publicKey: JwkPublicKey, privateKey: KeyObject) => void,
) => void;

function nodeDh(nodeCrypto: NodeCrypto, name: DhName): DhFunctions {
  // The typings have no overload for a public-key encoding alone (the private key stays a KeyObject).
  const generateSync = nodeCrypto.generateKeyPairSync as unknown as GenerateSync;
  const generateAsync = nodeCrypto.generateKeyPair as unknown as GenerateAsync;
  const length = name === '25519' ? 32 : 56;
  const curve = name === '25519' ? 'X25519' : 'X448';
  const type = name === '25519' ? 'x25519' : 'x448';
  const publicKeys = new Map<string, KeyObject>();
  // Importing a raw public key as JWK costs ~10 us; through DER ~80 us on this machine.
  const publicKeyObject = (publicKey: Uint8Array): KeyObject => {
    const x = asBuffer(publicKey).toString('base64url');
    let key = publicKeys.get(x);
    if (key === undefined) {
      key = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: curve, x }, format: 'jwk' });
      if (publicKeys.size >= PUBLIC_KEY_CACHE_SIZE) publicKeys.delete(publicKeys.keys().next().value!);
    } else {
      publicKeys.delete(x);
    }
    publicKeys.set(x, key);
    return key;
  };
  const rawPublic = (key: KeyObject): Uint8Array => {
    const jwk = key.export({ format: 'jwk' });
    return new Uint8Array(Buffer.from(jwk.x!, 'base64url'));
  };
  // Generated key pairs come with their public key already as JWK, encoded by the key
  // generation job itself. Never call `export()` on a generated key: on Node 20 that can
  // hang the process. The export holds the key's mutex while it allocates; a garbage
  // collection then may run the destructor of the (unreachable) job that made the key,
  // which takes the same mutex: a self-deadlock (reproduced: generateKeyPairSync then
  // export({ format: 'jwk' }) in a loop hangs within ~20,000 pairs; with the encoding
  // asked of the job, 300,000 pairs run through, no slower).
  const generateNow = (): NodeKeyPair => {
    const { privateKey, publicKey } = generateSync(type, JWK_PUBLIC);
    return { privateKey, publicKey: new Uint8Array(Buffer.from(publicKey.x, 'base64url')) };
  };
  // Key generation is a third of a handshake's main-thread time; the pool moves it to the
  // thread pool. Each pooled pair is handed out once. Refilling starts on first use only
  // (nothing runs at import) and stops when the pool is full. The public key comes back as
  // JWK (cheap, unlike DER, which nearly triples a job's cost through OpenSSL's encoder).
  const pool: NodeKeyPair[] = [];
  let inFlight = 0;
  const refill = (): void => {
    if (inFlight >= EPHEMERAL_JOBS || pool.length + inFlight >= EPHEMERAL_POOL_SIZE) return;
    inFlight++;
    generateAsync(type, JWK_PUBLIC, (error, publicKey, privateKey) => {
      inFlight--;
      if (error) return;
      pool.push({ privateKey, publicKey: new Uint8Array(Buffer.from(publicKey.x, 'base64url')) });
      refill();
    });
  };
  return {
    name,
    length,
    generateKeyPair: () => {
      const pair = pool.pop() ?? generateNow();
      refill();
      return pair;
    },
    keyPairFromSecret: (secretKey) => {
      if (secretKey.length !== length) throw new NoiseError('INVALID_KEY', `X${name} secret key must be ${length} bytes, got ${secretKey.length}`);
      const privateKey = nodeCrypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[name], asBuffer(secretKey)]), format: 'der', type: 'pkcs8' });
      const pair: NodeKeyPair = { privateKey, publicKey: rawPublic(nodeCrypto.createPublicKey(privateKey)) };
      return pair;
    },
    dh: (keyPair, publicKey) => {
      const privateKey = (keyPair as NodeKeyPair).privateKey;
      if (privateKey === undefined) throw new NoiseError('INVALID_KEY', 'key pair was made by another crypto implementation');
      if (publicKey.length !== length) throw dhFailed();
      let shared: Buffer;
      try {
        shared = nodeCrypto.diffieHellman({ privateKey, publicKey: publicKeyObject(publicKey) });
      } catch (cause) {
        // OpenSSL refuses an all-zero result ("failed during derivation").
        throw dhFailed(cause);
      }
      if (isZero(shared)) throw dhFailed();
      return new Uint8Array(shared.buffer, shared.byteOffset, shared.byteLength);
    },
  };
}

const EMPTY = Buffer.alloc(0);

function nodeAead(nodeCrypto: NodeCrypto, name: CipherName): AeadFunctions {
  const native = nativeAead(nodeCrypto, name);
  if (name !== 'ChaChaPoly') return native;
  // Short messages (handshake fields, small datagrams) run faster in JavaScript than
  // through a node:crypto cipher object (see chacha20poly1305.ts).
  const small = (ad: Uint8Array, length: number): boolean => ad.length + length <= JS_AEAD_LIMIT;
  return {
    ...native,
    seal: (key, nonce, ad, plaintext) => {
      if (!small(ad, plaintext.length)) return native.seal(key, nonce, ad, plaintext);
      checkAead(key, nonce);
      const out = new Uint8Array(plaintext.length + AEAD_TAG_LENGTH);
      chachaPolySealInto(key, nonce, ad, plaintext, out, 0);
      return out;
    },
    sealInto: (key, nonce, ad, plaintext, out, offset) => {
      // In place is fine for node:crypto (it writes a new buffer first), not for a byte-by-byte pass.
      if (!small(ad, plaintext.length) || out.buffer === plaintext.buffer) return native.sealInto(key, nonce, ad, plaintext, out, offset);
      checkAead(key, nonce);
      if (offset < 0 || offset + plaintext.length + AEAD_TAG_LENGTH > out.length) throw new RangeError('sealInto: the output is too short');
      chachaPolySealInto(key, nonce, ad, plaintext, out, offset);
    },
    open: (key, nonce, ad, ciphertext) => {
      if (!small(ad, ciphertext.length - AEAD_TAG_LENGTH)) return native.open(key, nonce, ad, ciphertext);
      checkAead(key, nonce);
      return chachaPolyOpen(key, nonce, ad, ciphertext);
    },
  };
}

function nativeAead(nodeCrypto: NodeCrypto, name: CipherName): AeadFunctions {
  const algorithm = name === 'ChaChaPoly' ? 'chacha20-poly1305' : 'aes-256-gcm';
  return {
    name,
    seal: (key, nonce, ad, plaintext) => {
      checkAead(key, nonce);
      const cipher = nodeCrypto.createCipheriv(algorithm as 'chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
      if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
      const out = Buffer.allocUnsafe(plaintext.length + AEAD_TAG_LENGTH);
      const body = plaintext.length > 0 ? cipher.update(plaintext) : EMPTY;
      const tail = cipher.final();
      out.set(body, 0);
      out.set(tail, body.length);
      out.set(cipher.getAuthTag(), plaintext.length);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    },
    sealInto: (key, nonce, ad, plaintext, out, offset) => {
      checkAead(key, nonce);
      const cipher = nodeCrypto.createCipheriv(algorithm as 'chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
      if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
      if (plaintext.length > 0) out.set(cipher.update(plaintext), offset);
      const tail = cipher.final();
      out.set(tail, offset + plaintext.length - tail.length);
      out.set(cipher.getAuthTag(), offset + plaintext.length);
    },
    open: (key, nonce, ad, ciphertext) => {
      checkAead(key, nonce);
      if (ciphertext.length < AEAD_TAG_LENGTH) return undefined;
      const bodyLength = ciphertext.length - AEAD_TAG_LENGTH;
      const decipher = nodeCrypto.createDecipheriv(algorithm as 'chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
      decipher.setAuthTag(ciphertext.subarray(bodyLength));
      if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: bodyLength });
      try {
        const body = bodyLength > 0 ? decipher.update(ciphertext.subarray(0, bodyLength)) : EMPTY;
        const tail = decipher.final();
        const plain = tail.length === 0 ? body : Buffer.concat([body, tail]);
        return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
      } catch {
        return undefined;
      }
    },
    sealParts: (key, nonce, ad, plaintext) => {
      checkAead(key, nonce);
      const cipher = nodeCrypto.createCipheriv(algorithm as 'chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
      if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
      // The output of update() is the ciphertext itself: no copy into a joined buffer.
      const body = plaintext.length > 0 ? cipher.update(plaintext) : EMPTY;
      const tail = cipher.final();
      const ciphertext = tail.length === 0 ? body : Buffer.concat([body, tail]);
      return { ciphertext, tag: cipher.getAuthTag() };
    },
    openParts: (key, nonce, ad, pieces, tag) => {
      checkAead(key, nonce);
      if (tag.length !== AEAD_TAG_LENGTH) return undefined;
      let bodyLength = 0;
      for (const piece of pieces) bodyLength += piece.length;
      const decipher = nodeCrypto.createDecipheriv(algorithm as 'chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
      decipher.setAuthTag(tag);
      if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: bodyLength });
      const plain: Uint8Array[] = [];
      try {
        for (const piece of pieces) if (piece.length > 0) plain.push(decipher.update(piece));
        const tail = decipher.final();
        if (tail.length > 0) plain.push(tail);
        return plain;
      } catch {
        return undefined;
      }
    },
  };
}

const NODE_HASH: Record<HashName, { algorithm: string; length: number; blockLength: number }> = {
  SHA256: { algorithm: 'sha256', length: 32, blockLength: 64 },
  SHA512: { algorithm: 'sha512', length: 64, blockLength: 128 },
  BLAKE2s: { algorithm: 'blake2s256', length: 32, blockLength: 64 },
  BLAKE2b: { algorithm: 'blake2b512', length: 64, blockLength: 128 },
};

/** Inputs up to this size are hashed in one call from a scratch buffer (handshake fields are far smaller). */
const ONE_SHOT_BYTES = 2048;

function totalLength(parts: readonly Uint8Array[]): number {
  let total = 0;
  for (const part of parts) total += part.length;
  return total;
}

function nodeHash(nodeCrypto: NodeCrypto, name: HashName): HashFunctions {
  const { algorithm, length, blockLength } = NODE_HASH[name];
  const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  const streamingHash = (parts: Uint8Array[]): Uint8Array => {
    const h = nodeCrypto.createHash(algorithm);
    for (const part of parts) h.update(part);
    return view(h.digest());
  };
  const streamingHmac = (key: Uint8Array, parts: Uint8Array[]): Uint8Array => {
    const h = nodeCrypto.createHmac(algorithm, key);
    for (const part of parts) h.update(part);
    return view(h.digest());
  };
  // crypto.hash() (Node >= 20.12) hashes without building a Hash object: a handshake makes
  // ~40 hash and HMAC calls, and each object costs an OpenSSL fetch, a native wrapper and
  // work for the garbage collector. HMAC (RFC 2104) is then two such calls.
  const oneShot = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : undefined;
  if (oneShot === undefined) return { name, length, blockLength, hash: (...parts) => streamingHash(parts), hmac: (key, ...parts) => streamingHmac(key, parts) };
  const inner = Buffer.alloc(blockLength + ONE_SHOT_BYTES);
  const outer = Buffer.alloc(blockLength + length);
  const native: HashFunctions = {
    name,
    length,
    blockLength,
    hash: (...parts) => {
      const total = totalLength(parts);
      if (total > ONE_SHOT_BYTES) return streamingHash(parts);
      if (parts.length === 1) return view(oneShot(algorithm, parts[0]!, 'buffer'));
      let offset = 0;
      for (const part of parts) {
        inner.set(part, offset);
        offset += part.length;
      }
      const digest = oneShot(algorithm, inner.subarray(0, total), 'buffer');
      inner.fill(0, 0, total);
      return view(digest);
    },
    hmac: (key, ...parts) => {
      const total = totalLength(parts);
      if (key.length > blockLength || total > ONE_SHOT_BYTES) return streamingHmac(key, parts);
      for (let i = 0; i < blockLength; i++) {
        const k = i < key.length ? key[i]! : 0;
        inner[i] = k ^ 0x36;
        outer[i] = k ^ 0x5c;
      }
      let offset = blockLength;
      for (const part of parts) {
        inner.set(part, offset);
        offset += part.length;
      }
      outer.set(oneShot(algorithm, inner.subarray(0, offset), 'buffer'), blockLength);
      const digest = oneShot(algorithm, outer, 'buffer');
      // Key material does not linger in the scratch buffers.
      inner.fill(0, 0, offset);
      outer.fill(0);
      return view(digest);
    },
  };
  if (name !== 'SHA256') return native;
  // SHA-256 over a handshake's short inputs runs faster in JavaScript (see sha256.ts).
  return {
    ...native,
    hash: (...parts) => (totalLength(parts) <= JS_HASH_LIMIT ? jsSha256(parts) : native.hash(...parts)),
    hmac: (key, ...parts) => {
      if (key.length > blockLength || totalLength(parts) > JS_HASH_LIMIT) return native.hmac(key, ...parts);
      const prepared = hmacKey(key);
      const mac = hmacWith(prepared, parts);
      dropHmacKey(prepared);
      return mac;
    },
    hkdf: (chainingKey, inputKeyMaterial, outputs) => {
      if (chainingKey.length > blockLength || inputKeyMaterial.length > JS_HASH_LIMIT) return hkdfFromHmac(native, chainingKey, inputKeyMaterial, outputs);
      return jsHkdf(chainingKey, inputKeyMaterial, outputs);
    },
  };
}

/** Noise's HKDF (section 4.3) from HMAC calls: the definition, for any hash. */
export function hkdfFromHmac(hash: HashFunctions, chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = hash.hmac(chainingKey, inputKeyMaterial);
  const output1 = hash.hmac(tempKey, Uint8Array.of(1));
  const output2 = hash.hmac(tempKey, output1, Uint8Array.of(2));
  if (outputs === 2) return [output1, output2];
  return [output1, output2, hash.hmac(tempKey, output2, Uint8Array.of(3))];
}

function makeNodeNoiseCrypto(nodeCrypto: NodeCrypto): NoiseCrypto {
  return {
    name: 'node',
    dh: memo((name: DhName) => nodeDh(nodeCrypto, name)),
    cipher: memo((name: CipherName) => nodeAead(nodeCrypto, name)),
    hash: memo((name: HashName) => nodeHash(nodeCrypto, name)),
  };
}

let nodeInstance: NoiseCrypto | undefined | null = null;

/** The node:crypto implementation, or undefined where the platform has none. */
export function nodeNoiseCrypto(): NoiseCrypto | undefined {
  if (nodeInstance === null) {
    const nodeCrypto = loadNodeCrypto();
    nodeInstance = nodeCrypto ? makeNodeNoiseCrypto(nodeCrypto) : undefined;
  }
  return nodeInstance;
}

/** The fastest implementation available: node:crypto when present, noble otherwise. */
export function defaultNoiseCrypto(): NoiseCrypto {
  return nodeNoiseCrypto() ?? nobleNoiseCrypto;
}
