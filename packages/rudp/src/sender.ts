/**
 * The sending side towards one remote address (a path): message queue, packet numbers,
 * packets in flight, loss detection, retransmission, RTT, congestion control and pacing.
 * Pure state: time comes in as arguments, packets go out through {@link SenderHost}, so
 * the machine runs the same on a virtual clock and on real sockets.
 *
 * Loss detection follows RFC 9002 section 6 (QUIC), which is TCP's SACK-based recovery
 * (RFC 6675) and RACK (RFC 8985) expressed with packet numbers: every transmission has a
 * new packet number, so a packet is lost once a later one is acknowledged and it is
 * either `PACKET_THRESHOLD` (3) numbers behind the largest acknowledged (fast
 * retransmit, as three duplicate acks in TCP) or older than 9/8 RTT (time threshold),
 * both widened when a loss proves spurious (a path that reorders, RFC 8985 6.2);
 * its chunk is queued for retransmission in a new packet. The retransmission timer
 * (RTO, RFC 6298, see rtt.ts) is the backstop: on expiry it sends one probe (the oldest
 * unacknowledged chunk, outside the congestion window) and backs off; a third expiry
 * in a row declares everything in flight lost and collapses the window.
 */
import type { Address } from '@deccom/core';
import { NewReno, Pacer } from './congestion.js';
import { RttEstimator } from './rtt.js';
import {
  chunkCount,
  reassemblyCharge,
  writeChunk,
  isUnknownInstance,
  sameInstance,
  CHUNK_HEADER_LENGTH,
  MAX_U32,
  UNKNOWN_INSTANCE,
  type Ack,
  type InstanceId,
} from './wire.js';

/** RFC 9002 6.1.1 kPacketThreshold: reordering tolerated before a packet counts as lost. */
export const PACKET_THRESHOLD = 3;
/**
 * How far reordering tolerance may grow after spurious losses (RFC 8985 6.2 grows RACK's
 * reordering window the same way): up to this many packets, and up to 2 RTTs.
 */
export const MAX_PACKET_THRESHOLD = 32;
export const MAX_LOSS_DELAY_FACTOR = 2;
/** Losses remembered per path for spurious-loss detection. */
const RECENTLY_LOST = 64;
/**
 * Consecutive timer expiries (a probe timeout, then RTOs) after which everything in flight
 * counts as lost and the window collapses (persistent congestion).
 */
export const PERSISTENT_TIMEOUTS = 3;
/** Replaced receiver instances remembered per path (their late acknowledgements are ignored). */
export const RETIRED_INSTANCES = 4;
/** Probes at the longest backoff that fit in `peerTimeoutMs` (see `timeoutDelay`). */
export const PROBES_PER_PEER_TIMEOUT = 8;
/** Allowance in the probe timeout for the receiver acknowledging at the end of its receive batch. */
export const PROBE_ACK_DELAY_MS = 1;

const IN_FLIGHT = 0;
const ACKED = 1;
const LOST = 2;
/** Forgotten without a congestion signal (the receiver restarted). */
const DISCARDED = 3;

interface PacketRecord {
  readonly packetNumber: number;
  readonly message: OutgoingMessage;
  readonly index: number;
  readonly bytes: number;
  readonly sentAt: number;
  /** The sender was using its congestion window when it sent this (RFC 9002 7.8). */
  readonly windowLimited: boolean;
  state: number;
}

export type MessageStatus = 'waiting' | 'active' | 'done';

/** One message being sent. `data` is the caller's buffer, not copied. */
export class OutgoingMessage {
  counter = -1;
  readonly chunks: number;
  /** What the receiver charges its budget for reassembling this message. */
  readonly charge: number;
  readonly acked: Uint8Array;
  ackedChunks = 0;
  ackedBytes = 0;
  /** Next chunk never sent yet. */
  nextNew = 0;
  status: MessageStatus = 'waiting';
  /** Progress changed since last reported. */
  progressDirty = false;
  /** Set by the owner: called once when the message ends (no argument on success). */
  settle: (error?: unknown) => void = () => undefined;
  onProgress: ((acknowledgedBytes: number, totalBytes: number) => void) | undefined;

