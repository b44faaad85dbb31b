/**
 * One TCP connection: introduction, the frame decoder, the ordered write path with its
 * pending-bytes limit, stream multiplexing with credit-based flow control, and the
 * graceful close (GOAWAY both ways, then FIN).
 */
import type { Socket } from 'node:net';
import { AbortError, InvalidArgumentError, WireError, type Address, type ByteSource, type NodeId, type ScopedClock, type TimerHandle } from '@deccom/core';
import { ConnectionError, messageTooLarge, StreamError } from './errors.js';
import { IncomingStream, type IncomingStreamHost } from './incoming-stream.js';
import {
  CANCEL_BY_CONSUMER,
  CANCEL_NO_RECEIVER,
  CANCEL_TOO_MANY_STREAMS,
  CHUNK_HEADER_LENGTH,
  decodeHello,
  decodeStreamCode,
  decodeStreamId,
  decodeWindow,
  encodeFrameHeader,
  encodeGoaway,
  encodeMessage,
  encodeStreamCode,
  encodeStreamFrame,
  FRAME_GOAWAY,
  FRAME_HEADER_LENGTH,
  FRAME_HELLO,
  FRAME_MESSAGE,
  FRAME_STREAM_CANCEL,
  FRAME_STREAM_DONE,
  FRAME_STREAM_END,
  FRAME_STREAM_OPEN,
  FRAME_STREAM_RESET,
  FRAME_WINDOW,
  FrameDecoder,
  type FrameSink,
  MAX_CHUNK_BYTES,
  RESET_CANCELLED,
  RESET_CLOSING,
  RESET_SOURCE_ERROR,
  WINDOW_FRAME_LENGTH,
  writeChunkHeader,
  writeWindow,
  type Hello,
} from './wire.js';

/** Options of errors that report a socket event, not a call (see DecComErrorOptions.captureStack). */
const NO_STACK = { captureStack: false } as const;

/** Messages up to this size are copied behind their header (one write, buffer reusable at once). */
export const COPY_LIMIT_BYTES = 64 * 1024;
/**
 * Small frames written in one tick are copied into a shared staging buffer and handed
 * to the socket as one write at the end of the tick: no allocation and no stream
 * bookkeeping per message.
 */
const STAGE_BYTES = 64 * 1024;
const STAGE_FRAME_LIMIT = 8 * 1024;
/** A quiet tick stages from Node's shared pool (allocations under 4 KiB) and keeps nothing. */
const SMALL_STAGE_BYTES = 4095;
const EMPTY_STAGE = Buffer.alloc(0);
/**
 * Largest message written ahead of the peer's HELLO (`SendOptions.early`). Small enough
 * for any sensible peer limit and for one segment with the HELLO.
 */
export const EARLY_MESSAGE_BYTES = 1024;
/** Largest piece of a stream written at once (bounded by the peer's credit too). */
export const STREAM_PIECE_BYTES = 1024 * 1024;

/** Per-connection counters kept in plain variables (the hot path). */
export interface HotCounters {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  streamBytesIn: number;
  streamBytesOut: number;
}

export interface ConnectionSettings {
  readonly maxMessageBytes: number;
  readonly streamWindowBytes: number;
  readonly maxPendingBytes: number;
  readonly maxIncomingStreams: number;
  readonly handshakeTimeoutMs: number;
  readonly closeTimeoutMs: number;
}

/** What a connection needs from the layer that owns it. */
export interface ConnectionHost {
  readonly clock: ScopedClock;
  readonly hot: HotCounters;
  readonly settings: ConnectionSettings;
  /** This node's encoded HELLO frame. */
  hello(): Uint8Array;
  count(name: string): void;
  /** Introduction complete. Returns an error to close the connection with, if it is refused. */
  established(connection: Connection): Error | undefined;
  message(connection: Connection, data: Uint8Array): void;
  /** A new incoming stream; false when nobody takes streams. */
  stream(connection: Connection, stream: IncomingStream): boolean;
  /** The peer sent GOAWAY: it will send nothing more here. */
  goaway(connection: Connection): void;
  /** The socket closed. `unsent` are admitted-never waiters to retry elsewhere. */
  closed(connection: Connection, reason: Error | undefined, unsent: Waiter[]): void;
}

