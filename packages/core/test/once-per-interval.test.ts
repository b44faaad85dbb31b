import { describe, expect, it } from 'vitest';
import { OncePerInterval } from '../src/index.js';

describe('OncePerInterval', () => {
  it('lets a key through once per interval, each key on its own', () => {
    const gate = new OncePerInterval(1_000, 10);
    expect(gate.allow('a', 0)).toBe(true);
    expect(gate.allow('a', 999)).toBe(false);
    expect(gate.allow('b', 999)).toBe(true);
    expect(gate.allow('a', 1_000)).toBe(true);
    expect(gate.allow('a', 1_500)).toBe(false);
    expect(gate.size).toBe(2);
    gate.clear();
    expect(gate.allow('a', 1_501)).toBe(true);
  });

  it('remembers at most capacity keys, forgetting the one let through longest ago', () => {
    const gate = new OncePerInterval(1_000, 3);
    for (const key of ['a', 'b', 'c']) expect(gate.allow(key, 0)).toBe(true);
    // 'a' comes back later: now the newest; 'd' pushes out 'b', the oldest.
    expect(gate.allow('a', 1_000)).toBe(true);
    expect(gate.allow('d', 1_001)).toBe(true);
    expect(gate.size).toBe(3);
    expect(gate.allow('b', 1_002)).toBe(true); // forgotten, so let through again
    expect(gate.allow('a', 1_003)).toBe(false); // still remembered
    for (let i = 0; i < 10_000; i++) gate.allow(`k${i}`, 2_000);
    expect(gate.size).toBe(3);
  });
});