  constructor(
    readonly data: Uint8Array,
    readonly chunkSize: number,
  ) {
    this.chunks = chunkCount(data.byteLength, chunkSize);
    this.acked = new Uint8Array(this.chunks);
    this.charge = reassemblyCharge(data.byteLength, chunkSize);
  }

  get length(): number {
    return this.data.byteLength;
  }

  payload(index: number): Uint8Array {
    const start = index * this.chunkSize;
    return this.data.subarray(start, Math.min(this.data.byteLength, start + this.chunkSize));
  }

  get complete(): boolean {
    return this.ackedChunks === this.chunks;
  }

  /** Forgets every acknowledgement (the receiver restarted and lost what it had). */
  reset(): void {
    this.acked.fill(0);
    this.ackedChunks = 0;
    this.ackedBytes = 0;
    this.nextNew = 0;
    this.progressDirty = true;
  }
}

export interface SenderHost {
  /** Sends a packet to the path's address. `bytes` may be a reused buffer: copy before keeping it. */
  transmit(to: Address, bytes: Uint8Array): void;
  /** A buffer at least CHUNK_HEADER_LENGTH + the largest chunk long, reused for every chunk. */
  readonly scratch: Uint8Array;
  count(name: string, amount?: number): void;
  /** Per-packet counters, kept in fields (a map update per packet costs too much). */
  readonly hot: HotCounters;
}

/** Counters updated per packet. */
export interface HotCounters {
  chunksOut: number;
  chunkBytesOut: number;
  retransmissions: number;
  packetsLost: number;
  chunksIn: number;
  acksIn: number;
  acksOut: number;
}

export interface SenderOptions {
  /** Chunk payload bytes for this path. */
  chunkSize: number;
  /** Most messages in progress at once on this path; more wait in order. */
  maxConcurrentMessages: number;
  minRtoMs: number;
  maxRtoMs: number;
  initialRtoMs: number;
  /** Silence after which the owner gives up on the path; the backoff keeps several probes inside it. */
  peerTimeoutMs: number;
  /** Congestion window cap in bytes. */
  maxWindowBytes: number;
  /** NewReno β (congestive loss). */
  beta: number;
  /** β for a loss taken as random (Veno). */
  randomLossBeta: number;
  initialWindowPackets: number;
  minBurstPackets: number;
  burstMs: number;
  /** Paths with a smoothed RTT under this are not paced. */
  pacingMinRttMs: number;
}

/** What an ACK did, for the owner to act on. */
export interface AckOutcome {
  /** The receiver is a new instance (restarted): messages in progress were restarted. */
  readonly restarted: boolean;
  readonly newlyAcked: number;
  readonly lost: number;
}

