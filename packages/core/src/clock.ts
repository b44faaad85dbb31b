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

/** Lateness of a deadline timer below which the process counts as responsive (see `ScopedClock.setDeadline`). */
export const DEADLINE_STALL_MS = 50;
/** Longest extra wait a late deadline timer gives the event loop to read what arrived. */
export const DEADLINE_GRACE_MS = 100;
/** Graces a deadline gets at most, so a process that keeps stalling still times out. */
export const DEADLINE_MAX_GRACES = 3;

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

  /**
   * Runs `callback` once, after `timeoutMs`, to judge a peer's silence (a request's
   * deadline). Unlike `setTimeout`, a timer that fires late because this process was
   * blocked (a long synchronous task, a garbage collection, a suspended machine) first
   * gives the event loop a short grace to read what arrived meanwhile: an answer that
   * sat unread in a socket while we were busy is not the peer's silence. A timer is
   * late when it fires more than a quarter of `timeoutMs` (at least
   * {@link DEADLINE_STALL_MS}) after it was due; the grace is at most
   * {@link DEADLINE_GRACE_MS}, given at most {@link DEADLINE_MAX_GRACES} times, so a
   * process that keeps stalling still times out. On a virtual clock timers are never
   * late and this is `setTimeout`. Returns a cancel function.
   */
  setDeadline(callback: () => void, timeoutMs: number): () => void {
    let due = this.now() + timeoutMs;
    let graces = 0;
    let done = false;
    let handle: TimerHandle | undefined;
    const tolerance = Math.max(DEADLINE_STALL_MS, timeoutMs / 4);
    const fire = (): void => {
      if (done) return;
      const now = this.now();
      if (now - due > tolerance && graces < DEADLINE_MAX_GRACES) {
        graces++;
        const grace = Math.min(Math.max(1, timeoutMs), DEADLINE_GRACE_MS);
        due = now + grace;
        handle = this.setTimeout(fire, grace);
        return;
      }
      done = true;
      callback();
    };
    handle = this.setTimeout(fire, timeoutMs);
    return () => {
      done = true;
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
