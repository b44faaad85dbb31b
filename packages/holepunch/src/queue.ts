/**
 * Datagrams waiting for a path to open, and the retry schedule of a punch. Pure.
 */

export interface SendQueueOptions {
  /** Most datagrams held. */
  maxDatagrams: number;
  /** Most bytes held. */
  maxBytes: number;
}

/** A bounded FIFO of datagrams. A datagram that does not fit is refused, never reordered. */
export class SendQueue {
  private items: Uint8Array[] = [];
  private total = 0;

  constructor(readonly options: SendQueueOptions) {}

  get length(): number {
    return this.items.length;
  }

  get bytes(): number {
    return this.total;
  }

  /** Queues a copy-free reference to `data`; false (nothing queued) when it does not fit. */
  push(data: Uint8Array): boolean {
    if (this.items.length >= this.options.maxDatagrams || this.total + data.byteLength > this.options.maxBytes) return false;
    this.items.push(data);
    this.total += data.byteLength;
    return true;
  }

  /** Takes everything queued, oldest first. */
  drain(): Uint8Array[] {
    const out = this.items;
    this.items = [];
    this.total = 0;
    return out;
  }
}

export interface RetryScheduleOptions {
  /** Delay before the first retry. */
  initialDelayMs: number;
  /** Each retry waits this many times longer than the one before (>= 1). */
  backoff: number;
  /** Longest wait between two attempts. */
  maxDelayMs: number;
  /** Attempts at most (the first one included). */
  maxAttempts: number;
  /** No attempt starts later than this after the first one. */
  deadlineMs: number;
}

/**
 * When to make attempt number `attempt + 1` after `attempt` attempts, started `elapsedMs`
 * ago: the delay in ms, or undefined when the attempts or the deadline are used up.
 */
export function nextRetryDelay(options: RetryScheduleOptions, attempt: number, elapsedMs: number): number | undefined {
  if (attempt >= options.maxAttempts) return undefined;
  const delay = Math.min(options.maxDelayMs, options.initialDelayMs * options.backoff ** Math.max(0, attempt - 1));
  if (elapsedMs + delay >= options.deadlineMs) return undefined;
  return delay;
}
