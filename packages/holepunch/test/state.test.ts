import { describe, expect, it } from 'vitest';
import { IntroducerBook, NatClassifier, nextRetryDelay, RelayBudget, SendQueue, TokenBucket } from '../src/index.js';

const a = (port: number, host = '10.0.0.1') => ({ host, port });

describe('IntroducerBook', () => {
  it('keeps the last few introducers per address, most recent first, without duplicates', () => {
    const book = new IntroducerBook({ perAddress: 3 });
    const target = a(1);
    book.add(target, a(10));
    book.add(target, a(11));
    book.add(target, a(12));
    book.add(target, a(11));
    expect(book.get(target)).toEqual([a(11), a(12), a(10)]);
    book.add(target, a(13));
    expect(book.get(target)).toEqual([a(13), a(11), a(12)]);
    expect(book.get(a(2))).toEqual([]);
  });

  it('ignores a peer introducing itself and forgets the least recently introduced address beyond its bound', () => {
    const book = new IntroducerBook({ maxAddresses: 2 });
    expect(book.add(a(1), a(1))).toBe(false);
    expect(book.has(a(1))).toBe(false);
    book.add(a(1), a(9));
    book.add(a(2), a(9));
    book.add(a(1), a(8)); // refreshes a(1)
    book.add(a(3), a(9)); // evicts a(2)
    expect(book.has(a(2))).toBe(false);
    expect(book.has(a(1))).toBe(true);
    expect(book.size).toBe(2);
    book.removeIntroducer(a(9));
    expect(book.get(a(1))).toEqual([a(8)]);
    expect(book.has(a(3))).toBe(false);
  });

  it('validates its options', () => {
    expect(() => new IntroducerBook({ perAddress: 0 })).toThrow(RangeError);
    expect(() => new IntroducerBook({ maxAddresses: 1.5 })).toThrow(RangeError);
  });
});

describe('NatClassifier', () => {
  const local = { host: '192.168.1.5', port: 5000 };

  it('is unknown without observations, none when peers see the bound address', () => {
    const nat = new NatClassifier();
    expect(nat.classify(local, 0).type).toBe('unknown');
    nat.observe(a(1, '1.1.1.1'), local, 0);
    expect(nat.classify(local, 0)).toEqual({ type: 'none', publicAddress: local, observers: 1 });
  });

  it('is cone when two observers agree on one translated address, symmetric when they disagree', () => {
    const cone = new NatClassifier();
    cone.observe(a(1, '1.1.1.1'), a(7000, '198.51.100.1'), 0);
    expect(cone.classify(local, 0).type).toBe('unknown');
    cone.observe(a(1, '2.2.2.2'), a(7000, '198.51.100.1'), 10);
    expect(cone.classify(local, 10)).toEqual({ type: 'cone', publicAddress: a(7000, '198.51.100.1'), observers: 2 });
    // A peer on the same LAN sees the untranslated address: still cone.
    cone.observe(a(1, '192.168.1.9'), local, 20);
    expect(cone.classify(local, 20).type).toBe('cone');

    const symmetric = new NatClassifier();
    symmetric.observe(a(1, '1.1.1.1'), a(7000, '198.51.100.1'), 0);
    symmetric.observe(a(1, '2.2.2.2'), a(7001, '198.51.100.1'), 0);
    expect(symmetric.classify(local, 0).type).toBe('symmetric');
  });

  it('counts the latest observation per observer and forgets old ones', () => {
    const nat = new NatClassifier({ windowMs: 1000 });
    nat.observe(a(1, '1.1.1.1'), a(7000, '198.51.100.1'), 0);
    nat.observe(a(1, '2.2.2.2'), a(7001, '198.51.100.1'), 0);
    // The mapping changed (NAT reboot): both observers report the new one later.
    nat.observe(a(1, '1.1.1.1'), a(8000, '198.51.100.1'), 500);
    nat.observe(a(1, '2.2.2.2'), a(8000, '198.51.100.1'), 600);
    expect(nat.classify(local, 600).type).toBe('cone');
    expect(nat.classify(local, 5000).type).toBe('unknown');
    expect(nat.observers(5000)).toBe(0);
  });

  it('keeps at most maxObservations observers', () => {
    const nat = new NatClassifier({ maxObservations: 4 });
    for (let i = 0; i < 10; i++) nat.observe(a(1, `1.1.1.${i + 1}`), a(7000, '198.51.100.1'), i);
    expect(nat.observers(10)).toBe(4);
  });
});

