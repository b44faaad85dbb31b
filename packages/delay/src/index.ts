/**
 * `@deccom/delay`: artificial latency and bandwidth, for testing applications under
 * realistic links. Something sent over a link arrives `latency + size / bandwidth`
 * later, where latency and bandwidth come from a user function of the two ends, and
 * everything sent to one destination shares that link (it is transmitted after whatever
 * was sent there before), so the bandwidth holds however fast the sender is.
 *
 * - `delay()` delays datagrams: sends (default) or deliveries (`mode: 'receive'`, the
 *   original's `on_receive`). It works over any datagram transport, UDP alone included.
 * - `streamDelay()` delays the whole messages and streams of a message transport such as
 *   `@deccom/tcp` (the original's stream delay layer), in either direction.
 *
 * Two factories, because a layer cannot provide `sendMessage` only when something below
 * happens to: `delay()` over UDP must not claim to carry messages.
 *
 * @example
 * ```ts
 * import { createNode } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 * import { delay } from '@deccom/delay';
 *
 * const node = createNode({
 *   layers: [udp(), delay({ profile: ({ address }) => ({ latencyMs: address.host === '10.0.0.2' ? 80 : 20, bandwidthBytesPerSecond: 1e6 }) })],
 * });
 * ```
 *
 * @packageDocumentation
 */
import { setMaxListeners } from 'node:events';
import {
  addressKey,
  coalesceWrites,
  defineLayer,
  type Capabilities,
  InvalidArgumentError,
  type Address,
  type ByteSource,
  type HookHandler,
  type NodeId,
  type PeerRecord,
  type ScopedClock,
  type SendOptions,
  type TimerHandle,
} from '@deccom/core';

/** Link properties a profile returns. */
export interface LinkProfile {
  /** One-way latency in ms (>= 0). */
  latencyMs: number;
  /** Link rate in bytes per second (> 0); undefined or Infinity: no size-dependent delay. */
  bandwidthBytesPerSecond?: number | undefined;
}

/** The two ends of a datagram link, as a `delay()` profile sees them. */
export interface DatagramLinkEnds {
  /** This node's peer record. */
  readonly self: PeerRecord;
  /** The other end's address (destination in send mode, source in receive mode). */
  readonly address: Address;
  /**
   * The other end's peer record when it is known: from the `peerOf` option, or else
   * from `getPeers()` of a discovery layer below. Computed only when read.
   */
  readonly peer: PeerRecord | undefined;
}

/** The two ends of a message link, as a `streamDelay()` profile sees them. */
export interface MessageLinkEnds {
  readonly self: PeerRecord;
  /** The other node's id. */
  readonly id: NodeId;
  /** Its peer record, when a discovery layer below (`getPeer`) knows it. Computed only when read. */
  readonly peer: PeerRecord | undefined;
}

export interface DelayOptions {
  /** Latency when no `profile` is given, in ms. Default 0. */
  latencyMs?: number;
  /** Bandwidth when no `profile` is given, in bytes per second. Default unlimited. */
  bandwidthBytesPerSecond?: number;
  /** Per-link properties; replaces `latencyMs` / `bandwidthBytesPerSecond`. Called once per datagram. */
  profile?: (ends: DatagramLinkEnds) => LinkProfile;
  /**
   * Maps an address to a peer for `profile`'s `peer`. Default: the peer with that address
   * among `getPeers()` of a discovery layer below, when there is one (indexed, refreshed at
   * most once a second); otherwise undefined.
   */
  peerOf?: (address: Address) => PeerRecord | undefined;
  /** Delay what this node sends (default) or what it receives (the original's `on_receive`). */
  mode?: 'send' | 'receive';
  /** Instance name. Default `delay`. */
  name?: string;
}

/** How often the address-to-peer index built from `getPeers()` may be rebuilt. */
export const PEER_INDEX_REFRESH_MS = 1_000;

