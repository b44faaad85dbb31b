import { describe, expect, it } from 'vitest';
import { AbortError, DecComError, ScopedClock, SharedSearches, StateError, TimeoutError } from '../src/index.js';
import { VirtualClock } from '../src/testing/index.js';

function setup(limit = 8) {
  const virtual = new VirtualClock();
  const ended: string[] = [];
  const searches = new SharedSearches<string, number>(
    new ScopedClock(virtual),
    limit,
    () => new DecComError('FIND_LIMIT', 'too many'),
    (key) => void ended.push(key),
  );
  return { virtual, searches, ended };
}

describe('SharedSearches', () => {
  it('starts one search per key; every caller of it gets the result; the end is reported once', async () => {
    const { searches, ended } = setup();
    let started = 0;
    const callers = Array.from({ length: 5 }, () => searches.wait('a', { timeoutMs: 1_000, description: 'find' }, () => void started++));
    expect(started).toBe(1);
    expect(searches.waiting('a')).toBe(5);
    expect(searches.resolve('a', 42)).toBe(true);
    expect(await Promise.all(callers)).toEqual([42, 42, 42, 42, 42]);
    expect(ended).toEqual(['a']);
    expect(searches.size).toBe(0);
    // Late or unsolicited: nothing to resolve.
    expect(searches.resolve('a', 1)).toBe(false);
    // A later caller starts a new search.
    const again = searches.wait('a', { timeoutMs: 1_000, description: 'find' }, () => void started++);
    expect(started).toBe(2);
    searches.resolve('a', 7);
    expect(await again).toBe(7);
  });

  it('each caller keeps its own deadline and signal; the search ends when the last one leaves', async () => {
    const { virtual, searches, ended } = setup();
    const controller = new AbortController();
    const short = searches.wait('a', { timeoutMs: 100, description: 'find', onTimeout: () => new StateError('GONE', 'gone') }, () => undefined);
    const aborted = searches.wait('a', { timeoutMs: 5_000, signal: controller.signal, description: 'find' }, () => undefined);
    const long = searches.wait('a', { timeoutMs: 1_000, description: 'find' }, () => undefined);
    short.catch(() => undefined);
    aborted.catch(() => undefined);
    long.catch(() => undefined);
    await virtual.advance(100);
    await expect(short).rejects.toMatchObject({ code: 'GONE' });
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    expect(ended).toEqual([]);
    expect(searches.waiting('a')).toBe(1);
    await virtual.advance(900);
    await expect(long).rejects.toBeInstanceOf(TimeoutError);
    expect(ended).toEqual(['a']);
    expect(virtual.pendingTimers).toBe(0);
  });

  it('bounds distinct searches, rejects every caller on rejectAll, and checks its input', async () => {
    const { virtual, searches, ended } = setup(2);
    const a = searches.wait('a', { timeoutMs: 1_000, description: 'find' }, () => undefined);
    const b = searches.wait('b', { timeoutMs: 1_000, description: 'find' }, () => undefined);
    const a2 = searches.wait('a', { timeoutMs: 1_000, description: 'find' }, () => undefined);
    await expect(searches.wait('c', { timeoutMs: 1_000, description: 'find' }, () => undefined)).rejects.toMatchObject({ code: 'FIND_LIMIT' });
    await expect(searches.wait('d', { timeoutMs: Number.NaN, description: 'find' }, () => undefined)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const gone = new AbortController();
    gone.abort();
    let started = 0;
    await expect(searches.wait('e', { timeoutMs: 1_000, signal: gone.signal, description: 'find' }, () => void started++)).rejects.toBeInstanceOf(AbortError);
    expect(started).toBe(0);
    searches.rejectAll(new StateError('STOPPED', 'stopped'));
    for (const p of [a, b, a2]) await expect(p).rejects.toMatchObject({ code: 'STOPPED' });
    expect(ended.sort()).toEqual(['a', 'b']);
    // A start that throws fails its caller and ends the search.
    const boom = searches.wait('g', { timeoutMs: 1_000, description: 'find' }, () => {
      throw new Error('boom');
    });
    await expect(boom).rejects.toThrow('boom');
    expect(searches.size).toBe(0);
    expect(virtual.pendingTimers).toBe(0);
  });
});
