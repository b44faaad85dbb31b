/**
 * `@deccom/rudp`: reliable messages of any size (1 GiB by default) over any datagram
 * transport, with selective acknowledgements, RTT-based retransmission timeouts, fast
 * retransmit, NewReno congestion control with pacing, a receiver window, and reassembly
 * memory budgets per peer and in total.
 *
 * @example
 * ```ts
 * import { createNode } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 * import { rudp } from '@deccom/rudp';
 *
 * const a = createNode({ layers: [udp(), rudp()] });
 * const b = createNode({ layers: [udp(), rudp()] });
 * await a.start(); await b.start();
 * b.handle('reliable-message', (data, from) => console.log(data.byteLength, 'bytes from', from));
 * await a.sendReliable(b.localAddress(), new Uint8Array(100 * 1024 * 1024), {
 *   onProgress: (done, total) => console.log(`${Math.round((100 * done) / total)}%`),
 *   timeoutMs: 60_000,
 * });
 * await a.stop(); await b.stop();
 * ```
 *
 * The layer also passes plain datagrams through (`sendDatagram`, the `datagram` hook),
 * framed so they can never be taken for its own packets.
 *
 * @packageDocumentation
 */
import {
  checkAddress,
  defineLayer,
  encodeData,
  FRAME_CONTROL,
  FRAME_DATA,
  InvalidArgumentError,
  sameAddress,
  secureRandomBytes,
  type Address,
  type ReliableSendOptions,
} from '@deccom/core';
import { Engine, type EngineOptions } from './engine.js';
export type { EngineOptions } from './engine.js';
import { RUDP_PROTOCOL } from './wire.js';

export { MessageRefusedError, PeerUnresponsiveError } from './errors.js';
export {
  RUDP_PROTOCOL,
  PACKET_CHUNK,
  PACKET_ACK,
  PACKET_REFUSE,
  PACKET_CANCEL,
  REFUSE_REASON,
  CHUNK_HEADER_LENGTH,
  COMMON_HEADER_LENGTH,
  MIN_CHUNK_BYTES,
  MAX_ACK_RANGES,
  checksum32,
  decodePacket,
  encodeChunk,
  encodeAck,
  encodeRefuse,
  encodeCancel,
  type RefuseReason,
  type InstanceId,
  type Chunk,
  type ChunkHeader,
  type Ack,
  type Refuse,
  type Cancel,
  type PacketRange,
  type Packet,
} from './wire.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Default chunk payload: with the 54-byte chunk header and a 1-byte transport frame the UDP payload is 1205 bytes, inside the IPv6 minimum MTU of 1280 (as QUIC's 1200). */
export const DEFAULT_CHUNK_BYTES = 1150;
export const DEFAULT_MAX_MESSAGE_BYTES = GiB;

export interface RudpOptions {
  /**
   * Chunk payload bytes. Default 1150, so a chunk's datagram fits the IPv6 minimum MTU
   * (1280) whatever the path; 1200 or more suits paths known to carry 1500-byte packets.
   * Capped by what the layers below carry; at least 256.
   */
  chunkBytes?: number;
  /** Longest message sent or accepted, in bytes. Default 1 GiB. */
  maxMessageBytes?: number;
  /**
   * Reassembly memory one remote address may hold (the half-received messages from it).
   * Default: `maxMessageBytes` plus room for its chunk bookkeeping and 1 MiB.
   */
  peerBudgetBytes?: number;
  /** Reassembly memory all senders together may hold. Default: twice the per-peer budget. */
  totalBudgetBytes?: number;
  /** Most half-received messages at once, over all senders. Default 4096. */
  maxReassemblies?: number;
  /** Most sender sessions remembered (one per remote layer instance). Default 16,384. */
  maxSessions?: number;
  /** A half-received message with no new chunk for this long is dropped (sender gets REFUSE `expired`). Default 30,000 ms. */
  reassemblyTimeoutMs?: number;
  /** When memory is short, half-received messages idle this long are dropped to make room. Default 2000 ms. */
  pressureIdleMs?: number;
  /**
   * How long a quiet sender session (and the ids of its finished messages) is remembered,
   * and a quiet path's state kept. Default 600,000 ms: longer than any datagram lives in
   * the network (IP's maximum segment lifetime is 2 minutes), so a late duplicate can
   * never deliver a message twice.
   */
  sessionMemoryMs?: number;
  /** `sendReliable` fails with PeerUnresponsiveError when the peer answers nothing for this long. Default 15,000 ms. */
  peerTimeoutMs?: number;
  /** Default overall deadline of `sendReliable` when the call gives none. Default: none (only `peerTimeoutMs`). */
  timeoutMs?: number;
  /** Messages in progress at once per destination; more wait in order. Default 64. */
  maxConcurrentMessages?: number;
  /** Lowest retransmission timeout. Default 50 ms (see rtt.ts for why not RFC 6298's 1 s). */
  minRtoMs?: number;
  /** Highest retransmission timeout (after backoff). Default 10,000 ms. */
  maxRtoMs?: number;
  /** Retransmission timeout before the first RTT sample. Default 1000 ms (RFC 6298 2.1). */
  initialRtoMs?: number;
  /** Largest congestion window. Default 32 MiB. */
  maxWindowBytes?: number;
  /** Initial congestion window in packets. Default 10 (RFC 6928). */
  initialWindowPackets?: number;
  /** Window decrease on a loss with a standing queue in the path (congestion): NewReno's β. Default 0.5. */
  beta?: number;
  /** Window decrease on a loss with no standing queue (taken as random, after Veno). Default 0.8; set it to `beta` for plain NewReno. */
  randomLossBeta?: number;
  /** Pacing bucket depth: at least this many packets... Default 16. */
  minBurstPackets?: number;
  /** ...or what the pacing rate allows in this many ms, whichever is more. Default 2. */
  burstMs?: number;
  /**
   * Paths whose smoothed RTT is under this are not paced: millisecond timers cannot pace
   * them, and their buffers take a window's burst. Default 4 ms.
   */
  pacingMinRttMs?: number;
  /** Acknowledge at once after at most this many chunks (else at the end of each receive batch). Default 32. */
  ackEveryPackets?: number;
  /** Most packet-number ranges per ACK (1..64). Default 32. */
  ackRanges?: number;
  /** Housekeeping period (dead peers, idle reassemblies). Default 1000 ms. */
  sweepIntervalMs?: number;
  /** Instance name. Default `rudp`. */
  name?: string;
}

