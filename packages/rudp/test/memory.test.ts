/**
 * The rudp layer in stacks on the in-memory network with a virtual clock: 100 MiB
 * messages under seeded loss, duplication and reordering from the faulty layer (on both
 * nodes, so acknowledgements suffer too), hash-checked; plus the layer's own contract
 * (datagram pass-through, framing, argument checks, lifecycle).
 */
import { describe, expect, it } from 'vitest';
import { createNode, InvalidArgumentError, StateError, type Address } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { faulty, type FaultOptions } from '@deccom/faulty';
import { PeerUnresponsiveError, rudp, type RudpOptions } from '../src/index.js';
import { patternBytes, sha256 } from './harness.js';

const MiB = 1024 * 1024;

function pair(faults: FaultOptions, options: RudpOptions = {}, latencyMs = 10) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, defaultLink: { latencyMs } });
  const stack = (seed: string) => [memoryTransport(network), faulty({ seed, outgoing: faults }), rudp(options)] as const;
  const a = createNode({ clock, random: 'a', layers: stack('fault-a') });
  const b = createNode({ clock, random: 'b', layers: stack('fault-b') });
  return { clock, network, a, b };
}

async function run<T>(clock: VirtualClock, promise: Promise<T>, maxMs: number): Promise<{ error?: unknown; settled: boolean }> {
  let outcome: { error?: unknown; settled: boolean } = { settled: false };
  promise.then(
    () => (outcome = { settled: true }),
    (error: unknown) => (outcome = { error, settled: true }),
  );
  await clock.runUntil(() => outcome.settled, { maxMs, stepMs: 200 });
  return outcome;
}

