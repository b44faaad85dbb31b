/**
 * Errors of the hole punching layer. Every failure a user can see has a stable `code`;
 * wire problems are core's `WireError` (dropped and counted, never thrown upward).
 */
import { DecComError } from '@deccom/core';
import type { RelayReason } from './wire.js';

export type PunchErrorCode =
  /** No path opened before the deadline, after every retry. */
  | 'PUNCH_TIMEOUT'
  /** The address was never heard from and no introducer is known for it. */
  | 'PUNCH_NO_INTRODUCER'
  /** Too many datagrams (or bytes) are already queued for an address whose path is not open. */
  | 'PUNCH_QUEUE_FULL'
  /** Too many punches are under way at once (`maxConcurrentPunches`). */
  | 'PUNCH_LIMIT'
  /** The attempt was cancelled through its `AbortSignal`. */
  | 'PUNCH_ABORTED'
  /** The layer stopped while the attempt was under way. */
  | 'PUNCH_STOPPED'
  /** TCP simultaneous open did not connect before its deadline. */
  | 'TCP_PUNCH_FAILED'
  /** The peer declined the TCP punch (no TCP layer, or too many punches). */
  | 'TCP_PUNCH_DECLINED'
  /** This stack cannot punch TCP (no TCP-capable host, or no UDP path to exchange candidates). */
  | 'TCP_PUNCH_UNAVAILABLE';

/** A hole punch (UDP or TCP) that did not open a path. */
export class PunchError extends DecComError {
  declare readonly code: PunchErrorCode;
  /** Attempts made before giving up. */
  readonly attempts: number;
  constructor(code: PunchErrorCode, message: string, attempts = 0, options?: { cause?: unknown }) {
    super(code, message, options);
    this.attempts = attempts;
  }
}

export type RelayErrorCode =
  /** The relay serves its most sessions already (its connection budget). */
  | 'RELAY_SESSIONS'
  /** Traffic beyond the relay's bandwidth budget. */
  | 'RELAY_BANDWIDTH'
  /** Traffic beyond the session's byte budget. */
  | 'RELAY_BYTES'
  /** The peer does not relay for others. */
  | 'RELAY_DISABLED'
  /** The target refused the relayed session. */
  | 'RELAY_DECLINED'
  /** The relay does not know the target (or the session). */
  | 'RELAY_UNKNOWN'
  /** The session was idle too long and the relay closed it. */
  | 'RELAY_IDLE'
  /** The relay or the peer is shutting down. */
  | 'RELAY_STOPPING'
  /** No relay answered in time. */
  | 'RELAY_TIMEOUT'
  /** No willing relay is known for the address. */
  | 'RELAY_UNAVAILABLE';

const CODE_BY_REASON: Record<RelayReason, RelayErrorCode> = {
  closed: 'RELAY_STOPPING',
  sessions: 'RELAY_SESSIONS',
  bandwidth: 'RELAY_BANDWIDTH',
  bytes: 'RELAY_BYTES',
  disabled: 'RELAY_DISABLED',
  declined: 'RELAY_DECLINED',
  unknown: 'RELAY_UNKNOWN',
  idle: 'RELAY_IDLE',
  stopping: 'RELAY_STOPPING',
};

/** A relay refused a session or traffic, or no relay could be used. */
export class RelayError extends DecComError {
  declare readonly code: RelayErrorCode;
  constructor(code: RelayErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }

  /** The error for a refusal `reason` received on the wire. */
  static fromReason(reason: RelayReason, message: string): RelayError {
    return new RelayError(CODE_BY_REASON[reason], message);
  }
}