function positiveInteger(value: number | undefined, fallback: number, name: string, min = 1): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new InvalidArgumentError(`rudp: ${name} must be an integer >= ${min}, got ${String(value)}`);
  return v;
}

function positiveNumber(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new InvalidArgumentError(`rudp: ${name} must be a positive number, got ${String(value)}`);
  return v;
}

/** Checks every option and fills in the defaults. */
export function resolveOptions(options: RudpOptions = {}): EngineOptions {
  const maxMessageBytes = positiveInteger(options.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes', 0);
  if (maxMessageBytes > Number.MAX_SAFE_INTEGER) throw new InvalidArgumentError('rudp: maxMessageBytes is too large');
  const peerBudgetBytes = positiveInteger(options.peerBudgetBytes, maxMessageBytes + Math.ceil(maxMessageBytes / 256) + MiB, 'peerBudgetBytes');
  const chunkBytes = positiveInteger(options.chunkBytes, DEFAULT_CHUNK_BYTES, 'chunkBytes', 256);
  if (chunkBytes > 0xffff) throw new InvalidArgumentError(`rudp: chunkBytes must be <= 65535, got ${chunkBytes}`);
  const minRtoMs = positiveNumber(options.minRtoMs, 50, 'minRtoMs');
  const maxRtoMs = positiveNumber(options.maxRtoMs, 10_000, 'maxRtoMs');
  if (maxRtoMs < minRtoMs) throw new InvalidArgumentError('rudp: maxRtoMs must be >= minRtoMs');
  const beta = options.beta ?? 0.5;
  if (typeof beta !== 'number' || !(beta > 0 && beta < 1)) throw new InvalidArgumentError(`rudp: beta must be in (0, 1), got ${String(beta)}`);
  const randomLossBeta = options.randomLossBeta ?? 0.8;
  if (typeof randomLossBeta !== 'number' || !(randomLossBeta >= beta && randomLossBeta < 1)) {
    throw new InvalidArgumentError(`rudp: randomLossBeta must be in [beta, 1), got ${String(randomLossBeta)}`);
  }
  const ackRanges = positiveInteger(options.ackRanges, 32, 'ackRanges');
  if (ackRanges > 64) throw new InvalidArgumentError(`rudp: ackRanges must be <= 64, got ${ackRanges}`);
  if (options.timeoutMs !== undefined) positiveNumber(options.timeoutMs, 1, 'timeoutMs');
  return {
    chunkBytes,
    maxMessageBytes,
    peerBudgetBytes,
    totalBudgetBytes: positiveInteger(options.totalBudgetBytes, 2 * peerBudgetBytes, 'totalBudgetBytes'),
    maxReassemblies: positiveInteger(options.maxReassemblies, 4096, 'maxReassemblies'),
    maxSessions: positiveInteger(options.maxSessions, 16_384, 'maxSessions'),
    reassemblyTimeoutMs: positiveNumber(options.reassemblyTimeoutMs, 30_000, 'reassemblyTimeoutMs'),
    pressureIdleMs: positiveNumber(options.pressureIdleMs, 2_000, 'pressureIdleMs'),
    sessionMemoryMs: positiveNumber(options.sessionMemoryMs, 600_000, 'sessionMemoryMs'),
    peerTimeoutMs: positiveNumber(options.peerTimeoutMs, 15_000, 'peerTimeoutMs'),
    sendTimeoutMs: options.timeoutMs,
    maxConcurrentMessages: positiveInteger(options.maxConcurrentMessages, 64, 'maxConcurrentMessages'),
    minRtoMs,
    maxRtoMs,
    initialRtoMs: positiveNumber(options.initialRtoMs, 1000, 'initialRtoMs'),
    maxWindowBytes: positiveInteger(options.maxWindowBytes, 32 * MiB, 'maxWindowBytes'),
    initialWindowPackets: positiveInteger(options.initialWindowPackets, 10, 'initialWindowPackets', 2),
    beta,
    randomLossBeta,
    minBurstPackets: positiveInteger(options.minBurstPackets, 16, 'minBurstPackets'),
    burstMs: positiveNumber(options.burstMs, 2, 'burstMs'),
    pacingMinRttMs: options.pacingMinRttMs === 0 ? 0 : positiveNumber(options.pacingMinRttMs, 4, 'pacingMinRttMs'),
    ackEveryPackets: positiveInteger(options.ackEveryPackets, 32, 'ackEveryPackets', 2),
    ackRanges,
    sweepIntervalMs: positiveNumber(options.sweepIntervalMs, 1000, 'sweepIntervalMs'),
  };
}

/**
 * The reliable-UDP layer. Needs `sendDatagram` and `maxDatagramSize` (and uses
 * `localAddress` when below, to refuse sends to itself), takes `datagram`;
 * provides `sendReliable`, `sendDatagram` and `maxDatagramSize` (one byte less than below);
 * offers the exclusive hooks `reliable-message` (whole messages) and `datagram` (plain
 * datagrams passing through).
 */
export function rudp(options: RudpOptions = {}) {
  const resolved = resolveOptions(options);
  return defineLayer({
    type: 'rudp',
    name: options.name,
    protocol: RUDP_PROTOCOL,
    needs: ['sendDatagram', 'maxDatagramSize'],
    optional: ['localAddress'],
    takes: ['datagram'],
    provides: ['sendReliable', 'sendDatagram', 'maxDatagramSize'],
    offers: { 'reliable-message': 'exclusive', datagram: 'exclusive' },
    create: (ctx) => {
      const counters = ctx.counters;
      const immediates = new Set<ReturnType<typeof setImmediate>>();
      const engine = new Engine(
        {
          now: () => ctx.clock.now(),
          setTimeout: (callback, delayMs) => ctx.clock.setTimeout(callback, delayMs),
          clearTimeout: (handle) => ctx.clock.clearTimeout(handle),
          // After the current batch of received datagrams (the check phase follows the
          // poll phase that read them): acknowledgements of a whole batch go out together,
          // and a long send yields to incoming acks. On a virtual clock this runs at the
          // same virtual instant. Cleared on stop like the clock's timers.
          soon: (callback) => {
            const handle = setImmediate(() => {
              immediates.delete(handle);
              callback();
            });
            immediates.add(handle);
          },
          transmit: (to, bytes) => ctx.below.sendDatagram(to, bytes),
          deliver: (data, from) => {
            const slot = ctx.slots['reliable-message'];
            if (slot === undefined) {
              counters.drop('no-receiver');
              return;
            }
            try {
              slot(data, from);
            } catch (error) {
              counters.add('handler-errors');
              ctx.logger.warn('a reliable-message handler threw', { error: (error as Error).message });
            }
          },
          maxDatagramSize: () => ctx.below.maxDatagramSize(),
          count: (name, amount) => counters.add(name, amount),
          drop: (reason) => counters.drop(reason),
          randomInstanceBytes: () => secureRandomBytes(8),
          warn: (message, fields) => ctx.logger.warn(message, fields),
        },
        resolved,
      );
      counters.attach(() => engine.hotCounters());

      return {
        start: () => engine.start(),
        stop: () => {
          engine.stop();
          for (const handle of immediates) clearImmediate(handle);
          immediates.clear();
        },
        status: () => engine.status(),
        provides: {
          sendReliable: (to: Address, data: Uint8Array, sendOptions?: ReliableSendOptions) => {
            try {
              checkAddress(to, 'rudp.sendReliable');
              if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('rudp.sendReliable: data must be a Uint8Array');
              // The transport drops datagrams to itself: fail now rather than after peerTimeoutMs.
              const self = engine.started ? ctx.below.localAddress?.() : undefined;
              if (self !== undefined && sameAddress(self, to)) throw new InvalidArgumentError('rudp.sendReliable: cannot send to this node itself');
            } catch (error) {
              return Promise.reject(error);
            }
            return engine.send(to, data, sendOptions);
          },
          sendDatagram: (to: Address, data: Uint8Array) => {
            const limit = ctx.below.maxDatagramSize() - 1;
            if (data.byteLength > limit) throw new InvalidArgumentError(`rudp.sendDatagram: ${data.byteLength} bytes exceed maxDatagramSize() = ${limit}`);
            ctx.below.sendDatagram(to, encodeData(data));
          },
          maxDatagramSize: () => ctx.below.maxDatagramSize() - 1,
        },
        takes: {
          datagram: (data: Uint8Array, from: Address) => {
            const first = data[0];
            if (first === FRAME_DATA) {
              const slot = ctx.slots.datagram;
              if (slot !== undefined) slot(data.subarray(1), from);
              else counters.drop('no-receiver');
            } else if (first === FRAME_CONTROL) {
              engine.onControl(data, from);
            } else {
              counters.drop(first === undefined ? 'truncated' : 'unknown-type');
            }
          },
        },
      };
    },
  });
}
