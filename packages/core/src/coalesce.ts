/**
 * Gathering small stream writes: a transport pays per chunk it frames and writes, so a
 * stream of 1 KiB writes costs many times what the same bytes cost in 64 KiB chunks.
 */
import type { ByteSource } from './capabilities.js';

export interface CoalesceOptions {
  /** Chunks shorter than this are gathered; longer ones pass through as they are. Default 16 KiB. */
  readonly below?: number;
  /** Largest gathered chunk. Default 64 KiB; at least `below`. */
  readonly max?: number;
  /**
   * Gives up on the source: once aborted, a wait for the source's next chunk rejects with
   * the signal's reason, and the source is told to end (its `return()`, not waited for: a
   * source stuck in a wait of its own could hold it forever). A transport aborts it when
   * the stream can go no further (connection closed, stream cancelled, node stopped), so a
   * source that never yields again cannot hold the send.
   */
  readonly signal?: AbortSignal;
}

export const COALESCE_BELOW_BYTES = 16 * 1024;
export const COALESCE_MAX_BYTES = 64 * 1024;
/** A first batch's size (it grows as it fills, up to `max`). */
const FIRST_BATCH_BYTES = 16 * 1024;

const NOT_YET = Symbol('not yet');
const defer: (callback: () => void) => void = typeof setImmediate === 'function' ? (callback) => void setImmediate(callback) : (callback) => void setTimeout(callback, 0);
let turn: Promise<typeof NOT_YET> | undefined;
/**
 * Resolves to NOT_YET on the next turn of the event loop (after pending I/O callbacks).
 * One timer per turn, shared by every wait in it: a source whose chunks are all there
 * would otherwise set one for each chunk.
 */
const nextTurn = (): Promise<typeof NOT_YET> =>
  (turn ??= new Promise((resolve) =>
    defer(() => {
      turn = undefined;
      resolve(NOT_YET);
    }),
  ));

/**
 * `source` with its chunks shorter than `below` bytes copied together into chunks of up
 * to `max` bytes; longer chunks pass through uncopied, in order, after what was gathered
 * before them. Nothing waits for more data:
 *
 * - a synchronous source has every chunk at once, so gathered chunks fill up (the result
 *   is synchronous too);
 * - from an asynchronous source, what was gathered goes out as soon as the next chunk is
 *   not there by the next turn of the event loop, so an interactive stream (write, wait
 *   for the answer, write again) is never held back.
 *
 * Gathered chunks are fresh arrays, never reused: a transport may hold them (for the
 * socket) after handing them on. Values that are not `Uint8Array` are passed through
 * untouched, after what was gathered, for the consumer to refuse. Stopping the result
 * early ends the source (its `return()`), as `for...of` would; so does `options.signal`.
 */
export function coalesceWrites(source: ByteSource, options: CoalesceOptions = {}): ByteSource {
  const below = options.below ?? COALESCE_BELOW_BYTES;
  const max = Math.max(options.max ?? COALESCE_MAX_BYTES, below);
  const smallest = Math.min(max, FIRST_BATCH_BYTES);
  let batch: Uint8Array | undefined;
  let fill = 0;
  // The next batch's size: what the last one needed (so an interactive stream's batches
  // stay small, and a bulk one's are allocated once at `max`).
  let size = smallest;
  const take = (full: boolean): Uint8Array => {
    const out = batch!.subarray(0, fill);
    size = full ? max : Math.min(max, Math.max(smallest, fill));
    batch = undefined;
    fill = 0;
    return out;
  };
  /** What goes out for `chunk`, in order (at most two arrays). */
  const add = (chunk: Uint8Array, out: Uint8Array[]): void => {
    if (!(chunk instanceof Uint8Array) || chunk.length >= below) {
      if (fill > 0) out.push(take(false));
      out.push(chunk);
      return;
    }
    if (chunk.length === 0) return;
    if (fill + chunk.length > max) out.push(take(true));
    const need = fill + chunk.length;
    if (batch === undefined || need > batch.length) {
      // Grows by doubling (each byte is copied about twice at most), up to `max`.
      const grown = new Uint8Array(Math.min(max, Math.max(need, size, 2 * (batch?.length ?? 0))));
      if (batch !== undefined) grown.set(batch.subarray(0, fill));
      batch = grown;
    }
    batch.set(chunk, fill);
    fill += chunk.length;
  };
  if (typeof (source as Partial<AsyncIterable<Uint8Array>>)[Symbol.asyncIterator] !== 'function') {
    return (function* () {
      const out: Uint8Array[] = [];
      for (const chunk of source as Iterable<Uint8Array>) {
        add(chunk, out);
        if (out.length > 0) {
          yield* out;
          out.length = 0;
        }
      }
      if (fill > 0) yield take(false);
    })();
  }
  const signal = options.signal;
  return (async function* () {
    const iterator = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    let exhausted = false;
    let abandoned = signal?.aborted === true;
    // The current wait on the source, given up when the signal aborts. (Not a race against
    // one long-lived "aborted" promise: each race would leave a reaction on it holding its
    // result, and so every chunk of the stream, until the signal aborted or was dropped.)
    let giveUp: ((reason: unknown) => void) | undefined;
    const onAbort = (): void => {
      abandoned = true;
      giveUp?.(signal!.reason);
    };
    if (signal && !abandoned) signal.addEventListener('abort', onAbort, { once: true });
    const settled = (pending: Promise<IteratorResult<Uint8Array>>): Promise<IteratorResult<Uint8Array>> => {
      if (!signal) return pending;
      if (abandoned) return Promise.reject(signal.reason);
      return new Promise((resolve, reject) => {
        giveUp = reject;
        pending.then(resolve, reject);
      });
    };
    const out: Uint8Array[] = [];
    try {
      for (;;) {
        const pending = iterator.next();
        pending.catch(() => undefined);
        if (fill > 0 && (await Promise.race([pending, nextTurn()])) === NOT_YET) yield take(false);
        let result: IteratorResult<Uint8Array>;
        try {
          result = await settled(pending);
        } catch (error) {
          if (!abandoned) exhausted = true;
          throw error;
        } finally {
          giveUp = undefined;
        }
        if (result.done) {
          exhausted = true;
          break;
        }
        add(result.value, out);
        if (out.length > 0) {
          yield* out;
          out.length = 0;
        }
      }
      if (fill > 0) yield take(false);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // Stopped early (the consumer failed or gave up): end the source, as for-await would;
      // abandoned, without waiting for it.
      if (abandoned) {
        try {
          void Promise.resolve(iterator.return?.()).catch(() => undefined);
        } catch {
          // A source whose return() throws at once has ended as far as we are concerned.
        }
      } else if (!exhausted) await iterator.return?.();
    }
  })();
}
