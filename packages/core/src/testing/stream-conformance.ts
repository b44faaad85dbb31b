/**
 * The message / stream transport conformance suite: behaviour every provider of
 * `sendMessage` / `sendStream` with the `message` and `stream` hooks (tcp, and layers
 * that re-provide them such as noise) must share. Like the datagram suite it has no
 * test framework dependency: each case is a function that throws on failure.
 *
 * ```ts
 * for (const c of streamConformanceCases(makeHarness)) it(c.name, c.run);
 * ```
 *
 * Error codes are part of the contract: a message over the maximum rejects with core's
 * `MessageTooLargeError` (code `MESSAGE_TOO_LARGE`), a stream the receiver stops reading
 * with `STREAM_CANCELLED`, a stream nobody takes (or whose handler returns `false`) with
 * `STREAM_REFUSED`. {@link loopbackMessageHarness} builds a harness on real sockets.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Address } from '../address.js';
import type { ByteSource, HookHandler, SendOptions } from '../capabilities.js';
import { bytesEqual } from '../bytes.js';
import { DecComError, MessageTooLargeError, StateError } from '../errors.js';
import type { NodeId } from '../identity.js';
import { defineLayer } from '../layer.js';
import type { PeerRecord } from '../peer-record.js';
import type { ConformanceCase } from './conformance.js';
import { pollUntil, sleep } from './poll.js';

/** The part of a node (with the transport under test) the suite uses. */
export interface MessageNode {
  readonly id: NodeId;
  start(): Promise<void>;
  stop(): Promise<void>;
  sendMessage(to: NodeId, data: Uint8Array, options?: SendOptions): Promise<void>;
  sendStream(to: NodeId, source: ByteSource, options?: SendOptions): Promise<void>;
  openConnection(to: NodeId, options?: SendOptions): Promise<void>;
  closeConnection(to: NodeId): Promise<void>;
  handle(hook: 'message', handler: HookHandler<'message'>): () => void;
  handle(hook: 'stream', handler: HookHandler<'stream'>): () => void;
  on(event: 'connection-open', listener: HookHandler<'connection-open'>): () => void;
  on(event: 'connection-close', listener: HookHandler<'connection-close'>): () => void;
  counters(): Record<string, Record<string, number>>;
}

export interface MessageTransportHarness {
  /** `count` started nodes that can reach each other by id. */
  createNodes(count: number): Promise<MessageNode[]>;
  /** A node that was never started (and knows no one). */
  createIdleNode(): MessageNode;
  /** The largest message the harness's nodes accept. */
  readonly maxMessageBytes: number;
  /** Most stream bytes a sender may produce ahead of a receiver that does not read. */
  readonly streamBufferBound: number;
  /** Runs `predicate` until true or `maxMs` elapses. */
  waitFor(predicate: () => boolean, maxMs: number): Promise<boolean>;
  /** Lets time pass. */
  settle(ms: number): Promise<void>;
  /** Stops every node and releases what the harness holds. */
  cleanup(): Promise<void>;
}

let directoryPort = 40_000;

/**
 * The smallest discovery for a connection transport under test: `localAddress` (on
 * `host`, with a made-up port of its own) and `getPeer` answered from `directory`.
 */
export function directoryLayer(directory: ReadonlyMap<string, PeerRecord>, host: string) {
  const address: Address = { host, port: directoryPort++ };
  return defineLayer({
    type: 'directory',
    provides: ['localAddress', 'getPeer'],
    create: () => ({ provides: { localAddress: () => address, getPeer: (id: NodeId) => directory.get(id.hex) } }),
  });
}

/** A node a {@link loopbackMessageHarness} can start and publish. */
export interface DirectoryNode extends MessageNode {
  localPeer(): PeerRecord;
}

export interface LoopbackHarnessOptions {
  /** A new, unstarted node whose discovery answers from `directory` (see {@link directoryLayer}). */
  make(directory: ReadonlyMap<string, PeerRecord>): DirectoryNode;
  readonly maxMessageBytes: number;
  readonly streamBufferBound: number;
}

/**
 * A {@link MessageTransportHarness} on real sockets and the real clock: nodes from
 * `options.make`, each published in a shared directory once started, all stopped at
 * cleanup.
 */
