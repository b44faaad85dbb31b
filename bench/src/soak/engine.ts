/**
 * The soak run: many full nodes on 127.0.0.1 (udp > faulty > delay > keepalive > rudp >
 * kademlia > tcp), lossy and delayed links, churn (nodes stop and come back with the same
 * identity, on the same or a new port), and a steady mix of Kademlia lookups, datagrams,
 * reliable messages and TCP streams, while heap, RSS and event-loop lag are sampled.
 *
 * Bookkeeping is by incarnation: every start of a node is a new incarnation, ended when
 * its stop is called. A reliable message is OWED delivery when the sender's and the
 * receiver's incarnations at the time of the send both stay up until the send settles
 * (or until the end of the drain, for a send that never settled). Every owed message
 * must be delivered exactly once and its send must resolve; duplicates are counted over
 * every message, owed or not.
 */
import { createHash } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createNode, DecComError, Identity, type Address } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty } from '@deccom/faulty';
import { delay } from '@deccom/delay';
import { keepalive } from '@deccom/keepalive';
import { rudp } from '@deccom/rudp';
import { kademlia } from '@deccom/kademlia';
import { tcp } from '@deccom/tcp';
import { median } from '../report.js';

export interface SoakOptions {
  nodes: number;
  /** Whole run from the first node start to the end of traffic. */
  durationMs: number;
  /** Heap windows start after this. */
  warmupMs: number;
  loss: number;
  latencyMs: number;
  jitterMs: number;
  /** One node is churned every this often. */
  churnIntervalMs: number;
  downMinMs: number;
  downMaxMs: number;
  lookupsPerSecond: number;
  datagramsPerSecond: number;
  reliablePerSecond: number;
  streamsPerSecond: number;
  /**
   * rudp's `sessionMemoryMs` (its default, 10 min, is the whole run: the ids of finished
   * messages of every path would be remembered to the end, and the heap could not level
   * off within the run; see the suite's notes).
   */
  rudpSessionMemoryMs: number;
  /** A lookup counts as "settled" when searcher and target have both been up this long. */
  settleMs: number;
  heapSampleMs: number;
  drainMs: number;
  seed: number;
  log: (line: string) => void;
}

export const defaultSoakOptions = (durationMs: number): SoakOptions => ({
  nodes: 200,
  durationMs,
  // Warm-up: rudp's session memory (2 min) filled once, plus a minute.
  warmupMs: durationMs >= 300_000 ? 180_000 : Math.round(durationMs * 0.4),
  rudpSessionMemoryMs: 120_000,
  loss: 0.05,
  latencyMs: 10,
  jitterMs: 10,
  churnIntervalMs: 3_000,
  downMinMs: 2_000,
  downMaxMs: 12_000,
  lookupsPerSecond: 5,
  datagramsPerSecond: 50,
  reliablePerSecond: 10,
  streamsPerSecond: 0.5,
  settleMs: 30_000,
  heapSampleMs: 5_000,
  drainMs: 35_000,
  seed: 1,
  log: () => {},
});

const MAGIC_RELIABLE = 0x534f4b52; // 'SOKR'
const MAGIC_DATAGRAM = 0x534f4b44; // 'SOKD'
const MAGIC_STREAM = 0x534f4b53; // 'SOKS'
const STREAM_CHUNK = 16 * 1024;

/** Small deterministic generator (xorshift32) for sizes and payloads. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function fillPayload(target: Uint8Array, seed: number): void {
  const next = xorshift(seed * 2654435761);
  let i = 0;
  for (; i + 4 <= target.length; i += 4) {
    const v = next();
    target[i] = v & 0xff;
    target[i + 1] = (v >>> 8) & 0xff;
    target[i + 2] = (v >>> 16) & 0xff;
    target[i + 3] = v >>> 24;
  }
  const v = next();
  for (let shift = 0; i < target.length; i++, shift += 8) target[i] = (v >>> shift) & 0xff;
}

function makeStack(options: SoakOptions, index: number, incarnation: number, port: number, tcpPort: number, bootstrap: Address[]) {
  return [
    udp({ host: '127.0.0.1', port }),
    faulty({ seed: `soak-${options.seed}-${index}-${incarnation}`, outgoing: { loss: options.loss, jitterMs: options.jitterMs } }),
    delay({ latencyMs: options.latencyMs }),
    keepalive(),
    rudp({ sessionMemoryMs: options.rudpSessionMemoryMs }),
    kademlia({ bootstrap }),
    tcp({ host: '127.0.0.1', port: tcpPort }),
  ] as const;
}

function buildNode(options: SoakOptions, identity: Identity, index: number, incarnation: number, port: number, tcpPort: number, bootstrap: Address[]) {
  return createNode({ identity, random: `soak-${options.seed}-${index}-${incarnation}`, layers: makeStack(options, index, incarnation, port, tcpPort, bootstrap) });
}
type SoakNode = ReturnType<typeof buildNode>;

interface Incarnation {
  readonly number: number;
  readonly startedAt: number;
  endedAt: number | undefined;
}

interface Slot {
  readonly index: number;
  readonly identity: Identity;
  node: SoakNode | undefined;
  /** Up: started and not stopping. */
  up: boolean;
  current: Incarnation | undefined;
  incarnations: Incarnation[];
  lastPort: number;
  lastTcpPort: number;
}