export class PeerSender {
  readonly rtt: RttEstimator;
  readonly cc: NewReno;
  readonly pacer: Pacer;
  readonly packetBytes: number;
  /** The receiver instance as last heard of, and the ones it replaced (restarts). */
  peerInstance: InstanceId = UNKNOWN_INSTANCE;
  private readonly retiredInstances: InstanceId[] = [];
  /**
   * The first packet number sent after `peerInstance` was learned. A successor instance can
   * only have seen packets from here on (it acknowledges them as stale to announce
   * itself); an acknowledgement of an unknown instance that covers none of them comes
   * from one that went before (late), not after.
   */
  private instanceFromPacket = 0;
  nextPacketNumber = 0;
  /** Counter the next message started gets. */
  nextCounter = 0;
  /** Messages not started yet, FIFO from `waitingHead`. */
  private waiting: OutgoingMessage[] = [];
  private waitingHead = 0;
  /** Messages in progress, served round-robin from `cursor`. */
  readonly active: OutgoingMessage[] = [];
  private cursor = 0;
  /** Chunks to send again: parallel arrays, FIFO from `retransmitHead`. */
  private retransmitMessages: OutgoingMessage[] = [];
  private retransmitIndexes: number[] = [];
  private retransmitHead = 0;
  /** Packets from `basePacketNumber` on, at `records[recordsHead + (pn - basePacketNumber)]`. */
  private records: (PacketRecord | undefined)[] = [];
  private recordsHead = 0;
  private basePacketNumber = 0;
  bytesInFlight = 0;
  largestAcked = -1;
  /**
   * Receiver's advertised room for new messages (bytes), from the newest acknowledgement.
   * It already counts every message the receiver had a chunk of when it sent that
   * acknowledgement; messages started that have no chunk acknowledged yet may not be
   * counted in it, so the sender counts them against it itself (their charge).
   */
  windowBytes = Infinity;
  /** Earliest time a packet in flight becomes lost by the time threshold. */
  private lossTime: number | undefined;
  /** Consecutive retransmission timeouts. */
  timeouts = 0;
  private lastSendAt = 0;
  /** Last acknowledgement or refusal from the peer, or when work began on an idle path. */
  lastProgressAt = 0;
  /** Reordering tolerance: packet threshold and time-threshold factor, widened by spurious losses. */
  packetThreshold = PACKET_THRESHOLD;
  lossDelayFactor = 1;
  private readonly recentlyLost = new Map<number, { readonly record: PacketRecord; readonly largestAcked: number }>();
  /** Probes owed by a timeout (sent outside the congestion window). */
  private probes = 0;
  /** Earliest time pacing lets the next packet out, when it held one back. */
  private pacingResumeAt: number | undefined;
  /** Lowest counter of a message still in progress. */
  floor = 0;
  /** Whether the owner's ready list holds this path. */
  inReadyList = false;
  /** Time the owner's timer for this path is armed for. */
  timerAt: number | undefined;
  timerHandle: unknown;

  /**
   * `session` is the path's own random 64-bit id, the source of its packets: message ids
   * (session, counter) and packet numbers are per path, so two paths to one receiver (one
   * layer reached at two addresses) or a path forgotten and made again never share a
   * namespace at the receiver.
   */
  constructor(
    readonly address: Address,
    readonly key: string,
    readonly session: InstanceId,
    private readonly host: SenderHost,
    readonly options: SenderOptions,
  ) {
    this.packetBytes = CHUNK_HEADER_LENGTH + options.chunkSize;
    this.rtt = new RttEstimator(options.minRtoMs, options.maxRtoMs, options.initialRtoMs);
    this.cc = new NewReno({
      packetBytes: this.packetBytes,
      initialPackets: options.initialWindowPackets,
      maximumBytes: options.maxWindowBytes,
      beta: options.beta,
      randomLossBeta: options.randomLossBeta,
    });
    this.pacer = new Pacer(this.packetBytes, options.minBurstPackets, options.burstMs);
  }

  /** Messages not finished (waiting or in progress). */
  get pendingMessages(): number {
    return this.active.length + this.waiting.length - this.waitingHead;
  }

  get idle(): boolean {
    return this.pendingMessages === 0;
  }

  enqueue(message: OutgoingMessage, now: number): void {
    if (this.idle) this.lastProgressAt = now;
    this.waiting.push(message);
  }

  /** Removes a message (cancelled, timed out, refused). Returns whether it had started. */
  remove(message: OutgoingMessage): boolean {
    const started = message.status === 'active';
    if (message.status === 'active') {
      const i = this.active.indexOf(message);
      if (i >= 0) {
        this.active.splice(i, 1);
        if (this.cursor > i) this.cursor--;
      }
      this.updateFloor();
    } else if (message.status === 'waiting') {
      const i = this.waiting.indexOf(message, this.waitingHead);
      if (i >= 0) this.waiting.splice(i, 1);
    }
    message.status = 'done';
    return started;
  }

  /** The message in progress with this counter. */
  findActive(counter: number): OutgoingMessage | undefined {
    for (const message of this.active) if (message.counter === counter) return message;
    return undefined;
  }

  /** Every unfinished message, for failing them all. */
  takeAll(): OutgoingMessage[] {
    const all = [...this.active, ...this.waiting.slice(this.waitingHead)];
    for (const message of all) message.status = 'done';
    this.active.length = 0;
    this.waiting = [];
    this.waitingHead = 0;
    this.updateFloor();
    return all;
  }

