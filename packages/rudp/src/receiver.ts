/**
 * The receiving side: sessions (one per sender path), acknowledgements, reassembly
 * under memory budgets, and the memory of finished messages that makes delivery exactly
 * once. Pure state like the sender: time comes in as arguments, packets and messages go
 * out through {@link ReceiverHost}.
 *
 * A message is named by (sender session, counter). A session is 64 random bits drawn by
 * the sending layer for each path (run × destination address), so ids of different runs
 * or paths never collide; counters count up from 0 within it. Every chunk also carries the sender's floor, the lowest
 * counter it still works on: everything below is finished or abandoned, so a session only
 * remembers finished counters at or above it (a range set, compact because messages finish
 * roughly in order). A chunk of a finished message is acknowledged (its sender may have
 * missed the earlier ack) but never delivers it again; a chunk of a message refused or
 * expired here is answered with REFUSE again.
 *
 * Only accepted chunks are acknowledged: a chunk is acknowledged once its bytes are in the
 * reassembly buffer (or were delivered before), so "every chunk acknowledged" at the
 * sender means the receiver delivered the message.
 *
 * Memory: a multi-chunk message reserves its length (plus a fixed overhead) from its
 * source address's budget and from the total budget when its first chunk arrives (any
 * chunk can be first), and releases it on delivery or when dropped. Its contiguous buffer
 * is allocated once {@link PROMOTE_BYTES} of its chunks arrived; before that the chunks are
 * kept as copies, so a claim costs memory only when backed by data. No room: REFUSE
 * `memory`, after evicting half-received messages that made no progress for
 * `pressureIdleMs`. Half-received messages idle for `reassemblyTimeoutMs` are dropped
 * (REFUSE `expired`). The number of reassemblies and of sessions is capped too, so a
 * flood of bogus fragments from many addresses costs bounded memory.
 */
import { addressKey, type Address } from '@deccom/core';
import { RangeSet } from './ranges.js';
import type { HotCounters } from './sender.js';
import {
  chunkCount,
  encodeAck,
  encodeRefuse,
  instanceKey,
  isUnknownInstance,
  sameInstance,
  MAX_U32,
  reassemblyCharge,
  type Chunk,
  type InstanceId,
  type RefuseReason,
} from './wire.js';

export { REASSEMBLY_OVERHEAD_BYTES } from './wire.js';
/**
 * Bytes of chunks a message must bring before its whole buffer is allocated. Its length is
 * reserved from the budgets at once, but memory is only committed once the sender has
 * shown it is really sending (a flood of lone fragments claiming large messages then costs
 * the fragments, not the claims).
 */
export const PROMOTE_BYTES = 64 * 1024;
/** Packet-number ranges a session remembers for its acks. */
const RECEIVED_RANGES = 128;
/** Finished-counter ranges a session remembers above the sender's floor. */
const FINISHED_RANGES = 4096;
/** Refusals a session remembers above the sender's floor. */
const REFUSED_ENTRIES = 4096;

export interface ReceiverOptions {
  maxMessageBytes: number;
  peerBudgetBytes: number;
  totalBudgetBytes: number;
  maxReassemblies: number;
  maxSessions: number;
  reassemblyTimeoutMs: number;
  pressureIdleMs: number;
  sessionMemoryMs: number;
  /** Acknowledge at once after this many chunks (otherwise at the end of the receive batch). */
  ackEveryPackets: number;
  /** Most ranges per ACK. */
  ackRanges: number;
}

export interface ReceiverHost {
  readonly instance: InstanceId;
  transmit(to: Address, bytes: Uint8Array): void;
  /** Hands a whole message to the layer above. */
  deliver(data: Uint8Array, from: Address): void;
  count(name: string, amount?: number): void;
  /** Asks for {@link Receiver.flushAcks} to run once the current receive batch is done. */
  requestFlush(): void;
  readonly hot: HotCounters;
}

interface PeerBudget {
  readonly key: string;
  used: number;
  sessions: number;
}

