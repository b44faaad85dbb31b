/**
 * Errors of the TCP layer. Each has a stable `code`; wire problems are core's
 * `WireError` (a peer that sends one is disconnected with it as the reason).
 */
import { DecComError, MessageTooLargeError, type DecComErrorOptions } from '@deccom/core';

/** Core's `MessageTooLargeError` (re-exported here), for a message over the local or the peer's maximum. */
export function messageTooLarge(size: number, limit: number, whose: 'local' | 'peer'): MessageTooLargeError {
  return new MessageTooLargeError(size, limit, `tcp: a message of ${size} bytes exceeds the ${whose} maximum of ${limit} bytes`);
}

export type ConnectionErrorCode =
  /** Could not connect (refused, unreachable, timed out) or introduce ourselves. */
  | 'CONNECT_FAILED'
  /** The connection closed (or failed) while an operation needed it. */
  | 'CONNECTION_CLOSED'
  /** `maxConnections` reached. */
  | 'CONNECTION_LIMIT'
  /** The peer answering at the address introduced itself as another node. */
  | 'IDENTITY_MISMATCH'
  /** The peer record has no TCP port. */
  | 'NO_TCP_PORT';

/** A connection could not be made or was lost. */
export class ConnectionError extends DecComError {
  declare readonly code: ConnectionErrorCode;
  constructor(code: ConnectionErrorCode, message: string, options?: DecComErrorOptions) {
    super(code, message, options);
  }
}

export type StreamErrorCode =
  /** The receiving application stopped reading the stream. */
  | 'STREAM_CANCELLED'
  /** The receiver refused the stream (no stream handler, or too many open streams). */
  | 'STREAM_REFUSED'
  /** The sender gave up on the stream (its source failed, or it is closing). */
  | 'STREAM_RESET';

/** A stream ended without reaching its end. */
export class StreamError extends DecComError {
  declare readonly code: StreamErrorCode;
  constructor(code: StreamErrorCode, message: string, options?: DecComErrorOptions) {
    super(code, message, options);
  }
}