function checkProfile(profile: LinkProfile, where: string): LinkProfile {
  if (typeof profile !== 'object' || profile === null) throw new InvalidArgumentError(`${where}: a profile must be an object, got ${String(profile)}`);
  if (!(profile.latencyMs >= 0) || !Number.isFinite(profile.latencyMs)) throw new InvalidArgumentError(`${where}: latencyMs must be a finite number >= 0, got ${profile.latencyMs}`);
  const bw = profile.bandwidthBytesPerSecond;
  if (bw !== undefined && !(bw > 0)) throw new InvalidArgumentError(`${where}: bandwidthBytesPerSecond must be > 0, got ${bw}`);
  return profile;
}

const limited = (profile: LinkProfile): profile is LinkProfile & { bandwidthBytesPerSecond: number } =>
  profile.bandwidthBytesPerSecond !== undefined && profile.bandwidthBytesPerSecond !== Infinity;

/**
 * One transmission queue per link: a unit starts transmitting when the link is free
 * (everything sent on it before has been transmitted) and takes size / bandwidth.
 */
class Links {
  private readonly busyUntil = new Map<string, number>();

  constructor(private readonly clock: ScopedClock) {}

  /** Reserves the link for `bytes`; returns when their transmission ends (absolute ms). */
  transmit(key: string, bytes: number, bandwidthBytesPerSecond: number): number {
    const now = this.clock.now();
    const done = Math.max(now, this.busyUntil.get(key) ?? 0) + (bytes / bandwidthBytesPerSecond) * 1000;
    this.busyUntil.set(key, done);
    if (this.busyUntil.size > 10_000) {
      for (const [k, until] of this.busyUntil) if (until <= now) this.busyUntil.delete(k);
    }
    return done;
  }

  /** When something of `bytes` sent now over `key` arrives (absolute ms). */
  arrival(key: string, bytes: number, profile: LinkProfile): number {
    const sent = limited(profile) ? this.transmit(key, bytes, profile.bandwidthBytesPerSecond) : this.clock.now();
    return sent + profile.latencyMs;
  }

  get size(): number {
    return this.busyUntil.size;
  }

  clear(): void {
    this.busyUntil.clear();
  }
}

/** Runs a deferred action that has no caller to throw to: errors are counted and logged. */
function deferredRunner(ctx: { counters: { add(name: string): void }; logger: { warn(message: string, fields?: Record<string, unknown>): void } }) {
  return (what: string, action: () => void): void => {
    try {
      action();
    } catch (error) {
      ctx.counters.add('errors');
      ctx.logger.warn(`${what} failed after its delay`, { error: (error as Error).message });
    }
  };
}

/**
 * Delays datagrams. Needs `sendDatagram`, `maxDatagramSize`; optional `getPeers`; takes
 * `datagram`. Provides `sendDatagram`, `maxDatagramSize` (unchanged: no framing); offers
 * `datagram`. With zero latency and no bandwidth limit it is a pass-through: the very
 * functions below, no timer.
 */
