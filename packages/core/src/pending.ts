/**
 * Pending request/response bookkeeping with deadlines and cancellation, the pattern
 * behind ping, lookups and handshakes. Every entry ends exactly once: answered, timed
 * out, aborted, or rejected by `rejectAll` when the layer stops, so no promise is left
 * hanging after stop.
 */
import type { ScopedClock } from './clock.js';
import { AbortError, checkTimeoutMs, TimeoutError } from './errors.js';

interface Entry<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  cancelTimer(): void;
  cleanup(): void;
}

export class PendingRequests<K, T> {
  private readonly entries = new Map<K, Entry<T>>();

  constructor(
    private readonly clock: ScopedClock,
    /** Most entries at once; `add` beyond it rejects at once (bounded memory). */
    readonly limit = 65536,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /**
   * Registers `key` and resolves when {@link resolve} is called for it, or rejects with
   * TimeoutError after `timeoutMs`, or with AbortError when `signal` aborts.
   */
  add(key: K, timeoutMs: number, description: string, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      checkTimeoutMs(timeoutMs, description);
      if (signal?.aborted) {
        reject(new AbortError(`${description}: aborted`, { cause: signal.reason }));
        return;
      }
      if (this.entries.has(key)) {
        reject(new Error(`${description}: duplicate pending key`));
        return;
      }
      if (this.entries.size >= this.limit) {
        reject(new TimeoutError(`${description}: too many pending requests (${this.limit})`));
        return;
      }
      const onAbort = (): void => {
        this.finish(key)?.reject(new AbortError(`${description}: aborted`, { cause: signal?.reason }));
      };
      // A deadline, not a plain timer: an answer that arrived while this process was blocked
      // is read before the request is declared unanswered.
      const cancelTimer = this.clock.setDeadline(() => {
        this.finish(key)?.reject(new TimeoutError(`${description}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.entries.set(key, {
        resolve,
        reject,
        cancelTimer,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
    });
  }

  private finish(key: K): Entry<T> | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    entry.cancelTimer();
    entry.cleanup();
    return entry;
  }

  /** Resolves the entry for `key`; false when there is none (late or unsolicited answer). */
  resolve(key: K, value: T): boolean {
    const entry = this.finish(key);
    if (!entry) return false;
    entry.resolve(value);
    return true;
  }

  reject(key: K, error: unknown): boolean {
    const entry = this.finish(key);
    if (!entry) return false;
    entry.reject(error);
    return true;
  }

  /** Rejects every entry (called on stop). */
  rejectAll(error: unknown): void {
    for (const key of [...this.entries.keys()]) this.finish(key)?.reject(error);
  }
}
