/**
 * The `noiseStream()` layer: Noise XX over a message/stream transport (`@deccom/tcp`).
 *
 * One handshake per connection, carried in three messages of the transport below. Both
 * identity proofs must match the node id the transport's introduction claimed, so the
 * TCP introduction (which on its own anyone can fake) is authenticated by the handshake.
 * Messages are then sealed with the session keys: each carries an explicit 64-bit
 * counter (one counter space for the session, checked by a replay window), and the keys
 * move on by Noise `Rekey()` (section 11.3) every `rekeyAfterMessages` counters.
 *
 * A stream opens with a start frame that takes one session counter (replay-checked like
 * a message) and carries a fresh random key for the stream, sealed with the session's
 * keys. Its frames are then sealed with that key, counted from 0, and must come in
 * order; the stream's key moves on by `Rekey()` every `rekeyAfterMessages` frames; and
 * it must end with an authenticated end frame. A cut, spliced, reordered or replayed
 * stream is detected. Because a stream's frames do not use the session's counters, a
 * stream may wait on a slow reader (the transport's flow control) for as long as it
 * likes while other streams and messages go on: with one counter space for both, a
 * stalled frame fell behind the replay window and the stream failed.
 */
import {
  AbortError,
  checkTimeoutMs,
  coalesceWrites,
  concatBytes,
  defineLayer,
  dropReason,
  InvalidArgumentError,
  MessageTooLargeError,
  secureRandomBytes,
  WireError,
  StateError,
  utf8Encode,
  type Address,
  type ByteSource,
  NodeId,
  type PublicIdentity,
  type SendOptions,
  type TimerHandle,
} from '@deccom/core';
import { defaultNoiseCrypto, type DhKeyPair, type NoiseCrypto } from './crypto.js';
import type { NoiseMode, SecureSession } from './datagram.js';
import { NoiseError } from './errors.js';
import { CipherState, HandshakeState } from './handshake.js';
import { createIdentityProof, verifyIdentityProofAsync } from './identity.js';
import { parseProtocolName } from './patterns.js';
import { ReplayWindow, REPLAY_WINDOW } from './replay.js';
import {
  decodeSealedMessage,
  decodeStreamFrameHeader,
  decodeStreamHeader,
  SEALED_HEADER_LENGTH,
  STREAM_FLAG_END,
  STREAM_FLAG_START,
  STREAM_FRAME_HEADER_LENGTH,
  STREAM_FRAME_PLAINTEXT,
  STREAM_HEADER_LENGTH,
  STREAM_KEY_LENGTH,
  STREAM_MAGIC,
  STREAM_MESSAGE,
  TAG_LENGTH,
  writeStreamFrameHeader,
} from './wire.js';

declare module '@deccom/core' {
  interface Capabilities {
    /** The secure session over the connection to `id`, running the handshake if needed. */
    secureStreamSession(id: NodeId, options?: SendOptions): Promise<SecureSession>;
  }
}

export { STREAM_MESSAGE, STREAM_MAGIC, STREAM_FRAME_PLAINTEXT } from './wire.js';

export interface NoiseStreamOptions {
  /** `'encrypt'` (default) or `'sign-only'`. Both sides must agree (bound into the handshake). */
  mode?: Exclude<NoiseMode, 'plaintext'>;
  /** Hash of the suite `Noise_XX_25519_ChaChaPoly_<hash>`. Default `'SHA256'`. */
  hash?: 'SHA256' | 'BLAKE2b';
  /** Crypto implementation. Default: node:crypto when present, else noble. */
  crypto?: NoiseCrypto;
  /** Give up a handshake after this long. Default 10,000 ms. */
  handshakeTimeoutMs?: number;
  /** Move both directions' keys on with Noise Rekey() every this many frames. Default 65,536. */
  rekeyAfterMessages?: number;
  /**
   * Sealed messages held per peer while its handshake finishes on our side: the initiator
   * may send as soon as its side is done, while we still verify its final message (on the
   * thread pool). Beyond this count or {@link maxEarlyBytes}, the connection is aborted
   * (`dropped.early-overflow`): over a reliable transport, a message is never dropped
   * silently. Default 4,096.
   */
  maxEarlyMessages?: number;
  /** Bytes of sealed messages held per peer while its handshake finishes. Default 16 MiB (64 MiB over all peers). */
  maxEarlyBytes?: number;
  /** Local policy run after a peer authenticated. Default: accept. */
  accept?: (peer: { identity: PublicIdentity; id: NodeId; address: Address }) => boolean;
  /** Instance name. Default `noise-stream`. */
  name?: string;
}

/** Keys of one direction, moved on by Rekey() per epoch of `rekeyAfterMessages` counters. */
class EpochCipher {
  private epoch = 0;
  private previous: CipherState | undefined;

  constructor(
    private current: CipherState,
    private readonly interval: number,
  ) {}

  /** Sending: the cipher for our own next counter (counters only grow by one). */
  forSend(counter: number): CipherState {
    const epoch = Math.floor(counter / this.interval);
    while (this.epoch < epoch) this.advance(this.next());
    return this.current;
  }

  /**
   * Receiving: the cipher for `counter` without changing any state (the message is not
   * authenticated yet). Undefined when the counter is older than the previous epoch or
   * more than one epoch ahead (a peer never skips a whole epoch on an ordered transport).
   */
  candidate(counter: number): { cipher: CipherState; epoch: number } | undefined {
    const epoch = Math.floor(counter / this.interval);
    if (epoch === this.epoch) return { cipher: this.current, epoch };
    if (epoch === this.epoch - 1 && this.previous) return { cipher: this.previous, epoch };
    if (epoch === this.epoch + 1) return { cipher: this.next(), epoch };
    return undefined;
  }

  /** Receiving: a message of `epoch` authenticated with `cipher`; move on if it is the next epoch. */
  commit(epoch: number, cipher: CipherState): void {
    if (epoch === this.epoch + 1) this.advance(cipher);
  }

  private next(): CipherState {
    const next = this.current.fork();
    next.rekey();
    return next;
  }

  private advance(next: CipherState): void {
    this.previous = this.current;
    this.current = next;
    this.epoch++;
  }
}

interface StreamSession {
  readonly info: SecureSession;
  readonly send: EpochCipher;
  readonly receive: EpochCipher;
  readonly replay: ReplayWindow;
  sendCounter: number;
}

