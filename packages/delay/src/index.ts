/**
 * `@deccom/delay`: artificial latency and bandwidth, for testing applications under
 * realistic links. The delay of a message is `latency + size / bandwidth`, from a user
 * function of the two ends, with messages to one destination queued behind each other
 * so the bandwidth holds.
 *
 * - `delay()` delays datagrams (sends, or deliveries with `mode: 'receive'`).
 * - `streamDelay()` delays whole messages and streams of a message transport such as
 *   `@deccom/tcp` (the original's stream delay layer).
 *
 * @example
 * ```ts
 * const node = createNode({
 *   layers: [udp(), delay({ profile: ({ other }) => ({ latencyMs: other.host === '10.0.0.2' ? 80 : 20, bandwidthBytesPerSecond: 1e6 }) })],
 * });
 * ```
 *
 * @packageDocumentation
 */
import {
  addressKey,
  defineLayer,
  InvalidArgumentError,
  type Address,
  type ByteSource,
  type NodeId,
  type PeerRecord,
  type ScopedClock,
} from '@deccom/core';

/** Link properties returned by a profile. */
export interface LinkProfile {
  /** One-way latency in ms. */
  latencyMs: number;
  /** Link rate; undefined or Infinity means no size-dependent delay. */
  bandwidthBytesPerSecond?: number | undefined;
}

/** The two ends of a datagram. `peer` is known when a discovery layer lies below. */
export interface DatagramEnds {
  self: PeerRecord;
  other: Address;
  peer: PeerRecord | undefined;
}

export interface DelayOptions {
  /** Fixed latency when no `profile` is given. Default 0. */
  latencyMs?: number;
  /** Fixed bandwidth when no `profile` is given. Default unlimited. */
  bandwidthBytesPerSecond?: number;
  /** Per-pair link properties; overrides `latencyMs` / `bandwidthBytesPerSecond`. */
  profile?: (ends: DatagramEnds) => LinkProfile;
  /** Delay what this node sends (default) or what it receives (the original's `on_receive`). */
  mode?: 'send' | 'receive';
  /** Instance name. Default `delay`. */
  name?: string;
}

function checkProfile(profile: LinkProfile, where: string): LinkProfile {
  if (!(profile.latencyMs >= 0) || !Number.isFinite(profile.latencyMs)) throw new InvalidArgumentError(`${where}: latencyMs must be a finite number >= 0, got ${profile.latencyMs}`);
  const bw = profile.bandwidthBytesPerSecond;
  if (bw !== undefined && !(bw > 0)) throw new InvalidArgumentError(`${where}: bandwidthBytesPerSecond must be > 0, got ${bw}`);
  return profile;
}

/**
 * Per-destination transmission queue: a message starts transmitting when the previous
 * one to the same destination finished, and takes size / bandwidth.
 */
class LinkQueues {
  private readonly busyUntil = new Map<string, number>();

  constructor(private readonly clock: ScopedClock) {}

  /** Delay in ms before a message of `bytes` to `key` arrives. */
  delayFor(key: string, bytes: number, profile: LinkProfile): number {
    const now = this.clock.now();
    const bw = profile.bandwidthBytesPerSecond;
    if (bw === undefined || bw === Infinity) return profile.latencyMs;
    const start = Math.max(now, this.busyUntil.get(key) ?? 0);
    const done = start + (bytes / bw) * 1000;
    this.busyUntil.set(key, done);
    if (this.busyUntil.size > 10_000) {
      for (const [k, until] of this.busyUntil) if (until <= now) this.busyUntil.delete(k);
    }
    return done - now + profile.latencyMs;
  }

  clear(): void {
    this.busyUntil.clear();
  }
}