export function delay(options: DelayOptions = {}) {
  const fixed = checkProfile({ latencyMs: options.latencyMs ?? 0, bandwidthBytesPerSecond: options.bandwidthBytesPerSecond }, 'delay');
  const mode = options.mode ?? 'send';
  if (mode !== 'send' && mode !== 'receive') throw new InvalidArgumentError(`delay: mode must be 'send' or 'receive', got '${String(mode)}'`);
  const zero = options.profile === undefined && fixed.latencyMs === 0 && !limited(fixed);
  return defineLayer({
    type: 'delay',
    name: options.name,
    needs: ['sendDatagram', 'maxDatagramSize'],
    optional: ['getPeers'],
    takes: ['datagram'],
    provides: ['sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive' },
    create: (ctx) => {
      const links = new Links(ctx.clock);
      const sendBelow = ctx.below.sendDatagram;
      const runLater = deferredRunner(ctx);
      let started = false;

      let peerIndex: Map<string, PeerRecord> | undefined;
      let peerIndexAt = -Infinity;
      const peerOf =
        options.peerOf ??
        ((address: Address): PeerRecord | undefined => {
          const getPeers = ctx.below.getPeers;
          if (getPeers === undefined) return undefined;
          const now = ctx.clock.now();
          if (peerIndex === undefined || now - peerIndexAt >= PEER_INDEX_REFRESH_MS) {
            peerIndex = new Map(getPeers().map((peer) => [addressKey(peer.address), peer]));
            peerIndexAt = now;
          }
          return peerIndex.get(addressKey(address));
        });

      const profileFor = (address: Address): LinkProfile => {
        const profile = options.profile;
        if (profile === undefined) return fixed;
        return checkProfile(
          profile({
            get self() {
              return ctx.localPeer();
            },
            address,
            get peer() {
              return peerOf(address);
            },
          }),
          'delay profile',
        );
      };

      const deliverUp = (data: Uint8Array, from: Address): void => {
        const slot = ctx.slots.datagram;
        if (slot !== undefined) slot(data, from);
        else ctx.counters.drop('no-receiver');
      };

      /** Sends or delivers `data` over the link to / from `other` after its delay. */
      const delayed = (other: Address, data: Uint8Array, profile: LinkProfile, forward: (data: Uint8Array) => void): void => {
        const wait = links.arrival(addressKey(other), data.byteLength, profile) - ctx.clock.now();
        if (wait <= 0) {
          forward(data);
          return;
        }
        ctx.counters.add('delayed');
        // Held past this call: the owner may reuse its buffer.
        const copy = data.slice();
        ctx.clock.setTimeout(() => runLater('a delayed datagram', () => forward(copy)), wait);
      };

      return {
        start: () => {
          started = true;
        },
        stop: () => {
          started = false;
          links.clear();
        },
        status: () => ({ mode, latencyMs: fixed.latencyMs, bandwidthBytesPerSecond: fixed.bandwidthBytesPerSecond, profile: options.profile !== undefined, links: links.size }),
        provides: {
          sendDatagram:
            zero || mode === 'receive'
              ? sendBelow
              : (to: Address, data: Uint8Array) => {
                  if (!started || data.byteLength > ctx.below.maxDatagramSize()) {
                    // The transport raises its own StateError / InvalidArgumentError, now, not from a timer.
                    sendBelow(to, data);
                    return;
                  }
                  delayed(to, data, profileFor(to), (payload) => sendBelow(to, payload));
                },
          maxDatagramSize: ctx.below.maxDatagramSize,
        },
        takes: {
          datagram:
            zero || mode === 'send'
              ? deliverUp
              : (data: Uint8Array, from: Address) => {
                  let profile: LinkProfile;
                  try {
                    profile = profileFor(from);
                  } catch (error) {
                    // A receive path never throws: a broken profile drops the datagram, loudly.
                    ctx.counters.drop('profile-error');
                    ctx.logger.error('delay profile failed', { error: (error as Error).message });
                    return;
                  }
                  delayed(from, data, profile, (payload) => deliverUp(payload, from));
                },
        },
      };
    },
  });
}

export interface StreamDelayOptions {
  /** Latency when no `profile` is given, in ms. Default 0. */
  latencyMs?: number;
  /** Bandwidth when no `profile` is given, in bytes per second. Default unlimited. */
  bandwidthBytesPerSecond?: number;
  /** Per-link properties; replaces `latencyMs` / `bandwidthBytesPerSecond`. Called once per message or stream. */
  profile?: (ends: MessageLinkEnds) => LinkProfile;
  /** Delay what this node sends (default) or what it receives. */
  mode?: 'send' | 'receive';
  /**
   * Most bytes of one stream "in flight" on the modelled link: transmitted but not yet
   * taken by the consumer (the transport when sending, the application when receiving).
   * The layer holds at most the link's bandwidth x latency, capped by this, plus the
   * chunk in hand; it is what a sender can produce ahead of a reader that does not read,
   * on top of the transport's own window. Default 256 KiB.
   */
  maxBufferedBytes?: number;
  /** Instance name. Default `stream-delay`. */
  name?: string;
}

