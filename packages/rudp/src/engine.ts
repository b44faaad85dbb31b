/**
 * One rudp endpoint: the paths it sends on ({@link PeerSender}, one per remote address),
 * the receiver, the timers, and the scheduler that shares the sending between paths.
 * Independent of the layer plumbing (see {@link EngineHost}), so tests can run two
 * engines over a hand-made link on a virtual clock.
 */
import {
  AbortError,
  addressKey,
  dropReason,
  InvalidArgumentError,
  MAX_TIMEOUT_MS,
  StateError,
  TimeoutError,
  type Address,
  type ReliableSendOptions,
  type TimerHandle,
} from '@deccom/core';
import { MessageRefusedError, PeerUnresponsiveError } from './errors.js';
import { Receiver, type ReceiverOptions } from './receiver.js';
import { OutgoingMessage, PeerSender, type HotCounters, type SenderOptions } from './sender.js';
import {
  decodePacket,
  encodeCancel,
  instanceFromBytes,
  instanceKey,
  isUnknownInstance,
  sameInstance,
  CHUNK_HEADER_LENGTH,
  MAX_CHUNK_BYTES,
  MIN_CHUNK_BYTES,
  PACKET_ACK,
  PACKET_CANCEL,
  PACKET_CHUNK,
  PACKET_REFUSE,
  UNKNOWN_INSTANCE,
  type InstanceId,
} from './wire.js';

/** Packets one scheduler turn sends before it lets the event loop read (acks, other I/O). */
export const PACKETS_PER_TURN = 256;
/** Packets a path sends before the scheduler moves on to the next path (fair sharing). */
export const PACKETS_PER_QUANTUM = 8;
/** Shortest timer a path arms (ms). */
export const MIN_TIMER_MS = 0.1;

export interface EngineOptions extends ReceiverOptions, Omit<SenderOptions, 'chunkSize'> {
  /** Chunk payload bytes (capped by what fits the datagrams below). */
  chunkBytes: number;
  /** A message's sender fails with PeerUnresponsiveError after this long without any answer. */
  peerTimeoutMs: number;
  /** Housekeeping period. */
  sweepIntervalMs: number;
  /** Default overall deadline of a send, or undefined for none. */
  sendTimeoutMs: number | undefined;
}

export interface EngineHost {
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** Runs `callback` once, right after the current batch of received packets. */
  soon(callback: () => void): void;
  /** Hands a packet to the layer below. */
  transmit(to: Address, bytes: Uint8Array): void;
  /** Hands a whole message to the layer above. */
  deliver(data: Uint8Array, from: Address): void;
  maxDatagramSize(): number;
  count(name: string, amount?: number): void;
  drop(reason: string): void;
  /** 8 bytes from a CSPRNG, for the instance id. */
  randomInstanceBytes(): Uint8Array;
  warn(message: string, fields?: Record<string, unknown>): void;
}

interface MessageState {
  readonly peer: PeerSender;
  timer: TimerHandle | undefined;
  cleanup: (() => void) | undefined;
}

export class Engine {
  instance: InstanceId = UNKNOWN_INSTANCE;
  private readonly peers = new Map<string, PeerSender>();
  /** Paths with something to send, served in turn. */
  private ready: PeerSender[] = [];
  private readyCursor = 0;
  private readonly states = new Map<OutgoingMessage, MessageState>();
  private receiver: Receiver | undefined;
  /** Every chunk is built here (the layers below copy what they keep): room for the largest. */
  private readonly scratch = new Uint8Array(CHUNK_HEADER_LENGTH + MAX_CHUNK_BYTES);
  private running = false;
  /** Stopped after running: sends get STOPPED rather than NOT_STARTED. */
  private stopped = false;
  private pumping = false;
  private soonScheduled = false;
  private sweepTimer: TimerHandle | undefined;
  readonly hot: HotCounters = { chunksOut: 0, chunkBytesOut: 0, retransmissions: 0, packetsLost: 0, chunksIn: 0, acksIn: 0, acksOut: 0 };
  /** Paths by their session id (acknowledgements and refusals name it). */
  private readonly peersBySession = new Map<string, PeerSender>();

  constructor(
    private readonly host: EngineHost,
    readonly options: EngineOptions,
  ) {}

