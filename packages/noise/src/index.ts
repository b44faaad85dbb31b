/**
 * `@deccom/noise`: the Noise Protocol Framework (revision 34) for DecCom, over datagrams
 * and (with `@deccom/tcp`) over streams. Mutual authentication bound to each node's
 * Ed25519 identity, forward secrecy, replay protection, rekeying, and cheap rejection of
 * handshake floods.
 *
 * @example
 * ```ts
 * import { createNode, Identity } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 * import { kademlia } from '@deccom/kademlia';
 * import { noise } from '@deccom/noise';
 *
 * const node = createNode({
 *   identity: Identity.generate(),
 *   layers: [udp(), kademlia({ bootstrap }), noise()],
 * });
 * await node.start();
 * const peer = await node.findPeer(someId); // kademlia admitted it only after a Noise handshake
 * node.sendDatagram(peer.address, new TextEncoder().encode('secret')); // encrypted
 * console.log((await node.secureConnect(peer.address)).handshakeHash);
 * await node.stop();
 * ```
 *
 * The handshake core is usable on its own:
 *
 * ```ts
 * import { HandshakeState, defaultNoiseCrypto } from '@deccom/noise';
 * const dh = defaultNoiseCrypto().dh('25519');
 * const a = new HandshakeState({ protocol: 'Noise_XX_25519_ChaChaPoly_SHA256', initiator: true, staticKeyPair: dh.generateKeyPair() });
 * const b = new HandshakeState({ protocol: 'Noise_XX_25519_ChaChaPoly_SHA256', initiator: false, staticKeyPair: dh.generateKeyPair() });
 * b.readMessage(a.writeMessage());
 * a.readMessage(b.writeMessage());
 * b.readMessage(a.writeMessage());
 * const { send } = a.split();
 * ```
 *
 * @packageDocumentation
 */
export { NoiseError, type NoiseErrorCode } from './errors.js';
export {
  defaultNoiseCrypto,
  nodeNoiseCrypto,
  nobleNoiseCrypto,
  type NoiseCrypto,
  type DhFunctions,
  type DhKeyPair,
  type AeadFunctions,
  type SealedParts,
  type HashFunctions,
  type DhName,
  type CipherName,
  type HashName,
} from './crypto.js';
export { handshakePattern, parseProtocolName, PATTERN_NAMES, type HandshakePattern, type ProtocolName, type Token } from './patterns.js';
export { CipherState, SymmetricState, HandshakeState, MAX_MESSAGE_LENGTH, type HandshakeOptions, type TransportKeys } from './handshake.js';
export { createIdentityProof, verifyIdentityProof, verifyIdentityProofAsync, setIdentityProofCacheSize } from './identity.js';
export { ReplayWindow, REPLAY_WINDOW, type ReplayVerdict } from './replay.js';
export { noise, type NoiseOptions, type NoiseMode, type SecureSession, type SecureConnectOptions } from './datagram.js';
export { noiseStream, type NoiseStreamOptions } from './stream.js';
export {
  NOISE_PROTOCOL,
  MESSAGE,
  INNER,
  TRANSPORT_OVERHEAD,
  encodeInitiation,
  decodeInitiation,
  encodeHandshakeReply,
  decodeHandshakeReply,
  decodeTransport,
  encodeCookie,
  decodeCookie,
  encodeUnknownSession,
  decodeUnknownSession,
  encodeIdentityProof,
  decodeIdentityProof,
  staticKeySigningInput,
  STREAM_MESSAGE,
  STREAM_MAGIC,
  STREAM_FRAME_PLAINTEXT,
  decodeSealedMessage,
  decodeStreamHeader,
  decodeStreamFrame,
  decodeStreamFrameHeader,
  STREAM_FRAME_HEADER_LENGTH,
  type StreamFrameHeader,
  type IdentityProof,
  type Initiation,
  type HandshakeReply,
  type Transport,
} from './wire.js';