/** Default cap of the bytes of one stream in flight on a modelled link. */
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024;

/** Waits until absolute time `at`; rejects with the reason of `signal` if it aborts first. */
type WaitUntil = (at: number, signal: AbortSignal | undefined) => Promise<void>;

/**
 * The chunks of `source` as they come out of the modelled link: each chunk is
 * transmitted when the link is free (taking size / bandwidth, shared with everything
 * else sent over the same link) and comes out `latency` after its transmission ended.
 * Transmission runs ahead of the consumer by up to the link's bandwidth x latency (at
 * most `maxBuffered` bytes), so the link stays busy across the latency as a real pipe
 * does, while a consumer that does not read stops the producer.
 */
async function* throughLink(
  source: ByteSource,
  link: { waitUntil: WaitUntil; now: () => number; links: Links; key: string; profile: LinkProfile; signal: AbortSignal | undefined; maxBuffered: number },
): AsyncGenerator<Uint8Array> {
  const { waitUntil, links, key, profile } = link;
  // Bytes the link holds in flight: bandwidth x latency (a pipe's capacity), capped.
  const capacity = Math.min(link.maxBuffered, limited(profile) ? (profile.bandwidthBytesPerSecond * profile.latencyMs) / 1000 : profile.latencyMs > 0 ? Infinity : 0);
  let readyBytes = 0;
  const stop = new AbortController();
  const signal = link.signal !== undefined ? AbortSignal.any([link.signal, stop.signal]) : stop.signal;
  const ready: { chunk: Uint8Array; at: number }[] = [];
  let finished = false;
  let failure: { error: unknown } | undefined;
  // Wakes whichever side waits for the other.
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  const wake = (which: 'consumer' | 'producer'): void => {
    const resolve = which === 'consumer' ? wakeConsumer : wakeProducer;
    if (which === 'consumer') wakeConsumer = undefined;
    else wakeProducer = undefined;
    resolve?.();
  };
  const producer = (async () => {
    try {
      // Chunks as they are (nothing gathered: `below` 0), with a wait on the source that the
      // signal gives up (a source that stalls cannot hold the producer once the stream stops).
      for await (const chunk of coalesceWrites(source, { below: 0, signal })) {
        while (ready.length > 0 && readyBytes >= capacity && !signal.aborted) await new Promise<void>((resolve) => (wakeProducer = resolve));
        if (signal.aborted) throw signal.reason;
        const sentAt = limited(profile) ? links.transmit(key, chunk.byteLength, profile.bandwidthBytesPerSecond) : link.now();
        await waitUntil(sentAt, signal);
        ready.push({ chunk, at: sentAt + profile.latencyMs });
        readyBytes += chunk.byteLength;
        wake('consumer');
      }
    } catch (error) {
      if (!stop.signal.aborted) failure = { error };
    } finally {
      finished = true;
      wake('consumer');
    }
  })();
  const onAbort = (): void => {
    wake('producer');
    wake('consumer');
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (link.signal?.aborted) throw link.signal.reason;
      const next = ready.shift();
      if (next !== undefined) {
        readyBytes -= next.chunk.byteLength;
        wake('producer');
        await waitUntil(next.at, link.signal);
        yield next.chunk;
        continue;
      }
      if (failure !== undefined) throw failure.error;
      if (finished) return;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
  } finally {
    // The consumer stopped early (or finished): stop the producer. It may be waiting on
    // the source, so it is not awaited; it catches everything, and closes the source as
    // soon as that yields again.
    signal.removeEventListener('abort', onAbort);
    stop.abort();
    wake('producer');
    void producer;
  }
}

