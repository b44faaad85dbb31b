/**
 * Typed errors. Every error DecCom throws or rejects with is a {@link DecComError} with a
 * stable string `code`; subclasses group the codes by concern so callers can
 * `instanceof`-check a family and `switch` on the code.
 */

/** Stable error codes. Never renamed once released; new codes are only added. */
export type ErrorCode =
  // composition of a stack
  | 'MISSING_CAPABILITY'
  | 'MISSING_HOOK'
  | 'HOOK_TAKEN'
  | 'UNKNOWN_LAYER'
  | 'DUPLICATE_LAYER_NAME'
  | 'EMPTY_STACK'
  // wire decoding
  | 'WIRE_TRUNCATED'
  | 'WIRE_MALFORMED'
  | 'WIRE_OVERSIZED'
  | 'WIRE_UNSUPPORTED_VERSION'
  | 'WIRE_UNKNOWN_TYPE'
  | 'WIRE_TRAILING_BYTES'
  // lifecycle
  | 'NOT_STARTED'
  | 'STOPPED'
  // operations
  | 'TIMEOUT'
  | 'ABORTED'
  | 'PEER_NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'MESSAGE_TOO_LARGE'
  | 'INVALID_SIGNATURE'
  | 'INVALID_KEY'
  | 'UNSUPPORTED'
  | (string & {});

/** Options of every DecCom error. */
export interface DecComErrorOptions {
  /** The error that led to this one. */
  cause?: unknown;
  /**
   * `false` skips the stack trace (then `stack` holds the name and message only). For
   * errors that report an event rather than a call, e.g. "the peer closed the connection"
   * raised from a socket's close handler: their stack shows only library and runtime
   * frames, and capturing it costs ~6 us, which shows in connection churn. Default `true`.
   */
  captureStack?: boolean;
}

/** Sets `Error.stackTraceLimit` where the runtime lets us; returns the previous value. */
function swapStackTraceLimit(limit: number | undefined): number | undefined {
  const previous = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = limit as number;
  } catch {
    // A frozen Error constructor (hardened runtimes): the stack is captured as usual.
  }
  return previous;
}

/** Base class of every DecCom error. */
export class DecComError extends Error {
  declare readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: DecComErrorOptions) {
    const quiet = options?.captureStack === false;
    const limit = quiet ? swapStackTraceLimit(0) : undefined;
    try {
      super(message, options);
    } finally {
      if (quiet) swapStackTraceLimit(limit);
    }
    this.code = code;
    this.name = new.target.name;
  }
}

/** A stack whose layers do not fit together (missing capability, hook taken twice...). */
export class CompositionError extends DecComError {}

/** Malformed, truncated, oversized or unknown bytes. Decoders throw it; layers catch, drop and count. */
export class WireError extends DecComError {}

/** An operation on a node or layer that is not running. */
export class StateError extends DecComError {}

/** An operation that did not finish before its deadline. */
export class TimeoutError extends DecComError {
  constructor(message: string, options?: DecComErrorOptions) {
    super('TIMEOUT', message, options);
  }
}

/** An operation cancelled through its `AbortSignal`. */
export class AbortError extends DecComError {
  constructor(message = 'The operation was aborted', options?: DecComErrorOptions) {
    super('ABORTED', message, options);
  }
}

/** A lookup that ended without finding the peer. */
export class NotFoundError extends DecComError {
  constructor(message: string, options?: DecComErrorOptions) {
    super('PEER_NOT_FOUND', message, options);
  }
}

/** API misuse: a wrong type, a value out of range, an option that makes no sense. */
export class InvalidArgumentError extends DecComError {
  constructor(message: string, options?: DecComErrorOptions) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/**
 * A message longer than a transport (or a layer over it) carries: `size` bytes against
 * at most `limit`, both in the caller's terms. One class for every layer, so a caller
 * catches it the same way over tcp as over noise on tcp.
 */
export class MessageTooLargeError extends DecComError {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number, message = `a message of ${size} bytes exceeds the maximum of ${limit} bytes`, options?: DecComErrorOptions) {
    super('MESSAGE_TOO_LARGE', message, options);
    this.size = size;
    this.limit = limit;
  }
}

/** Bad keys or signatures. */
export class IdentityError extends DecComError {}

/** Throws an {@link AbortError} carrying the signal's reason if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('The operation was aborted', { cause: signal.reason });
}

/** The longest wait a timer can hold: 2^31 - 1 ms (about 24.8 days). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Throws an {@link InvalidArgumentError} unless `timeoutMs` is undefined or a number of
 * milliseconds a timer can wait (0 to {@link MAX_TIMEOUT_MS}): NaN or -1 would otherwise
 * fire at once, and more than the maximum would be cut to 1 ms by the runtime.
 */
export function checkTimeoutMs(timeoutMs: number | undefined, what: string): void {
  if (timeoutMs !== undefined && !(timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
    throw new InvalidArgumentError(`${what}: timeoutMs must be a number from 0 to ${MAX_TIMEOUT_MS}, got ${String(timeoutMs)}`);
  }
}
