/**
 * A clock whose `now()` can jump forward or backward while its timers keep running on
 * the clock underneath (relative delays, as `setTimeout` does). It models a time source
 * that is stepped (NTP, a VM resumed, a suspended laptop, a misconfigured injected
 * clock) under layers that compute deadlines from `now()`. It also counts the timers the
 * layers start, so a test can tell a timer storm from normal ticking.
 */
import type { Clock, TimerHandle } from '@deccom/core';

export class JumpClock implements Clock {
  private offsetMs = 0;
  /** Timers started through this clock so far. */
  timersStarted = 0;

  constructor(private readonly inner: Clock) {}

  now(): number {
    return this.inner.now() + this.offsetMs;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    this.timersStarted++;
    return this.inner.setTimeout(callback, delayMs);
  }

  clearTimeout(handle: TimerHandle): void {
    this.inner.clearTimeout(handle);
  }

  /** Steps `now()` by `ms` (negative: backward); timers already started are not moved. */
  jump(ms: number): void {
    this.offsetMs += ms;
  }
}