class Reassembly {
  readonly chunks: number;
  readonly have: Uint8Array;
  received = 0;
  /** The whole message, allocated once it has brought {@link PROMOTE_BYTES} of chunks. */
  buffer: Uint8Array | undefined;
  /** Until then its chunks, as copies: a lone (perhaps bogus) fragment costs only its own size. */
  private early: Map<number, Uint8Array> | undefined = new Map();
  private earlyBytes = 0;
  readonly charge: number;

  constructor(
    readonly session: Session,
    readonly counter: number,
    readonly length: number,
    readonly chunkSize: number,
    public lastActivity: number,
  ) {
    this.chunks = chunkCount(length, chunkSize);
    this.have = new Uint8Array(this.chunks);
    this.charge = reassemblyCharge(length, chunkSize);
  }

  /** Stores chunk `index` (not stored before). Throws when the buffer cannot be allocated. */
  store(index: number, payload: Uint8Array): void {
    this.have[index] = 1;
    this.received++;
    if (this.buffer !== undefined) {
      this.buffer.set(payload, index * this.chunkSize);
      return;
    }
    this.early!.set(index, payload.slice());
    this.earlyBytes += payload.byteLength;
    if (this.earlyBytes >= Math.min(PROMOTE_BYTES, this.length) || this.received === this.chunks) this.promote();
  }

  private promote(): void {
    const buffer = new Uint8Array(this.length);
    for (const [index, payload] of this.early!) buffer.set(payload, index * this.chunkSize);
    this.buffer = buffer;
    this.early = undefined;
  }
}

class Session {
  readonly key: string;
  address: Address;
  readonly received = new RangeSet(RECEIVED_RANGES);
  largestAt = 0;
  ackPending = 0;
  /** Chunks in the current receive batch, and in the last one. */
  batch = 0;
  lastBatch = 0;
  inFlushList = false;
  floor = 0;
  readonly finished = new RangeSet(FINISHED_RANGES);
  readonly refused = new Map<number, RefuseReason>();
  readonly reassemblies = new Map<number, Reassembly>();
  touchedAt: number;

  constructor(
    readonly source: InstanceId,
    address: Address,
    public budget: PeerBudget,
    public lastActivity: number,
  ) {
    this.key = instanceKey(source);
    this.address = address;
    this.touchedAt = lastActivity;
  }
}

export class Receiver {
  private readonly sessions = new Map<string, Session>();
  private readonly budgets = new Map<string, PeerBudget>();
  /** Every reassembly in progress, oldest first. */
  private readonly reassemblies = new Set<Reassembly>();
  private lastSession: Session | undefined;
  private flushList: Session[] = [];
  totalUsed = 0;
  /** Highest `totalUsed` seen. */
  peakUsed = 0;

  constructor(
    private readonly host: ReceiverHost,
    readonly options: ReceiverOptions,
  ) {}

  get sessionCount(): number {
    return this.sessions.size;
  }

  get reassemblyCount(): number {
    return this.reassemblies.size;
  }

  private budgetFor(key: string): PeerBudget {
    let budget = this.budgets.get(key);
    if (budget === undefined) {
      budget = { key, used: 0, sessions: 0 };
      this.budgets.set(key, budget);
    }
    return budget;
  }

  private session(source: InstanceId, from: Address, now: number): Session | undefined {
    const last = this.lastSession;
    let session: Session | undefined;
    if (last !== undefined && last.source.hi === source.hi && last.source.lo === source.lo) {
      session = last;
    } else {
      session = this.sessions.get(instanceKey(source));
      if (session === undefined) {
        if (this.sessions.size >= this.options.maxSessions && !this.evictSession(now)) {
          this.host.count('dropped');
          this.host.count('dropped.too-many-sessions');
          return undefined;
        }
        const budget = this.budgetFor(addressKey(from));
        budget.sessions++;
        session = new Session(source, from, budget, now);
        this.sessions.set(session.key, session);
        this.host.count('sessions-opened');
      }
      this.lastSession = session;
    }
    if (session.address.port !== from.port || session.address.host !== from.host) session.address = from;
    session.lastActivity = now;
    // Keeps the map roughly in least-recently-active order (cheaply: at most once a second),
    // so eviction finds quiet sessions at its front.
    if (now - session.touchedAt >= 1000) {
      session.touchedAt = now;
      this.sessions.delete(session.key);
      this.sessions.set(session.key, session);
    }
    return session;
  }