export function loopbackMessageHarness(options: LoopbackHarnessOptions): () => Promise<MessageTransportHarness> {
  return async () => {
    const directory = new Map<string, PeerRecord>();
    const nodes: DirectoryNode[] = [];
    const make = (): DirectoryNode => {
      const node = options.make(directory);
      nodes.push(node);
      return node;
    };
    return {
      maxMessageBytes: options.maxMessageBytes,
      streamBufferBound: options.streamBufferBound,
      createNodes: async (count) => {
        const created = Array.from({ length: count }, make);
        for (const node of created) {
          await node.start();
          directory.set(node.id.hex, node.localPeer());
        }
        return created;
      },
      createIdleNode: make,
      waitFor: (predicate, maxMs) => pollUntil(predicate, maxMs),
      settle: sleep,
      cleanup: async () => {
        await Promise.all(nodes.map((node) => node.stop()));
      },
    };
  };
}

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha256 = (parts: Iterable<Uint8Array>): string => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
};

const codeOf = (error: unknown): string | undefined => (error instanceof DecComError ? error.code : undefined);

/**
 * A source that yields `first`, then waits for a next chunk that never comes unless its
 * `return()` is called (as an app's stream would, whose producer went quiet).
 */
function stalledSource(first: Uint8Array): AsyncIterableIterator<Uint8Array> & { readonly waiting: boolean; readonly returned: boolean } {
  let calls = 0;
  let release: ((result: IteratorResult<Uint8Array>) => void) | undefined;
  const state = {
    waiting: false,
    returned: false,
    [Symbol.asyncIterator]() {
      return this;
    },
    next(): Promise<IteratorResult<Uint8Array>> {
      if (calls++ === 0) return Promise.resolve({ done: false, value: first });
      if (state.returned) return Promise.resolve({ done: true, value: undefined });
      state.waiting = true;
      return new Promise((resolve) => (release = resolve));
    },
    return(): Promise<IteratorResult<Uint8Array>> {
      state.returned = true;
      release?.({ done: true, value: undefined });
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return state;
}

async function withNodes(make: () => Promise<MessageTransportHarness>, count: number, body: (h: MessageTransportHarness, nodes: MessageNode[]) => Promise<void>): Promise<void> {
  const harness = await make();
  try {
    await body(harness, await harness.createNodes(count));
  } finally {
    await harness.cleanup();
  }
}

/** Collects received streams: their hash, or the error their iteration ended with. */
function streamSink(node: MessageNode): { done: { from: NodeId; hash?: string; error?: unknown; length: number }[] } {
  const done: { from: NodeId; hash?: string; error?: unknown; length: number }[] = [];
  node.handle('stream', (source, from) => {
    void (async () => {
      const hash = createHash('sha256');
      let length = 0;
      try {
        for await (const chunk of source) {
          hash.update(chunk);
          length += chunk.byteLength;
        }
        done.push({ from, hash: hash.digest('hex'), length });
      } catch (error) {
        done.push({ from, error, length });
      }
    })();
  });
  return { done };
}

export function streamConformanceCases(make: () => Promise<MessageTransportHarness>): ConformanceCase[] {
  return [
    {
      name: 'delivers messages intact and in order, including empty and maximum-size ones, with the sender id',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          const received: { data: Uint8Array; from: NodeId }[] = [];
          b!.handle('message', (data, from) => void received.push({ data: data.slice(), from }));
          const max = Math.min(h.maxMessageBytes, 8 * 1024 * 1024);
          const payloads = [Uint8Array.of(1, 2, 3), new Uint8Array(0), bytes(max, 1)];
          for (let i = 0; i < 100; i++) payloads.push(bytes(1 + i * 37, i + 2));
          await Promise.all(payloads.map((p) => a!.sendMessage(b!.id, p)));
          assert.ok(await h.waitFor(() => received.length === payloads.length, 20_000), `received ${received.length} of ${payloads.length}`);
          payloads.forEach((p, i) => assert.ok(bytesEqual(received[i]!.data, p), `message ${i} (${p.length} bytes) differs or is out of order`));
          for (const r of received) assert.ok(r.from.equals(a!.id), 'the message hook reports the sender id');
        }),
    },
    {
      name: 'the sender may reuse its buffer once sendMessage resolves',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          const received: Uint8Array[] = [];
          b!.handle('message', (data) => void received.push(data.slice()));
          const small = Uint8Array.of(7, 7, 7);
          const large = new Uint8Array(1024 * 1024).fill(7);
          await a!.sendMessage(b!.id, small);
          small.fill(0);
          await a!.sendMessage(b!.id, large);
          large.fill(0);
          assert.ok(await h.waitFor(() => received.length === 2, 10_000));
          assert.ok(received[0]!.every((x) => x === 7) && received[1]!.every((x) => x === 7), 'bytes changed after sendMessage resolved');
        }),
    },
    {
      name: "rejects a message over the maximum with MessageTooLargeError (size and limit in the caller's terms), before sending",
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          let count = 0;
          b!.handle('message', () => void count++);
          const size = h.maxMessageBytes + 1;
          await assert.rejects(
            a!.sendMessage(b!.id, new Uint8Array(size)),
            (error: unknown) => error instanceof MessageTooLargeError && error.code === 'MESSAGE_TOO_LARGE' && error.size === size && error.limit === h.maxMessageBytes,
          );
          await h.settle(50);
          assert.equal(count, 0);
        }),
    },
    {
      name: 'refuses to send before start with StateError NOT_STARTED',
      run: async () => {
        const harness = await make();
        try {
          const [peer] = await harness.createNodes(1);
          const idle = harness.createIdleNode();
          await assert.rejects(idle.sendMessage(peer!.id, Uint8Array.of(1)), (error: unknown) => error instanceof StateError && error.code === 'NOT_STARTED');
          await assert.rejects(idle.sendStream(peer!.id, [Uint8Array.of(1)]), (error: unknown) => error instanceof StateError && error.code === 'NOT_STARTED');
        } finally {
          await harness.cleanup();
        }
      },
    },
    {
      name: 'streams arrive intact, including an empty stream, and sendStream resolves once they did',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          const { done } = streamSink(b!);
          const chunks = [bytes(10, 1), bytes(3 * 1024 * 1024, 2), new Uint8Array(0), bytes(777_777, 3)];
          await a!.sendStream(b!.id, chunks);
          await a!.sendStream(b!.id, []);
          const asyncSource = (async function* () {
            for (const c of chunks) yield c;
          })();
          await a!.sendStream(b!.id, asyncSource);
          assert.ok(await h.waitFor(() => done.length === 3, 10_000), `${done.length} of 3 streams ended`);
          const expected = sha256(chunks);
          const byLength = [...done].sort((x, y) => x.length - y.length);
          assert.equal(byLength[0]!.hash, sha256([]));
          assert.equal(byLength[1]!.hash, expected);
          assert.equal(byLength[2]!.hash, expected);
          for (const d of done) assert.ok(d.from.equals(a!.id));
        }),
    },
    {
      name: 'a receiver that does not read bounds what the sender produces',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          let held: AsyncIterator<Uint8Array> | undefined;
          b!.handle('stream', (source) => void (held = source[Symbol.asyncIterator]()));
          let produced = 0;
          const chunk = bytes(64 * 1024, 9);
          const total = Math.ceil((h.streamBufferBound * 4) / chunk.byteLength) + 16;
          const sending = a!.sendStream(
            b!.id,
            (async function* () {
              for (let i = 0; i < total; i++) {
                produced += chunk.byteLength;
                yield chunk;
              }
            })(),
          );
          assert.ok(await h.waitFor(() => held !== undefined, 10_000));
          await h.settle(300);
          const first = produced;
          await h.settle(300);
          assert.equal(produced, first, 'the sender kept producing while nobody read');
          assert.ok(first <= h.streamBufferBound + 2 * chunk.byteLength, `produced ${first} bytes ahead of a reader that took none (bound ${h.streamBufferBound})`);
          let received = 0;
          for (let next = await held!.next(); !next.done; next = await held!.next()) received += next.value.byteLength;
          await sending;
          assert.equal(received, total * chunk.byteLength);
        }),
    },
    {
      name: 'a consumer that stops reading makes sendStream reject with STREAM_CANCELLED',
      run: () =>
        withNodes(make, 2, async (_h, [a, b]) => {
          b!.handle('stream', (source) => {
            void (async () => {
              for await (const _chunk of source) break;
            })();
          });
          const endless = (async function* () {
            for (let i = 0; i < 1_000_000; i++) yield bytes(16 * 1024, i);
          })();
          await assert.rejects(a!.sendStream(b!.id, endless), (error: unknown) => codeOf(error) === 'STREAM_CANCELLED');
        }),
    },
    {
      name: 'a stream nobody takes makes sendStream reject with STREAM_REFUSED',
      run: () =>
        withNodes(make, 2, async (_h, [a, b]) => {
          await assert.rejects(a!.sendStream(b!.id, [bytes(100, 1)]), (error: unknown) => codeOf(error) === 'STREAM_REFUSED');
        }),
    },
    {
      name: 'a stream handler that returns false refuses the stream: sendStream rejects with STREAM_REFUSED',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          let offered = 0;
          const release = b!.handle('stream', () => {
            offered++;
            return false;
          });
          await assert.rejects(a!.sendStream(b!.id, [bytes(100, 2)]), (error: unknown) => codeOf(error) === 'STREAM_REFUSED');
          assert.equal(offered, 1);
          // The refusal costs the connection nothing: a stream taken afterwards arrives.
          release();
          const { done } = streamSink(b!);
          await a!.sendStream(b!.id, [bytes(100, 3)]);
          assert.ok(await h.waitFor(() => done.length === 1, 10_000));
          assert.equal(done[0]!.length, 100);
        }),
    },
    {
      name: 'a failing source rejects sendStream with its error and fails the receiving iteration',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          const { done } = streamSink(b!);
          const failure = new Error('source failed');
          const source = (async function* () {
            yield bytes(1000, 1);
            await h.settle(10);
            throw failure;
          })();
          await assert.rejects(a!.sendStream(b!.id, source), (error: unknown) => error === failure);
          assert.ok(await h.waitFor(() => done.length === 1, 10_000));
          assert.ok(done[0]!.error instanceof DecComError, 'the receiver sees a typed error, not a clean end');
        }),
    },
    {
      name: 'a source that stalls does not hold sendStream: an abort rejects it and the source is told to end',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          const { done } = streamSink(b!);
          const source = stalledSource(bytes(1000, 3));
          const controller = new AbortController();
          const sending = a!.sendStream(b!.id, source, { signal: controller.signal });
          sending.catch(() => undefined);
          assert.ok(await h.waitFor(() => source.waiting, 10_000), 'the sender never asked for the second chunk');
          controller.abort(new Error('the caller gave up'));
          await assert.rejects(sending, (error: unknown) => codeOf(error) === 'ABORTED');
          assert.ok(await h.waitFor(() => source.returned, 5_000), "the source's return() was not called");
          assert.ok(await h.waitFor(() => done.length === 1, 10_000));
          assert.ok(done[0]!.error instanceof DecComError, 'the receiver sees a typed error, not a clean end');
        }),
    },
    ...(['receiver', 'sender'] as const).map((who) => ({
      name: who === 'receiver' ? 'a source that stalls does not hold sendStream once the receiver stops' : 'a source that stalls does not hold the sender stop(): its sendStream rejects',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          streamSink(b!);
          const source = stalledSource(bytes(1000, 4));
          const sending = a!.sendStream(b!.id, source);
          sending.catch(() => undefined);
          assert.ok(await h.waitFor(() => source.waiting, 10_000), 'the sender never asked for the second chunk');
          await (who === 'receiver' ? b! : a!).stop();
          await assert.rejects(sending, (error: unknown) => error instanceof DecComError);
          assert.ok(await h.waitFor(() => source.returned, 5_000), "the source's return() was not called");
        }),
    })),
    {
      name: 'messages and streams in both directions interleave without corruption',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          const sinks = [streamSink(a!), streamSink(b!)];
          const messages: Uint8Array[][] = [[], []];
          a!.handle('message', (data) => void messages[0]!.push(data.slice()));
          b!.handle('message', (data) => void messages[1]!.push(data.slice()));
          const expected = new Set<string>();
          const sends: Promise<void>[] = [];
          for (let i = 0; i < 6; i++) {
            const body = bytes(200_000 + i, 100 + i);
            expected.add(sha256([body]));
            const [from, to] = i % 2 === 0 ? [a!, b!] : [b!, a!];
            sends.push(from.sendStream(to.id, [body.subarray(0, 50_000), body.subarray(50_000)]));
            sends.push(from.sendMessage(to.id, bytes(3000, i)));
          }
          await Promise.all(sends);
          assert.ok(await h.waitFor(() => sinks[0]!.done.length + sinks[1]!.done.length === 6 && messages[0]!.length + messages[1]!.length === 6, 10_000));
          for (const d of [...sinks[0]!.done, ...sinks[1]!.done]) assert.ok(d.hash && expected.has(d.hash), 'a stream arrived corrupted');
          for (const m of [...messages[0]!, ...messages[1]!]) assert.equal(m.length, 3000);
        }),
    },
    {
      name: 'stop delivers every message already accepted, rejects later sends with STOPPED, and a restart works',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          const received = new Set<number>();
          b!.handle('message', (data) => void received.add((data[0]! << 8) | data[1]!));
          await a!.openConnection(b!.id);
          const accepted: number[] = [];
          const sends: Promise<void>[] = [];
          for (let i = 0; i < 500; i++) {
            const data = new Uint8Array(20_000);
            data[0] = i >> 8;
            data[1] = i & 0xff;
            // Handled at once: a send that stop rejects must not count as an unhandled rejection.
            sends.push(
              a!.sendMessage(b!.id, data).then(
                () => void accepted.push(i),
                () => undefined,
              ),
            );
          }
          await Promise.all([a!.stop(), a!.stop()]);
          await Promise.all(sends);
          assert.ok(accepted.length > 0);
          assert.ok(await h.waitFor(() => accepted.every((i) => received.has(i)), 10_000), `lost ${accepted.filter((i) => !received.has(i)).length} accepted messages`);
          await assert.rejects(a!.sendMessage(b!.id, Uint8Array.of(1)), (error: unknown) => error instanceof StateError);
          await a!.start();
          await a!.sendMessage(b!.id, Uint8Array.of(0xff, 0xff));
          assert.ok(await h.waitFor(() => received.has(0xffff), 10_000), 'traffic flows after a restart');
        }),
    },
    {
      name: 'reports connection-open and connection-close on both sides',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          const events: string[] = [];
          a!.on('connection-open', (id) => void events.push(`a open ${id.equals(b!.id)}`));
          b!.on('connection-open', (id) => void events.push(`b open ${id.equals(a!.id)}`));
          a!.on('connection-close', (id) => void events.push(`a close ${id.equals(b!.id)}`));
          b!.on('connection-close', (id) => void events.push(`b close ${id.equals(a!.id)}`));
          await a!.openConnection(b!.id);
          assert.ok(await h.waitFor(() => events.length === 2, 10_000));
          await a!.closeConnection(b!.id);
          assert.ok(await h.waitFor(() => events.length === 4, 10_000));
          assert.deepEqual(events.sort(), ['a close true', 'a open true', 'b close true', 'b open true']);
        }),
    },
    {
      name: 'counts messages and bytes in and out',
      run: () =>
        withNodes(make, 2, async (h, [a, b]) => {
          let count = 0;
          b!.handle('message', () => void count++);
          await a!.sendMessage(b!.id, new Uint8Array(1000));
          assert.ok(await h.waitFor(() => count === 1, 10_000));
          const sum = (node: MessageNode, name: string): number => Object.values(node.counters()).reduce((s, c) => s + (c[name] ?? 0), 0);
          assert.ok(sum(a!, 'messages-out') >= 1 && sum(a!, 'bytes-out') >= 1000);
          assert.ok(sum(b!, 'messages-in') >= 1 && sum(b!, 'bytes-in') >= 1000);
        }),
    },
  ];
}