interface Pending {
  handshake: HandshakeState | undefined;
  readonly promise: Promise<StreamSession>;
  readonly resolve: (session: StreamSession) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: TimerHandle;
  readonly early: Uint8Array[];
  /** Bytes held in `early`. */
  earlyBytes: number;
  /** Set when early data went past the bounds (the connection is being aborted). */
  overflowed: boolean;
  /**
   * Times the transport reported every connection to the peer closed while this handshake
   * ran. A handshake message came over a connection open when it arrived; a change by the
   * time its identity check finishes means that connection is gone.
   */
  closes: number;
  /** An identity proof of this handshake is being checked (on the thread pool). */
  verifying: boolean;
  /** A first handshake message from the peer that came while `verifying`: handled after the check. */
  deferred: { readonly data: Uint8Array; readonly address: Address } | undefined;
}

const EMPTY = new Uint8Array(0);
const EARLY: SendOptions = { early: true };
/** Early messages held over all pending handshakes, at most (see NoiseStreamOptions.maxEarlyBytes). */
const EARLY_BYTES_TOTAL = 64 * 1024 * 1024;
/** Closed-connection sessions kept for late messages (see `retired`), at most. */
const MAX_RETIRED = 4_096;
/** What sealing adds to a message: its header (kind, counter) and the tag. */
const SEALED_OVERHEAD = SEALED_HEADER_LENGTH + TAG_LENGTH;
/** Stream frames up to this size are sealed into one array (the copy is cheaper than handing down three). */
const COPY_FRAME_BYTES = 16 * 1024;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * The Noise layer for messages and streams. Needs `sendMessage` and `sendStream` and
 * takes the `message` and `stream` hooks of the transport below (`@deccom/tcp`); observes
 * `connection-close` to start a fresh handshake on the next connection, and with the
 * transport's `connectionState` (optional) fails a handshake as soon as no connection to
 * its peer is open or being made. Provides `sendMessage`, `sendStream`, `openConnection`
 * (the transport's connection and the handshake on it) and `secureStreamSession`; offers
 * `message` and `stream`.
 */
export function noiseStream(options: NoiseStreamOptions = {}) {
  const mode = options.mode ?? 'encrypt';
  if (mode !== 'encrypt' && mode !== 'sign-only') throw new InvalidArgumentError(`noiseStream: mode must be 'encrypt' or 'sign-only', got ${String(mode)}`);
  const hashName = options.hash ?? 'SHA256';
  const protocol = parseProtocolName(`Noise_XX_25519_ChaChaPoly_${hashName}`);
  const prologue = utf8Encode(`deccom/noise/2/stream/${mode}`);
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const rekeyAfterMessages = options.rekeyAfterMessages ?? 65_536;
  if (!Number.isInteger(rekeyAfterMessages) || rekeyAfterMessages < 2 * REPLAY_WINDOW) {
    // The receiver keeps the previous epoch's key only, so an epoch must outlast the replay window.
    throw new InvalidArgumentError(`noiseStream: rekeyAfterMessages must be an integer >= ${2 * REPLAY_WINDOW}, got ${rekeyAfterMessages}`);
  }
  const maxEarly = options.maxEarlyMessages ?? 4_096;
  const maxEarlyBytes = options.maxEarlyBytes ?? 16 * 1024 * 1024;
  for (const [name, value] of [['maxEarlyMessages', maxEarly], ['maxEarlyBytes', maxEarlyBytes]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(`noiseStream: ${name} must be a non-negative integer, got ${value}`);
  }

  return defineLayer({
    type: 'noise-stream',
    name: options.name,
    needs: ['sendMessage', 'sendStream'],
    optional: ['openConnection', 'closeConnection', 'connectionState'],
    takes: ['message', 'stream'],
    takesOptional: ['connection-close'],
    provides: ['sendMessage', 'sendStream', 'openConnection', 'secureStreamSession'],
    offers: { message: 'exclusive', stream: 'exclusive', 'noise-session-open': 'event', 'noise-session-close': 'event', 'noise-handshake-error': 'event' },
    create: (ctx) => {
      const crypto = options.crypto ?? defaultNoiseCrypto();
      if (!ctx.identity.canSign || ctx.identity.kind !== 'ed25519') {
        throw new NoiseError('IDENTITY_CANNOT_SIGN', 'noiseStream needs an Ed25519 identity that can sign; this node has a string identity');
      }
      const aead = crypto.cipher(protocol.cipher);
      const staticKeyPair: DhKeyPair = crypto.dh('25519').generateKeyPair();
      const identityProof = createIdentityProof(ctx.identity, staticKeyPair.publicKey);
      const sessions = new Map<string, StreamSession>();
      /**
       * Sessions whose connection closed, kept to open what the peer sealed under them and
       * the transport then carried on the next connection (tcp resends what it had not
       * written yet), for `handshakeTimeoutMs` after the close. Receive only, unless the peer
       * keeps using the session (its side saw no close): then it is taken back.
       */
      const retired = new Map<string, { readonly session: StreamSession; readonly until: number }>();
      const retiredFor = (hex: string): StreamSession | undefined => {
        const entry = retired.get(hex);
        if (entry === undefined) return undefined;
        if (entry.until > ctx.clock.now()) return entry.session;
        retired.delete(hex);
        return undefined;
      };
      const pending = new Map<string, Pending>();
      const counters = ctx.counters;
      const hot = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
      counters.attach(() => ({ 'messages-in': hot.messagesIn, 'messages-out': hot.messagesOut, 'bytes-in': hot.bytesIn, 'bytes-out': hot.bytesOut }));
      let running = false;
      /** Bytes of early messages held over all pending handshakes. */
      let earlyBytesTotal = 0;
      /** Ends `entry` as the peer's pending handshake: its timer stops and its early bytes leave the total. */
      const removePending = (id: NodeId, entry: Pending): void => {
        pending.delete(id.hex);
        ctx.clock.clearTimeout(entry.timer);
        earlyBytesTotal -= entry.earlyBytes;
        entry.earlyBytes = 0;
        // Early messages not handed on by now never will be: count them.
        for (let i = entry.early.length; i > 0; i--) counters.drop('early-abandoned');
        entry.early.length = 0;
      };

      const failHandshake = (id: NodeId, address: Address | undefined, error: NoiseError, reason: string): void => {
        counters.add(`handshakes-failed.${reason}`);
        if (address && ctx.observed('noise-handshake-error')) ctx.emit('noise-handshake-error', address, error);
        ctx.logger.debug('noise-stream: handshake failed', { peer: id.short, error: error.message });
      };

      const withKind = (kind: number, body: Uint8Array): Uint8Array => {
        const out = new Uint8Array(1 + body.length);
        out[0] = kind;
        out.set(body, 1);
        return out;
      };

      const sendRaw = (to: NodeId, bytes: Uint8Array, sendOptions?: SendOptions): void => {
        ctx.below.sendMessage(to, bytes, sendOptions).catch((error: unknown) => {
          counters.add('send-errors');
          const entry = pending.get(to.hex);
          if (entry && entry.handshake) {
            removePending(to, entry);
            entry.reject(error);
          }
        });
      };

      const newPending = (id: NodeId): Pending => {
        let resolve!: (session: StreamSession) => void;
        let reject!: (error: unknown) => void;
        const promise = new Promise<StreamSession>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        promise.catch(() => undefined);
        const timer = ctx.clock.setTimeout(() => {
          if (pending.get(id.hex) !== entry) return;
          removePending(id, entry);
          const error = new NoiseError('HANDSHAKE_TIMEOUT', `no stream handshake with ${id.short} within ${handshakeTimeoutMs} ms`);
          failHandshake(id, undefined, error, 'timeout');
          reject(error);
        }, handshakeTimeoutMs);
        const entry: Pending = { handshake: undefined, promise, resolve, reject, timer, early: [], earlyBytes: 0, overflowed: false, closes: 0, verifying: false, deferred: undefined };
        pending.set(id.hex, entry);
        return entry;
      };

      /** The session a completed handshake gives (not stored). */
      const makeSession = (address: Address, handshake: HandshakeState, identity: PublicIdentity, initiator: boolean): StreamSession => {
        const keys = handshake.split();
        const info: SecureSession = {
          address,
          remoteIdentity: identity,
          remoteId: identity.id,
          remoteStaticKey: handshake.remoteStaticKey!,
          handshakeHash: handshake.handshakeHash,
          initiator,
          establishedAt: ctx.clock.now(),
        };
        const session: StreamSession = {
          info,
          send: new EpochCipher(keys.send!, rekeyAfterMessages),
          receive: new EpochCipher(keys.receive!, rekeyAfterMessages),
          replay: new ReplayWindow(),
          sendCounter: 0,
        };
        return session;
      };

      const establish = (id: NodeId, address: Address, handshake: HandshakeState, identity: PublicIdentity, initiator: boolean): StreamSession => {
        const session = makeSession(address, handshake, identity, initiator);
        const info = session.info;
        const old = sessions.get(id.hex);
        sessions.set(id.hex, session);
        if (old && ctx.observed('noise-session-close')) ctx.emit('noise-session-close', old.info, 'replaced');
        counters.add('handshakes-completed');
        counters.set('sessions', sessions.size);
        if (ctx.observed('noise-session-open')) ctx.emit('noise-session-open', info);
        const entry = pending.get(id.hex);
        if (entry) {
          const early = entry.early.splice(0);
          removePending(id, entry);
          entry.resolve(session);
          for (const message of early) openSealed(session, message, id, address);
        }
        return session;
      };

      const authenticate = async (id: NodeId, address: Address, payload: Uint8Array, handshake: HandshakeState): Promise<PublicIdentity | undefined> => {
        try {
          // The id the transport's introduction claimed must be the one the handshake proves.
          const identity = await verifyIdentityProofAsync(payload, handshake.remoteStaticKey!, id);
          if (options.accept && !options.accept({ identity, id: identity.id, address })) {
            throw new NoiseError('HANDSHAKE_REJECTED', `the local policy refused ${identity.id.short}`);
          }
          return identity;
        } catch (error) {
          if (!(error instanceof NoiseError)) throw error;
          failHandshake(id, address, error, error.code === 'IDENTITY_MISMATCH' ? 'identity-mismatch' : error.code === 'HANDSHAKE_REJECTED' ? 'rejected' : 'bad-identity');
          const entry = pending.get(id.hex);
          if (entry) {
            removePending(id, entry);
            entry.reject(error);
          }
          // Dropped at once: nothing is owed to a peer that failed authentication.
          ctx.below.closeConnection?.(id, { abort: true }).catch(() => undefined);
          return undefined;
        }
      };

      /**
       * True when the connection that carried `entry`'s last handshake message closed while
       * its identity was checked (`closes` is the count seen on arrival): the handshake is
       * abandoned, its waiters fail with CONNECTION_CLOSED, and the next call starts afresh.
       * A session stored now would belong to no connection; the peer has dropped its keys.
       * Called only while `entry` is the peer's pending handshake.
       */
      const connectionLost = (id: NodeId, address: Address, entry: Pending, closes: number): boolean => {
        if (entry.closes === closes) return false;
        abandon(id, address, entry);
        return true;
      };

      /** Fails `entry`, the peer's pending handshake, because its connection closed. */
      const abandon = (id: NodeId, address: Address | undefined, entry: Pending): void => {
        // Raised from the connection's close event: a stack would show only library frames.
        const error = new NoiseError('CONNECTION_CLOSED', `the connection to ${id.short} closed during the handshake`, { captureStack: false });
        failHandshake(id, address, error, 'connection-closed');
        removePending(id, entry);
        entry.reject(error);
      };

      /** Runs the async tail of a receive path; nothing escapes it. */
      const detach = (work: Promise<void>): void => {
        work.catch((error: unknown) => {
          counters.drop('error');
          ctx.logger.warn('noise-stream: handshake step failed', { error });
        });
      };

      /**
       * We are answering a new handshake from the peer and it has sent or received our
       * reply: the peer came back (restarted, or on a new connection) and keeps none of the
       * keys of a session still in place here. What it sends waits for the new keys, and so
       * does what we send to it.
       */
      const answeringNew = (entry: Pending | undefined): entry is Pending & { handshake: HandshakeState } =>
        entry?.handshake !== undefined && !entry.handshake.initiator && entry.handshake.messagesDone >= 2;

      const ensureSession = (id: NodeId): Promise<StreamSession> => {
        if (!running) return Promise.reject(new StateError('NOT_STARTED', 'noiseStream: the layer is not running'));
        const session = sessions.get(id.hex);
        const existing = pending.get(id.hex);
        if (session) {
          if (!answeringNew(existing)) return Promise.resolve(session);
          // If the new handshake fails (e.g. a forged first message), the session in place stays and is used.
          return existing.promise.catch((error: unknown) => {
            const still = running ? sessions.get(id.hex) : undefined;
            if (still) return still;
            throw error;
          });
        }
        if (existing) return existing.promise;
        const entry = newPending(id);
        const handshake = new HandshakeState({ protocol, initiator: true, prologue, staticKeyPair, crypto });
        entry.handshake = handshake;
        counters.add('handshakes-initiated');
        // The first message is an ephemeral key anyone may see: it may ride with a new
        // connection's introduction (the transport confirms the peer's id after it left).
        sendRaw(id, withKind(STREAM_MESSAGE.handshake1, handshake.writeMessage(EMPTY)), EARLY);
        return entry.promise;
      };

      /**
       * The session with `id` for a call with `options`: its `signal` and `timeoutMs` bound
       * the wait for a handshake (the handshake itself goes on for other callers). The
       * session itself when there is one (no promise on the hot path).
       */
      const sessionFor = (id: NodeId, options: SendOptions | undefined): Promise<StreamSession> | StreamSession => {
        const session = running ? sessions.get(id.hex) : undefined;
        if (session && !answeringNew(pending.get(id.hex))) return session;
        const signal = options?.signal;
        const timeoutMs = options?.timeoutMs;
        // Every waiting call, with options or without, resumes through one derived promise,
        // so calls made before the handshake seal in the order they were made.
        if (signal === undefined && timeoutMs === undefined) return ensureSession(id).then(passThrough);
        try {
          checkTimeoutMs(timeoutMs, 'noise-stream');
        } catch (error) {
          return Promise.reject(error);
        }
        if (signal?.aborted) return Promise.reject(new AbortError(`noise-stream: aborted before the handshake with ${id.short}`, { cause: signal.reason }));
        return new Promise<StreamSession>((resolve, reject) => {
          let timer: TimerHandle | undefined;
          const settle = (): void => {
            if (timer !== undefined) ctx.clock.clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
          };
          const onAbort = (): void => {
            settle();
            reject(new AbortError(`noise-stream: aborted while waiting for the handshake with ${id.short}`, { cause: signal?.reason }));
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          if (timeoutMs !== undefined) {
            timer = ctx.clock.setTimeout(() => {
              settle();
              reject(new NoiseError('HANDSHAKE_TIMEOUT', `no stream handshake with ${id.short} within ${timeoutMs} ms (options.timeoutMs)`));
            }, timeoutMs);
          }
          ensureSession(id).then(
            (established) => {
              settle();
              resolve(established);
            },
            (error: unknown) => {
              settle();
              reject(error);
            },
          );
        });
      };

      const passThrough = (session: StreamSession): StreamSession => session;

      /** When a call with `options` started, for {@link remaining}: read from the clock only when it has a `timeoutMs`. */
      const startOf = (options: SendOptions | undefined): number => (options?.timeoutMs === undefined ? 0 : ctx.clock.now());

      /** `options` with `timeoutMs` less what has passed since `startedAt` (at least 1 ms). */
      const remaining = (options: SendOptions | undefined, startedAt: number): SendOptions | undefined => {
        if (options?.timeoutMs === undefined) return options;
        return { ...options, timeoutMs: Math.max(1, options.timeoutMs - (ctx.clock.now() - startedAt)) };
      };

      // --- sealing --------------------------------------------------------------------

      /** Sealed bytes of `plaintext` at `counter` with `keys` and associated data `ad`, written at `out[offset]`. */
      const sealInto = (keys: EpochCipher, counter: number, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void => {
        const cipher = keys.forSend(counter);
        if (mode === 'encrypt') {
          cipher.encryptAtInto(counter, ad, plaintext, out, offset);
        } else {
          out.set(plaintext, offset);
          const authenticated = new Uint8Array(ad.length + plaintext.length);
          authenticated.set(ad);
          authenticated.set(plaintext, ad.length);
          out.set(cipher.encryptAt(counter, authenticated, EMPTY), offset + plaintext.length);
        }
      };

      /** The plaintext of `sealed`, or undefined when it does not authenticate. */
      const open = (session: StreamSession, counter: number, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined => {
        const candidate = session.receive.candidate(counter);
        if (!candidate || sealed.length < TAG_LENGTH) return undefined;
        const { cipher, epoch } = candidate;
        let plain: Uint8Array | undefined;
        if (mode === 'encrypt') plain = cipher.decryptAt(counter, ad, sealed);
        else {
          const body = sealed.subarray(0, sealed.length - TAG_LENGTH);
          const authenticated = new Uint8Array(ad.length + body.length);
          authenticated.set(ad);
          authenticated.set(body, ad.length);
          plain = cipher.decryptAt(counter, authenticated, sealed.subarray(body.length)) === undefined ? undefined : body;
        }
        // Only an authenticated message moves the keys on.
        if (plain !== undefined) session.receive.commit(epoch, cipher);
        return plain;
      };

      const SEALED_AD = Uint8Array.of(STREAM_MESSAGE.sealed);

      const openSealed = (session: StreamSession, message: Uint8Array, from: NodeId, address: Address): void => {
        openSealedIf(session, message, from, address, true);
      };

      /**
       * Opens and delivers a sealed message under `session`. When it is replayed or does not
       * authenticate: counted as dropped if `count`, else left to the caller (false).
       */
      const openSealedIf = (session: StreamSession, message: Uint8Array, from: NodeId, address: Address, count: boolean): boolean => {
        let counter: number;
        let sealed: Uint8Array;
        try {
          ({ counter, sealed } = decodeSealedMessage(message));
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
          counters.drop(dropReason(error));
          return true;
        }
        const verdict = session.replay.check(counter);
        if (verdict !== 'ok') {
          if (!count) return false;
          counters.drop(verdict);
          return true;
        }
        const plain = open(session, counter, SEALED_AD, sealed);
        if (plain === undefined) {
          if (!count) return false;
          counters.drop('tampered');
          return true;
        }
        session.replay.accept(counter);
        hot.messagesIn++;
        hot.bytesIn += plain.length;
        const slot = ctx.slots.message;
        if (slot) slot(plain, from, address);
        else counters.drop('no-receiver');
        return true;
      };

      // --- receive -----------------------------------------------------------------------

      /** A proof check of `entry` ended: a first handshake message that came meanwhile is handled now. */
      const afterCheck = (from: NodeId, entry: Pending): void => {
        entry.verifying = false;
        const deferred = entry.deferred;
        entry.deferred = undefined;
        if (deferred !== undefined && running) onMessage(deferred.data, from, deferred.address);
      };

      const onMessage = (data: Uint8Array, from: NodeId, address: Address): void => {
        try {
          if (data.length === 0) {
            counters.drop('truncated');
            return;
          }
          const kind = data[0]!;
          const body = data.subarray(1);
          switch (kind) {
            case STREAM_MESSAGE.sealed: {
              const session = sessions.get(from.hex);
              const entry = pending.get(from.hex);
              const old = retired.size > 0 ? retiredFor(from.hex) : undefined;
              // While we answer a new handshake from the peer, a message may be the old
              // session's, still arriving, or the new one's, sent as soon as the peer
              // finished: what the old keys do not open waits for the new ones.
              const answering = session !== undefined && answeringNew(entry);
              if (session && !answering && old === undefined) {
                openSealed(session, data, from, address);
                return;
              }
              if (session && openSealedIf(session, data, from, address, false)) return;
              if (old !== undefined && openSealedIf(old, data, from, address, false)) {
                counters.add('opened-by-closed-session');
                if (!session && !entry) {
                  // The peer still uses it (its side saw no close): it is the session again.
                  retired.delete(from.hex);
                  sessions.set(from.hex, old);
                  counters.set('sessions', sessions.size);
                  counters.add('sessions-resumed');
                }
                return;
              }
              if (session && !answering) {
                openSealed(session, data, from, address); // counts why it is dropped
                return;
              }
              if (!entry) {
                counters.drop('no-session');
                return;
              }
              if (entry.early.length >= maxEarly || entry.earlyBytes + data.length > maxEarlyBytes || earlyBytesTotal + data.length > EARLY_BYTES_TOTAL) {
                // Dropping one message of a reliable stream would lose it silently: cut the
                // connection instead, so the sender learns (its handshake fails with it).
                // (A transport without closeConnection leaves only the count.)
                counters.drop('early-overflow');
                if (!entry.overflowed) {
                  entry.overflowed = true;
                  ctx.logger.warn('noise-stream: too much data before the handshake finished; aborting the connection', { peer: from.short });
                  ctx.below.closeConnection?.(from, { abort: true }).catch(() => undefined);
                }
                return;
              }
              entry.early.push(data.slice());
              entry.earlyBytes += data.length;
              earlyBytesTotal += data.length;
              counters.add('buffered-early');
              return;
            }
            case STREAM_MESSAGE.handshake1: {
              if (!running) return;
              const entry = pending.get(from.hex);
              if (entry?.verifying) {
                // A new handshake while we check a proof of the one under way (the peer
                // restarted, or gave up on a closed connection): answered once the check is
                // done, so that its outcome cannot install the old handshake's keys after
                // the new handshake took the peer's place.
                entry.deferred = { data: data.slice(), address };
                counters.add('handshakes-deferred');
                return;
              }
              if (entry?.handshake?.initiator && entry.handshake.messagesDone === 1) {
                // Both sides dialled at once: the first message with the smaller ephemeral key wins.
                const ours = entry.handshake.localEphemeralKey!;
                counters.add('simultaneous-open');
                if (body.length >= 32 && compareBytes(ours, body.subarray(0, 32)) < 0) return;
              }
              const handshake = new HandshakeState({ protocol, initiator: false, prologue, staticKeyPair, crypto });
              handshake.readMessage(body);
              const reply = handshake.writeMessage(identityProof);
              // A session in place stays until the new handshake completes: a stray or forged
              // first message cannot take it down (a restarted peer comes on a new connection,
              // and connection-close already ended the old session).
              const target = entry ?? newPending(from);
              target.handshake = handshake;
              counters.add('handshakes-answered');
              sendRaw(from, withKind(STREAM_MESSAGE.handshake2, reply));
              return;
            }
            case STREAM_MESSAGE.handshake2: {
              const entry = pending.get(from.hex);
              const handshake = entry?.handshake;
              if (!entry || !handshake?.initiator || handshake.messagesDone !== 1) {
                counters.drop('unexpected-handshake');
                return;
              }
              const payload = handshake.readMessage(body);
              const closes = entry.closes;
              entry.verifying = true;
              detach(
                (async () => {
                  try {
                    const identity = await authenticate(from, address, payload, handshake);
                    if (!identity || !running || pending.get(from.hex) !== entry || connectionLost(from, address, entry, closes)) return;
                    sendRaw(from, withKind(STREAM_MESSAGE.handshake3, handshake.writeMessage(identityProof)));
                    establish(from, address, handshake, identity, true);
                  } finally {
                    afterCheck(from, entry);
                  }
                })(),
              );
              return;
            }
            case STREAM_MESSAGE.handshake3: {
              const entry = pending.get(from.hex);
              const handshake = entry?.handshake;
              if (!entry || !handshake || handshake.initiator || handshake.messagesDone !== 2) {
                counters.drop('unexpected-handshake');
                return;
              }
              const payload = handshake.readMessage(body);
              const closes = entry.closes;
              entry.verifying = true;
              detach(
                (async () => {
                  try {
                    const identity = await authenticate(from, address, payload, handshake);
                    // After a stop, an entry still pending was kept for this check (see stop).
                    if (!identity || pending.get(from.hex) !== entry) return;
                    if (entry.closes !== closes) {
                      // The connection closed during the check. The peer finished its side
                      // and may have sent messages it took as delivered: open them with the
                      // keys just proven, then give the handshake up (a session now would
                      // belong to no connection). Not after an overflow: we cut that
                      // connection ourselves, and what came after the bound is gone, so
                      // delivering the part before it would leave a gap.
                      const early = entry.overflowed ? [] : entry.early.splice(0);
                      const closed = makeSession(address, handshake, identity, false);
                      abandon(from, address, entry);
                      for (const message of early) openSealed(closed, message, from, address);
                      return;
                    }
                    establish(from, address, handshake, identity, false);
                  } finally {
                    afterCheck(from, entry);
                  }
                })(),
              );
              return;
            }
            default:
              counters.drop('unknown-type');
          }
        } catch (error) {
          counters.drop(error instanceof NoiseError ? 'handshake-decrypt' : 'error');
          if (!(error instanceof NoiseError)) ctx.logger.warn('noise-stream: receive failed', { error });
        }
      };

      /**
       * The plaintext pieces of one frame's sealed bytes (ciphertext in `pieces`, `tag`
       * apart), or undefined when it does not authenticate. Nothing is joined or copied in
       * encrypt mode: the pieces are views of what the transport delivered.
       */
      const openFrame = (keys: EpochCipher, counter: number, ad: Uint8Array, pieces: Uint8Array[], tag: Uint8Array): Uint8Array[] | undefined => {
        const candidate = keys.candidate(counter);
        if (!candidate) return undefined;
        const { cipher, epoch } = candidate;
        let plain: Uint8Array[] | undefined;
        if (mode === 'encrypt') plain = cipher.decryptAtParts(counter, ad, pieces, tag);
        else {
          let bodyLength = 0;
          for (const piece of pieces) bodyLength += piece.length;
          const authenticated = new Uint8Array(ad.length + bodyLength);
          authenticated.set(ad);
          let offset = ad.length;
          for (const piece of pieces) {
            authenticated.set(piece, offset);
            offset += piece.length;
          }
          plain = cipher.decryptAt(counter, authenticated, tag) === undefined ? undefined : [authenticated.subarray(ad.length)];
        }
        // Only an authenticated frame moves the keys on.
        if (plain !== undefined) keys.commit(epoch, cipher);
        return plain;
      };

      /**
       * The stream key sealed in a start frame, or undefined when it does not authenticate
       * under the session's keys. Always encrypted (in sign-only mode too): it is key material.
       */
      const openStart = (session: StreamSession, counter: number, ad: Uint8Array, pieces: Uint8Array[], tag: Uint8Array): Uint8Array | undefined => {
        const candidate = session.receive.candidate(counter);
        if (!candidate) return undefined;
        const key = candidate.cipher.decryptAt(counter, ad, concatBytes(...pieces, tag));
        if (key !== undefined) session.receive.commit(candidate.epoch, candidate.cipher);
        return key;
      };

      /**
       * The parser of one incoming stream: chunks in, authenticated plaintext pieces out;
       * throws NoiseError when the stream is tampered with, replayed or cut short. The bytes
       * are parsed as they come: headers and tags (a few bytes) are gathered across chunks,
       * the ciphertext is kept as views of the chunks and opened in place once its tag is in,
       * and a frame's plaintext is released only after its tag verified. The start frame is
       * checked against the session (its counter through the replay window, its key under
       * the session's keys); every later frame against the stream's own key, in order.
       */
      const streamParser = (from: NodeId, session: StreamSession | undefined) => {
        const PHASE_STREAM_HEADER = 0;
        const PHASE_FRAME_HEADER = 1;
        const PHASE_BODY = 2;
        const PHASE_TAG = 3;
        const PHASE_ENDED = 4;
        let phase = PHASE_STREAM_HEADER;
        // Small fields (stream header, frame header, tag) gathered here across chunks.
        const scratch = new Uint8Array(Math.max(STREAM_HEADER_LENGTH, STREAM_FRAME_HEADER_LENGTH, TAG_LENGTH));
        let scratchFill = 0;
        const ad = new Uint8Array(STREAM_HEADER_LENGTH + 1);
        /** The stream's keys, from its start frame. */
        let keys: EpochCipher | undefined;
        let expected = 0;
        let flags = 0;
        let counter = 0;
        let bodyLeft = 0;
        let pieces: Uint8Array[] = [];
        const fail = (reason: string, message: string): never => {
          counters.drop(reason);
          throw new NoiseError('DECRYPT_FAILED', `noise-stream from ${from.short}: ${message}`);
        };
        /** The whole frame is in (header, body pieces, tag in scratch): authenticates it and appends its plaintext to `out`. */
        const frameDone = (out: Uint8Array[]): void => {
          const tag = scratch.subarray(0, TAG_LENGTH);
          ad[STREAM_HEADER_LENGTH] = flags;
          if (keys === undefined) {
            if (!session) return fail('no-session', 'no session');
            const verdict = session.replay.check(counter);
            if (verdict !== 'ok') return fail(verdict, 'stream replayed');
            const key = openStart(session, counter, ad, pieces, tag);
            pieces = [];
            if (key === undefined) return fail('tampered', 'start frame authentication failed');
            session.replay.accept(counter);
            keys = new EpochCipher(new CipherState(aead, key), rekeyAfterMessages);
            phase = PHASE_FRAME_HEADER;
            return;
          }
          if (counter !== expected) fail('replayed', 'frames out of order');
          const plain = openFrame(keys, counter, ad, pieces, tag);
          pieces = [];
          if (plain === undefined) return fail('tampered', 'frame authentication failed');
          expected++;
          if (flags & STREAM_FLAG_END) {
            phase = PHASE_ENDED;
            return;
          }
          phase = PHASE_FRAME_HEADER;
          for (const piece of plain) {
            hot.bytesIn += piece.length;
            if (piece.length > 0) out.push(piece);
          }
        };
        return {
          /** Whether the start frame authenticated. */
          started: (): boolean => keys !== undefined,
          /** Parses `chunk`; the plaintext it completes is appended to `out`. */
          push(chunk: Uint8Array, out: Uint8Array[]): void {
            let offset = 0;
            const length = chunk.length;
            while (offset < length) {
              if (phase === PHASE_BODY) {
                const n = Math.min(bodyLeft, length - offset);
                pieces.push(offset === 0 && n === length ? chunk : chunk.subarray(offset, offset + n));
                offset += n;
                bodyLeft -= n;
                if (bodyLeft === 0) phase = PHASE_TAG;
                continue;
              }
              if (phase === PHASE_ENDED) fail('trailing-bytes', 'data after the end frame');
              const want = phase === PHASE_STREAM_HEADER ? STREAM_HEADER_LENGTH : phase === PHASE_FRAME_HEADER ? STREAM_FRAME_HEADER_LENGTH : TAG_LENGTH;
              const n = Math.min(want - scratchFill, length - offset);
              scratch.set(chunk.subarray(offset, offset + n), scratchFill);
              scratchFill += n;
              offset += n;
              if (scratchFill < want) continue;
              scratchFill = 0;
              if (phase === PHASE_STREAM_HEADER) {
                let streamId: Uint8Array;
                try {
                  streamId = decodeStreamHeader(scratch.subarray(0, STREAM_HEADER_LENGTH));
                } catch (error) {
                  return fail(dropReason(error), error instanceof Error ? error.message : 'bad stream header');
                }
                // Each frame's associated data: magic, the stream id, then the frame flags.
                ad[0] = STREAM_MAGIC;
                ad.set(streamId, 1);
                phase = PHASE_FRAME_HEADER;
              } else if (phase === PHASE_FRAME_HEADER) {
                let header: { length: number; flags: number; counter: number };
                try {
                  header = decodeStreamFrameHeader(scratch.subarray(0, STREAM_FRAME_HEADER_LENGTH));
                } catch (error) {
                  return fail(dropReason(error), error instanceof Error ? error.message : 'bad frame');
                }
                flags = header.flags;
                counter = header.counter;
                bodyLeft = header.length - 1 - 8 - TAG_LENGTH;
                // A stream opens with exactly one start frame, which seals a key and nothing else.
                if ((keys === undefined) !== (flags === STREAM_FLAG_START)) fail('bad-start', keys === undefined ? 'the stream does not open with its start frame' : 'a second start frame');
                if (keys === undefined && bodyLeft !== STREAM_KEY_LENGTH) fail('bad-start', `a start frame of ${bodyLeft} bytes`);
                pieces = [];
                phase = bodyLeft > 0 ? PHASE_BODY : PHASE_TAG;
              } else {
                frameDone(out);
              }
            }
          },
          /** The source ended: throws unless the stream ended with its end frame. */
          end(): void {
            if (phase !== PHASE_ENDED) fail('truncated', 'the stream ended without its end frame');
            counters.add('streams-in');
          },
        };
      };

      /** Ends the transport's stream under a reader that stopped (errors ignored: it is being dropped). */
      const cancel = async (iterator: AsyncIterator<Uint8Array>): Promise<void> => {
        try {
          await iterator.return?.();
        } catch {
          // Nothing more to do with it.
        }
      };

      /**
       * Decrypts one incoming stream. Its start frame is read and checked at once, whether
       * or not the application reads the stream yet: the start frame's counter is the
       * session's, and must still be inside the replay window when it is checked. Every
       * later frame depends only on the stream's own key, so a stream may wait on its
       * reader (and the transport's flow control) for as long as it likes while other
       * streams and messages go on.
       */
      const openStream = (source: AsyncIterable<Uint8Array>, from: NodeId): AsyncGenerator<Uint8Array> => {
        const iterator = source[Symbol.asyncIterator]();
        const opening = (async () => {
          const parser = streamParser(from, sessions.get(from.hex) ?? (await pending.get(from.hex)?.promise.catch(() => undefined)));
          // Plaintext in the chunk that completed the start frame, held for the reader.
          const held: Uint8Array[] = [];
          try {
            while (!parser.started()) {
              const next = await iterator.next();
              if (next.done) {
                parser.end();
                break;
              }
              parser.push(next.value, held);
            }
          } catch (error) {
            // Refused before anyone read it: the transport's stream is cancelled now.
            await cancel(iterator);
            throw error;
          }
          return { parser, held };
        })();
        opening.catch(() => undefined);
        return (async function* () {
          let finished = false;
          try {
            const { parser, held } = await opening;
            yield* held;
            const out: Uint8Array[] = [];
            for (;;) {
              const next = await iterator.next();
              if (next.done) break;
              parser.push(next.value, out);
              for (let i = 0; i < out.length; i++) yield out[i]!;
              out.length = 0;
            }
            parser.end();
            finished = true;
          } finally {
            // A reader that stops early, or a stream that failed: cancel the transport's stream.
            if (!finished) await cancel(iterator);
          }
        })();
      };

      const onStream = (source: AsyncIterable<Uint8Array>, from: NodeId, address: Address): unknown => {
        const slot = ctx.slots.stream;
        if (!slot) {
          // Refused, as the transport refuses a stream nobody takes: the sender learns it
          // (STREAM_REFUSED) rather than seeing its data taken and dropped. Its start frame
          // is never read; the session's counter it used is simply never seen.
          counters.drop('no-receiver');
          return false;
        }
        const decrypted = openStream(source, from);
        // The application's handler may refuse it too; the transport then fails what began reading it.
        return slot(decrypted, from, address);
      };

      // --- send ---------------------------------------------------------------------------

      const sendMessage = async (to: NodeId, data: Uint8Array, sendOptions?: SendOptions): Promise<void> => {
        checkTarget(to, 'sendMessage');
        if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('noiseStream.sendMessage: data must be a Uint8Array');
        const startedAt = startOf(sendOptions);
        const session = await sessionFor(to, sendOptions);
        sendOptions = remaining(sendOptions, startedAt);
        const counter = session.sendCounter++;
        const out = new Uint8Array(SEALED_HEADER_LENGTH + data.length + TAG_LENGTH);
        out[0] = STREAM_MESSAGE.sealed;
        const view = new DataView(out.buffer);
        view.setUint32(1, Math.floor(counter / 0x1_0000_0000));
        view.setUint32(5, counter >>> 0);
        sealInto(session.send, counter, SEALED_AD, data, out, SEALED_HEADER_LENGTH);
        try {
          await ctx.below.sendMessage(to, out, sendOptions);
        } catch (error) {
          throw tooLargeInPlaintext(error, data.length) ?? error;
        }
        hot.messagesOut++;
        hot.bytesOut += data.length;
      };

      const checkTarget = (to: NodeId, what: string): void => {
        if (!(to instanceof NodeId)) throw new InvalidArgumentError(`noiseStream.${what}: 'to' must be a NodeId`);
      };

      /**
       * The transport's "message too large" restated for the caller's bytes: the transport
       * saw the sealed message, {@link SEALED_OVERHEAD} bytes longer than what was passed.
       */
      const tooLargeInPlaintext = (error: unknown, size: number): MessageTooLargeError | undefined => {
        if (!(error instanceof MessageTooLargeError)) return undefined;
        const limit = error.limit;
        const room = Math.max(0, limit - SEALED_OVERHEAD);
        return new MessageTooLargeError(
          size,
          room,
          `noise-stream: a message of ${size} bytes exceeds the ${room} bytes a sealed message may carry (the transport's limit of ${limit} less ${SEALED_OVERHEAD} bytes of header and tag); send larger data as a stream`,
          { cause: error },
        );
      };

      /**
       * Seals a stream: its header and start frame (the stream's own random key, sealed with
       * the session's keys at the session's next counter), then frames of at most
       * {@link STREAM_FRAME_PLAINTEXT} bytes sealed with the stream's key, counted from 0. A
       * small frame goes down as one array; a large one as its header, its ciphertext as the
       * cipher produced it (never copied) and its tag, which travels with the next frame's
       * header when the same source chunk has more (never held back past the chunk).
       */
      async function* sealStream(session: StreamSession, source: ByteSource, giveUp: AbortSignal): AsyncGenerator<Uint8Array> {
        const ad = new Uint8Array(STREAM_HEADER_LENGTH + 1);
        ad[0] = STREAM_MAGIC;
        ad.set(ctx.random.bytes(8), 1);
        const key = secureRandomBytes(STREAM_KEY_LENGTH);
        const start = new Uint8Array(STREAM_HEADER_LENGTH + STREAM_FRAME_HEADER_LENGTH + STREAM_KEY_LENGTH + TAG_LENGTH);
        start.set(ad.subarray(0, STREAM_HEADER_LENGTH));
        const startCounter = session.sendCounter++;
        writeStreamFrameHeader(start.subarray(STREAM_HEADER_LENGTH), STREAM_KEY_LENGTH, STREAM_FLAG_START, startCounter);
        ad[STREAM_HEADER_LENGTH] = STREAM_FLAG_START;
        // Always encrypted, in sign-only mode too: it is key material.
        session.send.forSend(startCounter).encryptAtInto(startCounter, ad, key, start, STREAM_HEADER_LENGTH + STREAM_FRAME_HEADER_LENGTH);
        const keys = new EpochCipher(new CipherState(aead, key), rekeyAfterMessages);
        let next = 0;
        yield start;
        const frame = (payload: Uint8Array, flags: number): Uint8Array => {
          const counter = next++;
          const out = new Uint8Array(STREAM_FRAME_HEADER_LENGTH + payload.length + TAG_LENGTH);
          writeStreamFrameHeader(out, payload.length, flags, counter);
          ad[STREAM_HEADER_LENGTH] = flags;
          sealInto(keys, counter, ad, payload, out, STREAM_FRAME_HEADER_LENGTH);
          return out;
        };
        /** What to hand down for `chunk`, in order. */
        const seal = (chunk: Uint8Array): Uint8Array[] => {
          if (!(chunk instanceof Uint8Array)) throw new InvalidArgumentError('noiseStream.sendStream: the source must yield Uint8Array chunks');
          hot.bytesOut += chunk.length;
          const out: Uint8Array[] = [];
          let tag: Uint8Array | undefined;
          for (let offset = 0; offset < chunk.length; offset += STREAM_FRAME_PLAINTEXT) {
            const piece = chunk.subarray(offset, Math.min(chunk.length, offset + STREAM_FRAME_PLAINTEXT));
            if (mode !== 'encrypt' || piece.length <= COPY_FRAME_BYTES) {
              if (tag) out.push(tag);
              tag = undefined;
              out.push(frame(piece, 0));
              continue;
            }
            const counter = next++;
            const before = tag ? TAG_LENGTH : 0;
            const head = new Uint8Array(before + STREAM_FRAME_HEADER_LENGTH);
            if (tag) head.set(tag);
            writeStreamFrameHeader(head.subarray(before), piece.length, 0, counter);
            ad[STREAM_HEADER_LENGTH] = 0;
            const sealed = keys.forSend(counter).encryptAtParts(counter, ad, piece);
            out.push(head, sealed.ciphertext);
            tag = sealed.tag;
          }
          if (tag) out.push(tag);
          return out;
        };
        // Writes shorter than a frame are gathered (copied) into frames of up to a full
        // frame (a synchronous source's fill up; an asynchronous source's go out by the next
        // turn of the event loop): a frame's fixed costs (a cipher context, the tag, its
        // pieces down the transport) are worth several times the copy, even for 64 KiB writes.
        // `giveUp` aborts once the transport has failed the stream: a source that never
        // yields again must not hold this generator.
        const chunks = coalesceWrites(source, { below: STREAM_FRAME_PLAINTEXT, max: STREAM_FRAME_PLAINTEXT, signal: giveUp });
        if (typeof (chunks as Partial<AsyncIterable<Uint8Array>>)[Symbol.asyncIterator] !== 'function') {
          for (const chunk of chunks as Iterable<Uint8Array>) yield* seal(chunk);
        } else {
          for await (const chunk of chunks) yield* seal(chunk);
        }
        yield frame(EMPTY, STREAM_FLAG_END);
        counters.add('streams-out');
      }

      const sendStream = async (to: NodeId, source: ByteSource, sendOptions?: SendOptions): Promise<void> => {
        checkTarget(to, 'sendStream');
        if (source === null || typeof source !== 'object' || (!(Symbol.asyncIterator in source) && !(Symbol.iterator in source))) {
          throw new InvalidArgumentError('noiseStream.sendStream: the source must be an iterable or async iterable of Uint8Array chunks');
        }
        const startedAt = startOf(sendOptions);
        const session = await sessionFor(to, sendOptions);
        const giveUp = new AbortController();
        try {
          await ctx.below.sendStream(to, sealStream(session, source, giveUp.signal), remaining(sendOptions, startedAt));
        } catch (error) {
          // The transport stopped reading the sealed stream, perhaps while it waited on the
          // caller's source: that wait is given up and the source told to end.
          giveUp.abort(error);
          throw error;
        }
      };

      return {
        provides: {
          sendMessage,
          sendStream,
          secureStreamSession: async (id: NodeId, sessionOptions?: SendOptions) => (await sessionFor(id, sessionOptions)).info,
          openConnection: async (to: NodeId, openOptions?: SendOptions) => {
            // Open means ready for sealed traffic: the transport's connection, then the handshake on it.
            const startedAt = startOf(openOptions);
            if (ctx.below.openConnection) await ctx.below.openConnection(to, openOptions);
            await sessionFor(to, remaining(openOptions, startedAt));
          },
        },
        takes: {
          message: onMessage,
          stream: onStream,
          'connection-close': (id: NodeId) => {
            // A handshake waiting for the peer's next message may go on: its message may
            // travel on a connection still being made (the transport reports a close when
            // none is open, and one that is dialling is not open yet). When the transport
            // can tell, and no connection is being made either, nothing can carry the
            // peer's reply: the handshake fails now rather than at its timeout. Checked once
            // the transport has finished with the close (it may start a new dial after it).
            const entry = pending.get(id.hex);
            if (entry) {
              entry.closes++;
              const state = ctx.below.connectionState;
              if (state) {
                queueMicrotask(() => {
                  // A proof under check decides itself once checked (its tail sees the close):
                  // messages the peer sent before closing are delivered if the proof holds.
                  if (!running || pending.get(id.hex) !== entry || entry.verifying || state(id) !== 'none') return;
                  abandon(id, undefined, entry);
                });
              }
            }
            const session = sessions.get(id.hex);
            if (session) {
              sessions.delete(id.hex);
              retired.set(id.hex, { session, until: ctx.clock.now() + handshakeTimeoutMs });
              if (retired.size > MAX_RETIRED) {
                for (const [key, value] of retired) if (value.until <= ctx.clock.now() || retired.size > MAX_RETIRED) retired.delete(key);
              }
              counters.set('sessions', sessions.size);
              if (ctx.observed('noise-session-close')) ctx.emit('noise-session-close', session.info, 'connection closed');
            }
          },
        },
        start: () => {
          // Sessions and checks kept through the last stop (see there) end now.
          sessions.clear();
          retired.clear();
          pending.clear();
          earlyBytesTotal = 0;
          running = true;
        },
        stop: () => {
          running = false;
          const stopped = new StateError('STOPPED', 'the noise-stream layer stopped');
          for (const [key, entry] of [...pending.entries()]) {
            ctx.clock.clearTimeout(entry.timer);
            entry.reject(stopped);
            // A peer whose final message we are checking has finished its side and may be
            // sending: the check goes on, and its session opens what arrives (below).
            if (entry.verifying && entry.handshake !== undefined && !entry.handshake.initiator) continue;
            for (let i = entry.early.length; i > 0; i--) counters.drop('early-abandoned');
            earlyBytesTotal -= entry.earlyBytes;
            pending.delete(key);
          }
          // Layers stop from the top: the transport below may still deliver what its
          // connections carry while it closes them gracefully, messages whose senders saw
          // them sent. The sessions stay to open those (nothing is sent on them any more:
          // every call is refused once stopped) and are dropped at the next start.
          for (const session of sessions.values()) if (ctx.observed('noise-session-close')) ctx.emit('noise-session-close', session.info, 'stopped');
          counters.set('sessions', 0);
        },
        status: () => ({ mode, sessions: running ? sessions.size : 0, pending: pending.size }),
      };
    },
  });
}