/**
 * Something waiting to be written in order: a message, a stream opening, a stream
 * piece, a GOAWAY. Admitted (written) when the pending-bytes limit allows, in FIFO order.
 */
export interface Waiter {
  readonly bytes: number;
  /** Messages and stream openings may move to another connection to the same peer; stream pieces may not. */
  readonly movable: boolean;
  /** Set once admitted, failed or expired; such waiters are skipped. */
  done: boolean;
  /** Writes it, on `connection`, at admission. */
  write(connection: Connection): void;
  /**
   * For messages sent with `SendOptions.early`: writes it on a connection still waiting
   * for the peer's HELLO, if that connection takes it; true when written (the waiter is
   * then done and settles with the introduction).
   */
  early?: (connection: Connection) => boolean;
  fail(error: Error): void;
}

interface OutStream {
  readonly id: number;
  credit: number;
  /** END was written: no RESET may follow. */
  endWritten: boolean;
  /** The receiver confirmed it got the END (STREAM_DONE). */
  acknowledged: boolean;
  /** Why the stream must stop (cancelled by the receiver, connection closed). */
  stop: Error | undefined;
  wake: (() => void) | undefined;
  /** Told once the stream must stop, to give up a wait on the source. */
  cancel: ((reason: Error) => void) | undefined;
}

type ConnectionState = 'handshake' | 'open' | 'closed';

let sequence = 0;

/** Stops `stream` for `reason` (the first reason stands): wakes what it waits on, the source included. */
function halt(stream: OutStream, reason: Error): void {
  if (!stream.stop) {
    stream.stop = reason;
    stream.cancel?.(reason);
  }
  stream.wake?.();
}

/** End of a tick in which `connection` wrote: one module-level function, so no closure per connection. */
function endOfTick(connection: Connection): void {
  connection.endOfTick();
}

export class Connection implements IncomingStreamHost, FrameSink {
  /** Creation order, for telling the newer of two connections. */
  readonly sequence = ++sequence;
  readonly remoteAddress: Address;
  state: ConnectionState = 'handshake';
  /** No new work: finish what is admitted, then GOAWAY. */
  draining = false;
  /**
   * Traffic in either direction since the owner's idle sweep last looked (set on every
   * read and once per tick with writes: a store, no clock read on the hot path).
   */
  activity = true;
  /** When the idle sweep last saw traffic (or when the connection was introduced). */
  lastActivityAt: number;
  remote: Hello | undefined;
  private sentHello = false;
  private sentGoaway = false;
  private receivedGoaway = false;
  private readonly decoder: FrameDecoder;
  private readonly hot: HotCounters;
  private readonly waiters: Waiter[] = [];
  private waiterHead = 0;
  private readonly outStreams = new Map<number, OutStream>();
  private nextStreamId = 1;
  private readonly inStreams = new Map<number, IncomingStream | null>();
  private lastIncomingId = 0;
  private scheduled = false;
  private stage: Buffer = EMPTY_STAGE;
  private stageStart = 0;
  private stageFill = 0;
  private tickBytes = 0;
  /** Stream bytes received and not yet read by the application, over all incoming streams. */
  private streamHeld = 0;
  private readingPaused = false;
  private timer: TimerHandle | undefined;
  private closeReason: Error | undefined;
  private readonly readyPromise: Promise<void>;
  private settleReady!: (error?: Error) => void;
  private closedResolve!: () => void;
  /** Resolves when the socket has closed. */
  readonly closedPromise: Promise<void>;