/** Every waiting send listens on the flush signal: thousands may wait at once, legitimately. */
function newFlush(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/** The parts of a layer context the stream delay uses (the same in both modes). */
interface StreamDelayContext {
  readonly clock: ScopedClock;
  readonly counters: { add(name: string, amount?: number): void; drop(reason: string): void };
  readonly logger: { warn(message: string, fields?: Record<string, unknown>): void; error(message: string, fields?: Record<string, unknown>): void };
  readonly signal: AbortSignal;
  localPeer(): PeerRecord;
  readonly below: Pick<Capabilities, 'sendMessage' | 'sendStream'> & Partial<Pick<Capabilities, 'getPeer'>>;
  readonly slots: { readonly message?: HookHandler<'message'>; readonly stream?: HookHandler<'stream'> };
}

interface StreamDelayConfig {
  readonly fixed: LinkProfile;
  readonly profile: ((ends: MessageLinkEnds) => LinkProfile) | undefined;
  readonly zero: boolean;
  readonly maxBuffered: number;
  readonly mode: 'send' | 'receive';
}

function checkStreamDelayOptions(options: StreamDelayOptions): StreamDelayConfig {
  const fixed = checkProfile({ latencyMs: options.latencyMs ?? 0, bandwidthBytesPerSecond: options.bandwidthBytesPerSecond }, 'streamDelay');
  const mode = options.mode ?? 'send';
  if (mode !== 'send' && mode !== 'receive') throw new InvalidArgumentError(`streamDelay: mode must be 'send' or 'receive', got '${String(mode)}'`);
  const maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  if (!Number.isInteger(maxBuffered) || maxBuffered < 0) throw new InvalidArgumentError(`streamDelay: maxBufferedBytes must be an integer >= 0, got ${String(maxBuffered)}`);
  const zero = options.profile === undefined && fixed.latencyMs === 0 && !limited(fixed);
  return { fixed, profile: options.profile, zero, maxBuffered, mode };
}

/** The running stream delay, for either mode. */
function buildStreamDelay(ctx: StreamDelayContext, config: StreamDelayConfig) {
  const { fixed, zero, maxBuffered } = config;
  const links = new Links(ctx.clock);
  /**
   * Aborted when the layer stops: whatever still waits out its delay goes on at once
   * (sends are handed to the transport, which delivers what it accepted on its own
   * graceful stop), so stopping a node loses no message to this layer.
   */
  let flush = newFlush();
  const waitUntil: WaitUntil = async (at, signal) => {
    const wait = at - ctx.clock.now();
    if (wait > 0 && !flush.signal.aborted) {
      try {
        await ctx.clock.sleep(wait, signal !== undefined ? AbortSignal.any([flush.signal, signal]) : flush.signal);
      } catch (error) {
        if (signal?.aborted !== true) return; // flushed
        throw error;
      }
    }
    if (signal?.aborted === true) throw signal.reason;
  };
  const runLater = deferredRunner(ctx);
  const profileFor = (id: NodeId): LinkProfile => {
    const profile = config.profile;
    if (profile === undefined) return fixed;
    return checkProfile(
      profile({
        get self() {
          return ctx.localPeer();
        },
        id,
        get peer() {
          return ctx.below.getPeer?.(id);
        },
      }),
      'streamDelay profile',
    );
  };
  const profileOrDrop = (from: NodeId): LinkProfile | undefined => {
    try {
      return profileFor(from);
    } catch (error) {
      // A receive path never throws: a broken profile drops, loudly.
      ctx.counters.drop('profile-error');
      ctx.logger.error('streamDelay profile failed', { error: (error as Error).message });
      return undefined;
    }
  };

  const deliverMessage = (data: Uint8Array, from: NodeId, address: Address): void => {
    const slot = ctx.slots.message;
    if (slot !== undefined) slot(data, from, address);
    else ctx.counters.drop('no-receiver');
  };
  const deliverStream = (source: AsyncIterable<Uint8Array>, from: NodeId, address: Address): unknown => {
    const slot = ctx.slots.stream;
    if (slot !== undefined) return slot(source, from, address);
    // Nobody above takes streams: the transport refuses it (the sender sees STREAM_REFUSED).
    ctx.counters.drop('no-receiver');
    return false;
  };

  /**
   * Received messages waiting out their delay, per source, in arrival order: one timer
   * per source hands them up strictly in the order they came (separate timers could fire
   * out of order on the real clock when arrival times are close).
   */
  const inbound = new Map<string, { items: { data: Uint8Array; from: NodeId; address: Address; at: number }[]; timer: TimerHandle | undefined }>();
  const drainInbound = (key: string): void => {
    const queue = inbound.get(key);
    if (queue === undefined) return;
    queue.timer = undefined;
    const now = ctx.clock.now();
    while (queue.items.length > 0 && queue.items[0]!.at <= now) {
      const item = queue.items.shift()!;
      runLater('a delayed message', () => deliverMessage(item.data, item.from, item.address));
    }
    if (queue.items.length > 0) queue.timer = ctx.clock.setTimeout(() => drainInbound(key), queue.items[0]!.at - now);
    else inbound.delete(key);
  };

  /**
   * Per destination, settled once the previous message to it was handed to the
   * transport: messages go down in the order they were sent, whatever the timers do.
   */
  const handedDown = new Map<string, Promise<void>>();

  const takes: { message: HookHandler<'message'>; stream: HookHandler<'stream'> } = zero
    ? { message: deliverMessage, stream: deliverStream }
    : {
        message: (data, from, address) => {
          const profile = profileOrDrop(from);
          if (profile === undefined) return;
          const key = from.hex;
          const at = links.arrival(key, data.byteLength, profile);
          let queue = inbound.get(key);
          if (queue === undefined && at <= ctx.clock.now()) {
            deliverMessage(data, from, address);
            return;
          }
          ctx.counters.add('delayed-messages');
          if (queue === undefined) {
            queue = { items: [], timer: undefined };
            inbound.set(key, queue);
          }
          queue.items.push({ data, from, address, at });
          if (queue.timer === undefined) queue.timer = ctx.clock.setTimeout(() => drainInbound(key), at - ctx.clock.now());
        },
        stream: (source, from, address) => {
          // No taker above: refused, before any wrapper is made.
          if (ctx.slots.stream === undefined) return deliverStream(source, from, address);
          const profile = profileOrDrop(from);
          if (profile === undefined) return deliverStream(source, from, address);
          ctx.counters.add('delayed-streams');
          return deliverStream(throughLink(source, { waitUntil, now: () => ctx.clock.now(), links, key: from.hex, profile, signal: undefined, maxBuffered }), from, address);
        },
      };

  const provides: Pick<Capabilities, 'sendMessage' | 'sendStream'> = zero
    ? { sendMessage: ctx.below.sendMessage, sendStream: ctx.below.sendStream }
    : {
        sendMessage: async (to: NodeId, data: Uint8Array, sendOptions?: SendOptions) => {
          const key = to.hex;
          const arrival = links.arrival(key, data.byteLength, profileFor(to));
          const previous = handedDown.get(key);
          let done!: () => void;
          const mine = new Promise<void>((resolve) => (done = resolve));
          handedDown.set(key, mine);
          try {
            const signal = sendOptions?.signal;
            if (arrival > ctx.clock.now() && !flush.signal.aborted) ctx.counters.add('delayed-messages');
            await waitUntil(arrival, signal);
            if (previous !== undefined) await previous; // settles, never rejects
            if (signal?.aborted === true) throw signal.reason;
            const sending = ctx.below.sendMessage(to, data, sendOptions);
            done();
            await sending;
          } finally {
            done();
            if (handedDown.get(key) === mine) handedDown.delete(key);
          }
        },
        sendStream: async (to: NodeId, source: ByteSource, sendOptions?: SendOptions) => {
          const profile = profileFor(to);
          ctx.counters.add('delayed-streams');
          // Aborted when the transport fails the stream: a wait on the source is given up.
          const giveUp = new AbortController();
          const signal = sendOptions?.signal ? AbortSignal.any([sendOptions.signal, giveUp.signal]) : giveUp.signal;
          try {
            await ctx.below.sendStream(to, throughLink(source, { waitUntil, now: () => ctx.clock.now(), links, key: to.hex, profile, signal, maxBuffered }), sendOptions);
          } catch (error) {
            giveUp.abort(error);
            throw error;
          }
        },
      };

  return {
    provides,
    takes,
    start: () => {
      flush = newFlush();
    },
    stop: async () => {
      flush.abort();
      // Received messages still waiting go up now, in order.
      for (const key of [...inbound.keys()]) {
        const queue = inbound.get(key)!;
        if (queue.timer !== undefined) ctx.clock.clearTimeout(queue.timer);
        for (const item of queue.items) runLater('a delayed message', () => deliverMessage(item.data, item.from, item.address));
        inbound.delete(key);
      }
      // Waiting sends are handed down before the transport below stops.
      await Promise.all([...handedDown.values()]);
      links.clear();
    },
    status: () => ({ mode: config.mode, latencyMs: fixed.latencyMs, bandwidthBytesPerSecond: fixed.bandwidthBytesPerSecond, profile: config.profile !== undefined, links: links.size }),
  };
}

function sendStreamDelay(options: StreamDelayOptions) {
  const config = checkStreamDelayOptions(options);
  return defineLayer({
    type: 'stream-delay',
    name: options.name ?? 'stream-delay',
    needs: ['sendMessage', 'sendStream'],
    optional: ['getPeer'],
    provides: ['sendMessage', 'sendStream'],
    create: (ctx) => {
      const built = buildStreamDelay(ctx, config);
      return { provides: built.provides, start: built.start, stop: built.stop, status: built.status };
    },
  });
}

function receiveStreamDelay(options: StreamDelayOptions) {
  const config = checkStreamDelayOptions(options);
  return defineLayer({
    type: 'stream-delay',
    name: options.name ?? 'stream-delay',
    needs: ['sendMessage', 'sendStream'],
    optional: ['getPeer'],
    takesOptional: ['message', 'stream'],
    provides: ['sendMessage', 'sendStream'],
    offers: { message: 'exclusive', stream: 'exclusive' },
    create: (ctx) => {
      const built = buildStreamDelay(ctx, { ...config, zero: true });
      const incoming = buildStreamDelay(ctx, config);
      return { provides: built.provides, takes: incoming.takes, start: incoming.start, stop: incoming.stop, status: incoming.status };
    },
  });
}

/** The stream delay layer that delays what this node sends. */
export type SendStreamDelayLayer = ReturnType<typeof sendStreamDelay>;
/** The stream delay layer that delays what this node receives. */
export type ReceiveStreamDelayLayer = ReturnType<typeof receiveStreamDelay>;

/**
 * Delays whole messages and streams of the message transport below (e.g. `@deccom/tcp`).
 * Needs `sendMessage`, `sendStream`; optional `getPeer` (who the other node is, for
 * `profile`). Provides `sendMessage`, `sendStream`.
 *
 * A message arrives `latency + size / bandwidth` after it was sent, transmitted after
 * whatever was sent to the same node before (messages and streams share the link). A
 * stream's chunks are paced to the bandwidth and each arrives `latency` after its
 * transmission, with backpressure preserved.
 *
 * In send mode (default) incoming traffic does not pass through this layer at all: the
 * transport's `message` and `stream` hooks reach the layers above directly, so a stream
 * nobody takes is still refused by the transport. In receive mode the layer takes those
 * hooks (when the transport offers them) and offers them again, delayed; sends go
 * straight down.
 */
export function streamDelay(options?: StreamDelayOptions & { mode?: 'send' }): SendStreamDelayLayer;
export function streamDelay(options: StreamDelayOptions & { mode: 'receive' }): ReceiveStreamDelayLayer;
export function streamDelay(options: StreamDelayOptions): SendStreamDelayLayer | ReceiveStreamDelayLayer;
export function streamDelay(options: StreamDelayOptions = {}): SendStreamDelayLayer | ReceiveStreamDelayLayer {
  return options.mode === 'receive' ? receiveStreamDelay(options) : sendStreamDelay(options);
}
