import { describe, expect, it } from 'vitest';
import { DEADLINE_GRACE_MS, DEADLINE_MAX_GRACES, ScopedClock, type Clock } from '../src/index.js';
import { VirtualClock } from '../src/testing/index.js';

/**
 * Timers run on the virtual clock; `stall(ms)` moves `now()` on without running them, as
 * a process blocked for `ms` sees it: its timers fire late, all at once.
 */
function stallable(): { clock: ScopedClock; virtual: VirtualClock; stall(ms: number): void } {
  const virtual = new VirtualClock();
  let offset = 0;
  const inner: Clock = {
    now: () => virtual.now() + offset,
    setTimeout: (callback, delayMs) => virtual.setTimeout(callback, delayMs),
    clearTimeout: (handle) => virtual.clearTimeout(handle),
  };
  return { clock: new ScopedClock(inner), virtual, stall: (ms) => void (offset += ms) };
}

describe('ScopedClock.setDeadline', () => {
  it('fires once at the deadline when the process is responsive', async () => {
    const { clock, virtual } = stallable();
    let fired = 0;
    clock.setDeadline(() => fired++, 1_000);
    await virtual.advance(999);
    expect(fired).toBe(0);
    await virtual.advance(1);
    expect(fired).toBe(1);
    await virtual.advance(10_000);
    expect(fired).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('after a stall, waits a grace before judging, so an answer read meanwhile can cancel it', async () => {
    const { clock, virtual, stall } = stallable();
    let fired = 0;
    const cancel = clock.setDeadline(() => fired++, 1_000);
    await virtual.advance(500);
    stall(5_000);
    await virtual.advance(500);
    // Due, but 5 s late: the loop gets a grace to read what arrived during the stall.
    expect(fired).toBe(0);
    cancel();
    await virtual.advance(10_000);
    expect(fired).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('fires after the grace when nothing cancels it, and after at most DEADLINE_MAX_GRACES graces when the process keeps stalling', async () => {
    const once = stallable();
    let fired = 0;
    once.clock.setDeadline(() => fired++, 1_000);
    once.stall(5_000);
    await once.virtual.advance(1_000);
    expect(fired).toBe(0);
    await once.virtual.advance(DEADLINE_GRACE_MS);
    expect(fired).toBe(1);

    const always = stallable();
    let firedAt = -1;
    always.clock.setDeadline(() => (firedAt = always.virtual.now()), 1_000);
    for (let i = 0; i <= DEADLINE_MAX_GRACES + 2 && firedAt < 0; i++) {
      always.stall(5_000);
      await always.virtual.advance(i === 0 ? 1_000 : DEADLINE_GRACE_MS);
    }
    expect(firedAt).toBe(1_000 + DEADLINE_MAX_GRACES * DEADLINE_GRACE_MS);
  });

  it('a small lateness is not a stall, and a short deadline gets a grace no longer than itself', async () => {
    const { clock, virtual, stall } = stallable();
    let fired = 0;
    clock.setDeadline(() => fired++, 1_000);
    stall(200); // a quarter of the deadline is tolerated
    await virtual.advance(1_000);
    expect(fired).toBe(1);

    let short = 0;
    clock.setDeadline(() => short++, 20);
    stall(1_000);
    await virtual.advance(20);
    expect(short).toBe(0);
    await virtual.advance(20);
    expect(short).toBe(1);
  });
});
