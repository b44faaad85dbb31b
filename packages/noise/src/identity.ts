/**
 * Binding a node's Ed25519 identity to its Noise static key: the identity signs the
 * static key once, the signature travels (encrypted) in the handshake, and the peer
 * accepts the session only if the signature verifies against the static key the
 * handshake authenticated. The peer's node id is then SHA-256 of the identity it
 * presented, and must equal the id we dialled when we dialled one.
 */
import { PublicIdentity, WireError, type Identity, type NodeId } from '@deccom/core';
import type { KeyObject } from 'node:crypto';
import { NoiseError } from './errors.js';
import { decodeIdentityProof, encodeIdentityProof, staticKeySigningInput } from './wire.js';

/** The identity proof payload this node sends in its handshake messages. */
export function createIdentityProof(identity: Identity, staticPublicKey: Uint8Array): Uint8Array {
  if (!identity.canSign || identity.kind !== 'ed25519') {
    throw new NoiseError('IDENTITY_CANNOT_SIGN', 'Noise needs an Ed25519 identity that can sign (not a string identity)');
  }
  return encodeIdentityProof({ publicKey: identity.public.bytes, signature: identity.sign(staticKeySigningInput(staticPublicKey)) });
}

// Proofs are fixed per (identity, static key): peers that handshake again (rekeys,
// reconnects) present the same bytes, so successful verifications are remembered.
let verifiedLimit = 4096;
const verified = new Map<string, PublicIdentity>();

/**
 * Sets how many verified identity proofs are remembered (default 4,096). 0 turns the
 * cache off, so every handshake verifies its Ed25519 signature (benchmarks use this to
 * measure cold handshakes).
 */
export function setIdentityProofCacheSize(entries: number): void {
  if (!Number.isInteger(entries) || entries < 0) throw new RangeError(`identity proof cache size must be a non-negative integer, got ${entries}`);
  verifiedLimit = entries;
  while (verified.size > verifiedLimit) verified.delete(verified.keys().next().value!);
}

function cacheKey(payload: Uint8Array, remoteStaticKey: Uint8Array): string {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64') + Buffer.from(remoteStaticKey).toString('base64');
}

function decodeProof(payload: Uint8Array): { publicKey: Uint8Array; signature: Uint8Array } {
  try {
    return decodeIdentityProof(payload);
  } catch (cause) {
    if (cause instanceof WireError) throw new NoiseError('BAD_IDENTITY_PROOF', `malformed identity proof: ${cause.message}`, { cause });
    throw cause;
  }
}

function remember(key: string, identity: PublicIdentity): void {
  if (verifiedLimit === 0) return;
  if (verified.size >= verifiedLimit) verified.delete(verified.keys().next().value!);
  verified.set(key, identity);
}

function checkExpected(identity: PublicIdentity, expectedId: NodeId | undefined): PublicIdentity {
  if (expectedId !== undefined && !identity.id.equals(expectedId)) {
    throw new NoiseError('IDENTITY_MISMATCH', `the peer authenticated as ${identity.id.short}, not the node ${expectedId.short} that was dialled`);
  }
  return identity;
}

type NodeCrypto = typeof import('node:crypto');
let nodeCrypto: NodeCrypto | undefined | null = null;
function loadNodeCrypto(): NodeCrypto | undefined {
  if (nodeCrypto === null) {
    const proc = globalThis.process as (NodeJS.Process & { getBuiltinModule?: (id: string) => unknown }) | undefined;
    try {
      nodeCrypto = proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
    } catch {
      nodeCrypto = undefined;
    }
  }
  return nodeCrypto;
}

const edKeys = new Map<string, KeyObject>();

/**
 * {@link verifyIdentityProof}, with the Ed25519 signature checked on libuv's thread pool
 * where node:crypto is available, so a handshake does not hold the event loop for the
 * ~100 us a verification costs. Same results and errors.
 */
export async function verifyIdentityProofAsync(payload: Uint8Array, remoteStaticKey: Uint8Array, expectedId?: NodeId): Promise<PublicIdentity> {
  // With the cache off (verifiedLimit 0) no key is built: nothing could be found or kept.
  const key = verifiedLimit > 0 ? cacheKey(payload, remoteStaticKey) : undefined;
  const known = key === undefined ? undefined : verified.get(key);
  if (known !== undefined) return checkExpected(known, expectedId);
  const node = loadNodeCrypto();
  if (node === undefined) return verifyIdentityProof(payload, remoteStaticKey, expectedId);
  const proof = decodeProof(payload);
  const keyText = Buffer.from(proof.publicKey).toString('base64url');
  let publicKey = edKeys.get(keyText);
  if (publicKey === undefined) {
    try {
      // A raw key imports as JWK in ~10 us; through DER (OpenSSL's decoders) in ~100 us.
      publicKey = node.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: keyText }, format: 'jwk' });
    } catch (cause) {
      throw new NoiseError('BAD_IDENTITY_PROOF', 'the identity key is not a valid Ed25519 key', { cause });
    }
    if (edKeys.size >= 1024) edKeys.delete(edKeys.keys().next().value!);
    edKeys.set(keyText, publicKey);
  }
  const valid = await new Promise<boolean>((resolve) => {
    node.verify(null, staticKeySigningInput(remoteStaticKey), publicKey, proof.signature, (error, ok) => resolve(!error && ok));
  });
  if (!valid) throw new NoiseError('BAD_IDENTITY_PROOF', 'the identity signature over the Noise static key is invalid');
  const identity = new PublicIdentity('ed25519', proof.publicKey);
  if (key !== undefined) remember(key, identity);
  return checkExpected(identity, expectedId);
}

/**
 * Checks a peer's identity proof against the static key its handshake authenticated.
 * Throws {@link NoiseError} `BAD_IDENTITY_PROOF` (malformed or wrong signature) or
 * `IDENTITY_MISMATCH` (a valid proof of another node than `expectedId`).
 */
export function verifyIdentityProof(payload: Uint8Array, remoteStaticKey: Uint8Array, expectedId?: NodeId): PublicIdentity {
  const key = cacheKey(payload, remoteStaticKey);
  let identity = verified.get(key);
  if (identity === undefined) {
    const proof = decodeProof(payload);
    const candidate = new PublicIdentity('ed25519', proof.publicKey);
    if (!candidate.verify(staticKeySigningInput(remoteStaticKey), proof.signature)) {
      throw new NoiseError('BAD_IDENTITY_PROOF', 'the identity signature over the Noise static key is invalid');
    }
    identity = candidate;
    remember(key, identity);
  }
  return checkExpected(identity, expectedId);
}