/** Delays datagrams. Provides sendDatagram / maxDatagramSize, offers `datagram`; optionally uses `getPeers` to tell the profile who the other end is. */
export function delay(options: DelayOptions = {}) {
  const fixed = checkProfile({ latencyMs: options.latencyMs ?? 0, bandwidthBytesPerSecond: options.bandwidthBytesPerSecond }, 'delay');
  const mode = options.mode ?? 'send';
  if (mode !== 'send' && mode !== 'receive') throw new InvalidArgumentError(`delay: mode must be 'send' or 'receive', got '${String(mode)}'`);
  const zero = options.profile === undefined && fixed.latencyMs === 0 && fixed.bandwidthBytesPerSecond === undefined;
  return defineLayer({
    type: 'delay',
    name: options.name,
    needs: ['sendDatagram', 'maxDatagramSize'],
    optional: ['getPeers'],
    takes: ['datagram'],
    provides: ['sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive' },
    create: (ctx) => {
      const queues = new LinkQueues(ctx.clock);
      const sendBelow = ctx.below.sendDatagram;
      const deliverUp = (data: Uint8Array, from: Address): void => {
        const slot = ctx.slots.datagram;
        if (slot) slot(data, from);
        else ctx.counters.drop('no-receiver');
      };
      const profileFor = (other: Address): LinkProfile => {
        if (!options.profile) return fixed;
        const peer = ctx.below.getPeers?.().find((p) => p.address.port === other.port && p.address.host === other.host);
        return checkProfile(options.profile({ self: ctx.localPeer(), other, peer }), 'delay profile');
      };
      const delayed = (other: Address, data: Uint8Array, forward: (data: Uint8Array) => void): void => {
        const wait = queues.delayFor(addressKey(other), data.byteLength, profileFor(other));
        if (wait <= 0) {
          forward(data);
          return;
        }
        ctx.counters.add('delayed');
        const copy = data.slice();
        ctx.clock.setTimeout(() => forward(copy), wait);
      };
      return {
        stop: () => queues.clear(),
        status: () => ({ mode, latencyMs: fixed.latencyMs, bandwidthBytesPerSecond: fixed.bandwidthBytesPerSecond, profile: options.profile !== undefined }),
        provides: {
          sendDatagram:
            zero || mode === 'receive' ? sendBelow : (to: Address, data: Uint8Array) => delayed(to, data, (d) => sendBelow(to, d)),
          maxDatagramSize: () => ctx.below.maxDatagramSize(),
        },
        takes: {
          datagram: zero || mode === 'send' ? deliverUp : (data: Uint8Array, from: Address) => delayed(from, data, (d) => deliverUp(d, from)),
        },
      };
    },
  });
}

/** The two ends of a message or stream. */
export interface MessageEnds {
  self: PeerRecord;
  other: NodeId;
  peer: PeerRecord | undefined;
}

export interface StreamDelayOptions {
  latencyMs?: number;
  bandwidthBytesPerSecond?: number;
  /** Per-pair link properties, from this node's record and the other node's (via `getPeer`). */
  profile?: (ends: MessageEnds) => LinkProfile;
  /** Instance name. Default `stream-delay`. */
  name?: string;
}

/**
 * Delays whole messages and streams of the message transport below (e.g. `@deccom/tcp`):
 * a message is sent after `latency + size / bandwidth`, queued per destination; a stream
 * starts after the latency and is paced to the bandwidth chunk by chunk, so backpressure
 * still reaches the producer. Needs `getPeer` (from discovery) to know who the other node is.
 */
export function streamDelay(options: StreamDelayOptions = {}) {
  const fixed = checkProfile({ latencyMs: options.latencyMs ?? 0, bandwidthBytesPerSecond: options.bandwidthBytesPerSecond }, 'streamDelay');
  return defineLayer({
    type: 'stream-delay',
    name: options.name ?? 'stream-delay',
    needs: ['sendMessage', 'sendStream', 'getPeer'],
    provides: ['sendMessage', 'sendStream'],
    create: (ctx) => {
      const queues = new LinkQueues(ctx.clock);
      const profileFor = (other: NodeId): LinkProfile =>
        options.profile ? checkProfile(options.profile({ self: ctx.localPeer(), other, peer: ctx.below.getPeer(other) }), 'streamDelay profile') : fixed;
      return {
        stop: () => queues.clear(),
        provides: {
          sendMessage: async (to, data, sendOptions) => {
            const wait = queues.delayFor(to.hex, data.byteLength, profileFor(to));
            if (wait > 0) {
              ctx.counters.add('delayed-messages');
              await ctx.clock.sleep(wait, sendOptions?.signal ?? ctx.signal);
            }
            await ctx.below.sendMessage(to, data, sendOptions);
          },
          sendStream: async (to, source, sendOptions) => {
            const profile = profileFor(to);
            const signal = sendOptions?.signal ?? ctx.signal;
            const paced = async function* (input: ByteSource): AsyncGenerator<Uint8Array> {
              if (profile.latencyMs > 0) await ctx.clock.sleep(profile.latencyMs, signal);
              for await (const chunk of input) {
                const bw = profile.bandwidthBytesPerSecond;
                if (bw !== undefined && bw !== Infinity) await ctx.clock.sleep((chunk.byteLength / bw) * 1000, signal);
                yield chunk;
              }
            };
            ctx.counters.add('delayed-streams');
            await ctx.below.sendStream(to, paced(source), sendOptions);
          },
        },
      };
    },
  });
}