  constructor(
    readonly socket: Socket,
    /** True when this node dialed. */
    readonly outbound: boolean,
    private readonly host: ConnectionHost,
    /** For outbound connections: the node we meant to reach. */
    readonly expected: NodeId | undefined,
    /** For sockets adopted from a simultaneous open: neither side "dialed". */
    readonly adopted = false,
  ) {
    this.remoteAddress = { host: normalizeHost(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.settleReady = (error) => (error ? reject(error) : resolve());
    });
    this.readyPromise.catch(() => undefined);
    this.closedPromise = new Promise<void>((resolve) => {
      this.closedResolve = resolve;
    });
    this.hot = host.hot;
    this.lastActivityAt = host.clock.now();
    // The connection is the sink itself: the decoder's calls go to the same prototype
    // methods on every connection, so their optimised code survives new connections.
    this.decoder = new FrameDecoder({ maxMessageBytes: host.settings.maxMessageBytes }, this);
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('drain', () => this.flush());
    socket.on('error', (error) => {
      this.closeReason ??= new ConnectionError(this.state === 'handshake' ? 'CONNECT_FAILED' : 'CONNECTION_CLOSED', `tcp: ${error.message}`, { cause: error });
    });
    socket.on('close', () => this.onClose());
    this.timer = host.clock.setTimeout(() => {
      this.host.count('handshake-timeouts');
      this.destroy(new ConnectionError('CONNECT_FAILED', `tcp: no introduction within ${host.settings.handshakeTimeoutMs} ms`));
    }, host.settings.handshakeTimeoutMs);
  }

  /** Resolves when both introductions are done; rejects if the connection closes first. */
  get ready(): Promise<void> {
    return this.readyPromise;
  }

  get remoteId(): NodeId | undefined {
    return this.remote?.peer.id;
  }

  /** Dialer side: introduce ourselves once the TCP connection is up. */
  introduce(): void {
    if (this.sentHello || this.state !== 'handshake') return;
    this.sentHello = true;
    this.writeRaw(this.host.hello());
  }

  /**
   * True while a message may be written ahead of the peer's HELLO: this node dialed,
   * introduced itself, and has not heard back yet (see {@link writeEarlyMessage}).
   */
  get acceptsEarly(): boolean {
    return this.outbound && !this.adopted && this.sentHello && this.state === 'handshake' && !this.socket.destroyed && !this.socket.writableEnded;
  }

  /**
   * Writes a small message right behind our HELLO, before the peer introduced itself
   * (`SendOptions.early`): it leaves in the same segment as the HELLO. The peer's limits
   * are not known yet; a message over {@link EARLY_MESSAGE_BYTES} or over our own limit
   * is refused here (the caller sends it the normal way).
   */
  writeEarlyMessage(data: Uint8Array): boolean {
    if (!this.acceptsEarly || data.byteLength > EARLY_MESSAGE_BYTES || data.byteLength > this.host.settings.maxMessageBytes) return false;
    this.hot.messagesOut++;
    this.hot.bytesOut += FRAME_HEADER_LENGTH + data.byteLength;
    this.stageMessage(data);
    return true;
  }

  /** Copies a small message frame into the stage (written with the next flush). */
  private stageMessage(data: Uint8Array): void {
    const offset = this.reserve(FRAME_HEADER_LENGTH + data.byteLength);
    const stage = this.stage;
    stage[offset] = FRAME_MESSAGE;
    stage.writeUInt32BE(data.byteLength, offset + 1);
    stage.set(data, offset + FRAME_HEADER_LENGTH);
  }

  /** Bytes written but not yet taken by the OS, plus bytes waiting for admission. */
  get pendingBytes(): number {
    let queued = 0;
    for (let i = this.waiterHead; i < this.waiters.length; i++) if (!this.waiters[i]!.done) queued += this.waiters[i]!.bytes;
    return this.socket.writableLength + (this.stageFill - this.stageStart) + queued;
  }

  get openStreams(): { incoming: number; outgoing: number } {
    return { incoming: this.inStreams.size, outgoing: this.outStreams.size };
  }

  /**
   * Work in progress: a stream open in either direction (even a stalled one), writes
   * waiting for admission, or bytes not yet taken by the OS. Such a connection is not idle.
   */
  get busy(): boolean {
    return (
      this.outStreams.size > 0 ||
      this.inStreams.size > 0 ||
      this.waiterHead < this.waiters.length ||
      this.stageFill > this.stageStart ||
      this.socket.writableLength > 0
    );
  }

  // ------------------------------------------------------------------ receive path