  private updateFloor(): void {
    let floor = this.nextCounter;
    for (const message of this.active) if (message.counter < floor) floor = message.counter;
    this.floor = floor;
  }

  private canActivate(): boolean {
    if (this.waitingHead >= this.waiting.length) return false;
    if (this.active.length === 0) return true;
    if (this.active.length >= this.options.maxConcurrentMessages) return false;
    if (this.nextCounter > MAX_U32) return false;
    const next = this.waiting[this.waitingHead]!;
    // Single-chunk messages are delivered on arrival and hold no reassembly memory.
    if (next.chunks === 1) return true;
    let unconfirmed = 0;
    for (const message of this.active) if (message.chunks > 1 && message.ackedChunks === 0) unconfirmed += message.charge;
    return next.charge <= this.windowBytes - unconfirmed;
  }

  private activate(): OutgoingMessage | undefined {
    if (!this.canActivate()) return undefined;
    const message = this.waiting[this.waitingHead]!;
    this.waiting[this.waitingHead++] = undefined as unknown as OutgoingMessage;
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
    message.counter = this.nextCounter++;
    message.status = 'active';
    this.active.push(message);
    if (this.active.length === 1) this.floor = message.counter;
    return message;
  }

  private pruneRetransmits(): void {
    while (this.retransmitHead < this.retransmitMessages.length) {
      const message = this.retransmitMessages[this.retransmitHead]!;
      if (message.status === 'active' && message.acked[this.retransmitIndexes[this.retransmitHead]!] === 0) return;
      this.retransmitHead++;
    }
    this.retransmitMessages = [];
    this.retransmitIndexes = [];
    this.retransmitHead = 0;
  }

  /** Whether there is anything to send now, ignoring the congestion window and pacing. */
  hasSendable(): boolean {
    if (this.probes > 0) return true;
    this.pruneRetransmits();
    if (this.retransmitHead < this.retransmitMessages.length) return true;
    for (const message of this.active) if (message.nextNew < message.chunks) return true;
    return this.canActivate();
  }

  /** The next chunk to send: retransmissions first, then new chunks round-robin over messages. */
  private pick(): { message: OutgoingMessage; index: number; retransmit: boolean } | undefined {
    this.pruneRetransmits();
    if (this.retransmitHead < this.retransmitMessages.length) {
      const message = this.retransmitMessages[this.retransmitHead]!;
      const index = this.retransmitIndexes[this.retransmitHead]!;
      this.retransmitHead++;
      return { message, index, retransmit: true };
    }
    // A waiting message starts as soon as the limits allow, so it shares the path with the
    // ones in progress instead of queueing behind them.
    const started = this.activate();
    if (started) return { message: started, index: started.nextNew++, retransmit: false };
    const n = this.active.length;
    for (let k = 0; k < n; k++) {
      if (this.cursor >= n) this.cursor = 0;
      const message = this.active[this.cursor++]!;
      if (message.nextNew < message.chunks) return { message, index: message.nextNew++, retransmit: false };
    }
    return undefined;
  }

  /** Sends up to `limit` packets allowed by probes, the congestion window and pacing. */
  sendSome(limit: number, now: number): number {
    let sent = 0;
    while (sent < limit) {
      let probe = false;
      if (this.probes > 0) {
        probe = true;
      } else {
        if (this.bytesInFlight >= this.cc.window) break;
        const wait = this.pacer.delay(now, Pacer.rate(this.cc.window, this.rtt.srtt, this.cc.slowStart, this.options.pacingMinRttMs));
        if (wait > 0) {
          this.pacingResumeAt = now + wait;
          break;
        }
      }
      const picked = probe ? this.pickProbe() : this.pick();
      if (!picked) {
        if (probe) {
          this.probes = 0;
          continue;
        }
        break;
      }
      if (probe) this.probes--;
      this.transmitChunk(picked.message, picked.index, now, picked.retransmit || probe);
      sent++;
    }
    if (sent > 0) this.pacingResumeAt = undefined;
    return sent;
  }

