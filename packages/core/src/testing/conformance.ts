/**
 * The transport conformance suite: behaviour every datagram transport (in-memory, UDP,
 * and any a user writes) must share, so layers above can rely on it. It has no test
 * framework dependency: each case is a function that throws on failure.
 *
 * ```ts
 * for (const c of transportConformanceCases(makeHarness)) it(c.name, c.run);
 * ```
 */
import assert from 'node:assert/strict';
import type { Address } from '../address.js';
import type { HookHandler } from '../capabilities.js';
import { AbortError, DecComError, InvalidArgumentError, StateError, TimeoutError } from '../errors.js';
import { bytesEqual } from '../bytes.js';

/** The part of a node (whose stack is just the transport under test) the suite uses. */
export interface ConformanceNode {
  start(): Promise<void>;
  stop(): Promise<void>;
  sendDatagram(to: Address, data: Uint8Array): void;
  localAddress(): Address;
  maxDatagramSize(): number;
  sendPing(to: Address, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<number>;
  handle(hook: 'datagram', handler: HookHandler<'datagram'>): () => void;
  on(event: 'traffic', listener: HookHandler<'traffic'>): () => void;
  counters(): Record<string, Record<string, number>>;
}

export interface TransportHarness {
  /** A node with the transport under test, not started. */
  createNode(name: string): ConformanceNode | Promise<ConformanceNode>;
  /** Sends raw bytes (no framing) to `to` from some other address. */
  injectRaw(to: Address, bytes: Uint8Array): Promise<void> | void;
  /** An address where nothing answers. */
  silentAddress(): Address;
  /** Lets time pass: advances a virtual clock, or waits real time. */
  settle(ms: number): Promise<void>;
  /** Runs `predicate` until true or `maxMs` elapses (virtual or real). */
  waitFor(predicate: () => boolean, maxMs: number): Promise<boolean>;
  /** Releases anything the harness holds. */
  cleanup(): Promise<void>;
}

export interface ConformanceCase {
  readonly name: string;
  run(): Promise<void>;
}

const totalDrops = (node: ConformanceNode): number => Object.values(node.counters()).reduce((sum, c) => sum + (c['dropped'] ?? 0), 0);

function collect(node: ConformanceNode): { received: { data: Uint8Array; from: Address }[] } {
  const received: { data: Uint8Array; from: Address }[] = [];
  node.handle('datagram', (data, from) => void received.push({ data: data.slice(), from }));
  return { received };
}

async function withPair(make: () => Promise<TransportHarness>, body: (h: TransportHarness, a: ConformanceNode, b: ConformanceNode) => Promise<void>): Promise<void> {
  const harness = await make();
  const nodes: ConformanceNode[] = [];
  try {
    const a = await harness.createNode('a');
    nodes.push(a);
    const b = await harness.createNode('b');
    nodes.push(b);
    await a.start();
    await b.start();
    await body(harness, a, b);
  } finally {
    for (const node of nodes) await node.stop();
    await harness.cleanup();
  }
}

export function transportConformanceCases(make: () => Promise<TransportHarness>): ConformanceCase[] {
  return [
    {
      name: 'delivers bytes intact, including empty and maximum-size datagrams, with the sender address',
      run: () =>
        withPair(make, async (h, a, b) => {
          const { received } = collect(b);
          const max = Math.min(a.maxDatagramSize(), 60_000);
          const payloads = [Uint8Array.of(1, 2, 3), new Uint8Array(0), new Uint8Array(max).map((_, i) => i & 0xff)];
          for (const payload of payloads) a.sendDatagram(b.localAddress(), payload);
          assert.ok(await h.waitFor(() => received.length >= payloads.length, 5000), `received ${received.length} of ${payloads.length}`);
          for (const payload of payloads) {
            assert.ok(received.some((r) => bytesEqual(r.data, payload)), `payload of ${payload.length} bytes not delivered intact`);
          }
          for (const r of received) assert.deepEqual({ host: r.from.host, port: r.from.port }, { ...a.localAddress() });
        }),
    },
    {
      name: 'the sender may reuse its buffer right after sendDatagram',
      run: () =>
        withPair(make, async (h, a, b) => {
          const { received } = collect(b);
          const buffer = Uint8Array.of(7, 7, 7);
          a.sendDatagram(b.localAddress(), buffer);
          buffer.fill(0);
          assert.ok(await h.waitFor(() => received.length === 1, 5000));
          assert.deepEqual([...received[0]!.data], [7, 7, 7]);
        }),
    },
    {
      name: 'rejects a datagram over maxDatagramSize with InvalidArgumentError',
      run: () =>
        withPair(make, async (_h, a, b) => {
          assert.throws(() => a.sendDatagram(b.localAddress(), new Uint8Array(a.maxDatagramSize() + 1)), InvalidArgumentError);
        }),
    },
    {
      name: 'refuses to send before start with StateError NOT_STARTED',
      run: async () => {
        const harness = await make();
        try {
          const a = await harness.createNode('idle');
          assert.throws(
            () => a.sendDatagram(harness.silentAddress(), Uint8Array.of(1)),
            (error: unknown) => error instanceof StateError && error.code === 'NOT_STARTED',
          );
          await assert.rejects(
            async () => a.sendPing(harness.silentAddress(), { timeoutMs: 100 }),
            (error: unknown) => error instanceof StateError && error.code === 'NOT_STARTED',
          );
        } finally {
          await harness.cleanup();
        }
      },
    },
    {
      name: 'never sends to itself',
      run: () =>
        withPair(make, async (h, a) => {
          const { received } = collect(a);
          a.sendDatagram(a.localAddress(), Uint8Array.of(1));
          await h.settle(50);
          assert.equal(received.length, 0);
          assert.ok(totalDrops(a) >= 1, 'a send to itself is counted as dropped');
        }),
    },
    {
      name: 'ping resolves with a round-trip time',
      run: () =>
        withPair(make, async (h, a, b) => {
          const rtt = a.sendPing(b.localAddress(), { timeoutMs: 5000 });
          void h.settle(100);
          const value = await rtt;
          assert.ok(typeof value === 'number' && value >= 0, `rtt ${value}`);
        }),
    },
    {
      name: 'ping to a silent address rejects with TimeoutError',
      run: () =>
        withPair(make, async (h, a) => {
          const ping = a.sendPing(h.silentAddress(), { timeoutMs: 100 });
          const settled = ping.then(
            () => undefined,
            (error: unknown) => error,
          );
          await h.settle(300);
          assert.ok((await settled) instanceof TimeoutError);
        }),
    },
    {
      name: 'a ping with a timeoutMs no timer can wait (NaN, negative, over 2^31 - 1) rejects with InvalidArgumentError',
      run: () =>
        withPair(make, async (h, a) => {
          const pingsOut = (): number => Object.values(a.counters()).reduce((sum, layer) => sum + (layer['pings-out'] ?? 0), 0);
          const before = pingsOut();
          for (const timeoutMs of [Number.NaN, -1, 2 ** 31]) await assert.rejects(a.sendPing(h.silentAddress(), { timeoutMs }), InvalidArgumentError);
          assert.equal(pingsOut(), before, 'a refused ping was sent anyway');
        }),
    },
    {
      name: 'an aborted ping rejects with AbortError',
      run: () =>
        withPair(make, async (h, a) => {
          const controller = new AbortController();
          const ping = a.sendPing(h.silentAddress(), { timeoutMs: 60_000, signal: controller.signal });
          controller.abort();
          await assert.rejects(ping, AbortError);
        }),
    },
    {
      name: 'stop rejects pending pings with StateError, is idempotent, and a restart works',
      run: async () => {
        const harness = await make();
        const a = await harness.createNode('a');
        const b = await harness.createNode('b');
        try {
          await a.start();
          await b.start();
          const pending = a.sendPing(harness.silentAddress(), { timeoutMs: 60_000 });
          await Promise.all([a.stop(), a.stop()]);
          await assert.rejects(pending, (error: unknown) => error instanceof StateError && error.code === 'STOPPED');
          await a.stop();
          await a.start();
          const { received } = collect(b);
          a.sendDatagram(b.localAddress(), Uint8Array.of(9));
          assert.ok(await harness.waitFor(() => received.length === 1, 5000), 'traffic flows after a restart');
        } finally {
          await a.stop();
          await b.stop();
          await harness.cleanup();
        }
      },
    },
    {
      name: 'drops and counts malformed or unknown frames, and keeps working',
      run: () =>
        withPair(make, async (h, a, b) => {
          const { received } = collect(b);
          const before = totalDrops(b);
          const garbage = [Uint8Array.of(0x7f, 1, 2), new Uint8Array(0), Uint8Array.of(0x01), Uint8Array.of(0x01, 0xee, 1, 1, 0, 0, 0, 0), Uint8Array.of(0x01, 0x01, 0x09)];
          for (const bytes of garbage) await h.injectRaw(b.localAddress(), bytes);
          assert.ok(await h.waitFor(() => totalDrops(b) >= before + garbage.length, 5000), `drops ${totalDrops(b) - before} of ${garbage.length}`);
          a.sendDatagram(b.localAddress(), Uint8Array.of(1));
          assert.ok(await h.waitFor(() => received.length === 1, 5000));
        }),
    },
    {
      name: 'reports traffic to observers',
      run: () =>
        withPair(make, async (h, a, b) => {
          const seen: number[] = [];
          b.on('traffic', (_from, bytes) => void seen.push(bytes));
          collect(b);
          a.sendDatagram(b.localAddress(), Uint8Array.of(1, 2, 3, 4));
          assert.ok(await h.waitFor(() => seen.length === 1, 5000));
          assert.ok(seen[0]! >= 4);
        }),
    },
    {
      name: 'carries 1,000 datagrams between two nodes',
      run: () =>
        withPair(make, async (h, a, b) => {
          const { received } = collect(b);
          for (let i = 0; i < 1000; i++) {
            a.sendDatagram(b.localAddress(), Uint8Array.of(i >> 8, i & 0xff));
            if (i % 100 === 99) await h.settle(1);
          }
          assert.ok(await h.waitFor(() => received.length === 1000, 10_000), `received ${received.length} of 1000`);
          const ids = new Set(received.map((r) => (r.data[0]! << 8) | r.data[1]!));
          assert.equal(ids.size, 1000);
        }),
    },
    {
      name: 'counts datagrams and bytes in and out',
      run: () =>
        withPair(make, async (h, a, b) => {
          const { received } = collect(b);
          a.sendDatagram(b.localAddress(), new Uint8Array(10));
          assert.ok(await h.waitFor(() => received.length === 1, 5000));
          const out = Object.values(a.counters())[0]!;
          const inn = Object.values(b.counters())[0]!;
          assert.ok((out['datagrams-out'] ?? 0) >= 1 && (out['bytes-out'] ?? 0) >= 10);
          assert.ok((inn['datagrams-in'] ?? 0) >= 1 && (inn['bytes-in'] ?? 0) >= 10);
        }),
    },
  ];
}

export { DecComError };
