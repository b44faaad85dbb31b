/**
 * The receiving end of a stream: an async iterable fed by the connection. It holds at
 * most the sender's credit (the window this node announced), and grants credit back as
 * the consumer takes chunks, so a slow consumer slows the sender.
 */
import { StateError } from '@deccom/core';
import { StreamError } from './errors.js';

export interface IncomingStreamHost {
  /** Grants the sender `bytes` more credit. */
  grant(streamId: number, bytes: number): void;
  /** The consumer stopped reading before the end. */
  cancel(streamId: number): void;
  /** Bytes held by this stream changed by `delta` (for the connection's total). */
  held(delta: number): void;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

export class IncomingStream implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private head = 0;
  /** Bytes received and not yet taken by the consumer. */
  buffered = 0;
  /** Credit the sender still has (received bytes are subtracted, grants added). */
  allowance: number;
  private ungranted = 0;
  private ended = false;
  private failure: Error | undefined;
  private cancelled = false;
  private iterated = false;
  private waiter: { resolve(result: IteratorResult<Uint8Array>): void; reject(error: unknown): void } | undefined;

  constructor(
    readonly id: number,
    private readonly window: number,
    private readonly host: IncomingStreamHost,
  ) {
    this.allowance = window;
  }

  /** True once the stream ended, failed or was cancelled: the connection forgets it. */
  get finished(): boolean {
    return this.ended || this.failure !== undefined || this.cancelled;
  }

  /** Data from the connection. Returns false when the sender exceeded its credit. */
  push(data: Uint8Array): boolean {
    this.allowance -= data.byteLength;
    if (this.allowance < 0) return false;
    if (this.cancelled) return true;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = undefined;
      this.taken(data.byteLength);
      waiter.resolve({ done: false, value: data });
      return true;
    }
    this.chunks.push(data);
    this.buffered += data.byteLength;
    this.host.held(data.byteLength);
    return true;
  }

  end(): void {
    this.ended = true;
    this.settleWaiter();
  }

  fail(error: Error): void {
    if (this.finished) return;
    this.failure = error;
    this.release();
    this.settleWaiter();
  }

  /** Drops everything buffered. */
  private release(): void {
    this.chunks.length = 0;
    this.head = 0;
    if (this.buffered > 0) this.host.held(-this.buffered);
    this.buffered = 0;
  }

  private settleWaiter(): void {
    const waiter = this.waiter;
    if (!waiter || this.buffered > 0) return;
    this.waiter = undefined;
    if (this.failure) waiter.reject(this.failure);
    else waiter.resolve(DONE);
  }

  private taken(bytes: number): void {
    this.ungranted += bytes;
    // Grant in quarter-window steps: few WINDOW frames, and the sender never waits long.
    if (!this.ended && this.ungranted >= this.window / 4) {
      const grant = this.ungranted;
      this.ungranted = 0;
      this.allowance += grant;
      this.host.grant(this.id, grant);
    }
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    if (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head]!;
      this.chunks[this.head++] = undefined as unknown as Uint8Array;
      if (this.head > 1024 && this.head * 2 > this.chunks.length) {
        this.chunks.splice(0, this.head);
        this.head = 0;
      }
      this.buffered -= chunk.byteLength;
      this.host.held(-chunk.byteLength);
      this.taken(chunk.byteLength);
      return Promise.resolve({ done: false, value: chunk });
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended || this.cancelled) return Promise.resolve(DONE);
    if (this.waiter) return Promise.reject(new StateError('INVALID_ARGUMENT', 'tcp stream: next() called again before the previous call settled'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private stop(): Promise<IteratorResult<Uint8Array>> {
    if (!this.finished) {
      this.cancelled = true;
      this.release();
      this.host.cancel(this.id);
    }
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.iterated) throw new StreamError('STREAM_CANCELLED', 'tcp stream: a received stream can be iterated only once');
    this.iterated = true;
    return {
      next: () => this.next(),
      return: () => this.stop(),
      throw: (error?: unknown) => {
        void this.stop();
        return Promise.reject(error);
      },
    };
  }
}