describe('rudp over the in-memory network', () => {
  const cases: [string, FaultOptions][] = [
    ['0% loss', {}],
    ['1% loss', { loss: 0.01 }],
    ['5% loss', { loss: 0.05 }],
    ['20% loss', { loss: 0.2 }],
    ['5% duplication', { duplicate: 0.05 }],
    ['10% reordering', { reorder: 0.1, reorderDistance: 3, reorderDelayMs: 5 }],
  ];
  const data = patternBytes(100 * MiB, 100);
  const digest = sha256(data);
  for (const [name, faults] of cases) {
    it(`delivers a 100 MiB message intact at ${name}`, async () => {
      const { clock, a, b } = pair(faults);
      await a.start();
      await b.start();
      const received: { data: Uint8Array; from: Address }[] = [];
      b.handle('reliable-message', (message, from) => void received.push({ data: message, from }));
      let lastProgress = 0;
      const outcome = await run(
        clock,
        a.sendReliable(b.localAddress(), data, { onProgress: (done) => (lastProgress = done) }),
        // Virtual time: generous enough for 20% loss at a 20 ms RTT.
        3_600_000,
      );
      expect(outcome.settled).toBe(true);
      expect(outcome.error).toBeUndefined();
      expect(received).toHaveLength(1);
      expect(received[0]!.from).toEqual(a.localAddress());
      expect(sha256(received[0]!.data)).toBe(digest);
      expect(lastProgress).toBe(data.byteLength);
      const counters = b.counters();
      expect(counters.rudp!['messages-in']).toBe(1);
      if (faults.loss) expect(a.counters().rudp!['retransmissions']).toBeGreaterThan(0);
      if (faults.duplicate) expect(counters.rudp!['duplicate-chunks']).toBeGreaterThan(0);
      await a.stop();
      await b.stop();
    });
  }

  it('fails with PeerUnresponsiveError when the peer stops answering mid-message', async () => {
    const { clock, network, a, b } = pair({}, { peerTimeoutMs: 10_000 });
    await a.start();
    await b.start();
    b.handle('reliable-message', () => undefined);
    const sending = a.sendReliable(b.localAddress(), patternBytes(20 * MiB, 3));
    clock.setTimeout(() => network.partition([a.localAddress().host], [b.localAddress().host]), 50);
    const outcome = await run(clock, sending, 120_000);
    expect(outcome.error).toBeInstanceOf(PeerUnresponsiveError);
    expect(clock.now()).toBeLessThan(50 + 10_000 + 2_000);
    await a.stop();
    await b.stop();
  });

  it('passes plain datagrams through, framed, one byte smaller', async () => {
    const { clock, a, b } = pair({});
    await a.start();
    await b.start();
    const got: Uint8Array[] = [];
    b.handle('datagram', (data) => void got.push(data));
    expect(a.maxDatagramSize()).toBe(1400 - 1);
    // A payload that looks exactly like an rudp control packet stays a datagram.
    const lookalike = Uint8Array.from([0x01, 0x06, 0x01, 0x01, 1, 2, 3]);
    a.sendDatagram(b.localAddress(), lookalike);
    a.sendDatagram(b.localAddress(), new Uint8Array(1399));
    expect(() => a.sendDatagram(b.localAddress(), new Uint8Array(1400))).toThrow(InvalidArgumentError);
    await clock.advance(50);
    expect(got.map((d) => d.byteLength)).toEqual([7, 1399]);
    expect(Array.from(got[0]!)).toEqual(Array.from(lookalike));
    expect(b.counters().rudp!['dropped'] ?? 0).toBe(0);
    await a.stop();
    await b.stop();
  });

  it('checks arguments and lifecycle', async () => {
    const { clock, a, b } = pair({});
    await expect(a.sendReliable({ host: '10.0.0.1', port: 1 }, new Uint8Array(1))).rejects.toSatisfy(
      (error: unknown) => error instanceof StateError && error.code === 'NOT_STARTED',
    );
    await a.start();
    await b.start();
    await expect(a.sendReliable({ host: 'not-an-ip', port: 1 }, new Uint8Array(1))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(a.sendReliable(b.localAddress(), 'text' as unknown as Uint8Array)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(a.sendReliable(b.localAddress(), new Uint8Array(1), { timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(a.sendReliable(b.localAddress(), new Uint8Array(1), { timeoutMs: 2 ** 31 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(a.sendReliable(a.localAddress(), new Uint8Array(1))).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => rudp({ chunkBytes: 100 })).toThrow(InvalidArgumentError);
    expect(() => rudp({ beta: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => rudp({ randomLossBeta: 0.3 })).toThrow(InvalidArgumentError);
    expect(() => rudp({ ackRanges: 65 })).toThrow(InvalidArgumentError);
    const small = createNode({ clock, layers: [memoryTransport(new MemoryNetwork({ clock }), { maxDatagramSize: 200 }), rudp()] });
    await small.start();
    await expect(small.sendReliable(b.localAddress(), new Uint8Array(10))).rejects.toBeInstanceOf(InvalidArgumentError);
    await small.stop();
    // The stack describes itself with rudp's bindings.
    const description = JSON.stringify(a.describe());
    expect(description).toContain('sendReliable');
    expect(a.mermaid()).toContain('rudp');
    await a.stop();
    await b.stop();
    await a.stop();
  });

  it('counts a throwing handler and a missing one, and still acknowledges', async () => {
    const { clock, a, b } = pair({});
    await a.start();
    await b.start();
    let outcome = await run(clock, a.sendReliable(b.localAddress(), patternBytes(5000, 1)), 10_000);
    expect(outcome.error).toBeUndefined();
    expect(b.counters().rudp!['dropped.no-receiver']).toBe(1);
    b.handle('reliable-message', () => {
      throw new Error('handler bug');
    });
    outcome = await run(clock, a.sendReliable(b.localAddress(), patternBytes(5000, 2)), 10_000);
    expect(outcome.error).toBeUndefined();
    // The node guards every hook handler: the error is counted, the layer goes on.
    const handlerErrors = Object.values(b.counters()).reduce((sum, group) => sum + (group['handler-errors'] ?? 0), 0);
    expect(handlerErrors).toBe(1);
    outcome = await run(clock, a.sendReliable(b.localAddress(), patternBytes(5000, 3)), 10_000);
    expect(outcome.error).toBeUndefined();
    await a.stop();
    await b.stop();
  });

  it('restarts cleanly: new instance, timers released, sends work again', async () => {
    const { clock, a, b } = pair({});
    await a.start();
    await b.start();
    const got: number[] = [];
    b.handle('reliable-message', (data) => void got.push(data.byteLength));
    expect((await run(clock, a.sendReliable(b.localAddress(), patternBytes(300_000, 5)), 10_000)).error).toBeUndefined();
    await a.stop();
    await a.start();
    expect((await run(clock, a.sendReliable(b.localAddress(), patternBytes(300_001, 6)), 10_000)).error).toBeUndefined();
    expect(got).toEqual([300_000, 300_001]);
    await a.stop();
    await b.stop();
    // Nothing of rudp's keeps the clock busy after stop.
    expect(clock.pendingTimers).toBe(0);
  });
});
