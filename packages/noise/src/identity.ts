/**
 * Binding a node's Ed25519 identity to its Noise static key: the identity signs the
 * static key once, the signature travels (encrypted) in the handshake, and the peer
 * accepts the session only if the signature verifies against the static key the
 * handshake authenticated. The peer's node id is then SHA-256 of the identity it
 * presented, and must equal the id we dialled when we dialled one.
 */
import { PublicIdentity, WireError, type Identity, type NodeId } from '@deccom/core';
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
const VERIFIED_LIMIT = 4096;
const verified = new Map<string, PublicIdentity>();

/**
 * Checks a peer's identity proof against the static key its handshake authenticated.
 * Throws {@link NoiseError} `BAD_IDENTITY_PROOF` (malformed or wrong signature) or
 * `IDENTITY_MISMATCH` (a valid proof of another node than `expectedId`).
 */
export function verifyIdentityProof(payload: Uint8Array, remoteStaticKey: Uint8Array, expectedId?: NodeId): PublicIdentity {
  const key = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64') + Buffer.from(remoteStaticKey).toString('base64');
  let identity = verified.get(key);
  if (identity === undefined) {
    let proof;
    try {
      proof = decodeIdentityProof(payload);
    } catch (cause) {
      if (cause instanceof WireError) throw new NoiseError('BAD_IDENTITY_PROOF', `malformed identity proof: ${cause.message}`, { cause });
      throw cause;
    }
    const candidate = new PublicIdentity('ed25519', proof.publicKey);
    if (!candidate.verify(staticKeySigningInput(remoteStaticKey), proof.signature)) {
      throw new NoiseError('BAD_IDENTITY_PROOF', 'the identity signature over the Noise static key is invalid');
    }
    identity = candidate;
    if (verified.size >= VERIFIED_LIMIT) verified.delete(verified.keys().next().value!);
    verified.set(key, identity);
  }
  if (expectedId !== undefined && !identity.id.equals(expectedId)) {
    throw new NoiseError('IDENTITY_MISMATCH', `the peer authenticated as ${identity.id.short}, not the node ${expectedId.short} that was dialled`);
  }
  return identity;
}
