import { describe, expect, it } from 'vitest';
import { createNode, monotonicClock, systemClock, type Clock } from '../src/index.js';
import { VirtualClock, memoryTransport, MemoryNetwork } from '../src/testing/index.js';

/** A clock that can be stepped back and forth; timers run on the virtual clock below. */
function steppable(inner: VirtualClock): Clock & { step(ms: number): void } {
  let offset = 0;
  return {
    now: () => inner.now() + offset,
    setTimeout: (callback, delayMs) => inner.setTimeout(callback, delayMs),
    clearTimeout: (handle) => inner.clearTimeout(handle),
    step: (ms) => void (offset += ms),
  };
}

describe('monotonicClock', () => {
  it('absorbs a step back: time goes on from where it was, at the same pace', async () => {
    const virtual = new VirtualClock(10_000);
    const stepped = steppable(virtual);
    const clock = monotonicClock(stepped);
    expect(clock.now()).toBe(10_000);
    stepped.step(-3_600_000);
    expect(clock.now()).toBe(10_000);
    await virtual.advance(250);
    expect(clock.now()).toBe(10_250);
    // A step forward passes through (it cannot be told from time passing).
    stepped.step(5000);
    expect(clock.now()).toBe(15_250);
  });

  it('passes timers through and leaves the system clock as it is', async () => {
    const virtual = new VirtualClock();
    const clock = monotonicClock(virtual);
    let fired = 0;
    const handle = clock.setTimeout(() => fired++, 100);
    clock.setTimeout(() => fired++, 50);
    clock.clearTimeout(handle);
    await virtual.advance(200);
    expect(fired).toBe(1);
    expect(monotonicClock(systemClock)).toBe(systemClock);
  });

  it('is what a node gives its layers: a ping round trip across a step back is not negative', async () => {
    const virtual = new VirtualClock(1_000_000);
    const stepped = steppable(virtual);
    const network = new MemoryNetwork({ clock: virtual, defaultLink: { latencyMs: 10 } });
    const a = createNode({ clock: stepped, layers: [memoryTransport(network)] });
    const b = createNode({ clock: stepped, layers: [memoryTransport(network)] });
    await a.start();
    await b.start();
    try {
      const rtt = a.sendPing(b.localAddress());
      await virtual.advance(5);
      stepped.step(-600_000);
      await virtual.advance(100);
      expect(await rtt).toBeGreaterThanOrEqual(0);
      expect(await rtt).toBeLessThan(100);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