  private onData(data: Buffer): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    this.activity = true;
    this.hot.bytesIn += data.byteLength;
    try {
      this.decoder.push(data);
    } catch (error) {
      this.protocolError(error);
    }
  }

  /** A peer broke the protocol: disconnect it with a typed error, counted. */
  private protocolError(error: unknown): void {
    const wire = error instanceof WireError ? error : new WireError('WIRE_MALFORMED', 'tcp: protocol violation', { cause: error });
    this.host.count('protocol-errors');
    this.host.count(`dropped.${wire.code === 'WIRE_OVERSIZED' ? 'oversized' : wire.code === 'WIRE_UNKNOWN_TYPE' ? 'unknown-type' : 'malformed'}`);
    this.host.count('dropped');
    this.destroy(wire);
  }

  private violation(message: string): never {
    throw new WireError('WIRE_MALFORMED', `tcp: ${message}`);
  }

  /** FrameSink: a complete frame other than STREAM_CHUNK. */
  frame(type: number, body: Uint8Array): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    if (this.state === 'handshake') {
      if (type !== FRAME_HELLO) this.violation(`expected HELLO, got frame type 0x${type.toString(16)}`);
      this.remote = decodeHello(body);
      if (!this.sentHello) this.introduce();
      this.state = 'open';
      this.lastActivityAt = this.host.clock.now();
      this.clearTimer();
      const refused = this.host.established(this);
      if (refused) {
        this.settleReady(refused);
        this.destroy(refused);
        return;
      }
      this.settleReady();
      return;
    }
    // After GOAWAY the peer only sends flow control for our streams.
    if (this.receivedGoaway && type !== FRAME_WINDOW && type !== FRAME_STREAM_CANCEL && type !== FRAME_STREAM_DONE) this.violation('frame after GOAWAY');
    switch (type) {
      case FRAME_MESSAGE:
        this.hot.messagesIn++;
        this.host.message(this, body);
        return;
      case FRAME_STREAM_OPEN:
        this.onStreamOpen(decodeStreamId(body));
        return;
      case FRAME_STREAM_END: {
        const id = decodeStreamId(body);
        const stream = this.incoming(id);
        this.inStreams.delete(id);
        if (stream) {
          stream.end();
          this.writeRaw(encodeStreamFrame(FRAME_STREAM_DONE, id));
        }
        return;
      }
      case FRAME_STREAM_DONE: {
        const out = this.outStreams.get(decodeStreamId(body));
        if (out && out.endWritten) {
          out.acknowledged = true;
          out.wake?.();
        }
        return;
      }
      case FRAME_STREAM_RESET: {
        const { streamId } = decodeStreamCode(body);
        const stream = this.incoming(streamId);
        stream?.fail(new StreamError('STREAM_RESET', 'tcp: the sender reset the stream'));
        this.inStreams.delete(streamId);
        return;
      }
      case FRAME_STREAM_CANCEL: {
        const { streamId, code } = decodeStreamCode(body);
        const out = this.outStreams.get(streamId);
        if (out) {
          halt(
            out,
            code === CANCEL_BY_CONSUMER
              ? new StreamError('STREAM_CANCELLED', 'tcp: the receiver stopped reading the stream')
              : new StreamError('STREAM_REFUSED', code === CANCEL_NO_RECEIVER ? 'tcp: the receiver takes no streams' : 'tcp: the receiver has too many open streams'),
          );
        }
        return;
      }
      case FRAME_WINDOW: {
        const { streamId, increment } = decodeWindow(body);
        const out = this.outStreams.get(streamId);
        if (out) {
          out.credit += increment;
          out.wake?.();
        }
        return;
      }
      case FRAME_GOAWAY:
        this.receivedGoaway = true;
        // A peer finishes its streams before GOAWAY; any still open were abandoned.
        for (const stream of this.inStreams.values()) stream?.fail(new StreamError('STREAM_RESET', 'tcp: the sender closed the connection mid-stream'));
        this.inStreams.clear();
        this.host.goaway(this);
        this.maybeFinish();
        return;
      default:
        this.violation(`unexpected frame type 0x${type.toString(16)}`);
    }
  }

  /** The incoming stream `id`, null for one we refused or cancelled; a violation if unknown. */
  private incoming(id: number): IncomingStream | null {
    const stream = this.inStreams.get(id);
    if (stream === undefined) this.violation(`frame for unknown stream ${id}`);
    return stream;
  }

  private onStreamOpen(id: number): void {
    if (id <= this.lastIncomingId) this.violation(`stream id ${id} reused or out of order`);
    this.lastIncomingId = id;
    const limit = this.host.settings.maxIncomingStreams;
    const live = [...this.inStreams.values()].filter((s) => s !== null).length;
    if (live >= limit) {
      // Refused streams stay known (null) until the sender resets them; a sender that
      // never does cannot grow the map beyond twice the limit.
      if (this.inStreams.size >= 2 * limit) this.violation('too many refused streams left open');
      this.host.count('streams-refused');
      this.inStreams.set(id, null);
      this.writeRaw(encodeStreamCode(FRAME_STREAM_CANCEL, id, CANCEL_TOO_MANY_STREAMS));
      return;
    }
    const stream = new IncomingStream(id, this.host.settings.streamWindowBytes, this);
    this.inStreams.set(id, stream);
    if (!this.host.stream(this, stream)) {
      this.inStreams.set(id, null);
      this.writeRaw(encodeStreamCode(FRAME_STREAM_CANCEL, id, CANCEL_NO_RECEIVER));
      // A layer above may have begun reading it before it found nobody to hand it to.
      stream.fail(new StreamError('STREAM_REFUSED', 'tcp: the stream was refused: nobody takes streams'));
    }
  }

  /** FrameSink: data of a STREAM_CHUNK frame. */
  chunk(id: number, data: Uint8Array): void {
    if (this.socket.destroyed) return;
    if (this.state !== 'open' || this.receivedGoaway) this.violation('stream data outside an open connection');
    const stream = this.incoming(id);
    this.hot.streamBytesIn += data.byteLength;
    if (stream === null) return;
    if (!stream.push(data)) this.violation(`stream ${id} exceeded its window`);
  }

  /** IncomingStreamHost: the consumer took data; give the sender more credit. */
  grant(streamId: number, bytes: number): void {
    if (this.state !== 'open' || !this.inStreams.get(streamId) || this.socket.destroyed || this.socket.writableEnded) return;
    const at = this.reserve(WINDOW_FRAME_LENGTH); // may replace the stage: take it after
    writeWindow(this.stage, at, streamId, bytes);
  }

  /**
   * IncomingStreamHost: stream data held changed. Each stream is bounded by its window;
   * when many slow streams together hold more than two windows, the socket stops reading
   * until they drain to one (TCP's own flow control then holds the sender).
   */
  held(delta: number): void {
    this.streamHeld += delta;
    const limit = 2 * this.host.settings.streamWindowBytes;
    if (!this.readingPaused && this.streamHeld > limit) {
      this.readingPaused = true;
      this.host.count('reads-paused');
      this.socket.pause();
    } else if (this.readingPaused && this.streamHeld <= limit / 2) {
      this.readingPaused = false;
      this.socket.resume();
    }
  }

  /** IncomingStreamHost: the consumer stopped reading. */
  cancel(streamId: number): void {
    if (this.state !== 'open' || !this.inStreams.has(streamId)) return;
    this.inStreams.set(streamId, null);
    this.writeRaw(encodeStreamCode(FRAME_STREAM_CANCEL, streamId, CANCEL_BY_CONSUMER));
  }

  // ------------------------------------------------------------------ write path

  /** Corks the socket for the rest of this tick; the staged bytes and the cork are released at its end. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.activity = true;
    this.socket.cork();
    process.nextTick(endOfTick, this);
  }

  /** Releases the staged bytes and the cork (called once per tick in which this connection wrote). */
  endOfTick(): void {
    this.scheduled = false;
    this.flushStage();
    // A busy connection keeps its staging buffer for the next tick; a quiet one lets it go.
    if (this.tickBytes < STAGE_FRAME_LIMIT) {
      this.stage = EMPTY_STAGE;
      this.stageStart = 0;
      this.stageFill = 0;
    }
    this.tickBytes = 0;
    this.socket.uncork();
  }

  private flushStage(): void {
    if (this.stageFill === this.stageStart) return;
    if (this.socket.writableEnded || this.socket.destroyed) {
      this.stageStart = this.stageFill;
      return;
    }
    // The socket owns the written part; later frames go after it, or into a new buffer.
    this.socket.write(this.stage.subarray(this.stageStart, this.stageFill));
    this.stageStart = this.stageFill;
  }

  /** Room for `n` bytes in the staging buffer; returns the offset to write at. */
  private reserve(n: number): number {
    this.schedule();
    this.tickBytes += n;
    if (this.stageFill + n > this.stage.length) {
      this.flushStage();
      this.stage = Buffer.allocUnsafe(Math.max(this.tickBytes > STAGE_FRAME_LIMIT ? STAGE_BYTES : SMALL_STAGE_BYTES, n));
      this.stageStart = 0;
      this.stageFill = 0;
    }
    const offset = this.stageFill;
    this.stageFill += n;
    return offset;
  }

  private writeRaw(bytes: Uint8Array, callback?: (error?: Error | null) => void): void {
    if (this.socket.destroyed || this.socket.writableEnded) {
      callback?.(new ConnectionError('CONNECTION_CLOSED', 'tcp: the connection is closed'));
      return;
    }
    if (callback === undefined && bytes.byteLength <= STAGE_FRAME_LIMIT) {
      const offset = this.reserve(bytes.byteLength);
      this.stage.set(bytes, offset);
      return;
    }
    this.schedule();
    this.flushStage();
    this.socket.write(bytes, callback);
  }

  private canAdmit(bytes: number): boolean {
    if (this.state !== 'open' || this.sentGoaway) return false;
    const socket = this.socket;
    return !socket.writableNeedDrain || socket.writableLength + (this.stageFill - this.stageStart) + bytes <= this.host.settings.maxPendingBytes;
  }

  /** True when a write of `bytes` would be admitted at once (nothing queued, room under the limit). */
  canAdmitNow(bytes: number): boolean {
    return this.waiterHead === this.waiters.length && this.canAdmit(bytes);
  }

  /** Admits `waiter` now if nothing is ahead of it and the limit allows, else queues it. */
  enqueue(waiter: Waiter): void {
    if (this.state === 'closed') {
      waiter.fail(new ConnectionError('CONNECTION_CLOSED', 'tcp: the connection is closed'));
      return;
    }
    if (this.waiterHead === this.waiters.length && this.canAdmit(waiter.bytes)) {
      waiter.done = true;
      waiter.write(this);
      return;
    }
    this.waiters.push(waiter);
  }

  /** Admits queued waiters while the limit allows (called on 'drain'). */
  private flush(): void {
    while (this.waiterHead < this.waiters.length) {
      const waiter = this.waiters[this.waiterHead]!;
      if (!waiter.done) {
        if (!this.canAdmit(waiter.bytes)) break;
        waiter.done = true;
        waiter.write(this);
      }
      this.waiters[this.waiterHead++] = undefined as unknown as Waiter;
    }
    if (this.waiterHead === this.waiters.length) {
      this.waiters.length = 0;
      this.waiterHead = 0;
    }
    this.maybeGoaway();
  }

  /** Removes and returns every movable waiter not admitted yet (to send it on another connection to the peer). */
  takeWaiters(): Waiter[] {
    const rest = this.waiters.slice(this.waiterHead).filter((w) => !w.done);
    this.waiters.length = 0;
    this.waiterHead = 0;
    for (const waiter of rest) if (!waiter.movable) this.waiters.push(waiter);
    return rest.filter((w) => w.movable);
  }

  /** Writes a message frame. Returns a promise only when the caller's buffer is still in use. */
  writeMessage(data: Uint8Array): Promise<void> | undefined {
    const peerMax = this.remote!.maxMessageBytes;
    if (data.byteLength > peerMax) throw messageTooLarge(data.byteLength, peerMax, 'peer');
    this.hot.messagesOut++;
    this.hot.bytesOut += FRAME_HEADER_LENGTH + data.byteLength;
    if (data.byteLength <= STAGE_FRAME_LIMIT && !this.socket.destroyed && !this.socket.writableEnded) {
      this.stageMessage(data);
      return undefined;
    }
    if (data.byteLength <= COPY_LIMIT_BYTES) {
      this.writeRaw(encodeMessage(data));
      return undefined;
    }
    this.writeRaw(encodeFrameHeader(FRAME_MESSAGE, data.byteLength));
    return new Promise<void>((resolve, reject) => {
      this.writeRaw(data, (error) => {
        if (error) reject(new ConnectionError('CONNECTION_CLOSED', 'tcp: the connection closed before the message was sent', { cause: error }));
        else resolve();
      });
    });
  }

  /** Writes STREAM_OPEN and returns the new stream's id (call at admission, to keep order). */
  openStream(): number {
    const id = this.nextStreamId++;
    if (id > 0xffff_ffff) throw new ConnectionError('CONNECTION_CLOSED', 'tcp: stream ids exhausted on this connection');
    this.outStreams.set(id, { id, credit: this.remote!.streamWindow, endWritten: false, acknowledged: false, stop: undefined, wake: undefined, cancel: undefined });
    this.hot.bytesOut += FRAME_HEADER_LENGTH + 4;
    this.writeRaw(encodeStreamFrame(FRAME_STREAM_OPEN, id));
    return id;
  }

  /** Writes now when nothing waits ahead and the limit allows (no promise); else queues and returns a promise. */
  private admit(bytes: number, write: () => void, stream: OutStream): Promise<void> | undefined {
    if (this.canAdmitNow(bytes)) {
      write();
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        movable: false,
        done: false,
        write: () => {
          stream.wake = undefined;
          write();
          resolve();
        },
        fail: (error) => {
          stream.wake = undefined;
          waiter.done = true;
          reject(error);
        },
      };
      this.enqueue(waiter);
      if (!waiter.done) stream.wake = () => stream.stop && !waiter.done && waiter.fail(stream.stop);
    });
  }

  private waitCredit(stream: OutStream): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      stream.wake = () => {
        if (stream.stop) reject(stream.stop);
        else if (stream.credit > 0) resolve();
        else return;
        stream.wake = undefined;
      };
      stream.wake();
    });
  }

  private waitDone(stream: OutStream): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      stream.wake = () => {
        if (stream.stop) reject(stream.stop);
        else if (stream.acknowledged) resolve();
        else return;
        stream.wake = undefined;
      };
      if (stream.stop) stream.wake();
    });
  }

  /** One STREAM_CHUNK: the header staged, the data handed to the socket as it is (no copy). */
  private writeChunk(id: number, data: Uint8Array): void {
    const n = data.byteLength;
    this.hot.streamBytesOut += n;
    this.hot.bytesOut += CHUNK_HEADER_LENGTH + n;
    if (this.socket.destroyed || this.socket.writableEnded) return;
    const at = this.reserve(CHUNK_HEADER_LENGTH); // may replace the stage: take it after
    writeChunkHeader(this.stage, at, id, n);
    this.writeRaw(data);
  }

  /**
   * Sends `source` as stream `id` (opened with {@link openStream}), with credit and
   * admission. `onEnd` runs once the END is written (the receiver frees the stream's slot
   * when it reads it), before the receiver confirms it. `cancel` is called once if the
   * stream must stop (aborted, cancelled or refused by the receiver, connection closed): it
   * should make a pending wait on `source` reject, else a source that never yields again
   * would hold this call.
   */
  async sendStream(id: number, source: ByteSource, signal: AbortSignal | undefined, onEnd?: () => void, cancel?: (reason: Error) => void): Promise<void> {
    const stream = this.outStreams.get(id)!;
    stream.cancel = cancel;
    const onAbort = (): void => halt(stream, new AbortError('tcp: the stream was aborted', { cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) onAbort();
      for await (const chunk of source) {
        if (stream.stop) throw stream.stop;
        if (!(chunk instanceof Uint8Array)) throw new InvalidArgumentError('tcp.sendStream: the source must yield Uint8Array chunks');
        let offset = 0;
        while (offset < chunk.byteLength) {
          if (stream.credit <= 0 || stream.stop) await this.waitCredit(stream);
          if (stream.stop) throw stream.stop;
          const n = Math.min(chunk.byteLength - offset, stream.credit, STREAM_PIECE_BYTES, MAX_CHUNK_BYTES);
          const piece = n === chunk.byteLength ? chunk : chunk.subarray(offset, offset + n);
          stream.credit -= n;
          offset += n;
          // Written at once when there is room (no closure, no promise); else queued in order.
          if (this.canAdmitNow(CHUNK_HEADER_LENGTH + n)) this.writeChunk(id, piece);
          else await this.admit(CHUNK_HEADER_LENGTH + n, () => this.writeChunk(id, piece), stream);
        }
      }
      if (stream.stop) throw stream.stop;
      await this.admit(
        FRAME_HEADER_LENGTH + 4,
        () => {
          stream.endWritten = true;
          this.writeRaw(encodeStreamFrame(FRAME_STREAM_END, id));
          onEnd?.();
        },
        stream,
      );
      // Done when the receiver confirms: a stream it refused or cancelled rejects instead.
      if (!stream.acknowledged) await this.waitDone(stream);
    } catch (error) {
      if (this.state === 'open' && !this.sentGoaway && !stream.endWritten) {
        const code = error instanceof StreamError ? RESET_CANCELLED : this.draining ? RESET_CLOSING : RESET_SOURCE_ERROR;
        this.writeRaw(encodeStreamCode(FRAME_STREAM_RESET, id, code));
      }
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.outStreams.delete(id);
      this.maybeGoaway();
    }
  }

  // ------------------------------------------------------------------ closing

  /** Graceful close: finish admitted writes and outgoing streams, then GOAWAY; FIN once both sides said GOAWAY. */
  drain(): void {
    if (this.state === 'closed') return;
    if (this.state === 'handshake') {
      this.destroy(new ConnectionError('CONNECTION_CLOSED', 'tcp: closed during the introduction'));
      return;
    }
    if (this.draining) return;
    this.draining = true;
    this.clearTimer();
    this.timer = this.host.clock.setTimeout(() => {
      this.host.count('close-timeouts');
      this.destroy(new ConnectionError('CONNECTION_CLOSED', `tcp: graceful close did not finish within ${this.host.settings.closeTimeoutMs} ms`));
    }, this.host.settings.closeTimeoutMs);
    this.maybeGoaway();
  }

  private maybeGoaway(): void {
    if (!this.draining || this.sentGoaway || this.state !== 'open' || this.outStreams.size > 0) return;
    if (this.waiterHead < this.waiters.length) return;
    this.sentGoaway = true;
    this.writeRaw(encodeGoaway());
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.sentGoaway && this.receivedGoaway && this.state === 'open' && !this.socket.writableEnded) {
      this.flushStage();
      this.socket.end();
    }
  }

  /** Closes at once (error or timeout); everything pending fails or moves elsewhere. */
  destroy(reason?: Error): void {
    if (this.state === 'closed') return;
    this.closeReason ??= reason;
    this.socket.destroy();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.host.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onClose(): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    const graceful = this.sentGoaway && this.receivedGoaway;
    this.state = 'closed';
    this.clearTimer();
    // Errors raised from the socket's close carry no stack: it would show only the close
    // handler's frames, and connection churn would pay for it on every close.
    const reason =
      graceful ? undefined : (this.closeReason ?? new ConnectionError(wasOpen ? 'CONNECTION_CLOSED' : 'CONNECT_FAILED', 'tcp: the peer closed the connection', NO_STACK));
    if (wasOpen) this.settleReady(); // already settled: no error to build
    else this.settleReady(reason ?? new ConnectionError('CONNECT_FAILED', 'tcp: closed during the introduction', NO_STACK));
    if (this.outStreams.size > 0 || this.inStreams.size > 0) {
      const stop = new ConnectionError('CONNECTION_CLOSED', 'tcp: the connection closed', { cause: reason, captureStack: false });
      for (const stream of this.outStreams.values()) halt(stream, stop);
      for (const stream of this.inStreams.values()) stream?.fail(stop);
      this.inStreams.clear();
    }
    const unsent = this.takeWaiters();
    this.host.closed(this, reason, unsent);
    this.closedResolve();
  }
}

/** `::ffff:1.2.3.4` (an IPv4 peer on a dual-stack socket) as `1.2.3.4`. */
function normalizeHost(host: string): string {
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host;
}
