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

/** How one caller of {@link SharedSearches.wait} waits. */
export interface SharedWaitOptions {
  /** This caller's deadline. */
  timeoutMs: number;
  /** This caller gives up when it aborts (AbortError). */
  signal?: AbortSignal | undefined;
  /** Named in errors. */
  description: string;
  /** The error at this caller's deadline. Default: a TimeoutError. */
  onTimeout?: () => Error;
}

interface SharedSearch<T> {
  readonly waiters: Set<{ resolve(value: T): void; reject(error: unknown): void }>;
}

/**
 * One search per key, shared by every caller that wants the same thing at once (e.g. a
 * find flooded through a gossip network): the first caller starts it, later ones join it,
 * each with its own deadline and abort signal. The search ends when it is resolved, when
 * `rejectAll` runs (stop), or when its last caller gave up; then `onEnd` runs once for its
 * key, so the owner can forget what it sent.
 */
export class SharedSearches<K, T> {
  private readonly searches = new Map<K, SharedSearch<T>>();

  constructor(
    private readonly clock: ScopedClock,
    /** Most searches (distinct keys) at once; a new key beyond it rejects with `overflow()`. */
    readonly limit: number,
    private readonly overflow: () => Error,
    private readonly onEnd: (key: K) => void = () => undefined,
  ) {}

  /** Searches in progress (distinct keys). */
  get size(): number {
    return this.searches.size;
  }

  has(key: K): boolean {
    return this.searches.has(key);
  }

  /** Callers waiting on `key`'s search (0 when none runs). */
  waiting(key: K): number {
    return this.searches.get(key)?.waiters.size ?? 0;
  }

  /**
   * Waits for `key`'s search, starting it with `start` when none runs. `start` runs after
   * the caller is registered, so a search that `start` resolves at once resolves it too.
   */
  wait(key: K, options: SharedWaitOptions, start: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const { timeoutMs, signal, description } = options;
      checkTimeoutMs(timeoutMs, description);
      if (signal?.aborted) {
        reject(new AbortError(`${description}: aborted`, { cause: signal.reason }));
        return;
      }
      let search = this.searches.get(key);
      const fresh = search === undefined;
      if (search === undefined) {
        if (this.searches.size >= this.limit) {
          reject(this.overflow());
          return;
        }
        search = { waiters: new Set() };
        this.searches.set(key, search);
      }
      const current = search;
      const leave = (): void => {
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
        current.waiters.delete(waiter);
        if (current.waiters.size === 0 && this.searches.get(key) === current) {
          this.searches.delete(key);
          this.onEnd(key);
        }
      };
      const waiter = {
        resolve: (value: T): void => {
          leave();
          resolve(value);
        },
        reject: (error: unknown): void => {
          leave();
          reject(error);
        },
      };
      const onAbort = (): void => waiter.reject(new AbortError(`${description}: aborted`, { cause: signal?.reason }));
      const cancelTimer = this.clock.setDeadline(
        () => waiter.reject(options.onTimeout?.() ?? new TimeoutError(`${description}: no result within ${timeoutMs} ms`)),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      current.waiters.add(waiter);
      if (!fresh) return;
      try {
        start();
      } catch (error) {
        waiter.reject(error);
      }
    });
  }

  /** Resolves every caller of `key`'s search; false when none runs (late or unsolicited result). */
  resolve(key: K, value: T): boolean {
    const search = this.searches.get(key);
    if (search === undefined) return false;
    for (const waiter of [...search.waiters]) waiter.resolve(value);
    return true;
  }

  /** Rejects every caller of every search (called on stop). */
  rejectAll(error: unknown): void {
    for (const search of [...this.searches.values()]) for (const waiter of [...search.waiters]) waiter.reject(error);
  }
}
