/**
 * The `noise()` layer: Noise XX sessions over any datagram transport, per peer address.
 *
 * A handshake is three datagrams (Noise XX, revision 34 section 7.5); both identity
 * proofs travel encrypted in messages 2 and 3. Transport messages carry the receiver's
 * session index and an explicit 64-bit counter used as the AEAD nonce, so datagrams may
 * be lost or reordered (Noise section 11.4); a sliding window rejects replays. Sessions
 * are replaced by a fresh handshake after a time or a message count (forward secrecy
 * for long-lived pairs, as WireGuard does) and die after a hard limit. Under a flood of
 * initiations the responder stops keeping state and answers with a stateless cookie
 * bound to the source address (WireGuard's cookie reply); spoofed sources never see it.
 */
import {
  addressKey,
  checkTimeoutMs,
  bytesEqual,
  decodeFrame,
  defineLayer,
  dropReason,
  encodeData,
  FRAME_DATA,
  InvalidArgumentError,
  secureRandomBytes,
  StateError,
  utf8Encode,
  WireError,
  type Address,
  type NodeId,
  type PeerRecord,
  type PublicIdentity,
  type TimerHandle,
} from '@deccom/core';
import { defaultNoiseCrypto, type DhKeyPair, type NoiseCrypto } from './crypto.js';
import { NoiseError } from './errors.js';
import { CipherState, HandshakeState } from './handshake.js';
import { createIdentityProof, verifyIdentityProof, verifyIdentityProofAsync } from './identity.js';
import { parseProtocolName, type ProtocolName } from './patterns.js';
import { ReplayWindow } from './replay.js';
import {
  COOKIE_LENGTH,
  decodeCookie,
  decodeHandshakeReply,
  decodeInitiation,
  decodeTransport,
  decodeUnknownSession,
  encodeCookie,
  encodeHandshakeReply,
  encodeInitiation,
  encodeUnknownSession,
  INNER,
  MESSAGE,
  NOISE_PROTOCOL,
  TAG_LENGTH,
  TRANSPORT_HEADER_LENGTH,
  TRANSPORT_OVERHEAD,
  writeTransportHeader,
  type Transport,
} from './wire.js';

/** What travels: `encrypt` (AEAD), `sign-only` (authenticated, readable), `plaintext` (no protection). */
export type NoiseMode = 'encrypt' | 'sign-only' | 'plaintext';

/** An established session, as the layers above see it. */
export interface SecureSession {
  readonly address: Address;
  readonly remoteIdentity: PublicIdentity;
  readonly remoteId: NodeId;
  /** The peer's Noise static public key. */
  readonly remoteStaticKey: Uint8Array;
  /** The Noise handshake hash, for channel binding (Noise section 11.2). */
  readonly handshakeHash: Uint8Array;
  /** Whether this node sent the first handshake message. */
  readonly initiator: boolean;
  /** Clock time the session was established. */
  readonly establishedAt: number;
}

export interface SecureConnectOptions {
  /** The node we mean to reach: the handshake fails with `IDENTITY_MISMATCH` if another answers. */
  expectedId?: NodeId;
  /** Deadline. Default: the layer's `handshakeTimeoutMs`. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

declare module '@deccom/core' {
  interface Capabilities {
    /**
     * Resolves with a session with the node at `address`, running a handshake if there is
     * none. Rejects with a NoiseError (`IDENTITY_MISMATCH`, `BAD_IDENTITY_PROOF`,
     * `HANDSHAKE_TIMEOUT`, `HANDSHAKE_REJECTED`) or an AbortError.
     */
    secureConnect(address: Address, options?: SecureConnectOptions): Promise<SecureSession>;
    /** The current session with `address`, if any. */
    secureSession(address: Address): SecureSession | undefined;
    /** Ends the sessions with `address` (telling the peer); the next send handshakes again. */
    secureDisconnect(address: Address): void;
  }
  interface HookSignatures {
    /** A Noise session was established (also after each rekey). */
    'noise-session-open': (session: SecureSession) => void;
    /** A Noise session ended (expired, closed by the peer, replaced, or the layer stopped). */
    'noise-session-close': (session: SecureSession, reason: string) => void;
    /** A handshake failed (identity mismatch, bad proof, timeout, rejected by policy). */
    'noise-handshake-error': (address: Address, error: NoiseError) => void;
  }
  interface HookKinds {
    'noise-session-open': 'event';
    'noise-session-close': 'event';
    'noise-handshake-error': 'event';
  }
}

export interface NoiseOptions {
  /** Default `'encrypt'`. Both sides must use the same mode (it is bound into the handshake). */
  mode?: NoiseMode;
  /**
   * Let nothing from a peer without a completed handshake through. Default true. When
   * false, plaintext DATA frames from anyone are delivered as well (for mixed networks).
   */
  strict?: boolean;
  /** Hash of the Noise suite `Noise_XX_25519_ChaChaPoly_<hash>`. Default `'SHA256'`. */
  hash?: 'SHA256' | 'BLAKE2b';
  /** Crypto implementation. Default: node:crypto when present, else noble. */
  crypto?: NoiseCrypto;
  /** Give up a handshake after this long. Default 10,000 ms. */
  handshakeTimeoutMs?: number;
  /** First retransmission of a handshake message; doubles up to 2,000 ms. Default 250 ms. */
  retransmitMs?: number;
  /** Start a new handshake once a session is this old and we send on it. Default 120,000 ms. */
  rekeyAfterMs?: number;
  /** ...or once this many messages were sent on it. Default 2^32. */
  rekeyAfterMessages?: number;
  /** A session is never used after this age. Default 180,000 ms. */
  rejectAfterMs?: number;
  /** Messages queued per peer while its handshake runs (oldest dropped beyond). Default 64. */
  maxQueuedMessages?: number;
  /** Half-open (responder) handshakes kept at most, in all. Default 1,024. */
  maxHalfOpen?: number;
  /** Half-open handshakes kept at most per source host. Default 16. */
  maxHalfOpenPerHost?: number;
  /** From this many half-open handshakes on, initiators must echo a cookie first. Default 32. */
  cookieThreshold?: number;
  /** Sessions (peers) kept at most; the least recently used is closed beyond. Default 10,000. */
  maxSessions?: number;
  /**
   * Verify peers' Ed25519 identity signatures on libuv's thread pool, off the event loop.
   * Default true. Set false for fully deterministic runs on a virtual clock (the check
   * then runs inline).
   */
  verifyOnThreadPool?: boolean;
  /** Local policy run after a peer authenticated: return false to refuse it. Default: accept every authenticated peer. */
  accept?: (peer: { identity: PublicIdentity; id: NodeId; address: Address }) => boolean;
  /** Instance name. Default `noise`. */
  name?: string;
}