  /** A probe: the oldest chunk still unacknowledged in flight, else whatever is next. */
  private pickProbe(): { message: OutgoingMessage; index: number; retransmit: boolean } | undefined {
    for (let i = this.recordsHead; i < this.records.length; i++) {
      const record = this.records[i];
      if (record && record.state === IN_FLIGHT && record.message.status === 'active' && record.message.acked[record.index] === 0) {
        return { message: record.message, index: record.index, retransmit: true };
      }
    }
    return this.pick();
  }

  private transmitChunk(message: OutgoingMessage, index: number, now: number, retransmit: boolean): void {
    const payload = message.payload(index);
    const packetNumber = this.nextPacketNumber++;
    const scratch = this.host.scratch;
    const length = writeChunk(scratch, this.session, this.peerInstance, packetNumber, message.counter, this.floor, message.length, message.chunkSize, index, payload);
    this.bytesInFlight += length;
    const record: PacketRecord = {
      packetNumber,
      message,
      index,
      bytes: length,
      sentAt: now,
      windowLimited: this.bytesInFlight * 2 >= this.cc.window,
      state: IN_FLIGHT,
    };
    if (this.records.length - this.recordsHead === 0) {
      this.records.length = 0;
      this.recordsHead = 0;
      this.basePacketNumber = packetNumber;
    }
    this.records.push(record);
    this.pacer.spend(length);
    this.lastSendAt = now;
    const hot = this.host.hot;
    hot.chunksOut++;
    hot.chunkBytesOut += payload.byteLength;
    if (retransmit) hot.retransmissions++;
    this.host.transmit(this.address, scratch.subarray(0, length));
  }

  /** Drops finished records from the front. */
  private advanceBase(): void {
    const records = this.records;
    let head = this.recordsHead;
    while (head < records.length && records[head]!.state !== IN_FLIGHT) {
      records[head] = undefined;
      head++;
      this.basePacketNumber++;
    }
    if (head === records.length) {
      records.length = 0;
      head = 0;
    } else if (head > 4096 && head * 2 > records.length) {
      this.records = records.slice(head);
      head = 0;
    }
    this.recordsHead = head;
  }

  private chunkAcked(message: OutgoingMessage, index: number): boolean {
    if (message.acked[index] !== 0) return false;
    message.acked[index] = 1;
    message.ackedChunks++;
    message.ackedBytes += Math.min(message.chunkSize, message.length - index * message.chunkSize);
    message.progressDirty = true;
    return true;
  }

  /** Processes an acknowledgement. Completed messages are left for the owner to collect (`complete`). */
  onAck(ack: Ack, now: number): AckOutcome | undefined {
    let restarted = false;
    if (isUnknownInstance(this.peerInstance)) {
      this.peerInstance = ack.source;
      this.instanceFromPacket = this.nextPacketNumber;
    } else if (!sameInstance(this.peerInstance, ack.source)) {
      // A late acknowledgement from an instance already replaced must not switch back.
      if (this.retiredInstances.some((retired) => sameInstance(retired, ack.source))) return undefined;
      // Nor may one from an instance that went before the current one, never heard of
      // (its acknowledgements were all late): it covers only packets sent before.
      if (ack.ranges[0]!.high < this.instanceFromPacket) return undefined;
      this.retiredInstances.push(this.peerInstance);
      if (this.retiredInstances.length > RETIRED_INSTANCES) this.retiredInstances.shift();
      this.peerInstance = ack.source;
      this.instanceFromPacket = this.nextPacketNumber;
      this.restart();
      restarted = true;
    }
    this.lastProgressAt = now;
    const lastSent = this.nextPacketNumber - 1;
    const largest = Math.min(ack.ranges[0]!.high, lastSent);
    // An acknowledgement overtaken by a newer one carries an older, larger window.
    if (restarted || largest >= this.largestAcked) this.windowBytes = ack.windowBytes;
    this.cc.onAckRound(largest, this.nextPacketNumber);
    let newlyAcked = 0;
    let largestRecord: PacketRecord | undefined;
    for (const range of ack.ranges) {
      const high = Math.min(range.high, lastSent);
      const low = Math.max(range.low, this.basePacketNumber);
      for (let pn = low; pn <= high; pn++) {
        const record = this.records[this.recordsHead + (pn - this.basePacketNumber)];
        if (record === undefined || record.state !== IN_FLIGHT) continue;
        if (pn === largest) largestRecord = record;
        this.bytesInFlight -= record.bytes;
        this.cc.onAcked(record.bytes, record.sentAt, record.windowLimited);
        record.state = ACKED;
        newlyAcked++;
        if (record.message.status === 'active') this.chunkAcked(record.message, record.index);
      }
    }
    if (largestRecord !== undefined && this.rtt.update(now - largestRecord.sentAt, ack.ackDelayMicros / 1000)) {
      this.cc.onRttSample(now - largestRecord.sentAt);
      this.cc.onRttUpdate(this.rtt.srtt!, now);
    }
    if (this.recentlyLost.size > 0) this.checkSpurious(ack);
    if (newlyAcked > 0) this.timeouts = 0;
    if (largest > this.largestAcked) this.largestAcked = largest;
    const lost = this.detectLosses(now);
    this.advanceBase();
    return { restarted, newlyAcked, lost };
  }

