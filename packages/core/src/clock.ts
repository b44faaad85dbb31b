/**
 * Injectable time. Layers never call the global `setTimeout` or `Date.now`: they use the
 * clock in their context, so a whole network can run on a virtual clock in one process
 * (see `@deccom/core/testing`), and so every timer a layer starts is known and released
 * when the layer stops.
 */

/** Opaque handle of a scheduled timer. */
export type TimerHandle = { readonly __timer: unique symbol } | object;

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall-clock time). */
  now(): number;
  /** Runs `callback` once after `delayMs`. */
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `performance.now()` and the global timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, Math.max(0, delayMs)) as unknown as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as unknown as ReturnType<typeof setTimeout>),
};

/**
 * `inner` as a node's layers see it: `now()` never goes backward. The {@link Clock}
 * contract asks for a monotonic scale, but an injected clock may be stepped back (a clock
 * built on wall time, a test); layers measure deadlines as `now() - since`, so a step back
 * of an hour would silence every such deadline (keep-alive, peer and handshake timeouts,
 * pacing) for an hour. A step back is absorbed: time goes on from where it was. Timers are
 * relative and pass through. The system clock (`performance.now()`) is monotonic already
 * and is returned as it is.
 */
export function monotonicClock(inner: Clock): Clock {
  if (inner === systemClock) return inner;
  let offset = 0;
  let last = -Infinity;
  return {
    now: () => {
      let time = inner.now() + offset;
      if (time < last) {
        offset += last - time;
        time = last;
      }
      last = time;
      return time;
    },
    setTimeout: (callback, delayMs) => inner.setTimeout(callback, delayMs),
    clearTimeout: (handle) => inner.clearTimeout(handle),
  };
}

/**
 * A clock view that remembers every timer it started, so `clearAll()` (called when a
 * layer stops) releases them all. Each layer of a node gets its own scope.
 */
export class ScopedClock implements Clock {
  private readonly timers = new Set<TimerHandle>();

  constructor(private readonly inner: Clock) {}

  now(): number {
    return this.inner.now();
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const handle: TimerHandle = this.inner.setTimeout(() => {
      this.timers.delete(handle);
      callback();
    }, delayMs);
    this.timers.add(handle);
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    if (this.timers.delete(handle)) this.inner.clearTimeout(handle);
  }

  /**
   * Runs `callback` every `intervalMs` (the first run after one interval) until the
   * returned function is called or the scope is cleared. A callback that throws does not
   * stop the interval.
   */
  setInterval(callback: () => void, intervalMs: number): () => void {
    let handle: TimerHandle | undefined;
    let cancelled = false;
    const tick = (): void => {
      if (cancelled) return;
      handle = this.setTimeout(tick, intervalMs);
      callback();
    };
    handle = this.setTimeout(tick, intervalMs);
    return () => {
      cancelled = true;
      if (handle !== undefined) this.clearTimeout(handle);
    };
  }

  /** Resolves after `delayMs`, or rejects with the signal's abort. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.clearTimeout(handle);
        reject(signal?.reason);
      };
      const handle = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, delayMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Number of timers started through this scope and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  clearAll(): void {
    for (const handle of this.timers) this.inner.clearTimeout(handle);
    this.timers.clear();
  }
}