describe('TokenBucket and RelayBudget', () => {
  it('a bucket allows a burst, then the sustained rate', () => {
    const bucket = new TokenBucket(1000, 500, 0);
    expect(bucket.take(500, 0)).toBe(true);
    expect(bucket.take(1, 0)).toBe(false);
    expect(bucket.take(100, 100)).toBe(true);
    expect(bucket.take(1, 100)).toBe(false);
    expect(bucket.available(10_000)).toBe(500);
  });

  it('refuses sessions beyond the connection budget and traffic beyond the bandwidth budget', () => {
    const budget = new RelayBudget({ maxSessions: 2, sessionBytesPerSecond: 1000, totalBytesPerSecond: 1500, burstSeconds: 1, maxSessionBytes: 5000 }, 0);
    expect(budget.open(1, 0)).toBe(true);
    expect(budget.open(2, 0)).toBe(true);
    expect(budget.open(3, 0)).toBe('sessions');
    expect(budget.openSessions).toBe(2);
    expect(budget.admit(1, 1000, 0)).toBe(true);
    expect(budget.admit(1, 1, 0)).toBe('bandwidth');
    // The total (1500 burst) runs out before session 2's own budget.
    expect(budget.admit(2, 600, 0)).toBe('bandwidth');
    expect(budget.admit(2, 500, 0)).toBe(true);
    expect(budget.admit(9, 1, 0)).toBe('sessions');
    // Over time the rates refill; the lifetime byte budget does not.
    for (let t = 1; t <= 4; t++) expect(budget.admit(1, 1000, t * 1000)).toBe(true);
    expect(budget.sessionBytes(1)).toBe(5000);
    expect(budget.admit(1, 1, 10_000)).toBe('bytes');
    budget.close(1);
    expect(budget.open(3, 10_000)).toBe(true);
  });

  it('validates its options', () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
    expect(() => new RelayBudget({ maxSessions: -1, sessionBytesPerSecond: 1, totalBytesPerSecond: 1, burstSeconds: 1, maxSessionBytes: 1 }, 0)).toThrow(RangeError);
  });
});

describe('SendQueue and retries', () => {
  it('queues up to its bounds and drains in order', () => {
    const queue = new SendQueue({ maxDatagrams: 3, maxBytes: 10 });
    expect(queue.push(new Uint8Array(4))).toBe(true);
    expect(queue.push(new Uint8Array(4))).toBe(true);
    expect(queue.push(new Uint8Array(4))).toBe(false);
    expect(queue.push(new Uint8Array(2))).toBe(true);
    expect(queue.push(new Uint8Array(0))).toBe(false);
    expect(queue.bytes).toBe(10);
    expect(queue.drain().map((d) => d.length)).toEqual([4, 4, 2]);
    expect(queue.length).toBe(0);
  });

  it('backs off between attempts and stops at the attempt limit or the deadline', () => {
    const options = { initialDelayMs: 100, backoff: 2, maxDelayMs: 300, maxAttempts: 5, deadlineMs: 1000 };
    expect(nextRetryDelay(options, 1, 0)).toBe(100);
    expect(nextRetryDelay(options, 2, 100)).toBe(200);
    expect(nextRetryDelay(options, 3, 300)).toBe(300);
    expect(nextRetryDelay(options, 4, 600)).toBe(300);
    expect(nextRetryDelay(options, 5, 900)).toBeUndefined();
    expect(nextRetryDelay(options, 4, 800)).toBeUndefined();
  });
});