const MODE_BYTE: Record<NoiseMode, number> = { plaintext: 0, 'sign-only': 1, encrypt: 2 };
const EMPTY = new Uint8Array(0);
const RETRANSMIT_CAP_MS = 2_000;
/**
 * Datagrams that overtake the final handshake message, or arrive while its identity proof
 * is verified (on the thread pool), wait for the session, within these bounds: per
 * handshake a count and bytes, and bytes over all handshakes. A sender may send as soon as
 * its own side finished, so a burst right after `secureConnect()` lands here; 16 (the
 * earlier bound) lost 15 of a 256-datagram burst on a lossless loopback.
 */
const BUFFERED_PER_HALF_OPEN = 256;
const BUFFERED_BYTES_PER_HALF_OPEN = 256 * 1024;
const BUFFERED_BYTES_TOTAL = 4 * 1024 * 1024;
/**
 * An initiator sends at most half of what the responder holds early (above) on a session
 * the responder has not yet confirmed; later datagrams wait on the initiator until the
 * confirmation arrives (one round trip after the final message, plus the responder's
 * check of the proof). Without this pacing a burst sent the moment `secureConnect()`
 * resolved lost all but 256 whenever the check was slower than the burst.
 */
const UNCONFIRMED_DATAGRAMS = BUFFERED_PER_HALF_OPEN / 2;
const UNCONFIRMED_BYTES = BUFFERED_BYTES_PER_HALF_OPEN / 2;
/** Held per session until confirmed, at most; the oldest is dropped beyond (`dropped.unconfirmed-overflow`). */
const HELD_UNCONFIRMED = 4_096;
const HELD_UNCONFIRMED_BYTES = 4 * 1024 * 1024;
const UNKNOWN_SESSION_REPLIES_PER_SECOND = 100;
const COOKIE_ROTATE_MS = 120_000;

interface Session {
  readonly peer: Peer;
  readonly localIndex: number;
  readonly remoteIndex: number;
  readonly send: CipherState;
  readonly receive: CipherState;
  readonly replay: ReplayWindow;
  readonly info: SecureSession;
  sendCounter: number;
  /** Initiator: the responder has shown it has the session (any authenticated message). */
  confirmed: boolean;
  /** Initiator: the FINAL message, resent until confirmed. */
  finalMessage: Uint8Array | undefined;
  finalTimer: TimerHandle | undefined;
  /** Initiator, until confirmed: data datagrams and their bytes sent on the session. */
  unconfirmedSent: number;
  unconfirmedBytes: number;
  /** Initiator, until confirmed: data beyond that window, sent in order on confirmation. */
  held: Uint8Array[];
  heldBytes: number;
  closed: boolean;
}

interface Initiation {
  readonly handshake: HandshakeState;
  readonly localIndex: number;
  readonly message: Uint8Array;
  readonly expectedId: NodeId | undefined;
  readonly startedAt: number;
  cookie: Uint8Array | undefined;
  wire: Uint8Array;
  timer: TimerHandle | undefined;
  delayMs: number;
}

interface HalfOpen {
  readonly handshake: HandshakeState;
  readonly localIndex: number;
  readonly remoteIndex: number;
  readonly remoteEphemeral: Uint8Array;
  readonly response: Uint8Array;
  readonly startedAt: number;
  readonly host: string;
  readonly buffered: Transport[];
  /** Plaintext mode: DATA that overtook the final handshake message (or its verification). */
  readonly bufferedPlain: Uint8Array[];
  /** Bytes held in `buffered` and `bufferedPlain`. */
  bufferedBytes: number;
  /** The newest initiation from this address that arrived while we verified its final message. */
  deferred?: { readonly body: Uint8Array; readonly from: Address } | undefined;
}

interface Waiter {
  readonly resolve: (session: SecureSession) => void;
  readonly reject: (error: unknown) => void;
  readonly expectedId: NodeId | undefined;
  readonly cleanup: () => void;
}

interface Peer {
  readonly key: string;
  readonly address: Address;
  current: Session | undefined;
  previous: Session | undefined;
  initiation: Initiation | undefined;
  halfOpen: HalfOpen | undefined;
  readonly waiters: Set<Waiter>;
  queue: Uint8Array[];
  lastUsed: number;
  unknownSessionAt: number;
}

type IndexEntry = { kind: 'session'; session: Session } | { kind: 'initiation'; peer: Peer } | { kind: 'half-open'; peer: Peer };

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v > 0)) throw new InvalidArgumentError(`noise: ${name} must be a positive number, got ${String(value)}`);
  return v;
}

/**
 * The Noise security layer over datagrams. Needs `sendDatagram` and `maxDatagramSize`
 * below and takes the `datagram` hook; takes the discovery layer's `approve` hook when
 * there is one, so a peer joins discovery only after its handshake. Provides
 * `sendDatagram`, `maxDatagramSize`, `secureConnect`, `secureSession`, `secureDisconnect`;
 * offers `datagram` and the `noise-session-open`, `noise-session-close` and
 * `noise-handshake-error` events.
 */
