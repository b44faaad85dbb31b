/**
 * A virtual clock for simulations: time moves only when the test says so, and timers
 * fire in time order (ties in scheduling order), so a whole network runs
 * deterministically in one process.
 */
import type { Clock, TimerHandle } from '../clock.js';

interface Timer {
  at: number;
  seq: number;
  callback: (() => void) | undefined;
}

/** Lets promise continuations run: one macrotask turn drains the microtask queue. */
const flushMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  private readonly heap: Timer[] = [];
  private live = 0;

  /**
   * @param resolutionMs Promise continuations run between timers at least this far apart
   *   in virtual time (0, the default, flushes between every two distinct instants). A
   *   resolution of 1 ms makes large simulations several times faster; continuations then
   *   run up to that much virtual time late.
   */
  constructor(startMs = 0, readonly resolutionMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer: Timer = { at: this.time + Math.max(0, Number.isFinite(delayMs) ? delayMs : 0), seq: this.seq++, callback };
    this.push(timer);
    this.live++;
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    const timer = handle as Timer;
    if (timer.callback !== undefined) {
      timer.callback = undefined;
      this.live--;
    }
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.live;
  }

  /** Time of the next live timer, or undefined. */
  nextTimerAt(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way in order. Between
   * distinct timestamps it lets pending promise continuations run.
   */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.time + ms);
  }

  async advanceTo(target: number): Promise<void> {
    await flushMicrotasks();
    let flushedAt = this.time;
    for (;;) {
      this.dropCancelled();
      const next = this.heap[0];
      if (!next || next.at > target) break;
      const at = next.at;
      this.time = Math.max(this.time, at);
      // Fire every timer due at this instant, including ones scheduled by them for "now".
      while (this.heap.length > 0 && this.heap[0]!.at <= at) {
        const timer = this.pop()!;
        const callback = timer.callback;
        if (callback === undefined) continue;
        timer.callback = undefined;
        this.live--;
        callback();
      }
      if (this.time - flushedAt >= this.resolutionMs) {
        await flushMicrotasks();
        flushedAt = this.time;
      }
    }
    this.time = Math.max(this.time, target);
    await flushMicrotasks();
  }

  /**
   * Advances in steps of `stepMs` until `predicate()` holds or `maxMs` of virtual time
   * passed. Resolves to whether the predicate held.
   */
  async runUntil(predicate: () => boolean, options: { maxMs: number; stepMs?: number }): Promise<boolean> {
    const deadline = this.time + options.maxMs;
    const step = options.stepMs ?? 10;
    await flushMicrotasks();
    while (!predicate()) {
      if (this.time >= deadline) return false;
      await this.advance(Math.min(step, deadline - this.time));
    }
    return true;
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.callback === undefined) this.pop();
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && this.less(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && this.less(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}