  /**
   * Forgets a session that holds no reassembly and was quiet for `pressureIdleMs`, looking
   * at the least recently active few. A busy session is never forgotten for a new one: its
   * finished-message memory is what keeps its deliveries exactly once.
   */
  private evictSession(now: number): boolean {
    let looked = 0;
    for (const session of this.sessions.values()) {
      if (++looked > 64) break;
      if (session.reassemblies.size === 0 && now - session.lastActivity >= this.options.pressureIdleMs) {
        this.forget(session);
        this.host.count('sessions-evicted');
        return true;
      }
    }
    return false;
  }

  private forget(session: Session): void {
    this.sessions.delete(session.key);
    if (this.lastSession === session) this.lastSession = undefined;
    for (const reassembly of session.reassemblies.values()) this.release(reassembly);
    session.reassemblies.clear();
    session.budget.sessions--;
    if (session.budget.sessions === 0 && session.budget.used === 0) this.budgets.delete(session.budget.key);
  }

  private release(reassembly: Reassembly): void {
    if (!this.reassemblies.delete(reassembly)) return;
    reassembly.session.reassemblies.delete(reassembly.counter);
    reassembly.session.budget.used -= reassembly.charge;
    this.totalUsed -= reassembly.charge;
  }

  /** Handles a CHUNK addressed to this layer. */
  onChunk(chunk: Chunk, from: Address, now: number): void {
    const session = this.session(chunk.source, from, now);
    if (session === undefined) return;
    if (!isUnknownInstance(chunk.destination) && !sameInstance(chunk.destination, this.host.instance)) {
      // Meant for an earlier run of this node: acknowledge it (without taking its bytes) so
      // the sender learns our new instance id and starts its messages over.
      this.host.count('stale-chunks');
      this.noteReceived(session, chunk.packetNumber, now, true);
      return;
    }
    if (chunk.floor > session.floor) this.advanceFloor(session, chunk.floor);
    const counter = chunk.counter;
    if (counter < session.floor || session.finished.has(counter)) {
      this.host.count('duplicate-chunks');
      this.noteReceived(session, chunk.packetNumber, now, false);
      return;
    }
    // A chunk of a refused message is answered with REFUSE and never acknowledged: an
    // acknowledgement counts towards "every chunk acknowledged", which the sender takes as
    // delivery. (Acknowledged until 2026-12-07: a refused message whose REFUSEs were lost
    // resolved as delivered.)
    const refused = session.refused.get(counter);
    if (refused !== undefined) {
      this.sendRefuse(session, counter, refused);
      return;
    }
    let reassembly = session.reassemblies.get(counter);
    if (reassembly === undefined) {
      if (chunk.messageLength > this.options.maxMessageBytes) {
        this.refuse(session, counter, 'too-large');
        return;
      }
      if (chunkCount(chunk.messageLength, chunk.chunkSize) === 1) {
        this.finish(session, counter);
        this.host.count('messages-in');
        this.host.count('message-bytes-in', chunk.messageLength);
        this.noteReceived(session, chunk.packetNumber, now, false);
        this.host.deliver(chunk.payload.slice(), session.address);
        return;
      }
      reassembly = this.admit(session, chunk, now);
      if (reassembly === undefined) return;
    } else if (reassembly.length !== chunk.messageLength || reassembly.chunkSize !== chunk.chunkSize) {
      // Not acknowledged: the chunk disagrees with the message it claims to belong to.
      this.host.count('dropped');
      this.host.count('dropped.inconsistent');
      return;
    }
    const index = chunk.chunkIndex;
    reassembly.lastActivity = now;
    if (reassembly.have[index] === 0) {
      try {
        reassembly.store(index, chunk.payload);
      } catch {
        // The message's buffer could not be allocated (the process is short of memory).
        this.release(reassembly);
        this.refuse(session, counter, 'memory');
        return;
      }
    } else {
      this.host.count('duplicate-chunks');
    }
    if (reassembly.received === reassembly.chunks) {
      this.release(reassembly);
      this.finish(session, counter);
      this.host.count('messages-in');
      this.host.count('message-bytes-in', reassembly.length);
      this.noteReceived(session, chunk.packetNumber, now, true);
      this.host.deliver(reassembly.buffer!, session.address);
      return;
    }
    this.noteReceived(session, chunk.packetNumber, now, false);
  }