export function noise(options: NoiseOptions = {}) {
  const mode = options.mode ?? 'encrypt';
  if (!(mode in MODE_BYTE)) throw new InvalidArgumentError(`noise: mode must be 'encrypt', 'sign-only' or 'plaintext', got ${String(mode)}`);
  const strict = options.strict ?? true;
  const hashName = options.hash ?? 'SHA256';
  if (hashName !== 'SHA256' && hashName !== 'BLAKE2b') throw new InvalidArgumentError(`noise: hash must be 'SHA256' or 'BLAKE2b', got ${String(hashName)}`);
  const handshakeTimeoutMs = positive(options.handshakeTimeoutMs, 10_000, 'handshakeTimeoutMs');
  const retransmitMs = positive(options.retransmitMs, 250, 'retransmitMs');
  const rekeyAfterMs = positive(options.rekeyAfterMs, 120_000, 'rekeyAfterMs');
  const rekeyAfterMessages = positive(options.rekeyAfterMessages, 2 ** 32, 'rekeyAfterMessages');
  const rejectAfterMs = positive(options.rejectAfterMs, 180_000, 'rejectAfterMs');
  const maxQueued = positive(options.maxQueuedMessages, 64, 'maxQueuedMessages');
  const maxHalfOpen = positive(options.maxHalfOpen, 1024, 'maxHalfOpen');
  const maxHalfOpenPerHost = positive(options.maxHalfOpenPerHost, 16, 'maxHalfOpenPerHost');
  const cookieThreshold = positive(options.cookieThreshold, 32, 'cookieThreshold');
  const maxSessions = positive(options.maxSessions, 10_000, 'maxSessions');
  const protocol: ProtocolName = parseProtocolName(`Noise_XX_25519_ChaChaPoly_${hashName}`);
  const prologue = utf8Encode(`deccom/noise/1/datagram/${mode}`);
  const encrypting = mode !== 'plaintext';
  const offThread = options.verifyOnThreadPool ?? true;

  return defineLayer({
    type: 'noise',
    name: options.name,
    protocol: NOISE_PROTOCOL,
    needs: ['sendDatagram', 'maxDatagramSize'],
    takes: ['datagram'],
    takesOptional: ['approve'],
    provides: ['sendDatagram', 'maxDatagramSize', 'secureConnect', 'secureSession', 'secureDisconnect'],
    offers: { datagram: 'exclusive', 'noise-session-open': 'event', 'noise-session-close': 'event', 'noise-handshake-error': 'event' },
    create: (ctx) => {
      const crypto = options.crypto ?? defaultNoiseCrypto();
      const dh = crypto.dh('25519');
      const hash = crypto.hash(protocol.hash);
      const counters = ctx.counters;
      const canAuthenticate = ctx.identity.canSign && ctx.identity.kind === 'ed25519';
      if (!canAuthenticate && (encrypting || strict)) {
        throw new NoiseError('IDENTITY_CANNOT_SIGN', `noise: mode '${mode}'${strict ? ' (strict)' : ''} needs an Ed25519 identity that can sign; this node has a string identity`);
      }
      const staticKeyPair: DhKeyPair | undefined = canAuthenticate ? dh.generateKeyPair() : undefined;
      const identityProof = staticKeyPair ? createIdentityProof(ctx.identity, staticKeyPair.publicKey) : undefined;

      const peers = new Map<string, Peer>();
      const indexes = new Map<number, IndexEntry>();
      const halfOpenPerHost = new Map<string, number>();
      let halfOpenCount = 0;
      /** Bytes of early data held over all half-open handshakes (bounded by BUFFERED_BYTES_TOTAL). */
      let earlyBytes = 0;
      let sessionCount = 0;
      let cookieSecret = secureRandomBytes(32);
      let previousCookieSecret = cookieSecret;
      let cookieRotatedAt = 0;
      let unknownSessionBudget = UNKNOWN_SESSION_REPLIES_PER_SECOND;
      let running = false;
      let stopSweep: (() => void) | undefined;

      // Hot-path counters kept in variables (see Counters.attach).
      const hot = { datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0 };
      counters.attach(() => ({ 'datagrams-in': hot.datagramsIn, 'datagrams-out': hot.datagramsOut, 'bytes-in': hot.bytesIn, 'bytes-out': hot.bytesOut }));

      const now = (): number => ctx.clock.now();
      const send = (to: Address, bytes: Uint8Array): void => ctx.below.sendDatagram(to, bytes);
      const gauges = (): void => {
        counters.set('half-open', halfOpenCount);
        counters.set('sessions', sessionCount);
      };

      const newIndex = (entry: IndexEntry): number => {
        for (;;) {
          const index = ctx.random.int(2 ** 32);
          if (!indexes.has(index)) {
            indexes.set(index, entry);
            return index;
          }
        }
      };

      const peerFor = (address: Address): Peer => {
        const key = addressKey(address);
        let peer = peers.get(key);
        if (peer === undefined) {
          peer = {
            key,
            address: { host: address.host, port: address.port },
            current: undefined,
            previous: undefined,
            initiation: undefined,
            halfOpen: undefined,
            waiters: new Set(),
            queue: [],
            lastUsed: now(),
            unknownSessionAt: -Infinity,
          };
          peers.set(key, peer);
        }
        return peer;
      };

      /** Forgets a peer entry with nothing left in it. */
      const tidy = (peer: Peer): void => {
        if (!peer.current && !peer.previous && !peer.initiation && !peer.halfOpen && peer.waiters.size === 0 && peer.queue.length === 0) {
          peers.delete(peer.key);
        }
      };

      const failHandshake = (address: Address, error: NoiseError, reason: string): void => {
        counters.add(`handshakes-failed.${reason}`);
        if (ctx.observed('noise-handshake-error')) ctx.emit('noise-handshake-error', address, error);
      };

      // --- sessions -----------------------------------------------------------

      const closeSession = (session: Session, reason: string): void => {
        if (session.closed) return;
        session.closed = true;
        if (session.finalTimer !== undefined) ctx.clock.clearTimeout(session.finalTimer);
        for (let i = 0; i < session.held.length; i++) counters.drop('unconfirmed-abandoned');
        session.held = [];
        session.heldBytes = 0;
        indexes.delete(session.localIndex);
        const peer = session.peer;
        if (peer.current === session) peer.current = undefined;
        if (peer.previous === session) peer.previous = undefined;
        sessionCount--;
        gauges();
        if (ctx.observed('noise-session-close')) ctx.emit('noise-session-close', session.info, reason);
      };

      const usable = (session: Session | undefined): session is Session =>
        session !== undefined && !session.closed && now() - session.info.establishedAt < rejectAfterMs;

      const sealTransport = (session: Session, inner: number, payload: Uint8Array): Uint8Array => {
        const counter = session.sendCounter++;
        const out = new Uint8Array(TRANSPORT_HEADER_LENGTH + 1 + payload.length + TAG_LENGTH);
        writeTransportHeader(out, session.remoteIndex, counter);
        if (mode === 'encrypt') {
          const plain = new Uint8Array(1 + payload.length);
          plain[0] = inner;
          plain.set(payload, 1);
          out.set(session.send.encryptAt(counter, EMPTY, plain), TRANSPORT_HEADER_LENGTH);
        } else {
          // sign-only: the payload travels readable; the tag authenticates header and payload.
          out[TRANSPORT_HEADER_LENGTH] = inner;
          out.set(payload, TRANSPORT_HEADER_LENGTH + 1);
          const end = TRANSPORT_HEADER_LENGTH + 1 + payload.length;
          out.set(session.send.encryptAt(counter, out.subarray(0, end), EMPTY), end);
        }
        return out;
      };

      const sendOnSession = (session: Session, inner: number, payload: Uint8Array): void => {
        const bytes = sealTransport(session, inner, payload);
        hot.datagramsOut++;
        hot.bytesOut += bytes.length;
        send(session.peer.address, bytes);
      };

      /** Sends application data on `session` (sealed, or plain DATA in plaintext mode). */
      const transmit = (session: Session, data: Uint8Array): void => {
        if (encrypting) sendOnSession(session, INNER.data, data);
        else {
          hot.datagramsOut++;
          hot.bytesOut += data.byteLength;
          send(session.peer.address, encodeData(data));
        }
      };

      /**
       * Sends application data on `session`, or holds it while the session is unconfirmed
       * and its window (UNCONFIRMED_*) is used up; `owned` says `data` is ours to keep.
       */
      const sendData = (session: Session, data: Uint8Array, owned: boolean): void => {
        if (!session.confirmed) {
          if (session.held.length > 0 || session.unconfirmedSent >= UNCONFIRMED_DATAGRAMS || session.unconfirmedBytes + data.byteLength > UNCONFIRMED_BYTES) {
            if (session.held.length >= HELD_UNCONFIRMED || session.heldBytes + data.byteLength > HELD_UNCONFIRMED_BYTES) {
              session.heldBytes -= session.held.shift()?.byteLength ?? 0;
              counters.drop('unconfirmed-overflow');
            }
            session.held.push(owned ? data : data.slice());
            session.heldBytes += data.byteLength;
            counters.add('held-until-confirmed');
            return;
          }
          session.unconfirmedSent++;
          session.unconfirmedBytes += data.byteLength;
        }
        transmit(session, data);
      };

      /** The session is confirmed (or we stop waiting for it): send what it held, in order. */
      const releaseHeld = (session: Session): void => {
        const held = session.held;
        session.held = [];
        session.heldBytes = 0;
        for (const data of held) transmit(session, data);
      };

      const flushQueue = (peer: Peer): void => {
        const session = peer.current;
        if (!usable(session)) return;
        // Data a replaced, never-confirmed session still held goes first, on the new one.
        const previous = peer.previous;
        if (previous && previous !== session && previous.held.length > 0) {
          const held = previous.held;
          previous.held = [];
          previous.heldBytes = 0;
          for (const data of held) sendData(session, data, true);
        }
        const queue = peer.queue;
        peer.queue = [];
        for (const payload of queue) sendData(session, payload, true);
        if (queue.length > 0) counters.add('queue-flushed', queue.length);
      };

      const settleWaiters = (peer: Peer, session: Session | undefined, error?: NoiseError): void => {
        for (const waiter of [...peer.waiters]) {
          peer.waiters.delete(waiter);
          waiter.cleanup();
          if (session === undefined) waiter.reject(error);
          else if (waiter.expectedId !== undefined && !waiter.expectedId.equals(session.info.remoteId)) {
            const mismatch = new NoiseError('IDENTITY_MISMATCH', `the peer at ${peer.key} authenticated as ${session.info.remoteId.short}, not ${waiter.expectedId.short}`);
            failHandshake(peer.address, mismatch, 'identity-mismatch');
            waiter.reject(mismatch);
          } else waiter.resolve(session.info);
        }
      };

      const evictLeastRecentlyUsed = (): void => {
        let oldest: Peer | undefined;
        for (const peer of peers.values()) if (peer.current && (!oldest || peer.lastUsed < oldest.lastUsed)) oldest = peer;
        if (oldest?.current) {
          counters.add('sessions-evicted');
          closeSession(oldest.current, 'evicted');
          if (oldest.previous) closeSession(oldest.previous, 'evicted');
          tidy(oldest);
        }
      };

      const establish = (
        peer: Peer,
        handshake: HandshakeState,
        localIndex: number,
        remoteIndex: number,
        identity: PublicIdentity,
        initiator: boolean,
      ): Session => {
        const keys = handshake.split();
        if (sessionCount >= maxSessions && !peer.current) evictLeastRecentlyUsed();
        const info: SecureSession = {
          address: peer.address,
          remoteIdentity: identity,
          remoteId: identity.id,
          remoteStaticKey: handshake.remoteStaticKey!,
          handshakeHash: handshake.handshakeHash,
          initiator,
          establishedAt: now(),
        };
        const session: Session = {
          peer,
          localIndex,
          remoteIndex,
          send: keys.send!,
          receive: keys.receive!,
          replay: new ReplayWindow(),
          info,
          sendCounter: 0,
          confirmed: !initiator,
          finalMessage: undefined,
          finalTimer: undefined,
          unconfirmedSent: 0,
          unconfirmedBytes: 0,
          held: [],
          heldBytes: 0,
          closed: false,
        };
        indexes.set(localIndex, { kind: 'session', session });
        if (peer.previous) closeSession(peer.previous, 'replaced');
        if (peer.current) peer.previous = peer.current;
        peer.current = session;
        peer.lastUsed = now();
        sessionCount++;
        counters.add('handshakes-completed');
        gauges();
        if (ctx.observed('noise-session-open')) ctx.emit('noise-session-open', info);
        return session;
      };

      /** Runs the local policy and the identity proof; returns the identity or undefined (after counting). */
      /**
       * Checks the identity proof (its Ed25519 signature on the thread pool) and the local
       * policy. Resolves to the identity, or to the NoiseError after counting it.
       */
      const authenticate = async (peer: Peer, payload: Uint8Array, handshake: HandshakeState, expectedId: NodeId | undefined): Promise<PublicIdentity | NoiseError> => {
        try {
          const identity = offThread
            ? await verifyIdentityProofAsync(payload, handshake.remoteStaticKey!, expectedId)
            : verifyIdentityProof(payload, handshake.remoteStaticKey!, expectedId);
          if (identity.id.equals(ctx.identity.id)) throw new NoiseError('BAD_IDENTITY_PROOF', 'the peer presented our own identity');
          if (options.accept && !options.accept({ identity, id: identity.id, address: peer.address })) {
            throw new NoiseError('HANDSHAKE_REJECTED', `the local policy refused ${identity.id.short}`);
          }
          return identity;
        } catch (error) {
          const noiseError = error instanceof NoiseError ? error : new NoiseError('BAD_IDENTITY_PROOF', 'identity check failed', { cause: error });
          failHandshake(peer.address, noiseError, noiseError.code === 'IDENTITY_MISMATCH' ? 'identity-mismatch' : noiseError.code === 'HANDSHAKE_REJECTED' ? 'rejected' : 'bad-identity');
          return noiseError;
        }
      };

      /** Runs the async tail of a receive path; nothing escapes it. */
      const detach = (work: Promise<void>): void => {
        work.catch((error: unknown) => {
          counters.drop('error');
          ctx.logger.warn('noise: handshake step failed', { error });
        });
      };

      // --- initiator ------------------------------------------------------------

      const clearInitiation = (peer: Peer): void => {
        const initiation = peer.initiation;
        if (!initiation) return;
        if (initiation.timer !== undefined) ctx.clock.clearTimeout(initiation.timer);
        indexes.delete(initiation.localIndex);
        peer.initiation = undefined;
      };

      const abortInitiation = (peer: Peer, error: NoiseError): void => {
        clearInitiation(peer);
        if (!peer.current) {
          if (peer.queue.length > 0) counters.drop('queue-abandoned');
          peer.queue = [];
        }
        settleWaiters(peer, undefined, error);
        tidy(peer);
      };

      const retransmitInitiation = (peer: Peer): void => {
        const initiation = peer.initiation;
        if (!initiation || !running) return;
        if (now() - initiation.startedAt >= handshakeTimeoutMs) {
          const error = new NoiseError('HANDSHAKE_TIMEOUT', `no handshake with ${peer.key} within ${handshakeTimeoutMs} ms`);
          failHandshake(peer.address, error, 'timeout');
          abortInitiation(peer, error);
          return;
        }
        counters.add('retransmits');
        send(peer.address, initiation.wire);
        initiation.delayMs = Math.min(initiation.delayMs * 2, RETRANSMIT_CAP_MS);
        initiation.timer = ctx.clock.setTimeout(() => retransmitInitiation(peer), initiation.delayMs);
      };

      const initiate = (peer: Peer, expectedId: NodeId | undefined): void => {
        if (peer.initiation || !staticKeyPair) return;
        const handshake = new HandshakeState({ protocol, initiator: true, prologue, staticKeyPair, crypto });
        const message = handshake.writeMessage(EMPTY);
        const localIndex = newIndex({ kind: 'initiation', peer });
        const initiation: Initiation = {
          handshake,
          localIndex,
          message,
          expectedId,
          startedAt: now(),
          cookie: undefined,
          wire: encodeInitiation(localIndex, undefined, message),
          timer: undefined,
          delayMs: retransmitMs,
        };
        peer.initiation = initiation;
        counters.add('handshakes-initiated');
        send(peer.address, initiation.wire);
        initiation.timer = ctx.clock.setTimeout(() => retransmitInitiation(peer), initiation.delayMs);
      };

      const resendFinal = (session: Session): void => {
        session.finalTimer = undefined;
        if (session.confirmed || session.closed || !session.finalMessage || !running) return;
        if (now() - session.info.establishedAt >= handshakeTimeoutMs) {
          // Never confirmed: the responder may still have it; stop resending, and stop
          // holding data back for a confirmation that is not coming.
          session.finalMessage = undefined;
          session.confirmed = true;
          releaseHeld(session);
          return;
        }
        counters.add('retransmits');
        send(session.peer.address, session.finalMessage);
        session.finalTimer = ctx.clock.setTimeout(() => resendFinal(session), Math.min(retransmitMs * 2, RETRANSMIT_CAP_MS));
      };

      const onResponse = (body: Uint8Array, from: Address): void => {
        const reply = decodeHandshakeReply(body);
        const entry = indexes.get(reply.receiver);
        const peer = entry?.kind === 'initiation' ? entry.peer : undefined;
        if (!peer || peer.key !== addressKey(from) || !peer.initiation) {
          counters.drop('unknown-handshake');
          return;
        }
        const initiation = peer.initiation;
        if (initiation.handshake.messagesDone >= 2) {
          // A repeated answer while we verify the first one.
          counters.add('duplicate-responses');
          return;
        }
        let payload: Uint8Array;
        try {
          payload = initiation.handshake.readMessage(reply.message);
        } catch (error) {
          if (error instanceof NoiseError) {
            counters.drop('handshake-decrypt');
            return;
          }
          throw error;
        }
        detach(finishInitiation(peer, initiation, payload, reply.sender));
      };

      const finishInitiation = async (peer: Peer, initiation: Initiation, payload: Uint8Array, remoteIndex: number): Promise<void> => {
        const identity = await authenticate(peer, payload, initiation.handshake, initiation.expectedId);
        // The initiation may have timed out or been replaced, or the layer stopped, meanwhile.
        if (!running || peer.initiation !== initiation) return;
        if (identity instanceof NoiseError) {
          abortInitiation(peer, identity);
          return;
        }
        const final = initiation.handshake.writeMessage(identityProof!);
        // The session keeps the initiation's index: the responder already knows it.
        if (initiation.timer !== undefined) ctx.clock.clearTimeout(initiation.timer);
        peer.initiation = undefined;
        const localIndex = initiation.localIndex;
        const session = establish(peer, initiation.handshake, localIndex, remoteIndex, identity, true);
        session.finalMessage = encodeHandshakeReply(MESSAGE.final, localIndex, remoteIndex, final);
        send(peer.address, session.finalMessage);
        session.finalTimer = ctx.clock.setTimeout(() => resendFinal(session), retransmitMs);
        settleWaiters(peer, session);
        flushQueue(peer);
      };

      const onCookie = (body: Uint8Array, from: Address): void => {
        const { receiver, cookie } = decodeCookie(body);
        const entry = indexes.get(receiver);
        const peer = entry?.kind === 'initiation' ? entry.peer : undefined;
        if (!peer || peer.key !== addressKey(from) || !peer.initiation) {
          counters.drop('unknown-handshake');
          return;
        }
        const initiation = peer.initiation;
        if (initiation.cookie && bytesEqual(initiation.cookie, cookie)) return;
        counters.add('cookies-received');
        initiation.cookie = cookie;
        initiation.wire = encodeInitiation(initiation.localIndex, cookie, initiation.message);
        send(peer.address, initiation.wire);
      };

      // --- responder ------------------------------------------------------------

      const cookieFor = (from: Address, secret: Uint8Array): Uint8Array => hash.hmac(secret, utf8Encode(addressKey(from))).subarray(0, COOKIE_LENGTH);

      /** Whether `halfOpen` may hold `bytes` more of early data (counted when it may). */
      const mayBuffer = (halfOpen: HalfOpen, bytes: number): boolean => {
        const held = halfOpen.buffered.length + halfOpen.bufferedPlain.length;
        if (held >= BUFFERED_PER_HALF_OPEN || halfOpen.bufferedBytes + bytes > BUFFERED_BYTES_PER_HALF_OPEN || earlyBytes + bytes > BUFFERED_BYTES_TOTAL) return false;
        halfOpen.bufferedBytes += bytes;
        earlyBytes += bytes;
        return true;
      };

      /** Ends the peer's half-open handshake; early data it held and did not hand on (`delivered`) is counted as dropped. */
      const releaseHalfOpen = (peer: Peer, delivered = false): void => {
        const halfOpen = peer.halfOpen;
        if (!halfOpen) return;
        peer.halfOpen = undefined;
        if (!delivered) for (let i = halfOpen.buffered.length + halfOpen.bufferedPlain.length; i > 0; i--) counters.drop('early-abandoned');
        indexes.delete(halfOpen.localIndex);
        halfOpenCount--;
        earlyBytes -= halfOpen.bufferedBytes;
        const count = (halfOpenPerHost.get(halfOpen.host) ?? 1) - 1;
        if (count <= 0) halfOpenPerHost.delete(halfOpen.host);
        else halfOpenPerHost.set(halfOpen.host, count);
        gauges();
      };

      const onInitiation = (body: Uint8Array, from: Address): void => {
        const message = decodeInitiation(body);
        if (!staticKeyPair) {
          counters.drop('cannot-authenticate');
          return;
        }
        const key = addressKey(from);
        const existing = peers.get(key);
        // A retransmission of an initiation we answered: resend the same answer.
        if (existing?.halfOpen && existing.halfOpen.remoteIndex === message.sender && bytesEqual(existing.halfOpen.remoteEphemeral, message.message)) {
          counters.add('duplicate-initiations');
          send(from, existing.halfOpen.response);
          return;
        }
        // A new initiation while we verify this peer's final message would end a handshake
        // that is about to complete, with the data held for it: it is handled once the check
        // is over (the newest one only), as a reconnect or rekey of the session it yields.
        if (existing?.halfOpen?.handshake.complete) {
          if (existing.halfOpen.deferred) counters.drop('deferred-initiation-replaced');
          counters.add('initiations-deferred');
          existing.halfOpen.deferred = { body: body.slice(), from };
          return;
        }
        // Under load, only initiators that prove they receive at their address get state (WireGuard section 5.4.7).
        if (halfOpenCount >= cookieThreshold) {
          const valid = message.cookie !== undefined && (bytesEqual(message.cookie, cookieFor(from, cookieSecret)) || bytesEqual(message.cookie, cookieFor(from, previousCookieSecret)));
          if (!valid) {
            counters.add('cookies-sent');
            send(from, encodeCookie(message.sender, cookieFor(from, cookieSecret)));
            return;
          }
        }
        if (halfOpenCount >= maxHalfOpen) {
          counters.drop('half-open-full');
          return;
        }
        if (!existing?.halfOpen && (halfOpenPerHost.get(from.host) ?? 0) >= maxHalfOpenPerHost) {
          counters.drop('half-open-per-host');
          return;
        }
        // Both sides dialled at once: the initiation with the smaller ephemeral key wins,
        // which both sides compute alike, so exactly one handshake goes on.
        if (existing?.initiation) {
          const ours = existing.initiation.handshake.localEphemeralKey!;
          if (compareBytes(ours, message.message) < 0) {
            counters.add('simultaneous-open');
            return;
          }
          counters.add('simultaneous-open');
          clearInitiation(existing);
        }
        const handshake = new HandshakeState({ protocol, initiator: false, prologue, staticKeyPair, crypto });
        try {
          handshake.readMessage(message.message);
        } catch (error) {
          if (error instanceof NoiseError) {
            counters.drop('handshake-decrypt');
            return;
          }
          throw error;
        }
        const peer = existing ?? peerFor(from);
        if (peer.halfOpen) releaseHalfOpen(peer);
        const localIndex = newIndex({ kind: 'half-open', peer });
        let response: Uint8Array;
        try {
          response = encodeHandshakeReply(MESSAGE.response, localIndex, message.sender, handshake.writeMessage(identityProof!));
        } catch (error) {
          indexes.delete(localIndex);
          tidy(peer);
          if (error instanceof NoiseError) {
            // A low-order ephemeral key from the initiator.
            counters.drop('handshake-dh');
            return;
          }
          throw error;
        }
        peer.halfOpen = {
          handshake,
          localIndex,
          remoteIndex: message.sender,
          remoteEphemeral: message.message.slice(),
          response,
          startedAt: now(),
          host: from.host,
          buffered: [],
          bufferedPlain: [],
          bufferedBytes: 0,
        };
        halfOpenCount++;
        halfOpenPerHost.set(from.host, (halfOpenPerHost.get(from.host) ?? 0) + 1);
        counters.add('handshakes-answered');
        gauges();
        send(from, response);
      };

      const onFinal = (body: Uint8Array, from: Address): void => {
        const reply = decodeHandshakeReply(body);
        const entry = indexes.get(reply.receiver);
        if (entry?.kind === 'session' && entry.session.peer.key === addressKey(from) && entry.session.remoteIndex === reply.sender) {
          // Our confirmation was lost and the initiator resent its final message.
          counters.add('duplicate-finals');
          if (usable(entry.session)) sendOnSession(entry.session, INNER.confirm, EMPTY);
          return;
        }
        const peer = entry?.kind === 'half-open' ? entry.peer : undefined;
        const halfOpen = peer?.halfOpen;
        if (!peer || !halfOpen || peer.key !== addressKey(from) || halfOpen.remoteIndex !== reply.sender) {
          counters.drop('unknown-handshake');
          return;
        }
        if (halfOpen.handshake.complete) {
          // A repeated final message while we verify the first one.
          counters.add('duplicate-finals');
          return;
        }
        let payload: Uint8Array;
        try {
          payload = halfOpen.handshake.readMessage(reply.message);
        } catch (error) {
          if (error instanceof NoiseError) {
            counters.drop('handshake-decrypt');
            return;
          }
          throw error;
        }
        detach(finishResponse(peer, halfOpen, payload));
      };

      const finishResponse = async (peer: Peer, halfOpen: HalfOpen, payload: Uint8Array): Promise<void> => {
        const expected = [...peer.waiters].find((waiter) => waiter.expectedId !== undefined)?.expectedId;
        const identity = await authenticate(peer, payload, halfOpen.handshake, expected);
        try {
          completeResponse(peer, halfOpen, identity);
        } finally {
          const deferred = halfOpen.deferred;
          halfOpen.deferred = undefined;
          if (deferred && running) onInitiation(deferred.body, deferred.from);
        }
      };

      const completeResponse = (peer: Peer, halfOpen: HalfOpen, identity: Awaited<ReturnType<typeof authenticate>>): void => {
        if (!running || peer.halfOpen !== halfOpen) return;
        releaseHalfOpen(peer, !(identity instanceof NoiseError));
        if (identity instanceof NoiseError) {
          settleWaiters(peer, undefined, identity);
          tidy(peer);
          return;
        }
        const session = establish(peer, halfOpen.handshake, halfOpen.localIndex, halfOpen.remoteIndex, identity, false);
        sendOnSession(session, INNER.confirm, EMPTY);
        for (const transport of halfOpen.buffered) receiveTransport(session, transport);
        for (const payload of halfOpen.bufferedPlain) {
          hot.datagramsIn++;
          hot.bytesIn += payload.length;
          deliver(payload, peer.address);
        }
        settleWaiters(peer, session);
        flushQueue(peer);
      };

      // --- transport ------------------------------------------------------------

      const deliver = (payload: Uint8Array, from: Address): void => {
        const slot = ctx.slots.datagram;
        if (slot) slot(payload, from);
        else counters.drop('no-receiver');
      };

      const receiveTransport = (session: Session, transport: Transport): void => {
        if (!usable(session)) {
          counters.drop('expired-session');
          return;
        }
        const verdict = session.replay.check(transport.counter);
        if (verdict !== 'ok') {
          counters.drop(verdict === 'replayed' ? 'replayed' : 'too-old');
          return;
        }
        let inner: number;
        let payload: Uint8Array;
        if (mode === 'encrypt') {
          const plain = session.receive.decryptAt(transport.counter, EMPTY, transport.sealed);
          if (plain === undefined || plain.length < 1) {
            counters.drop('tampered');
            return;
          }
          inner = plain[0]!;
          payload = plain.subarray(1);
        } else {
          const bodyLength = transport.sealed.length - TAG_LENGTH;
          const tag = transport.sealed.subarray(bodyLength);
          const authenticated = new Uint8Array(transport.header.length + bodyLength);
          authenticated.set(transport.header);
          authenticated.set(transport.sealed.subarray(0, bodyLength), transport.header.length);
          if (session.receive.decryptAt(transport.counter, authenticated, tag) === undefined) {
            counters.drop('tampered');
            return;
          }
          inner = transport.sealed[0]!;
          payload = transport.sealed.subarray(1, bodyLength);
        }
        session.replay.accept(transport.counter);
        session.peer.lastUsed = now();
        if (!session.confirmed) {
          session.confirmed = true;
          session.finalMessage = undefined;
          if (session.finalTimer !== undefined) ctx.clock.clearTimeout(session.finalTimer);
          session.finalTimer = undefined;
          releaseHeld(session);
        }
        switch (inner) {
          case INNER.data:
            if (!encrypting) {
              counters.drop('unexpected-data');
              return;
            }
            hot.datagramsIn++;
            hot.bytesIn += payload.length;
            deliver(payload, session.peer.address);
            return;
          case INNER.confirm:
            return;
          case INNER.close: {
            const peer = session.peer;
            counters.add('sessions-closed-by-peer');
            closeSession(session, 'closed by peer');
            if (peer.previous && peer.previous !== session) closeSession(peer.previous, 'closed by peer');
            tidy(peer);
            return;
          }
          default:
            counters.drop('unknown-inner-type');
        }
      };

      const onTransport = (frame: Uint8Array, from: Address): void => {
        const transport = decodeTransport(frame);
        const entry = indexes.get(transport.receiver);
        if (entry?.kind === 'session') {
          if (entry.session.peer.key !== addressKey(from)) {
            counters.drop('cross-session');
            return;
          }
          receiveTransport(entry.session, transport);
          return;
        }
        if (entry?.kind === 'half-open' && entry.peer.key === addressKey(from)) {
          // Sent by an initiator that finished before its final message reached us.
          const halfOpen = entry.peer.halfOpen!;
          if (mayBuffer(halfOpen, transport.sealed.length + transport.header.length)) {
            halfOpen.buffered.push({ ...transport, sealed: transport.sealed.slice(), header: transport.header.slice() });
            counters.add('buffered-early');
          } else counters.drop('early-overflow');
          return;
        }
        counters.drop(entry === undefined ? 'unknown-session' : 'cross-session');
        // Tell the sender, so a peer that lost its session (restart) handshakes again.
        if (entry === undefined && unknownSessionBudget > 0) {
          const peer = peers.get(addressKey(from));
          if (!peer || now() - peer.unknownSessionAt >= 1000) {
            unknownSessionBudget--;
            if (peer) peer.unknownSessionAt = now();
            send(from, encodeUnknownSession(transport.receiver));
          }
        }
      };

      const onUnknownSession = (body: Uint8Array, from: Address): void => {
        const receiver = decodeUnknownSession(body);
        const peer = peers.get(addressKey(from));
        const session = peer?.current;
        if (!peer || !session || session.remoteIndex !== receiver || peer.initiation) {
          counters.drop('unknown-handshake');
          return;
        }
        // Unauthenticated, so it only ever starts a handshake (at most once a second), never closes anything.
        if (now() - session.info.establishedAt < 1000) return;
        counters.add('rehandshakes');
        initiate(peer, session.info.remoteId);
      };

      const onDatagram = (data: Uint8Array, from: Address): void => {
        try {
          if (data.length > 0 && data[0] === FRAME_DATA) {
            const peer = peers.get(addressKey(from));
            const approved = peer !== undefined && usable(peer.current);
            if ((mode === 'plaintext' && (!strict || approved)) || (mode !== 'plaintext' && !strict)) {
              hot.datagramsIn++;
              hot.bytesIn += data.length - 1;
              deliver(data.subarray(1), from);
            } else if (mode === 'plaintext' && peer?.halfOpen) {
              // The sender finished its handshake; ours completes when its final message is verified.
              if (mayBuffer(peer.halfOpen, data.length - 1)) {
                peer.halfOpen.bufferedPlain.push(data.slice(1));
                counters.add('buffered-early');
              } else counters.drop('early-overflow');
            } else counters.drop(mode === 'plaintext' ? 'unapproved' : 'plaintext');
            return;
          }
          const frame = decodeFrame(data, NOISE_PROTOCOL);
          if (frame.kind !== 'control') return;
          switch (frame.type) {
            case MESSAGE.transport:
              // In plaintext mode too: session control (confirm, close) is always authenticated.
              onTransport(data, from);
              return;
            case MESSAGE.initiation:
              onInitiation(frame.body, from);
              return;
            case MESSAGE.response:
              onResponse(frame.body, from);
              return;
            case MESSAGE.final:
              onFinal(frame.body, from);
              return;
            case MESSAGE.cookie:
              onCookie(frame.body, from);
              return;
            case MESSAGE.unknownSession:
              onUnknownSession(frame.body, from);
              return;
            default:
              throw new WireError('WIRE_UNKNOWN_TYPE', `noise: message type ${frame.type}`);
          }
        } catch (error) {
          // Never throw out of a receive path: count and drop.
          counters.drop(dropReason(error));
          if (!(error instanceof WireError)) ctx.logger.warn('noise: receive failed', { error });
        }
      };

      // --- housekeeping ---------------------------------------------------------

      const sweep = (): void => {
        const t = now();
        unknownSessionBudget = UNKNOWN_SESSION_REPLIES_PER_SECOND;
        if (t - cookieRotatedAt >= COOKIE_ROTATE_MS) {
          previousCookieSecret = cookieSecret;
          cookieSecret = secureRandomBytes(32);
          cookieRotatedAt = t;
        }
        for (const peer of [...peers.values()]) {
          if (peer.halfOpen && t - peer.halfOpen.startedAt >= handshakeTimeoutMs) {
            counters.add('half-open-expired');
            releaseHalfOpen(peer);
            // Someone here is waiting to talk to that peer: dial it ourselves.
            if (running && !usable(peer.current) && (peer.waiters.size > 0 || peer.queue.length > 0)) initiate(peer, undefined);
          }
          if (peer.previous && !usable(peer.previous)) closeSession(peer.previous, 'expired');
          if (peer.current && !usable(peer.current)) closeSession(peer.current, 'expired');
          tidy(peer);
        }
      };

      // --- capabilities -----------------------------------------------------------

      const secureConnect = (address: Address, connectOptions: SecureConnectOptions = {}): Promise<SecureSession> => {
        if (!running) return Promise.reject(new StateError('NOT_STARTED', 'noise.secureConnect: the layer is not running'));
        try {
          checkTimeoutMs(connectOptions.timeoutMs, 'noise.secureConnect');
        } catch (error) {
          return Promise.reject(error);
        }
        if (!staticKeyPair) return Promise.reject(new NoiseError('IDENTITY_CANNOT_SIGN', 'noise: this node cannot authenticate (string identity)'));
        const peer = peerFor(address);
        peer.lastUsed = now();
        const expectedId = connectOptions.expectedId;
        if (usable(peer.current)) {
          const info = peer.current.info;
          if (expectedId !== undefined && !expectedId.equals(info.remoteId)) {
            const error = new NoiseError('IDENTITY_MISMATCH', `the peer at ${peer.key} is ${info.remoteId.short}, not ${expectedId.short}`);
            failHandshake(address, error, 'identity-mismatch');
            return Promise.reject(error);
          }
          return Promise.resolve(info);
        }
        return new Promise<SecureSession>((resolve, reject) => {
          const signal = connectOptions.signal;
          if (signal?.aborted) {
            reject(signal.reason);
            tidy(peer);
            return;
          }
          const timeoutMs = connectOptions.timeoutMs ?? handshakeTimeoutMs;
          const onAbort = (): void => {
            if (!peer.waiters.delete(waiter)) return;
            waiter.cleanup();
            reject(signal?.reason);
          };
          const timer = ctx.clock.setTimeout(() => {
            if (!peer.waiters.delete(waiter)) return;
            signal?.removeEventListener('abort', onAbort);
            const error = new NoiseError('HANDSHAKE_TIMEOUT', `no handshake with ${peer.key} within ${timeoutMs} ms`);
            failHandshake(address, error, 'timeout');
            reject(error);
            tidy(peer);
          }, timeoutMs);
          const waiter: Waiter = {
            resolve,
            reject,
            expectedId,
            cleanup: () => {
              ctx.clock.clearTimeout(timer);
              signal?.removeEventListener('abort', onAbort);
            },
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          peer.waiters.add(waiter);
          // A peer that is answering our own handshake right now finishes it; otherwise dial.
          if (!peer.halfOpen) initiate(peer, expectedId);
        });
      };

      const maxDatagramSize = (): number => ctx.below.maxDatagramSize() - (encrypting ? TRANSPORT_OVERHEAD : 1);

      const sendDatagram = (to: Address, data: Uint8Array): void => {
        if (data.byteLength > maxDatagramSize()) {
          throw new InvalidArgumentError(`noise.sendDatagram: ${data.byteLength} bytes exceed maxDatagramSize() = ${maxDatagramSize()}`);
        }
        if (!running) {
          counters.drop('not-running');
          return;
        }
        if (!encrypting && (!strict || !canAuthenticate)) {
          hot.datagramsOut++;
          hot.bytesOut += data.byteLength;
          send(to, encodeData(data));
          return;
        }
        const peer = peerFor(to);
        peer.lastUsed = now();
        const session = peer.current;
        if (usable(session)) {
          sendData(session, data, false);
          // Not before the responder confirmed: a new handshake now would race the one it is finishing.
          if (encrypting && session.confirmed && (session.sendCounter >= rekeyAfterMessages || now() - session.info.establishedAt >= rekeyAfterMs) && !peer.initiation && !peer.halfOpen) {
            counters.add('rekeys');
            initiate(peer, session.info.remoteId);
          }
          return;
        }
        // No session yet: queue (bounded) and handshake.
        if (peer.queue.length >= maxQueued) {
          peer.queue.shift();
          counters.drop('queue-overflow');
        }
        peer.queue.push(data.slice());
        if (!peer.halfOpen) initiate(peer, peer.previous?.info.remoteId);
      };

      return {
        provides: {
          sendDatagram,
          maxDatagramSize,
          secureConnect,
          secureSession: (address: Address) => {
            const session = peers.get(addressKey(address))?.current;
            return usable(session) ? session.info : undefined;
          },
          secureDisconnect: (address: Address) => {
            const peer = peers.get(addressKey(address));
            if (!peer) return;
            if (running && usable(peer.current)) sendOnSession(peer.current, INNER.close, EMPTY);
            if (peer.current) closeSession(peer.current, 'disconnected');
            if (peer.previous) closeSession(peer.previous, 'disconnected');
            tidy(peer);
          },
        },
        takes: {
          datagram: onDatagram,
          approve: async (peer: PeerRecord): Promise<boolean> => {
            if (!strict && mode === 'plaintext') return true;
            try {
              await secureConnect(peer.address, { expectedId: peer.id });
              return true;
            } catch {
              counters.add('approvals-refused');
              return false;
            }
          },
        },
        start: () => {
          running = true;
          cookieRotatedAt = now();
          stopSweep = ctx.clock.setInterval(sweep, Math.min(1000, handshakeTimeoutMs / 4));
        },
        stop: () => {
          running = false;
          stopSweep?.();
          const stopped = new StateError('STOPPED', 'the noise layer stopped');
          for (const peer of [...peers.values()]) {
            // Tell peers, so they drop the session now rather than at its expiry.
            if (usable(peer.current)) {
              try {
                sendOnSession(peer.current, INNER.close, EMPTY);
              } catch {
                // The transport below may already refuse; the session expires on its own.
              }
            }
            if (peer.current) closeSession(peer.current, 'stopped');
            if (peer.previous) closeSession(peer.previous, 'stopped');
            clearInitiation(peer);
            releaseHalfOpen(peer);
            for (const waiter of peer.waiters) {
              waiter.cleanup();
              waiter.reject(stopped);
            }
            peer.waiters.clear();
          }
          peers.clear();
          indexes.clear();
          halfOpenPerHost.clear();
          halfOpenCount = 0;
          earlyBytes = 0;
          sessionCount = 0;
          gauges();
        },
        status: () => ({ mode, strict, sessions: sessionCount, halfOpen: halfOpenCount, peers: peers.size, staticKey: staticKeyPair ? Buffer.from(staticKeyPair.publicKey).toString('hex') : undefined }),
      };
    },
  });
}