  /** RFC 9002 6.1: packet and time thresholds below the largest acknowledged. */
  private detectLosses(now: number): number {
    this.lossTime = undefined;
    const largest = this.largestAcked;
    if (largest < this.basePacketNumber) return 0;
    const lossDelay = this.rtt.lossDelay() * this.lossDelayFactor;
    const packetThreshold = this.packetThreshold;
    let lost = 0;
    const end = Math.min(largest, this.nextPacketNumber - 1);
    for (let pn = this.basePacketNumber; pn < end; pn++) {
      const record = this.records[this.recordsHead + (pn - this.basePacketNumber)];
      if (record === undefined || record.state !== IN_FLIGHT) continue;
      // One expression decides both "lost now" and "when": a timer armed for `at` must find
      // the packet lost when it fires (sentAt <= now - delay and sentAt + delay <= now can
      // disagree in floating point).
      const at = record.sentAt + lossDelay;
      if (largest - pn >= packetThreshold) {
        this.host.count('lost-by-packet-threshold');
        this.markLost(record, now);
        lost++;
      } else if (at <= now) {
        this.host.count('lost-by-time-threshold');
        this.markLost(record, now);
        lost++;
      } else if (this.lossTime === undefined || at < this.lossTime) {
        this.lossTime = at;
      }
    }
    return lost;
  }

  private markLost(record: PacketRecord, now: number): void {
    record.state = LOST;
    // Remembered briefly, in case a later acknowledgement shows the loss was spurious.
    this.recentlyLost.set(record.packetNumber, { record, largestAcked: this.largestAcked });
    if (this.recentlyLost.size > RECENTLY_LOST) this.recentlyLost.delete(this.recentlyLost.keys().next().value as number);
    this.bytesInFlight -= record.bytes;
    this.cc.onLost(record.sentAt, now);
    this.host.hot.packetsLost++;
    const message = record.message;
    if (message.status === 'active' && message.acked[record.index] === 0) {
      this.retransmitMessages.push(message);
      this.retransmitIndexes.push(record.index);
    }
  }

  /**
   * Packets declared lost that this ACK acknowledges after all: the path reorders more
   * than allowed for. Widens the reordering tolerance (the packet threshold to just past
   * the distance observed, the time threshold by 1/8 RTT, both capped) and takes the chunk
   * as delivered if its retransmission has not gone out yet.
   */
  private checkSpurious(ack: Ack): void {
    const ranges = ack.ranges;
    for (const [packetNumber, lost] of this.recentlyLost) {
      let acked = false;
      for (const range of ranges) {
        if (packetNumber > range.high) break;
        if (packetNumber >= range.low) {
          acked = true;
          break;
        }
      }
      if (!acked) continue;
      this.recentlyLost.delete(packetNumber);
      this.host.count('spurious-losses');
      this.packetThreshold = Math.min(MAX_PACKET_THRESHOLD, Math.max(this.packetThreshold, lost.largestAcked - packetNumber + 1));
      this.lossDelayFactor = Math.min(MAX_LOSS_DELAY_FACTOR, this.lossDelayFactor + 1 / 8);
      const record = lost.record;
      if (record.message.status === 'active') this.chunkAcked(record.message, record.index);
    }
  }

