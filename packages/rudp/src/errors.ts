/**
 * Errors of `@deccom/rudp`. Besides these, `sendReliable` rejects with core's
 * `TimeoutError` (its `timeoutMs` passed), `AbortError` (its signal aborted),
 * `StateError` `NOT_STARTED` / `STOPPED`, and `InvalidArgumentError` (bad arguments).
 */
import { DecComError } from '@deccom/core';
import type { RefuseReason } from './wire.js';

/** The peer acknowledged nothing for `peerTimeoutMs` while a message to it was outstanding. */
export class PeerUnresponsiveError extends DecComError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RUDP_PEER_UNRESPONSIVE', message, options);
  }
}

/**
 * The receiver refused the message: longer than its `maxMessageBytes` (`too-large`), no
 * room in its reassembly memory budget (`memory`), dropped half-received after it went
 * idle or was evicted for room (`expired`), or it is stopping (`stopped`).
 */
export class MessageRefusedError extends DecComError {
  readonly reason: RefuseReason;
  constructor(reason: RefuseReason, message: string, options?: { cause?: unknown }) {
    super('RUDP_REFUSED', message, options);
    this.reason = reason;
  }
}