  private admit(session: Session, chunk: Chunk, now: number): Reassembly | undefined {
    const charge = reassemblyCharge(chunk.messageLength, chunk.chunkSize);
    const options = this.options;
    const fits = (): boolean =>
      session.budget.used + charge <= options.peerBudgetBytes && this.totalUsed + charge <= options.totalBudgetBytes && this.reassemblies.size < options.maxReassemblies;
    if (!fits()) this.evictIdle(now, fits);
    if (!fits()) {
      this.refuse(session, chunk.counter, 'memory');
      return undefined;
    }
    const reassembly = new Reassembly(session, chunk.counter, chunk.messageLength, chunk.chunkSize, now);
    session.reassemblies.set(chunk.counter, reassembly);
    this.reassemblies.add(reassembly);
    session.budget.used += charge;
    this.totalUsed += charge;
    if (this.totalUsed > this.peakUsed) this.peakUsed = this.totalUsed;
    return reassembly;
  }

  /** Drops half-received messages idle for `pressureIdleMs`, least recently active first, until `fits()`. */
  private evictIdle(now: number, fits: () => boolean): void {
    const idle: Reassembly[] = [];
    for (const reassembly of this.reassemblies) if (now - reassembly.lastActivity >= this.options.pressureIdleMs) idle.push(reassembly);
    idle.sort((a, b) => a.lastActivity - b.lastActivity);
    for (const reassembly of idle) {
      if (fits()) return;
      this.expire(reassembly);
      this.host.count('evicted');
    }
  }

  private expire(reassembly: Reassembly): void {
    this.release(reassembly);
    this.refuse(reassembly.session, reassembly.counter, 'expired');
  }

  private refuse(session: Session, counter: number, reason: RefuseReason): void {
    if (session.refused.size >= REFUSED_ENTRIES) {
      const oldest = session.refused.keys().next().value as number;
      session.refused.delete(oldest);
    }
    session.refused.set(counter, reason);
    this.host.count(`refused.${reason}`);
    this.sendRefuse(session, counter, reason);
  }

  private sendRefuse(session: Session, counter: number, reason: RefuseReason): void {
    this.host.count('refuses-out');
    this.host.transmit(session.address, encodeRefuse({ source: this.host.instance, destination: session.source, counter, reason }));
  }

  private finish(session: Session, counter: number): void {
    session.finished.add(counter);
  }

  private advanceFloor(session: Session, floor: number): void {
    session.floor = floor;
    session.finished.dropBelow(floor);
    if (session.refused.size > 0) for (const counter of [...session.refused.keys()]) if (counter < floor) session.refused.delete(counter);
    if (session.reassemblies.size > 0) {
      for (const reassembly of [...session.reassemblies.values()]) {
        if (reassembly.counter < floor) {
          this.release(reassembly);
          this.host.count('abandoned');
        }
      }
    }
  }

  /** The sender gave a message up. */
  onCancel(source: InstanceId, counter: number, from: Address, now: number): void {
    const session = this.sessions.get(instanceKey(source));
    if (session === undefined) return;
    session.lastActivity = now;
    if (session.address.port !== from.port || session.address.host !== from.host) return;
    const reassembly = session.reassemblies.get(counter);
    if (reassembly) {
      this.release(reassembly);
      this.host.count('cancelled');
    }
    if (counter >= session.floor) this.finish(session, counter);
  }