  /** The receiver restarted: everything it acknowledged is gone; start the messages in progress over. */
  private restart(): void {
    for (let i = this.recordsHead; i < this.records.length; i++) {
      const record = this.records[i];
      if (record && record.state === IN_FLIGHT) {
        record.state = DISCARDED;
        this.bytesInFlight -= record.bytes;
      }
    }
    this.advanceBase();
    this.retransmitMessages = [];
    this.retransmitIndexes = [];
    this.retransmitHead = 0;
    // Packets declared lost went to the old instance: a later acknowledgement of one (the
    // new instance acknowledges stale chunks without keeping them) is not a delivery.
    this.recentlyLost.clear();
    for (const message of this.active) message.reset();
    this.lossTime = undefined;
    this.largestAcked = this.nextPacketNumber - 1;
    this.host.count('peer-restarts');
  }

  /** Messages whose every chunk is acknowledged; removed from the path. */
  collectComplete(): OutgoingMessage[] {
    let done: OutgoingMessage[] | undefined;
    for (let i = 0; i < this.active.length; ) {
      const message = this.active[i]!;
      if (message.complete) {
        (done ??= []).push(message);
        this.active.splice(i, 1);
        if (this.cursor > i) this.cursor--;
        message.status = 'done';
      } else {
        i++;
      }
    }
    if (done) this.updateFloor();
    return done ?? [];
  }

  /**
   * Time from the last send to the next timer expiry: first a tail-loss probe, then the
   * RFC 6298 RTO, doubling with each further expiry.
   */
  private timeoutDelay(): number {
    if (this.timeouts === 0) return this.rtt.probeTimeout(PROBE_ACK_DELAY_MS);
    // The backoff stops doubling at 1/PROBES_PER_PEER_TIMEOUT of peerTimeoutMs (never below
    // the RTO itself), so a lossy path that still answers gets that many chances before
    // the owner gives up on it.
    const cap = Math.max(this.rtt.rto(), this.options.peerTimeoutMs / PROBES_PER_PEER_TIMEOUT);
    return Math.min(this.rtt.backedOffRto(this.timeouts - 1), cap);
  }

  /** When the owner should call {@link onTimer} next, or undefined. */
  nextTimerAt(): number | undefined {
    let at = this.lossTime;
    if (this.bytesInFlight > 0) {
      const rto = this.lastSendAt + this.timeoutDelay();
      if (at === undefined || rto < at) at = rto;
    }
    if (this.pacingResumeAt !== undefined && (at === undefined || this.pacingResumeAt < at)) at = this.pacingResumeAt;
    return at;
  }

  /** Handles a loss-time, retransmission-timeout or pacing deadline that has come. */
  onTimer(now: number): void {
    if (this.pacingResumeAt !== undefined && this.pacingResumeAt <= now) this.pacingResumeAt = undefined;
    if (this.lossTime !== undefined && this.lossTime <= now) {
      this.host.count('loss-timer');
      this.detectLosses(now);
      this.advanceBase();
      return;
    }
    if (this.bytesInFlight > 0 && now >= this.lastSendAt + this.timeoutDelay()) {
      this.timeouts++;
      this.host.count('timeouts');
      if (this.timeouts >= PERSISTENT_TIMEOUTS) {
        for (let i = this.recordsHead; i < this.records.length; i++) {
          const record = this.records[i];
          if (record && record.state === IN_FLIGHT) this.markLost(record, now);
        }
        this.advanceBase();
        this.cc.onPersistentCongestion(now);
        this.host.count('persistent-congestion');
      }
      // The first expiry sends one probe (a tail loss); later ones two (RFC 9002 6.2.4 allows
      // two). With 30% loss each way a lone probe's round trip fails half the time; with
      // single probes and the backoff doubling to maxRtoMs, 15 of 80 seeded 8 MiB transfers on
      // a fake link went peerTimeoutMs without an answer on a path that still worked.
      this.probes = this.timeouts >= 2 ? 2 : 1;
      // The timer restarts from this probe (RFC 6298 5.5-5.6).
      this.lastSendAt = now;
    }
  }
}
