/**
 * The one error class of `@deccom/noise`, with stable codes.
 */
import { DecComError, type DecComErrorOptions } from '@deccom/core';

/**
 * Codes of {@link NoiseError}. Never renamed once released.
 *
 * - `UNSUPPORTED_PROTOCOL`: a protocol name this implementation does not know.
 * - `MISSING_KEY`: a pattern needs a key (static, remote static, psk) that was not given.
 * - `INVALID_KEY`: a key of the wrong length.
 * - `DH_FAILED`: a Diffie-Hellman result was rejected (a low-order or invalid public key).
 * - `DECRYPT_FAILED`: authentication of a ciphertext failed.
 * - `HANDSHAKE_STATE`: a call out of turn (writing when it is the peer's turn, a finished handshake...).
 * - `MESSAGE_TOO_LONG`: a Noise message above 65,535 bytes.
 * - `NONCE_EXHAUSTED`: a cipher state used up its nonces; rekey or handshake again.
 * - `BAD_IDENTITY_PROOF`: the peer's identity payload is malformed or its signature over the static key is wrong.
 * - `IDENTITY_MISMATCH`: the peer authenticated as someone other than the node we dialled.
 * - `HANDSHAKE_TIMEOUT`: no complete handshake before the deadline.
 * - `HANDSHAKE_REJECTED`: the local `accept` policy refused the peer.
 * - `IDENTITY_CANNOT_SIGN`: this node's identity cannot sign (a string identity), so it cannot authenticate.
 * - `CONNECTION_CLOSED`: the connection that carried a stream handshake closed before the handshake completed.
 *
 * A `noiseStream` message that, sealed, exceeds the transport's limit rejects with core's
 * `MessageTooLargeError` in the caller's terms (its `cause` is the transport's).
 */
export type NoiseErrorCode =
  | 'UNSUPPORTED_PROTOCOL'
  | 'MISSING_KEY'
  | 'INVALID_KEY'
  | 'DH_FAILED'
  | 'DECRYPT_FAILED'
  | 'HANDSHAKE_STATE'
  | 'MESSAGE_TOO_LONG'
  | 'NONCE_EXHAUSTED'
  | 'BAD_IDENTITY_PROOF'
  | 'IDENTITY_MISMATCH'
  | 'HANDSHAKE_TIMEOUT'
  | 'HANDSHAKE_REJECTED'
  | 'IDENTITY_CANNOT_SIGN'
  | 'CONNECTION_CLOSED';

/** Every failure of the Noise handshake, transport or layer. */
export class NoiseError extends DecComError {
  declare readonly code: NoiseErrorCode;
  constructor(code: NoiseErrorCode, message: string, options?: DecComErrorOptions) {
    super(code, message, options);
  }
}