  get started(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    // A fresh instance id per start: message ids (instance, counter) of different runs never collide.
    this.instance = instanceFromBytes(this.host.randomInstanceBytes());
    this.receiver = new Receiver(
      {
        instance: this.instance,
        transmit: (to, bytes) => this.transmit(to, bytes),
        deliver: (data, from) => this.host.deliver(data, from),
        count: (name, amount) => this.host.count(name, amount),
        requestFlush: () => this.scheduleSoon(),
        hot: this.hot,
      },
      this.options,
    );
    this.running = true;
    this.stopped = false;
    this.scheduleSweep();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.stopped = true;
    if (this.sweepTimer !== undefined) this.host.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    const stopped = new StateError('STOPPED', 'rudp: the node stopped');
    for (const peer of this.peers.values()) {
      this.clearPeerTimer(peer);
      // Receivers free what they reassemble of our unfinished messages now, not at their
      // timeout (the layers below stop after this one, so the CANCELs still go out).
      for (const message of peer.active) {
        this.transmit(peer.address, encodeCancel({ source: peer.session, destination: peer.peerInstance, counter: message.counter }));
        this.host.count('cancels-at-stop');
      }
      for (const message of peer.takeAll()) this.settle(message, stopped);
    }
    this.peers.clear();
    this.peersBySession.clear();
    this.ready = [];
    this.receiver?.close();
    this.receiver = undefined;
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.host.setTimeout(() => {
      if (!this.running) return;
      this.sweep();
      this.scheduleSweep();
    }, this.options.sweepIntervalMs);
  }

  private transmit(to: Address, bytes: Uint8Array): void {
    try {
      this.host.transmit(to, bytes);
    } catch (error) {
      this.host.count('send-errors');
      this.host.warn('could not send a packet', { error: (error as Error).message });
    }
  }

  private scheduleSoon(): void {
    if (this.soonScheduled) return;
    this.soonScheduled = true;
    this.host.soon(() => {
      this.soonScheduled = false;
      if (!this.running) return;
      this.receiver?.flushAcks(this.host.now());
      this.pump();
    });
  }

  private chunkSizeFor(): number {
    const room = this.host.maxDatagramSize() - CHUNK_HEADER_LENGTH;
    const size = Math.min(this.options.chunkBytes, room, MAX_CHUNK_BYTES);
    if (size < MIN_CHUNK_BYTES) {
      throw new InvalidArgumentError(`rudp: the layers below carry ${this.host.maxDatagramSize()}-byte datagrams, too small for ${MIN_CHUNK_BYTES}-byte chunks and the ${CHUNK_HEADER_LENGTH}-byte header`);
    }
    return size;
  }

  private peerFor(to: Address): PeerSender {
    const key = addressKey(to);
    let peer = this.peers.get(key);
    if (peer === undefined) {
      const chunkSize = this.chunkSizeFor();
      // A fresh random session id per path (never 0, never one in use here).
      let session = instanceFromBytes(this.host.randomInstanceBytes());
      while (this.peersBySession.has(instanceKey(session)) || sameInstance(session, this.instance)) session = instanceFromBytes(this.host.randomInstanceBytes());
      // The scratch buffer stays the same until stop, which drops every path.
      peer = new PeerSender(
        { host: to.host, port: to.port },
        key,
        session,
        {
          scratch: this.scratch,
          transmit: (address, bytes) => this.transmit(address, bytes),
          count: (name, amount) => this.host.count(name, amount),
          hot: this.hot,
        },
        { ...this.options, chunkSize },
      );
      this.peersBySession.set(instanceKey(session), peer);
      this.peers.set(key, peer);
    }
    return peer;
  }

