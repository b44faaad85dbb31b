/**
 * The crypto that core needs (SHA-256, Ed25519, the Ed25519-to-X25519 maps), behind one
 * interface with two implementations: `@noble/*` (pure JS, runs anywhere) and
 * `node:crypto` (OpenSSL; on this project's machines it signs Ed25519 ~14x faster).
 * The node path is chosen automatically when the platform has it.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

export interface CoreCrypto {
  readonly name: 'node' | 'noble';
  sha256(data: Uint8Array): Uint8Array;
  /** Public key of a 32-byte Ed25519 seed (RFC 8032 section 5.1.5). */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

export const nobleCrypto: CoreCrypto = {
  name: 'noble',
  sha256: (data) => nobleSha256(data),
  ed25519PublicKey: (seed) => ed25519.getPublicKey(seed),
  ed25519Sign: (seed, message) => ed25519.sign(message, seed),
  ed25519Verify: (publicKey, message, signature) => {
    try {
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
};

type NodeCryptoModule = typeof import('node:crypto');

function loadNodeCrypto(): NodeCryptoModule | undefined {
  const proc = globalThis.process as (NodeJS.Process & { getBuiltinModule?: (id: string) => unknown }) | undefined;
  try {
    return proc?.getBuiltinModule?.('node:crypto') as NodeCryptoModule | undefined;
  } catch {
    return undefined;
  }
}

// DER prefixes that wrap a raw Ed25519 key as PKCS#8 / SPKI (RFC 8410 section 7).
const PKCS8_ED25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_ED25519_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

function withPrefix(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix);
  out.set(key, prefix.length);
  return out;
}

function makeNodeCrypto(nodeCrypto: NodeCryptoModule): CoreCrypto {
  // KeyObjects are costly to build; cache the last few by key bytes.
  const privateKeys = new Map<string, import('node:crypto').KeyObject>();
  const publicKeys = new Map<string, import('node:crypto').KeyObject>();
  const cached = <T>(cache: Map<string, T>, key: Uint8Array, make: () => T): T => {
    const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
    let value = cache.get(k);
    if (value === undefined) {
      value = make();
      if (cache.size >= 1024) cache.delete(cache.keys().next().value!);
      cache.set(k, value);
    }
    return value;
  };
  const privateKey = (seed: Uint8Array) =>
    cached(privateKeys, seed, () =>
      nodeCrypto.createPrivateKey({ key: Buffer.from(withPrefix(PKCS8_ED25519_PREFIX, seed)), format: 'der', type: 'pkcs8' }),
    );
  const publicKey = (key: Uint8Array) =>
    cached(publicKeys, key, () =>
      nodeCrypto.createPublicKey({ key: Buffer.from(withPrefix(SPKI_ED25519_PREFIX, key)), format: 'der', type: 'spki' }),
    );
  return {
    name: 'node',
    sha256: (data) => new Uint8Array(nodeCrypto.createHash('sha256').update(data).digest()),
    ed25519PublicKey: (seed) => {
      const der = nodeCrypto.createPublicKey(privateKey(seed)).export({ format: 'der', type: 'spki' });
      return new Uint8Array(der.subarray(der.length - 32));
    },
    ed25519Sign: (seed, message) => new Uint8Array(nodeCrypto.sign(null, message, privateKey(seed))),
    ed25519Verify: (key, message, signature) => {
      if (key.length !== 32 || signature.length !== 64) return false;
      try {
        return nodeCrypto.verify(null, message, publicKey(key), signature);
      } catch {
        return false;
      }
    },
  };
}

let defaultCrypto: CoreCrypto | undefined;

/** The fastest available implementation (node:crypto when present, else noble). */
export function coreCrypto(): CoreCrypto {
  if (defaultCrypto === undefined) {
    const nodeCrypto = loadNodeCrypto();
    defaultCrypto = nodeCrypto ? makeNodeCrypto(nodeCrypto) : nobleCrypto;
  }
  return defaultCrypto;
}

/** The node:crypto implementation, or undefined where the platform has none. */
export function nodeCoreCrypto(): CoreCrypto | undefined {
  const nodeCrypto = loadNodeCrypto();
  return nodeCrypto ? makeNodeCrypto(nodeCrypto) : undefined;
}

export function sha256(data: Uint8Array): Uint8Array {
  return coreCrypto().sha256(data);
}

/** Ed25519 public key to X25519 (Montgomery u) public key, per RFC 7748 section 4.1 birational map. */
export function ed25519PublicToX25519(publicKey: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(publicKey);
}

/** Ed25519 seed to the X25519 secret scalar that pairs with {@link ed25519PublicToX25519}. */
export function ed25519SecretToX25519(seed: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomerySecret(seed);
}
