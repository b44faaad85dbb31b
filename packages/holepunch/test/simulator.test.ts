import { describe, expect, it } from 'vitest';
import { NAT_CHOICES, punchable, runPair } from '../src/simulation.js';

describe('hole punching on the in-memory network, every pair of NAT types', () => {
  for (const a of NAT_CHOICES) {
    for (const b of NAT_CHOICES) {
      it(`${a} -> ${b}`, async () => {
        const result = await runPair({ a, b });
        expect(result.outcome, 'an outcome').toBeDefined();
        expect(result.outcome!.mechanism).not.toBe('failed');
        expect(result.roundTrip).toBe(true);
        expect(result.exchanged).toBe(true);
        expect(result.punchingAtEnd).toBe(0);
        if (a !== 'symmetric' && b !== 'symmetric') expect(['direct', 'punched-udp']).toContain(result.outcome!.mechanism);
        if (punchable(a, b)) expect(result.outcome!.mechanism).not.toBe('relayed');
        else expect(result.outcome!.mechanism).toBe('relayed');
        if (a === 'none' && b === 'none') expect(result.outcome!.mechanism).toBe('direct');
      });
    }
  }
});

describe('NAT classification picks the strategy', () => {
  it('each side classifies its own NAT from its peers\' observations', async () => {
    for (const [choice, expected] of [
      ['none', 'none'],
      ['full-cone', 'cone'],
      ['port-restricted', 'cone'],
      ['symmetric', 'symmetric'],
    ] as const) {
      const result = await runPair({ a: choice, b: 'none', observers: 2 });
      expect(result.natTypes.a, choice).toBe(expected);
    }
  });

  it('symmetric on both sides goes to the relay at once instead of punching until the deadline', async () => {
    const informed = await runPair({ a: 'symmetric', b: 'symmetric', observers: 2 });
    expect(informed.natTypes).toEqual({ a: 'symmetric', b: 'symmetric' });
    expect(informed.outcome?.mechanism).toBe('relayed');
    expect(informed.exchanged).toBe(true);
    const blind = await runPair({ a: 'symmetric', b: 'symmetric' });
    expect(blind.outcome?.mechanism).toBe('relayed');
    expect(informed.firstByteMs!).toBeLessThan(500);
    expect(blind.firstByteMs!).toBeGreaterThan(4_000);
  });
});

describe('hole punching under jitter, reordering and loss', () => {
  it('every pair still connects with jitter (datagrams overtake each other), over 3 seeds', async () => {
    for (const a of NAT_CHOICES) {
      for (const b of NAT_CHOICES) {
        for (let seed = 1; seed <= 3; seed++) {
          const result = await runPair({ a, b, seed, jitterMs: 15, observers: seed === 3 ? 2 : 0 });
          const label = `${a} -> ${b} seed ${seed}`;
          expect(result.exchanged, label).toBe(true);
          if (punchable(a, b)) expect(['direct', 'punched-udp'], label).toContain(result.outcome?.mechanism);
          else expect(result.outcome?.mechanism, label).toBe('relayed');
        }
      }
    }
  });

  it('probes are retried until the path opens through 30% loss', async () => {
    let retried = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const result = await runPair({ a: 'port-restricted', b: 'port-restricted', seed, loss: 0.3, options: { relayFallback: false } });
      expect(result.outcome?.mechanism, `seed ${seed}`).toBe('punched-udp');
      if ((result.outcome?.attempts ?? 0) > 1) retried++;
    }
    expect(retried).toBeGreaterThan(0);
  });
});