  /** Sends `data` reliably; resolves once the receiver has all of it. */
  send(to: Address, data: Uint8Array, options: ReliableSendOptions = {}): Promise<void> {
    if (!this.running) {
      return Promise.reject(this.stopped ? new StateError('STOPPED', 'rudp.sendReliable: the node stopped') : new StateError('NOT_STARTED', 'rudp.sendReliable: the layer is not started'));
    }
    if (data.byteLength > this.options.maxMessageBytes) {
      return Promise.reject(new InvalidArgumentError(`rudp.sendReliable: ${data.byteLength} bytes exceed maxMessageBytes = ${this.options.maxMessageBytes}`));
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError('rudp.sendReliable: aborted', { cause: signal.reason }));
    const timeoutMs = options.timeoutMs ?? this.options.sendTimeoutMs;
    if (timeoutMs !== undefined && !(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
      return Promise.reject(new InvalidArgumentError(`rudp.sendReliable: timeoutMs must be > 0 and at most ${MAX_TIMEOUT_MS}, got ${timeoutMs}`));
    }
    let peer: PeerSender;
    try {
      peer = this.peerFor(to);
    } catch (error) {
      return Promise.reject(error);
    }
    const message = new OutgoingMessage(data, peer.options.chunkSize);
    message.onProgress = options.onProgress;
    const state: MessageState = { peer, timer: undefined, cleanup: undefined };
    const promise = new Promise<void>((resolve, reject) => {
      message.settle = (error?: unknown) => {
        if (state.timer !== undefined) this.host.clearTimeout(state.timer);
        state.cleanup?.();
        this.states.delete(message);
        if (error === undefined) resolve();
        else reject(error);
      };
    });
    this.states.set(message, state);
    if (timeoutMs !== undefined) {
      state.timer = this.host.setTimeout(() => {
        state.timer = undefined;
        this.cancel(message, new TimeoutError(`rudp.sendReliable: ${message.ackedBytes} of ${message.length} bytes acknowledged within ${timeoutMs} ms`));
      }, timeoutMs);
    }
    if (signal !== undefined) {
      const onAbort = (): void => this.cancel(message, new AbortError('rudp.sendReliable: aborted', { cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
      state.cleanup = () => signal.removeEventListener('abort', onAbort);
    }
    this.host.count('messages-out');
    peer.enqueue(message, this.host.now());
    this.markReady(peer);
    this.pump();
    return promise;
  }

  private settle(message: OutgoingMessage, error?: unknown): void {
    if (error === undefined) {
      this.host.count('messages-delivered');
      this.host.count('message-bytes-delivered', message.length);
    } else {
      this.host.count('messages-failed');
    }
    message.settle(error);
  }

  /** Ends a message early (deadline, abort), telling the receiver when it had started. */
  private cancel(message: OutgoingMessage, error: unknown): void {
    if (message.status === 'done') return;
    const state = this.states.get(message);
    if (state === undefined) return;
    const peer = state.peer;
    const started = peer.remove(message);
    if (started && this.running) {
      this.transmit(peer.address, encodeCancel({ source: peer.session, destination: peer.peerInstance, counter: message.counter }));
    }
    this.settle(message, error);
  }

  private markReady(peer: PeerSender): void {
    if (peer.inReadyList) return;
    peer.inReadyList = true;
    this.ready.push(peer);
  }

  /** Sends what the paths may send, a quantum per path in turn, at most PACKETS_PER_TURN per call. */
  private pump(): void {
    if (this.pumping || !this.running) return;
    this.pumping = true;
    try {
      const now = this.host.now();
      let budget = PACKETS_PER_TURN;
      let progressed = true;
      while (budget > 0 && this.ready.length > 0 && progressed) {
        progressed = false;
        const ready = this.ready;
        for (let k = 0; k < ready.length && budget > 0; k++) {
          if (this.readyCursor >= ready.length) this.readyCursor = 0;
          const peer = ready[this.readyCursor]!;
          const sent = peer.sendSome(Math.min(PACKETS_PER_QUANTUM, budget), now);
          budget -= sent;
          if (sent > 0) progressed = true;
          if (!peer.hasSendable()) {
            peer.inReadyList = false;
            ready.splice(this.readyCursor, 1);
            k--;
          } else {
            this.readyCursor++;
          }
          this.armPeerTimer(peer);
        }
      }
      if (budget === 0 && this.ready.length > 0) this.scheduleSoon();
    } finally {
      this.pumping = false;
    }
  }

  private clearPeerTimer(peer: PeerSender): void {
    if (peer.timerHandle !== undefined) this.host.clearTimeout(peer.timerHandle as TimerHandle);
    peer.timerHandle = undefined;
    peer.timerAt = undefined;
  }

  /** Arms the path's one timer for its next deadline (a timer already due earlier is kept and re-armed when it fires). */
  private armPeerTimer(peer: PeerSender): void {
    let at = peer.nextTimerAt();
    if (at === undefined) return;
    // Never for a time already past: a deadline the path did not act on when its timer
    // fired must not make the timer fire again at the same instant, forever.
    const now = this.host.now();
    if (at <= now) at = now + MIN_TIMER_MS;
    if (peer.timerAt !== undefined && peer.timerAt <= at) return;
    this.clearPeerTimer(peer);
    peer.timerAt = at;
    peer.timerHandle = this.host.setTimeout(() => this.onPeerTimer(peer), at - now);
  }

  private onPeerTimer(peer: PeerSender): void {
    peer.timerHandle = undefined;
    peer.timerAt = undefined;
    if (!this.running || this.peers.get(peer.key) !== peer) return;
    peer.onTimer(this.host.now());
    if (peer.hasSendable()) this.markReady(peer);
    this.pump();
    this.armPeerTimer(peer);
  }

  /** A control packet from below (frame byte 0x01). Never throws. */
  onControl(bytes: Uint8Array, from: Address): void {
    if (!this.running) return;
    let packet;
    try {
      packet = decodePacket(bytes);
    } catch (error) {
      this.host.drop(dropReason(error));
      return;
    }
    try {
      const now = this.host.now();
      switch (packet.type) {
        case PACKET_CHUNK:
          this.hot.chunksIn++;
          this.receiver!.onChunk(packet.packet, from, now);
          return;
        case PACKET_ACK: {
          const ack = packet.packet;
          this.hot.acksIn++;
          // Found by the session it names, not by the address it came from (a receiver
          // behind a NAT that rebinds keeps its transfers).
          const peer = this.peersBySession.get(instanceKey(ack.destination));
          if (peer === undefined) {
            this.host.drop('stale');
            return;
          }
          if (peer.onAck(ack, now) === undefined) {
            this.host.drop('stale');
            return;
          }
          this.afterProgress(peer);
          return;
        }
        case PACKET_REFUSE: {
          const refuse = packet.packet;
          this.host.count('refuses-in');
          const peer = this.peersBySession.get(instanceKey(refuse.destination));
          if (peer === undefined) {
            this.host.drop('stale');
            return;
          }
          const message = peer.findActive(refuse.counter);
          if (message === undefined) return;
          peer.lastProgressAt = now;
          peer.remove(message);
          this.settle(message, new MessageRefusedError(refuse.reason, `rudp.sendReliable: the receiver refused the message (${refuse.reason})`));
          this.markReady(peer);
          this.pump();
          return;
        }
        case PACKET_CANCEL: {
          const cancel = packet.packet;
          // A CANCEL may precede the sender's first acknowledgement (destination unknown).
          if (!isUnknownInstance(cancel.destination) && !sameInstance(cancel.destination, this.instance)) {
            this.host.drop('stale');
            return;
          }
          this.receiver!.onCancel(cancel.source, cancel.counter, from, now);
          return;
        }
      }
    } catch (error) {
      this.host.count('internal-errors');
      this.host.warn('rudp: error while handling a packet', { error: (error as Error).message });
    }
  }

  /** After an ACK: settles finished messages, reports progress, sends more. */
  private afterProgress(peer: PeerSender): void {
    for (const message of peer.collectComplete()) {
      this.reportProgress(message);
      this.settle(message);
    }
    for (const message of peer.active) if (message.progressDirty) this.reportProgress(message);
    this.markReady(peer);
    this.pump();
    this.armPeerTimer(peer);
  }

  private reportProgress(message: OutgoingMessage): void {
    message.progressDirty = false;
    const onProgress = message.onProgress;
    if (onProgress === undefined) return;
    try {
      onProgress(message.ackedBytes, message.length);
    } catch (error) {
      this.host.count('progress-callback-errors');
      this.host.warn('rudp: an onProgress callback threw', { error: (error as Error).message });
    }
  }

  /** Periodic: dead paths, idle reassemblies, quiet sessions. */
  private sweep(): void {
    const now = this.host.now();
    this.receiver?.sweep(now);
    for (const peer of [...this.peers.values()]) {
      if (peer.idle) {
        if (now - peer.lastProgressAt >= this.options.sessionMemoryMs) {
          this.forgetPeer(peer);
        }
        continue;
      }
      if (now - peer.lastProgressAt >= this.options.peerTimeoutMs) {
        this.host.count('peers-unresponsive');
        this.forgetPeer(peer);
        const error = new PeerUnresponsiveError(`rudp.sendReliable: ${peer.key} acknowledged nothing for ${Math.round(now - peer.lastProgressAt)} ms`);
        for (const message of peer.takeAll()) this.settle(message, error);
      }
    }
  }

  private forgetPeer(peer: PeerSender): void {
    this.clearPeerTimer(peer);
    this.peers.delete(peer.key);
    this.peersBySession.delete(instanceKey(peer.session));
  }

  /** The per-packet counters under their public names. */
  hotCounters(): Record<string, number> {
    const hot = this.hot;
    return {
      'chunks-out': hot.chunksOut,
      'chunk-bytes-out': hot.chunkBytesOut,
      retransmissions: hot.retransmissions,
      'packets-lost': hot.packetsLost,
      'chunks-in': hot.chunksIn,
      'acks-in': hot.acksIn,
      'acks-out': hot.acksOut,
    };
  }

  status(): Record<string, unknown> {
    const paths = [...this.peers.values()].slice(0, 16).map((peer) => ({
      address: peer.key,
      messages: peer.pendingMessages,
      cwnd: peer.cc.window,
      bytesInFlight: peer.bytesInFlight,
      srttMs: peer.rtt.srtt,
      minRttMs: peer.rtt.minRtt,
      rtoMs: peer.rtt.rto(),
      ssthresh: peer.cc.ssthresh,
      reductions: peer.cc.reductions,
      randomReductions: peer.cc.randomReductions,
      hystartExits: peer.cc.hystartExits,
      packetThreshold: peer.packetThreshold,
      backlogPackets: peer.cc.backlogPackets(),
    }));
    return { paths: this.peers.size, pathSample: paths, receiver: this.receiver?.status() };
  }

  /** Live counts for tests and benchmarks. */
  receiverStatus(): Record<string, number> | undefined {
    return this.receiver?.status();
  }
}