/**
 * Every reliable message of the run in preallocated typed arrays (index = message id), so
 * the bookkeeping itself does not grow the heap during the run and blur the growth figure.
 */
class ReliableLedger {
  count = 0;
  readonly fromSlot: Uint16Array;
  readonly fromIncarnation: Uint16Array;
  readonly toSlot: Uint16Array;
  readonly toIncarnation: Uint16Array;
  readonly sentAt: Float64Array;
  /** NaN until the send settled. */
  readonly settledAt: Float64Array;
  readonly bytes: Uint32Array;
  /** 0 pending, 1 resolved, 2 + index in `codes` for an error. */
  readonly outcome: Uint8Array;
  readonly deliveries: Uint8Array;
  /** The receiver incarnation that last delivered the message; -1 before any delivery. */
  readonly deliveredBy: Int32Array;
  /** Deliveries of a message a receiver incarnation had already delivered (a real duplicate). */
  sameIncarnationDuplicates = 0;
  readonly corrupt: Uint8Array;
  readonly codes: string[] = [];

  constructor(readonly capacity: number) {
    this.fromSlot = new Uint16Array(capacity);
    this.fromIncarnation = new Uint16Array(capacity);
    this.toSlot = new Uint16Array(capacity);
    this.toIncarnation = new Uint16Array(capacity);
    this.sentAt = new Float64Array(capacity);
    this.settledAt = new Float64Array(capacity).fill(Number.NaN);
    this.bytes = new Uint32Array(capacity);
    this.outcome = new Uint8Array(capacity);
    this.deliveries = new Uint8Array(capacity);
    this.deliveredBy = new Int32Array(capacity).fill(-1);
    this.corrupt = new Uint8Array(capacity);
  }

  /** A new message id (1-based), or 0 when the ledger is full. */
  add(from: Slot, to: Slot, sentAt: number, bytes: number): number {
    if (this.count + 1 >= this.capacity) return 0;
    const id = ++this.count;
    this.fromSlot[id] = from.index;
    this.fromIncarnation[id] = from.current!.number;
    this.toSlot[id] = to.index;
    this.toIncarnation[id] = to.current!.number;
    this.sentAt[id] = sentAt;
    this.bytes[id] = bytes;
    return id;
  }

  settle(id: number, at: number, code: string | undefined): void {
    this.settledAt[id] = at;
    if (code === undefined) this.outcome[id] = 1;
    else {
      let index = this.codes.indexOf(code);
      if (index < 0) index = this.codes.push(code) - 1;
      this.outcome[id] = 2 + Math.min(index, 250);
    }
  }

  outcomeOf(id: number): string | undefined {
    const value = this.outcome[id]!;
    return value === 0 ? undefined : value === 1 ? 'resolved' : this.codes[value - 2];
  }
}

interface StreamRecord {
  readonly id: number;
  readonly from: Incarnation;
  readonly to: Incarnation;
  readonly bytes: number;
  readonly hash: string;
  settledAt: number | undefined;
  outcome: string | undefined;
  received: number;
  verifiedBytes: number;
  mismatches: number;
}

const errorCode = (error: unknown): string => (error instanceof DecComError ? error.code : `untyped:${(error as Error)?.name ?? typeof error}`);