  /** Records packet `packetNumber` as received and schedules (or sends) the acknowledgement. */
  private noteReceived(session: Session, packetNumber: number, now: number, urgent: boolean): void {
    const received = session.received;
    const largest = received.highest;
    if (packetNumber > largest) session.largestAt = now;
    else urgent = true; // reordered, duplicated or a retransmission filling a gap: tell the sender at once
    received.add(packetNumber);
    session.ackPending++;
    session.batch++;
    // Small batches (a small window) get an ack every 2 chunks, so one lost ack does not
    // leave the sender waiting for its timer; large ones about 2 acks per batch (plus the
    // one at its end), at most `ackEveryPackets` chunks apart: fewer packets to process on
    // a fast path.
    const every = Math.max(2, Math.min(this.options.ackEveryPackets, session.lastBatch >> 1));
    if (urgent || session.ackPending >= every) {
      this.sendAck(session, now);
      this.enlist(session);
      return;
    }
    this.enlist(session);
  }

  private enlist(session: Session): void {
    if (!session.inFlushList) {
      session.inFlushList = true;
      this.flushList.push(session);
      if (this.flushList.length === 1) this.host.requestFlush();
    }
  }

  /** Room this receiver still has for `session`'s new messages. */
  private window(session: Session): number {
    // No reassembly slot left: no room at all, whatever the bytes say.
    if (this.reassemblies.size >= this.options.maxReassemblies) return 0;
    const room = Math.min(this.options.peerBudgetBytes - session.budget.used, this.options.totalBudgetBytes - this.totalUsed);
    return Math.max(0, Math.min(MAX_U32, Math.floor(room)));
  }

  private sendAck(session: Session, now: number): void {
    if (session.received.rangeCount === 0) return;
    session.ackPending = 0;
    const delayMicros = Math.max(0, Math.min(MAX_U32, Math.round((now - session.largestAt) * 1000)));
    const bytes = encodeAck({
      source: this.host.instance,
      destination: session.source,
      windowBytes: this.window(session),
      ackDelayMicros: delayMicros,
      ranges: session.received.topRanges(this.options.ackRanges),
    });
    this.host.hot.acksOut++;
    this.host.transmit(session.address, bytes);
  }

  /** Sends the acknowledgements held back during a receive batch. */
  flushAcks(now: number): void {
    const list = this.flushList;
    this.flushList = [];
    for (const session of list) {
      session.inFlushList = false;
      session.lastBatch = session.batch;
      session.batch = 0;
      if (session.ackPending > 0 && this.sessions.get(session.key) === session) this.sendAck(session, now);
    }
  }

  /** Periodic housekeeping: expires idle reassemblies and forgets quiet sessions. */
  sweep(now: number): void {
    for (const reassembly of [...this.reassemblies]) {
      if (now - reassembly.lastActivity >= this.options.reassemblyTimeoutMs) {
        this.expire(reassembly);
        this.host.count('expired');
      }
    }
    for (const session of [...this.sessions.values()]) {
      if (session.reassemblies.size === 0 && now - session.lastActivity >= this.options.sessionMemoryMs) this.forget(session);
    }
  }

  /** Drops every reassembly, telling each sender (the layer is stopping). */
  close(): void {
    for (const reassembly of [...this.reassemblies]) {
      this.release(reassembly);
      this.sendRefuse(reassembly.session, reassembly.counter, 'stopped');
    }
    this.sessions.clear();
    this.budgets.clear();
    this.lastSession = undefined;
    this.flushList = [];
  }

  status(): Record<string, number> {
    let finishedRanges = 0;
    for (const session of this.sessions.values()) finishedRanges += session.finished.rangeCount;
    return { sessions: this.sessions.size, reassemblies: this.reassemblies.size, reassemblyBytes: this.totalUsed, peakReassemblyBytes: this.peakUsed, finishedRanges };
  }
}
