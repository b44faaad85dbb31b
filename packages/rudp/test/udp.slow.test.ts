/**
 * Slow suite (`pnpm test:slow`): 100 MiB over real UDP sockets on 127.0.0.1 in every
 * fault case, hash-checked on both ends.
 */
import { describe, expect, it } from 'vitest';
import type { FaultOptions } from '@deccom/faulty';
import { udpTransfer } from './udp-cases.js';

const MiB = 1024 * 1024;

describe('rudp: 100 MiB over real UDP sockets', () => {
  const cases: [string, FaultOptions][] = [
    ['0% loss', {}],
    ['1% loss', { loss: 0.01 }],
    ['5% loss', { loss: 0.05 }],
    ['20% loss', { loss: 0.2 }],
    ['5% duplication', { duplicate: 0.05 }],
    ['10% reordering', { reorder: 0.1, reorderDistance: 3, reorderDelayMs: 2 }],
  ];
  cases.forEach(([name, faults], i) => {
    it(`delivers 100 MiB intact at ${name}`, { timeout: 900_000 }, async () => {
      const result = await udpTransfer(100 * MiB, faults, {}, '127.0.0.1', 10 + i);
      expect(result.digestReceived).toBe(result.digestSent);
      expect(result.deliveries).toBe(1);
      expect(result.lastProgress).toBe(100 * MiB);
    });
  });
});