const count = (map: Record<string, number>, key: string, by = 1): void => {
  map[key] = (map[key] ?? 0) + by;
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface HeapSample {
  atMs: number;
  heapUsedMiB: number;
  rssMiB: number;
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  nodesUp: number;
}

export async function runSoak(options: SoakOptions) {
  const log = options.log;
  const random = xorshift(options.seed * 7919 + 17);
  const pick = (n: number): number => random() % n;
  const uniform = (): number => random() / 2 ** 32;
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;

  const uncaught: string[] = [];
  const onUncaught = (error: unknown): void => {
    uncaught.push(`uncaughtException: ${String((error as Error)?.stack ?? error)}`);
  };
  const onRejection = (error: unknown): void => {
    uncaught.push(`unhandledRejection: ${String((error as Error)?.stack ?? error)}`);
  };
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);

  const slots: Slot[] = Array.from({ length: options.nodes }, (_, index) => ({
    index,
    identity: Identity.fromString(`soak-${options.seed}-${index}`),
    node: undefined,
    up: false,
    current: undefined,
    incarnations: [],
    lastPort: 0,
    lastTcpPort: 0,
  }));
  const byPort = new Map<number, Slot>();

  const capacity = (perSecond: number): number => Math.ceil((perSecond * options.durationMs) / 1000) * 2 + 1024;
  const reliable = new ReliableLedger(capacity(options.reliablePerSecond));
  const streams = new Map<number, StreamRecord>();
  let nextStreamId = 1;
  let reliableInFlight = 0;
  let streamsInFlight = 0;
  let lookupsInFlight = 0;
  const stats = {
    starts: 0,
    startFailures: {} as Record<string, number>,
    restartsSamePort: 0,
    restartsNewPort: 0,
    stops: 0,
    stopErrors: {} as Record<string, number>,
    lookups: { settled: 0, settledFound: 0, settledWrongAddress: 0, recent: 0, recentFound: 0, recentWrongAddress: 0, errors: {} as Record<string, number>, skippedBusy: 0 },
    datagrams: { sent: 0, sendErrors: {} as Record<string, number>, received: 0, duplicates: 0, unknown: 0 },
    reliableErrors: {} as Record<string, number>,
    streamErrors: {} as Record<string, number>,
    strayDeliveries: 0,
    untypedErrors: 0,
  };
  /** Per datagram id: 0 not sent, 1 sent, 2 + copies received (capped). */
  const datagramSeen = new Uint8Array(capacity(options.datagramsPerSecond));
  let nextDatagramId = 1;

  const upSlots = (): Slot[] => slots.filter((slot) => slot.up);
  const settledSlots = (t: number): Slot[] => slots.filter((slot) => slot.up && t - slot.current!.startedAt >= options.settleMs);

  const attachHandlers = (slot: Slot, node: SoakNode): void => {
    node.handle('reliable-message', (data) => {
      if (data.byteLength < 12) return void stats.strayDeliveries++;
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      if (view.getUint32(0) !== MAGIC_RELIABLE) return void stats.strayDeliveries++;
      const id = view.getUint32(4);
      if (id === 0 || id > reliable.count || slot.index !== view.getUint32(8)) return void stats.strayDeliveries++;
      reliable.deliveries[id] = Math.min(255, reliable.deliveries[id]! + 1);
      // A second delivery by the same instance breaks exactly-once. One by a new instance
      // of the receiver is a message its previous instance delivered but whose
      // acknowledgement never reached the sender before it went down: the sender starts
      // it over to the new instance (at least once across a receiver's restart).
      const incarnation = slot.current!.number;
      if (reliable.deliveredBy[id] === incarnation) reliable.sameIncarnationDuplicates++;
      reliable.deliveredBy[id] = incarnation;
      const expected = new Uint8Array(data.byteLength - 12);
      fillPayload(expected, id);
      if (data.byteLength !== reliable.bytes[id] || !Buffer.from(expected).equals(Buffer.from(data.buffer, data.byteOffset + 12, data.byteLength - 12))) reliable.corrupt[id] = 1;
    });
    node.handle('datagram', (data) => {
      if (data.byteLength < 8) return void stats.datagrams.unknown++;
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      if (view.getUint32(0) !== MAGIC_DATAGRAM) return void stats.datagrams.unknown++;
      const id = view.getUint32(4);
      const seen = id < datagramSeen.length ? datagramSeen[id]! : 0;
      if (seen === 0) return void stats.datagrams.unknown++;
      if (seen > 1) stats.datagrams.duplicates++;
      else stats.datagrams.received++;
      datagramSeen[id] = Math.min(255, seen + 1);
    });
    node.handle('stream', async (source) => {
      const hash = createHash('sha256');
      let record: StreamRecord | undefined;
      let bytes = 0;
      let header = true;
      try {
        for await (const chunk of source) {
          if (header) {
            header = false;
            if (chunk.byteLength >= 8) {
              const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
              if (view.getUint32(0) === MAGIC_STREAM) record = streams.get(view.getUint32(4));
            }
          }
          hash.update(chunk);
          bytes += chunk.byteLength;
        }
      } catch {
        return; // the sender's side reports the failure
      }
      if (!record) return void stats.strayDeliveries++;
      record.received++;
      if (bytes === record.bytes && hash.digest('hex') === record.hash) record.verifiedBytes += bytes;
      else record.mismatches++;
    });
  };

  // A restart on the same ports is a process with configured ports (UDP and TCP alike);
  // a restart on new ones gets both from the OS.
  const startSlot = async (slot: Slot, samePorts: boolean, bootstrap: Address[]): Promise<boolean> => {
    const number = slot.incarnations.length;
    const port = samePorts ? slot.lastPort : 0;
    let node = buildNode(options, slot.identity, slot.index, number, port, samePorts ? slot.lastTcpPort : 0, bootstrap);
    try {
      await node.start();
    } catch (error) {
      count(stats.startFailures, errorCode(error));
      await node.stop().catch(() => {});
      if (port === 0) return false;
      // The port was taken meanwhile (an ephemeral bind of another node): come back on a new one.
      node = buildNode(options, slot.identity, slot.index, number, 0, 0, bootstrap);
      try {
        await node.start();
      } catch (again) {
        count(stats.startFailures, errorCode(again));
        await node.stop().catch(() => {});
        return false;
      }
    }
    const incarnation: Incarnation = { number, startedAt: now(), endedAt: undefined };
    slot.incarnations.push(incarnation);
    slot.current = incarnation;
    slot.node = node;
    slot.up = true;
    slot.lastPort = node.localAddress().port;
    slot.lastTcpPort = node.localTcpPort() ?? 0;
    byPort.set(slot.lastPort, slot);
    attachHandlers(slot, node);
    stats.starts++;
    return true;
  };

  const stopSlot = async (slot: Slot): Promise<void> => {
    const node = slot.node;
    if (!node || !slot.up) return;
    slot.up = false;
    slot.current!.endedAt = now();
    stats.stops++;
    try {
      await node.stop();
    } catch (error) {
      count(stats.stopErrors, errorCode(error));
    }
    if (byPort.get(slot.lastPort) === slot) byPort.delete(slot.lastPort);
  };

  // --- start: a seed, then the rest in batches, each bootstrapping from up to 3 running nodes.
  log(`soak: starting ${options.nodes} nodes`);
  await startSlot(slots[0]!, false, []);
  for (let i = 1; i < slots.length; i += 20) {
    const batch = slots.slice(i, i + 20);
    const running = upSlots();
    await Promise.all(
      batch.map((slot) => {
        const bootstrap = [0, 1, 2].map(() => running[pick(running.length)]!.node!.localAddress());
        return startSlot(slot, false, bootstrap);
      }),
    );
    await sleep(100);
  }
  const startedAllMs = now();
  log(`soak: ${upSlots().length} nodes up after ${Math.round(startedAllMs)} ms`);

  // --- traffic
  const pending = new Set<Promise<unknown>>();
  const track = (promise: Promise<unknown>): void => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise));
  };

  const doLookup = (): void => {
    const t = now();
    const up = upSlots();
    if (up.length < 2) return;
    if (lookupsInFlight >= 64) return void stats.lookups.skippedBusy++;
    const from = up[pick(up.length)]!;
    let to = up[pick(up.length)]!;
    if (to === from) to = up[(up.indexOf(from) + 1) % up.length]!;
    const settled = t - from.current!.startedAt >= options.settleMs && t - to.current!.startedAt >= options.settleMs;
    const targetIncarnation = to.current!;
    const targetPort = to.lastPort;
    const fromIncarnation = from.current!;
    lookupsInFlight++;
    track(
      from
        .node!.findPeer(to.identity.id, { timeoutMs: 10_000 })
        .then(
          (peer) => {
            // Judge only lookups whose two ends stayed up throughout.
            if (targetIncarnation.endedAt !== undefined || fromIncarnation.endedAt !== undefined) return;
            const right = peer.address.port === targetPort && peer.id.equals(to.identity.id);
            if (settled) {
              stats.lookups.settled++;
              if (right) stats.lookups.settledFound++;
              else stats.lookups.settledWrongAddress++;
            } else {
              stats.lookups.recent++;
              if (right) stats.lookups.recentFound++;
              else stats.lookups.recentWrongAddress++;
            }
          },
          (error: unknown) => {
            if (targetIncarnation.endedAt !== undefined || fromIncarnation.endedAt !== undefined) return;
            const code = errorCode(error);
            if (code.startsWith('untyped:')) stats.untypedErrors++;
            count(stats.lookups.errors, `${settled ? 'settled' : 'recent'}:${code}`);
            if (settled) stats.lookups.settled++;
            else stats.lookups.recent++;
          },
        )
        .finally(() => lookupsInFlight--),
    );
  };

  const doDatagram = (): void => {
    const up = upSlots();
    if (up.length < 2) return;
    const from = up[pick(up.length)]!;
    let to = up[pick(up.length)]!;
    if (to === from) to = up[(up.indexOf(from) + 1) % up.length]!;
    if (nextDatagramId >= datagramSeen.length) return;
    const id = nextDatagramId++;
    const data = new Uint8Array(8 + (random() % 512));
    const view = new DataView(data.buffer);
    view.setUint32(0, MAGIC_DATAGRAM);
    view.setUint32(4, id);
    datagramSeen[id] = 1;
    try {
      from.node!.sendDatagram(to.node!.localAddress(), data);
      stats.datagrams.sent++;
    } catch (error) {
      datagramSeen[id] = 0;
      count(stats.datagrams.sendErrors, errorCode(error));
    }
  };

  const doReliable = (): void => {
    const up = upSlots();
    if (up.length < 2) return;
    if (reliableInFlight >= 256) return;
    const from = up[pick(up.length)]!;
    let to = up[pick(up.length)]!;
    if (to === from) to = up[(up.indexOf(from) + 1) % up.length]!;
    // Sizes: mostly small, some multi-chunk (up to 256 KiB).
    const roll = uniform();
    const bodyBytes = roll < 0.6 ? 16 + (random() % 1024) : roll < 0.9 ? 1024 + (random() % (32 * 1024)) : 32 * 1024 + (random() % (224 * 1024));
    const id = reliable.add(from, to, now(), 12 + bodyBytes);
    if (id === 0) return;
    const data = new Uint8Array(12 + bodyBytes);
    const view = new DataView(data.buffer);
    view.setUint32(0, MAGIC_RELIABLE);
    view.setUint32(4, id);
    view.setUint32(8, to.index);
    fillPayload(data.subarray(12), id);
    reliableInFlight++;
    track(
      from
        .node!.sendReliable(to.node!.localAddress(), data, { timeoutMs: 30_000 })
        .then(
          () => reliable.settle(id, now(), undefined),
          (error: unknown) => {
            const code = errorCode(error);
            if (code.startsWith('untyped:')) stats.untypedErrors++;
            reliable.settle(id, now(), code);
            count(stats.reliableErrors, code);
          },
        )
        .finally(() => {
          reliableInFlight--;
        }),
    );
  };

  const doStream = (): void => {
    const t = now();
    const settled = settledSlots(t);
    if (settled.length < 2) return;
    if (streamsInFlight >= 8) return;
    const from = settled[pick(settled.length)]!;
    let to = settled[pick(settled.length)]!;
    if (to === from) to = settled[(settled.indexOf(from) + 1) % settled.length]!;
    const id = nextStreamId++;
    const bytes = 64 * 1024 + (random() % (960 * 1024));
    const chunks: Uint8Array[] = [];
    const hash = createHash('sha256');
    for (let offset = 0, n = 0; offset < bytes; offset += STREAM_CHUNK, n++) {
      const chunk = new Uint8Array(Math.min(STREAM_CHUNK, bytes - offset));
      fillPayload(chunk, id * 4096 + n);
      if (n === 0) {
        const view = new DataView(chunk.buffer);
        view.setUint32(0, MAGIC_STREAM);
        view.setUint32(4, id);
      }
      hash.update(chunk);
      chunks.push(chunk);
    }
    const record: StreamRecord = { id, from: from.current!, to: to.current!, bytes, hash: hash.digest('hex'), settledAt: undefined, outcome: undefined, received: 0, verifiedBytes: 0, mismatches: 0 };
    streams.set(id, record);
    streamsInFlight++;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (const chunk of chunks) yield chunk;
    }
    track(
      from
        .node!.sendStream(to.identity.id, source(), { timeoutMs: 30_000 })
        .then(
          () => {
            record.outcome = 'resolved';
          },
          (error: unknown) => {
            const code = errorCode(error);
            if (code.startsWith('untyped:')) stats.untypedErrors++;
            record.outcome = code;
            count(stats.streamErrors, code);
          },
        )
        .finally(() => {
          record.settledAt = now();
          streamsInFlight--;
          // One connection per stream, closed after it: connections do not pile up over
          // the run (tcp keeps them open otherwise), and every stream exercises a connect
          // and a graceful close.
          if (from.up && from.current === record.from) track(from.node!.closeConnection(to.identity.id).catch((error: unknown) => count(stats.streamErrors, `close:${errorCode(error)}`)));
        }),
    );
  };

  // --- churn
  const restartTimers = new Set<ReturnType<typeof setTimeout>>();
  const churnOne = (): void => {
    const up = upSlots();
    if (up.length <= options.nodes * 0.9) return;
    const slot = up[pick(up.length)]!;
    const samePort = uniform() < 0.5;
    const downMs = options.downMinMs + uniform() * (options.downMaxMs - options.downMinMs);
    track(
      stopSlot(slot).then(() => {
        const timer = setTimeout(() => {
          restartTimers.delete(timer);
          if (!trafficOn) return;
          const settled = settledSlots(now());
          const candidates = settled.length >= 3 ? settled : upSlots();
          const bootstrap = [0, 1, 2].map(() => candidates[pick(candidates.length)]!.node!.localAddress());
          if (samePort) stats.restartsSamePort++;
          else stats.restartsNewPort++;
          track(startSlot(slot, samePort, bootstrap));
        }, downMs);
        restartTimers.add(timer);
      }),
    );
  };

  // --- sampling
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const samples: HeapSample[] = [];
  const gc = (globalThis as { gc?: () => void }).gc;
  const sample = (): void => {
    gc?.();
    const memory = process.memoryUsage();
    samples.push({
      atMs: Math.round(now()),
      heapUsedMiB: memory.heapUsed / 2 ** 20,
      rssMiB: memory.rss / 2 ** 20,
      loopLagP99Ms: lag.percentile(99) / 1e6,
      loopLagMaxMs: lag.max / 1e6,
      nodesUp: upSlots().length,
    });
    lag.reset();
  };

  let trafficOn = true;
  const rates = [
    { perSecond: options.lookupsPerSecond, run: doLookup, credit: 0 },
    { perSecond: options.datagramsPerSecond, run: doDatagram, credit: 0 },
    { perSecond: options.reliablePerSecond, run: doReliable, credit: 0 },
    { perSecond: options.streamsPerSecond, run: doStream, credit: 0 },
  ];
  const TICK_MS = 100;
  const trafficTimer = setInterval(() => {
    for (const rate of rates) {
      rate.credit += (rate.perSecond * TICK_MS) / 1000;
      for (let n = 0; rate.credit >= 1 && n < 1000; n++) {
        rate.credit -= 1;
        rate.run();
      }
    }
  }, TICK_MS);
  const churnTimer = setInterval(churnOne, options.churnIntervalMs);
  const sampleTimer = setInterval(sample, options.heapSampleMs);
  let lastLog = 0;
  const logTimer = setInterval(() => {
    const t = now();
    if (t - lastLog < 29_000) return;
    lastLog = t;
    const last = samples.at(-1);
    log(
      `soak: t=${Math.round(t / 1000)}s up=${upSlots().length} lookups=${stats.lookups.settledFound}/${stats.lookups.settled} reliable=${reliable.count} inflight=${reliableInFlight} streams=${streams.size} dgrams=${stats.datagrams.received}/${stats.datagrams.sent} heap=${last?.heapUsedMiB.toFixed(1)}MiB rss=${last?.rssMiB.toFixed(0)}MiB lagP99=${last?.loopLagP99Ms.toFixed(1)}ms uncaught=${uncaught.length}`,
    );
  }, 1000);

  while (now() < options.durationMs) await sleep(Math.min(1000, options.durationMs - now()));
  trafficOn = false;
  clearInterval(trafficTimer);
  clearInterval(churnTimer);
  for (const timer of restartTimers) clearTimeout(timer);
  restartTimers.clear();
  const trafficEndMs = now();
  log(`soak: traffic stopped at ${Math.round(trafficEndMs / 1000)} s; draining ${pending.size} operations`);

  // --- drain: every send settles (rudp and tcp sends have 30 s deadlines), bounded.
  const drainDeadline = now() + options.drainMs;
  while (pending.size > 0 && now() < drainDeadline) await sleep(200);
  let unsettledReliable = 0;
  for (let id = 1; id <= reliable.count; id++) if (Number.isNaN(reliable.settledAt[id])) unsettledReliable++;
  const hung = { reliable: unsettledReliable, streams: [...streams.values()].filter((s) => s.settledAt === undefined).length, operations: pending.size };
  await sleep(1000); // late deliveries of sends that resolved at the very end
  clearInterval(sampleTimer);
  clearInterval(logTimer);
  lag.disable();
  const drainEndMs = now();

  // Snapshot the counters of every running node before stopping them.
  const counterTotals: Record<string, number> = {};
  for (const slot of upSlots()) {
    for (const [layer, values] of Object.entries(slot.node!.counters())) {
      for (const [key, value] of Object.entries(values)) {
        if (['retransmissions', 'peer-restarts', 'peers-unresponsive', 'unresponsive', 'pings', 'ping-failures', 'messages-failed', 'evicted.keepalive', 'evicted.timeout', 'request-timeouts', 'handler-errors', 'rebootstraps', 'dropped'].includes(key)) {
          count(counterTotals, `${layer}.${key}`, value);
        }
      }
    }
  }
  await Promise.all(upSlots().map((slot) => stopSlot(slot)));
  await sleep(200);
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onRejection);

  // --- figures
  const ended = (incarnation: Incarnation, by: number | undefined): boolean => incarnation.endedAt !== undefined && (by === undefined || incarnation.endedAt <= by);
  let owed = 0;
  let owedExactlyOnce = 0;
  let owedMissing = 0;
  let owedDuplicated = 0;
  let owedResolved = 0;
  let owedRejected = 0;
  let duplicates = 0;
  let corrupt = 0;
  let notOwed = 0;
  let notOwedDelivered = 0;
  let resolvedWithoutDelivery = 0;
  let bytesDelivered = 0;
  const owedFailures: string[] = [];
  for (let id = 1; id <= reliable.count; id++) {
    const deliveries = reliable.deliveries[id]!;
    const outcome = reliable.outcomeOf(id);
    const settledAt = Number.isNaN(reliable.settledAt[id]) ? undefined : reliable.settledAt[id]!;
    if (deliveries > 1) duplicates += deliveries - 1;
    if (reliable.corrupt[id]) corrupt++;
    if (outcome === 'resolved' && deliveries === 0) resolvedWithoutDelivery++;
    if (deliveries > 0) bytesDelivered += reliable.bytes[id]!;
    // Ended "during the transfer window": at or before the send settled; an unsettled send's window runs to the end of the drain.
    const from = slots[reliable.fromSlot[id]!]!.incarnations[reliable.fromIncarnation[id]!]!;
    const to = slots[reliable.toSlot[id]!]!.incarnations[reliable.toIncarnation[id]!]!;
    const isOwed = !ended(from, settledAt ?? drainEndMs) && !ended(to, settledAt ?? drainEndMs);
    if (!isOwed) {
      notOwed++;
      if (deliveries > 0) notOwedDelivered++;
      continue;
    }
    owed++;
    if (deliveries === 1) owedExactlyOnce++;
    else if (deliveries === 0) owedMissing++;
    else owedDuplicated++;
    if (outcome === 'resolved') owedResolved++;
    else {
      owedRejected++;
      if (owedFailures.length < 20) owedFailures.push(`#${id} ${reliable.bytes[id]} B: ${outcome ?? 'never settled'} after ${Math.round((settledAt ?? drainEndMs) - reliable.sentAt[id]!)} ms, deliveries ${deliveries}`);
    }
  }

  let streamsOwed = 0;
  let streamsOwedVerified = 0;
  let streamBytesVerified = 0;
  let streamMismatches = 0;
  let streamDuplicates = 0;
  let streamsVerified = 0;
  for (const record of streams.values()) {
    streamBytesVerified += record.verifiedBytes;
    streamMismatches += record.mismatches;
    if (record.received > 1) streamDuplicates += record.received - 1;
    if (record.verifiedBytes > 0) streamsVerified++;
    const isOwed = !ended(record.from, record.settledAt ?? drainEndMs) && !ended(record.to, record.settledAt ?? drainEndMs);
    if (isOwed) {
      streamsOwed++;
      if (record.outcome === 'resolved' && record.verifiedBytes === record.bytes && record.mismatches === 0) streamsOwedVerified++;
    }
  }

  // Heap windows: the first minute after warm-up against the last minute of traffic.
  const windowMs = Math.min(60_000, Math.max(options.heapSampleMs * 3, (trafficEndMs - options.warmupMs) / 3));
  const early = samples.filter((s) => s.atMs >= options.warmupMs && s.atMs < options.warmupMs + windowMs);
  const late = samples.filter((s) => s.atMs >= trafficEndMs - windowMs && s.atMs <= trafficEndMs);
  const earlyHeap = median(early.map((s) => s.heapUsedMiB));
  const lateHeap = median(late.map((s) => s.heapUsedMiB));
  const heapGrowth = (lateHeap - earlyHeap) / earlyHeap;

  const settledLookups = stats.lookups.settled;
  const figures = {
    options: { ...options, log: undefined },
    gcExposed: gc !== undefined,
    wallMs: Math.round(now()),
    startAllMs: Math.round(startedAllMs),
    trafficEndMs: Math.round(trafficEndMs),
    uncaughtErrors: uncaught.length,
    uncaught: uncaught.slice(0, 10),
    untypedErrors: stats.untypedErrors,
    churn: { stops: stats.stops, starts: stats.starts, restartsSamePort: stats.restartsSamePort, restartsNewPort: stats.restartsNewPort, startFailures: stats.startFailures, stopErrors: stats.stopErrors },
    heap: {
      windowMs,
      earlyWindowSamples: early.length,
      lateWindowSamples: late.length,
      earlyMedianMiB: earlyHeap,
      lateMedianMiB: lateHeap,
      growth: heapGrowth,
      peakMiB: Math.max(...samples.map((s) => s.heapUsedMiB)),
    },
    rss: { earlyMedianMiB: median(early.map((s) => s.rssMiB)), lateMedianMiB: median(late.map((s) => s.rssMiB)), peakMiB: Math.max(...samples.map((s) => s.rssMiB)) },
    eventLoopLag: {
      p99MedianMs: median(samples.map((s) => s.loopLagP99Ms)),
      p99WorstMs: Math.max(...samples.map((s) => s.loopLagP99Ms)),
      maxMs: Math.max(...samples.map((s) => s.loopLagMaxMs)),
    },
    reliable: {
      definition:
        'owed = the incarnations (starts) of sender and receiver at the time of the send both stayed up until the send settled (or to the end of the drain when it never settled); owed messages must be delivered exactly once and their send must resolve',
      sent: reliable.count,
      owed,
      owedExactlyOnce,
      owedMissing,
      owedDuplicated,
      owedResolved,
      owedRejected,
      owedFailures,
      exactlyOnceRate: owed > 0 ? owedExactlyOnce / owed : Number.NaN,
      duplicatesAll: duplicates,
      duplicatesSameIncarnation: reliable.sameIncarnationDuplicates,
      redeliveredAfterReceiverRestart: duplicates - reliable.sameIncarnationDuplicates,
      corrupt,
      resolvedWithoutDelivery,
      notOwed,
      notOwedDelivered,
      bytesDelivered,
      errors: stats.reliableErrors,
      hung,
    },
    lookups: {
      definition: 'settled = searcher and target both up for at least settleMs; found = the answer carries the target id at its current port; lookups whose searcher or target stopped meanwhile are not judged',
      ...stats.lookups,
      settledSuccessRate: settledLookups > 0 ? stats.lookups.settledFound / settledLookups : Number.NaN,
      recentSuccessRate: stats.lookups.recent > 0 ? stats.lookups.recentFound / stats.lookups.recent : Number.NaN,
    },
    datagrams: { ...stats.datagrams, deliveryRate: stats.datagrams.sent > 0 ? stats.datagrams.received / stats.datagrams.sent : Number.NaN },
    streams: {
      started: streams.size,
      verified: streamsVerified,
      bytesVerified: streamBytesVerified,
      hashMismatches: streamMismatches,
      duplicates: streamDuplicates,
      owed: streamsOwed,
      owedVerified: streamsOwedVerified,
      errors: stats.streamErrors,
    },
    strayDeliveries: stats.strayDeliveries,
    counters: counterTotals,
    samples: samples.map((s) => ({ ...s, heapUsedMiB: Math.round(s.heapUsedMiB * 10) / 10, rssMiB: Math.round(s.rssMiB), loopLagP99Ms: Math.round(s.loopLagP99Ms * 10) / 10, loopLagMaxMs: Math.round(s.loopLagMaxMs) })),
  };
  return figures;
}
