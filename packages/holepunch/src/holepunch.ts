/**
 * The hole punching layer: UDP hole punching through introducers, relay fallback, relay
 * service for others, NAT classification, and the UDP side of TCP hole punching.
 * See `docs/holepunch.md` for the message sequences.
 */
import type { Socket } from 'node:net';
import {
  addressKey,
  checkTimeoutMs,
  defineLayer,
  dropReason,
  encodeData,
  InvalidArgumentError,
  ipFamily,
  PendingRequests,
  sameAddress,
  StateError,
  TimeoutError,
  type Address,
  type PeerRecord,
  type PingOptions,
  type TimerHandle,
} from '@deccom/core';
import { RelayBudget, TokenBucket } from './budget.js';
import { PunchError, RelayError } from './errors.js';
import { IntroducerBook } from './introducers.js';
import { NatClassifier, type NatType } from './nat.js';
import { nextRetryDelay, SendQueue, type RetryScheduleOptions } from './queue.js';
import { freeTcpPort, simultaneousOpen } from './tcp-punch.js';
import {
  decodeIncoming,
  encodePunchMessage,
  encodeRelayData,
  encodeRelayMessage,
  HOLEPUNCH_PROTOCOL,
  MAX_TCP_CANDIDATES,
  PROBE_ACK_UNSOLICITED,
  PUNCH_MESSAGE,
  RELAY_DATA_OVERHEAD,
  RELAY_MESSAGE,
  type PunchMessage,
  type RelayMessage,
  type RelayReason,
  type WireNatType,
} from './wire.js';

/** How a connection attempt ended. */
export type Mechanism = 'direct' | 'punched-udp' | 'punched-tcp' | 'relayed' | 'failed';

/** The structured outcome of every connection attempt. */
export interface ConnectOutcome {
  readonly mechanism: Mechanism;
  /** The address the attempt was for (as the layers above know the peer). */
  readonly address: Address;
  /** Where traffic actually goes: the peer's real address (it may differ behind a symmetric NAT), or the relay. */
  readonly via: Address | undefined;
  /** Punch rounds, relay requests or TCP connect attempts made. */
  readonly attempts: number;
  /** Time from the first attempt to the outcome, in ms of the node's clock. */
  readonly elapsedMs: number;
  /** Why it failed (`mechanism: 'failed'` only): the error's `code` is the reason. */
  readonly error?: PunchError | RelayError | undefined;
  /** The error's code, for logs and tables. */
  readonly reason?: string | undefined;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  /**
   * `true` lets this attempt fall back to a relay even when the layer's `relayFallback`
   * is off. Default: the layer's `relayFallback` (a layer with it on always may relay).
   */
  relay?: boolean;
}

export interface TcpPunchOptions {
  signal?: AbortSignal;
}

export interface TcpPunchResult {
  readonly socket: Socket;
  /** The candidate address that connected. */
  readonly remote: Address;
  /** TCP connect attempts made. */
  readonly attempts: number;
  readonly elapsedMs: number;
  /** How the UDP path used to exchange candidates was opened. */
  readonly udp: ConnectOutcome;
}

declare module '@deccom/core' {
  interface Capabilities {
    /**
     * Opens a path to `address` (punching through NATs with the help of an introducer,
     * or through a relay) and resolves with a structured outcome; never rejects.
     */
    connect(address: Address, options?: ConnectOptions): Promise<ConnectOutcome>;
    /** This node's NAT as its peers' observations classify it. */
    natType(): NatType;
    /**
     * Punches a TCP connection to the node at UDP `address` (candidates exchanged over
     * UDP, then simultaneous open). Resolves with the connected socket; rejects with a
     * {@link PunchError}. Used by `tcpHolepunch()`, which hands the socket to `@deccom/tcp`.
     */
    punchTcp(address: Address, options?: TcpPunchOptions): Promise<TcpPunchResult>;
    /** Tells the node at UDP `address` which TCP address its connection came from. */
    reportTcpObservation(address: Address, observed: Address): void;
  }
  interface HookSignatures {
    /** A TCP connection punched at a peer's request (exclusive: `tcpHolepunch()` adopts it). */
    'tcp-punched': (socket: Socket, from: Address) => void;
    /** Every connection attempt's outcome (event). */
    'punch-outcome': (outcome: ConnectOutcome) => void;
    /** A relay refused traffic to `address` (over its bandwidth or byte budget), or closed the session (event). */
    'relay-refused': (address: Address, error: RelayError) => void;
  }
  interface HookKinds {
    'tcp-punched': 'exclusive';
    'punch-outcome': 'event';
    'relay-refused': 'event';
  }
}

/** Options of the relay service this node offers to others. */
export interface RelayServiceOptions {
  /** Sessions relayed at once (the connection budget). Default 32. */
  maxSessions?: number;
  /** Sustained bytes per second per session. Default 262,144 (256 KiB/s). */
  sessionBytesPerSecond?: number;
  /** Sustained bytes per second over all sessions. Default 1,048,576 (1 MiB/s). */
  totalBytesPerSecond?: number;
  /** Burst allowance in seconds of the rates. Default 1. */
  burstSeconds?: number;
  /** Bytes one session may carry in its lifetime. Default unlimited. */
  maxSessionBytes?: number;
  /** A session without traffic for this long is closed. Default 60,000 ms. */
  idleTimeoutMs?: number;
}

export interface HolepunchOptions {
  /** Instance name. Default 'holepunch'. */
  name?: string;
  /** A punch that has not opened a path after this long fails (or falls back to a relay). Default 4,000 ms. */
  punchTimeoutMs?: number;
  /** Delay before the second punch round; later rounds back off by 1.5x up to 1,000 ms. Default 250 ms. */
  retryDelayMs?: number;
  /** Punch rounds at most (probe + punch request each). Default 8. */
  maxAttempts?: number;
  /** Datagrams queued per address while its path opens. Default 64. */
  maxQueuedDatagrams?: number;
  /** Bytes queued per address while its path opens. Default 262,144. */
  maxQueuedBytes?: number;
  /** Punches under way at once; sends needing more are dropped (counted). Default 256. */
  maxConcurrentPunches?: number;
  /** Introducers remembered per address. Default 3. */
  introducersPerAddress?: number;
  /**
   * An address heard from within this long is sent to directly, without punching; an
   * introducer forwards punch requests and opens relays only to targets heard from within
   * it. Default 120,000 ms.
   */
  heardWindowMs?: number;
  /** A path without traffic for this long is forgotten. Default 120,000 ms. */
  pathIdleMs?: number;
  /** After a failed punch, sends to that address are dropped for this long before a new punch. Default 10,000 ms. */
  failureCooldownMs?: number;
  /** Fall back to a relay (an introducer willing to relay) when punching fails. Default true. */
  relayFallback?: boolean;
  /** Wait for a relay's answer this long before trying the next candidate. Default 1,000 ms. */
  relayAttemptMs?: number;
  /** Relay for others within these budgets; `false` refuses every relay request. Default: enabled with the defaults of {@link RelayServiceOptions}. */
  relay?: RelayServiceOptions | false;
  /** Accept sessions relayed to this node. Default true. */
  acceptRelayed?: boolean;
  /** Peers asked for our observed address, for NAT classification. Default 4. */
  observers?: number;
  /** Observations older than this are ignored. Default 120,000 ms. */
  observationWindowMs?: number;
  /** Requests served for others (punch forwards, probes, observations) per second. Default 1,000. */
  serviceRatePerSecond?: number;
  /** Local IP for TCP punching. Default: the UDP transport's host. */
  tcpHost?: string;
  /** Time a TCP punch may take once candidates are exchanged. Default 10,000 ms. */
  tcpPunchTimeoutMs?: number;
  /** How long one TCP connect attempt may wait for an answer. Default 1,000 ms. */
  tcpAttemptTimeoutMs?: number;
  /** Pause between TCP connect rounds. Default 100 ms. */
  tcpRoundPauseMs?: number;
}

type PathState = 'punching' | 'relay-pending' | 'open' | 'relayed' | 'failed';

interface Waiter {
  readonly resolve: (outcome: ConnectOutcome) => void;
  readonly relay: boolean;
}

interface Path {
  readonly logical: Address;
  readonly key: string;
  state: PathState;
  /** Where datagrams go when open (the logical address, or what a symmetric NAT really maps). */
  target: Address;
  /** The relayed session traffic goes through (the first of `relays`). */
  relay: Tunnel | undefined;
  /** Every relayed session to this peer (both sides may open one at the same time). */
  relays: Tunnel[];
  readonly queue: SendQueue;
  attempts: number;
  startedAt: number;
  nonce: number | undefined;
  timer: TimerHandle | undefined;
  deadline: TimerHandle | undefined;
  readonly waiters: Set<Waiter>;
  /** Whether this node wants traffic on the path (sent or connect()ed), not only answering a punch. */
  wanted: boolean;
  allowRelay: boolean;
  mechanism: Mechanism | undefined;
  /** The outcome the path opened with (returned again to later `connect()` calls). */
  opened: ConnectOutcome | undefined;
  lastActivity: number;
  failure: PunchError | RelayError | undefined;
  failedAt: number;
  relayNonce: number | undefined;
  relayCandidates: Address[];
  relayIndex: number;
  relayTries: number;
  peerNat: WireNatType;
}

interface Tunnel {
  readonly via: Address;
  readonly session: number;
}

interface ServedSession {
  readonly id: number;
  readonly opener: Address;
  readonly target: Address;
  readonly nonce: number;
  state: 'pending' | 'active';
  lastActive: number;
  lastRefusalAt: number;
  timer: TimerHandle | undefined;
}

interface TcpOffer {
  readonly resolve: (candidates: readonly Address[]) => void;
  readonly reject: (error: Error) => void;
}

function positive(value: number | undefined, fallback: number, what: string, min = 1): number {
  const result = value ?? fallback;
  if (!(result >= min) || Number.isNaN(result)) throw new InvalidArgumentError(`holepunch: ${what} must be >= ${min}, got ${String(value)}`);
  return result;
}

function integer(value: number | undefined, fallback: number, what: string, min = 1): number {
  const result = positive(value, fallback, what, min);
  if (!Number.isInteger(result)) throw new InvalidArgumentError(`holepunch: ${what} must be an integer, got ${String(value)}`);
  return result;
}

/**
 * The hole punching layer. Sits between the datagram transport and discovery.
 * Needs `sendDatagram`, `localAddress`, `maxDatagramSize` (and uses `sendPing` when the
 * transport has it); takes the `datagram` hook; provides `heardFrom`, `sendDatagram`,
 * `maxDatagramSize`, `sendPing` (along the punched or relayed path), `connect`,
 * `natType`, `punchTcp`, `reportTcpObservation`; offers `datagram` (pass-through),
 * `tcp-punched`, `punch-outcome` and `relay-refused`.
 */
export function holepunch(options: HolepunchOptions = {}) {
  const punchTimeoutMs = positive(options.punchTimeoutMs, 4_000, 'punchTimeoutMs');
  const schedule: RetryScheduleOptions = {
    initialDelayMs: positive(options.retryDelayMs, 250, 'retryDelayMs'),
    backoff: 1.5,
    maxDelayMs: Math.max(1_000, options.retryDelayMs ?? 0),
    maxAttempts: integer(options.maxAttempts, 8, 'maxAttempts'),
    deadlineMs: punchTimeoutMs,
  };
  const maxQueuedDatagrams = integer(options.maxQueuedDatagrams, 64, 'maxQueuedDatagrams', 0);
  const maxQueuedBytes = integer(options.maxQueuedBytes, 262_144, 'maxQueuedBytes', 0);
  const maxConcurrentPunches = integer(options.maxConcurrentPunches, 256, 'maxConcurrentPunches');
  const heardWindowMs = positive(options.heardWindowMs, 120_000, 'heardWindowMs');
  const pathIdleMs = positive(options.pathIdleMs, 120_000, 'pathIdleMs');
  const failureCooldownMs = positive(options.failureCooldownMs, 10_000, 'failureCooldownMs', 0);
  const relayFallback = options.relayFallback ?? true;
  const relayAttemptMs = positive(options.relayAttemptMs, 1_000, 'relayAttemptMs');
  const acceptRelayed = options.acceptRelayed ?? true;
  const observers = integer(options.observers, 4, 'observers');
  const observationWindowMs = positive(options.observationWindowMs, 120_000, 'observationWindowMs');
  const serviceRate = positive(options.serviceRatePerSecond, 1_000, 'serviceRatePerSecond');
  const tcpPunchTimeoutMs = positive(options.tcpPunchTimeoutMs, 10_000, 'tcpPunchTimeoutMs');
  const tcpAttemptTimeoutMs = positive(options.tcpAttemptTimeoutMs, 1_000, 'tcpAttemptTimeoutMs');
  const tcpRoundPauseMs = positive(options.tcpRoundPauseMs, 100, 'tcpRoundPauseMs', 0);
  if (options.tcpHost !== undefined && ipFamily(options.tcpHost) === 0) throw new InvalidArgumentError(`holepunch: tcpHost must be an IP literal, got '${options.tcpHost}'`);
  const relayService =
    options.relay === false
      ? undefined
      : {
          maxSessions: integer(options.relay?.maxSessions, 32, 'relay.maxSessions', 0),
          sessionBytesPerSecond: positive(options.relay?.sessionBytesPerSecond, 262_144, 'relay.sessionBytesPerSecond'),
          totalBytesPerSecond: positive(options.relay?.totalBytesPerSecond, 1_048_576, 'relay.totalBytesPerSecond'),
          burstSeconds: positive(options.relay?.burstSeconds, 1, 'relay.burstSeconds', Number.MIN_VALUE),
          maxSessionBytes: positive(options.relay?.maxSessionBytes, Number.POSITIVE_INFINITY, 'relay.maxSessionBytes'),
          idleTimeoutMs: positive(options.relay?.idleTimeoutMs, 60_000, 'relay.idleTimeoutMs'),
        };

  return defineLayer({
    type: 'holepunch',
    name: options.name,
    protocol: HOLEPUNCH_PROTOCOL,
    needs: ['sendDatagram', 'localAddress', 'maxDatagramSize'],
    optional: ['sendPing'],
    takes: ['datagram'],
    provides: ['heardFrom', 'sendDatagram', 'maxDatagramSize', 'sendPing', 'connect', 'natType', 'punchTcp', 'reportTcpObservation'],
    offers: { datagram: 'exclusive', 'tcp-punched': 'exclusive', 'punch-outcome': 'event', 'relay-refused': 'event' },
    create: (ctx) => {
      const { clock, counters } = ctx;
      const below = ctx.below;
      const book = new IntroducerBook({ perAddress: integer(options.introducersPerAddress, 3, 'introducersPerAddress') });
      const classifier = new NatClassifier({ windowMs: observationWindowMs });
      const paths = new Map<string, Path>();
      /** Real address -> path, where a symmetric NAT maps the peer elsewhere than its logical address. */
      const aliases = new Map<string, Path>();
      const byNonce = new Map<number, Path>();
      const relayOpens = new Map<number, Path>();
      /** `relay address#session` -> the path whose traffic the tunnel carries. */
      const tunnels = new Map<string, Path>();
      /** Last time a datagram arrived from each address (bounded, oldest forgotten first). */
      const heard = new Map<string, number>();
      const HEARD_LIMIT = 65_536;
      const observeAsked = new Map<string, number>();
      const observeNonces = new Map<number, { address: Address; at: number }>();
      const tcpObserved = new Map<string, { address: Address; at: number }>();
      const served = new Map<number, ServedSession>();
      const servedByOpen = new Map<string, number>();
      const tcpOffers = new Map<number, TcpOffer>();
      const tcpAnswered = new Map<string, { candidates: readonly Address[]; at: number }>();
      const tcpSockets = new Set<Socket>();
      const pings = new PendingRequests<string, number>(clock, 10_000);
      let budget: RelayBudget | undefined;
      let service: TokenBucket | undefined;
      let running = false;
      let punching = 0;
      let stopSweep: (() => void) | undefined;

      const now = (): number => clock.now();
      const nonce32 = (): number => ctx.random.int(2 ** 32);
      const maxDatagramSize = (): number => Math.max(0, below.maxDatagramSize() - RELAY_DATA_OVERHEAD - 1);
      const ourNat = (): NatType => {
        try {
          return classifier.classify(below.localAddress(), now()).type;
        } catch {
          return 'unknown';
        }
      };

      const raw = (to: Address, bytes: Uint8Array): void => {
        try {
          below.sendDatagram(to, bytes);
        } catch (error) {
          counters.drop(error instanceof InvalidArgumentError ? 'bad-address' : 'send-error');
        }
      };
      const sendPunch = (to: Address, message: PunchMessage): void => raw(to, encodePunchMessage(message));
      const sendRelay = (to: Address, message: RelayMessage): void => raw(to, encodeRelayMessage(message));

      /** Sends holepunch-framed bytes along a path (directly or through its relay). */
      const sendOnPath = (path: Path, framed: Uint8Array): void => {
        path.lastActivity = now();
        if (path.state === 'relayed' && path.relay) {
          counters.add('relayed-out');
          raw(path.relay.via, encodeRelayData(path.relay.session, framed));
        } else raw(path.target, framed);
      };

      /** Sends holepunch-framed bytes to a peer: along its path when there is one, else straight. */
      const sendTo = (address: Address, framed: Uint8Array): void => {
        const path = paths.get(addressKey(address));
        if (path && (path.state === 'open' || path.state === 'relayed')) sendOnPath(path, framed);
        else raw(address, framed);
      };

      const markHeard = (from: Address, at: number): void => {
        const key = addressKey(from);
        heard.delete(key);
        heard.set(key, at);
        if (heard.size > HEARD_LIMIT) {
          const oldest = heard.keys().next().value;
          if (oldest !== undefined) heard.delete(oldest);
        }
      };
      const heardRecently = (address: Address): boolean => {
        const at = heard.get(addressKey(address));
        return at !== undefined && now() - at <= heardWindowMs;
      };

      const serve = (): boolean => {
        service ??= new TokenBucket(serviceRate, serviceRate, now());
        if (service.take(1, now())) return true;
        counters.drop('rate-limited');
        return false;
      };

      // --- NAT classification ---------------------------------------------------

      const maybeObserve = (address: Address): void => {
        if (!running) return;
        const at = now();
        if (classifier.observers(at) >= observers) return;
        const key = addressKey(address);
        const asked = observeAsked.get(key);
        if (asked !== undefined && at - asked < observationWindowMs / 2) return;
        observeAsked.delete(key);
        observeAsked.set(key, at);
        if (observeAsked.size > 256) observeAsked.delete(observeAsked.keys().next().value!);
        for (const [n, entry] of observeNonces) if (at - entry.at > 10_000) observeNonces.delete(n);
        if (observeNonces.size >= 64) return;
        const nonce = nonce32();
        observeNonces.set(nonce, { address, at });
        counters.add('observe-requests-out');
        sendTo(address, encodePunchMessage({ type: PUNCH_MESSAGE.observeRequest, nonce }));
      };

      // --- outcomes ---------------------------------------------------------------

      const outcomeOf = (path: Path, mechanism: Mechanism, error?: PunchError | RelayError): ConnectOutcome => ({
        mechanism,
        address: path.logical,
        via: mechanism === 'relayed' ? path.relay?.via : mechanism === 'failed' ? undefined : path.target,
        attempts: path.attempts,
        elapsedMs: now() - path.startedAt,
        error,
        reason: error?.code,
      });

      const settle = (path: Path, outcome: ConnectOutcome): void => {
        const waiters = [...path.waiters];
        path.waiters.clear();
        for (const waiter of waiters) waiter.resolve(outcome);
        if (path.wanted || waiters.length > 0) {
          counters.add(`outcome.${outcome.mechanism}`);
          if (ctx.observed('punch-outcome')) ctx.emit('punch-outcome', outcome);
        }
      };

      const clearTimers = (path: Path): void => {
        if (path.timer !== undefined) clock.clearTimeout(path.timer);
        if (path.deadline !== undefined) clock.clearTimeout(path.deadline);
        path.timer = undefined;
        path.deadline = undefined;
      };

      const endPunch = (path: Path): void => {
        if (path.nonce !== undefined && byNonce.get(path.nonce) === path) byNonce.delete(path.nonce);
        if (path.state === 'punching' || path.state === 'relay-pending') punching--;
        clearTimers(path);
      };

      const flush = (path: Path): void => {
        for (const data of path.queue.drain()) sendOnPath(path, encodeData(data));
      };

      const opened = (path: Path, target: Address, mechanism: 'direct' | 'punched-udp'): void => {
        endPunch(path);
        path.state = 'open';
        path.relay = undefined;
        if (!sameAddress(path.target, path.logical) && aliases.get(addressKey(path.target)) === path) aliases.delete(addressKey(path.target));
        path.target = target;
        if (!sameAddress(target, path.logical)) aliases.set(addressKey(target), path);
        path.mechanism = mechanism;
        path.lastActivity = now();
        counters.add(mechanism === 'direct' ? 'paths-direct' : 'punches-succeeded');
        flush(path);
        path.opened = outcomeOf(path, mechanism);
        settle(path, path.opened);
      };

      const addTunnel = (path: Path, via: Address, session: number): Tunnel => {
        let tunnel = path.relays.find((t) => t.session === session && sameAddress(t.via, via));
        if (!tunnel) {
          tunnel = { via, session };
          path.relays.push(tunnel);
          tunnels.set(`${addressKey(via)}#${session}`, path);
        }
        return tunnel;
      };

      const relayed = (path: Path, via: Address, session: number): void => {
        endPunch(path);
        path.state = 'relayed';
        path.relay = addTunnel(path, via, session);
        path.mechanism = 'relayed';
        path.lastActivity = now();
        counters.add('relays-opened');
        flush(path);
        path.opened = outcomeOf(path, 'relayed');
        settle(path, path.opened);
      };

      const failed = (path: Path, error: PunchError | RelayError): void => {
        endPunch(path);
        path.state = 'failed';
        path.failure = error;
        path.failedAt = now();
        const dropped = path.queue.drain().length;
        if (dropped > 0) counters.add('dropped.punch-failed', dropped);
        if (dropped > 0) counters.add('dropped', dropped);
        if (path.wanted) counters.add('punches-failed');
        settle(path, outcomeOf(path, 'failed', error));
        if (!path.wanted) forget(path);
      };

      const forget = (path: Path): void => {
        if (path.state === 'punching' || path.state === 'relay-pending') endPunch(path);
        if (paths.get(path.key) === path) paths.delete(path.key);
        if (aliases.get(addressKey(path.target)) === path) aliases.delete(addressKey(path.target));
        for (const tunnel of path.relays) {
          const key = `${addressKey(tunnel.via)}#${tunnel.session}`;
          if (tunnels.get(key) === path) tunnels.delete(key);
        }
        if (path.relayNonce !== undefined && relayOpens.get(path.relayNonce) === path) relayOpens.delete(path.relayNonce);
      };

      // --- punching ---------------------------------------------------------------

      const newPath = (logical: Address): Path => {
        const path: Path = {
          logical,
          key: addressKey(logical),
          state: 'failed',
          target: logical,
          relay: undefined,
          relays: [],
          queue: new SendQueue({ maxDatagrams: maxQueuedDatagrams, maxBytes: maxQueuedBytes }),
          attempts: 0,
          startedAt: now(),
          nonce: undefined,
          timer: undefined,
          deadline: undefined,
          waiters: new Set(),
          wanted: false,
          allowRelay: relayFallback,
          mechanism: undefined,
          opened: undefined,
          lastActivity: now(),
          failure: undefined,
          failedAt: 0,
          relayNonce: undefined,
          relayCandidates: [],
          relayIndex: 0,
          relayTries: 0,
          peerNat: 'unknown',
        };
        paths.set(path.key, path);
        return path;
      };

      const punchRound = (path: Path): void => {
        if (path.state !== 'punching' || path.nonce === undefined) return;
        path.attempts++;
        counters.add('probes-out');
        const probe = encodePunchMessage({ type: PUNCH_MESSAGE.probe, nonce: path.nonce });
        raw(path.logical, probe);
        if (!sameAddress(path.target, path.logical)) raw(path.target, probe);
        const introducers = book.get(path.logical);
        if (path.wanted && introducers.length > 0) {
          const introducer = introducers[(path.attempts - 1) % introducers.length]!;
          counters.add('punch-requests-out');
          sendPunch(introducer, { type: PUNCH_MESSAGE.punchRequest, nonce: path.nonce, natType: ourNat(), target: path.logical });
        }
        const delay = nextRetryDelay(schedule, path.attempts, now() - path.startedAt);
        path.timer = delay === undefined ? undefined : clock.setTimeout(() => punchRound(path), delay);
      };

      /** Starts (or restarts) punching towards `path.logical` with `nonce`. */
      const startPunch = (path: Path, nonce: number): boolean => {
        if (punching >= maxConcurrentPunches) {
          counters.drop('punch-limit');
          return false;
        }
        if (path.state === 'punching' || path.state === 'relay-pending') endPunch(path);
        punching++;
        path.state = 'punching';
        path.nonce = nonce;
        path.attempts = 0;
        path.startedAt = now();
        path.failure = undefined;
        byNonce.set(nonce, path);
        if (path.wanted) counters.add('punches-started');
        path.deadline = clock.setTimeout(() => punchDeadline(path), punchTimeoutMs);
        // Both sides symmetric: punching cannot work, so go straight to a relay.
        if (path.wanted && path.allowRelay && path.peerNat === 'symmetric' && ourNat() === 'symmetric' && book.get(path.logical).length > 0) {
          startRelay(path, undefined);
          return true;
        }
        punchRound(path);
        return true;
      };

      const punchDeadline = (path: Path): void => {
        path.deadline = undefined;
        if (path.state !== 'punching') return;
        const error =
          book.get(path.logical).length === 0
            ? new PunchError('PUNCH_NO_INTRODUCER', `holepunch: ${addressKey(path.logical)} did not answer within ${punchTimeoutMs} ms and no introducer is known for it`, path.attempts)
            : new PunchError('PUNCH_TIMEOUT', `holepunch: no path to ${addressKey(path.logical)} within ${punchTimeoutMs} ms`, path.attempts);
        if (!path.wanted && path.waiters.size === 0 && path.queue.length === 0) {
          forget(path);
          return;
        }
        if (path.allowRelay || [...path.waiters].some((waiter) => waiter.relay)) startRelay(path, error);
        else failed(path, error);
      };

      // --- relay (client side) ----------------------------------------------------

      const startRelay = (path: Path, cause: PunchError | undefined): void => {
        const candidates = book.get(path.logical).filter((candidate) => !sameAddress(candidate, path.logical));
        if (candidates.length === 0) {
          failed(path, cause ?? new PunchError('PUNCH_NO_INTRODUCER', `holepunch: no introducer or relay known for ${addressKey(path.logical)}`, path.attempts));
          return;
        }
        if (path.state !== 'punching') punching++;
        clearTimers(path);
        if (path.nonce !== undefined && byNonce.get(path.nonce) === path) byNonce.delete(path.nonce);
        path.state = 'relay-pending';
        path.relayCandidates = [...candidates];
        path.relayIndex = 0;
        path.relayTries = 0;
        path.failure = cause;
        tryRelay(path);
      };

      const tryRelay = (path: Path): void => {
        if (path.state !== 'relay-pending') return;
        if (path.relayNonce !== undefined) relayOpens.delete(path.relayNonce);
        if (path.relayTries >= 2) {
          path.relayIndex++;
          path.relayTries = 0;
        }
        const relay = path.relayCandidates[path.relayIndex];
        if (relay === undefined) {
          failed(path, path.failure instanceof RelayError ? path.failure : new RelayError('RELAY_TIMEOUT', `holepunch: no relay to ${addressKey(path.logical)} answered`, { cause: path.failure }));
          return;
        }
        path.relayTries++;
        path.attempts++;
        const nonce = nonce32();
        path.relayNonce = nonce;
        relayOpens.set(nonce, path);
        counters.add('relay-requests-out');
        sendRelay(relay, { type: RELAY_MESSAGE.open, nonce, target: path.logical });
        path.timer = clock.setTimeout(() => tryRelay(path), relayAttemptMs);
      };

      const relayRefused = (path: Path, reason: RelayReason): void => {
        counters.add(`relay-refused.${reason}`);
        path.failure = RelayError.fromReason(reason, `holepunch: relay ${addressKey(path.relayCandidates[path.relayIndex] ?? path.logical)} refused a session to ${addressKey(path.logical)} (${reason})`);
        if (path.timer !== undefined) clock.clearTimeout(path.timer);
        path.relayIndex++;
        path.relayTries = 0;
        tryRelay(path);
      };

      // --- relay (service side) ---------------------------------------------------

      const closeServed = (session: ServedSession, reason: RelayReason, notify: readonly Address[]): void => {
        if (session.timer !== undefined) clock.clearTimeout(session.timer);
        served.delete(session.id);
        servedByOpen.delete(`${addressKey(session.opener)}#${session.nonce}`);
        budget?.close(session.id);
        for (const address of notify) sendRelay(address, { type: RELAY_MESSAGE.close, session: session.id, reason });
        counters.set('relay-sessions', served.size);
      };

      const onRelayOpen = (nonce: number, target: Address, from: Address): void => {
        if (!relayService) {
          sendRelay(from, { type: RELAY_MESSAGE.refused, id: nonce, idKind: 'nonce', reason: 'disabled' });
          counters.add('relay-refused-out.disabled');
          return;
        }
        const existing = servedByOpen.get(`${addressKey(from)}#${nonce}`);
        if (existing !== undefined) {
          const session = served.get(existing);
          if (session?.state === 'pending') sendRelay(session.target, { type: RELAY_MESSAGE.incoming, session: session.id, peer: session.opener });
          else if (session) sendRelay(from, { type: RELAY_MESSAGE.opened, nonce, session: session.id });
          return;
        }
        if (!heardRecently(target) || sameAddress(target, from)) {
          sendRelay(from, { type: RELAY_MESSAGE.refused, id: nonce, idKind: 'nonce', reason: 'unknown' });
          counters.add('relay-refused-out.unknown');
          return;
        }
        budget ??= new RelayBudget(relayService, now());
        let id = nonce32();
        for (let tries = 0; served.has(id) && tries < 16; tries++) id = nonce32();
        if (served.has(id) || budget.open(id, now()) !== true) {
          sendRelay(from, { type: RELAY_MESSAGE.refused, id: nonce, idKind: 'nonce', reason: 'sessions' });
          counters.add('relay-refused-out.sessions');
          return;
        }
        const session: ServedSession = { id, opener: from, target, nonce, state: 'pending', lastActive: now(), lastRefusalAt: -Infinity, timer: undefined };
        served.set(id, session);
        servedByOpen.set(`${addressKey(from)}#${nonce}`, id);
        counters.set('relay-sessions', served.size);
        session.timer = clock.setTimeout(() => {
          session.timer = undefined;
          if (session.state !== 'pending') return;
          sendRelay(session.opener, { type: RELAY_MESSAGE.refused, id: nonce, idKind: 'nonce', reason: 'unknown' });
          closeServed(session, 'unknown', []);
        }, Math.max(relayAttemptMs * 2, 2_000));
        sendRelay(target, { type: RELAY_MESSAGE.incoming, session: id, peer: from });
      };

      const activate = (session: ServedSession): void => {
        session.state = 'active';
        if (session.timer !== undefined) clock.clearTimeout(session.timer);
        session.timer = undefined;
        counters.add('relay-sessions-served');
        sendRelay(session.opener, { type: RELAY_MESSAGE.opened, nonce: session.nonce, session: session.id });
      };

      const onServedData = (session: ServedSession, payload: Uint8Array, from: Address): void => {
        const to = sameAddress(from, session.opener) ? session.target : session.opener;
        const verdict = budget!.admit(session.id, payload.byteLength + RELAY_DATA_OVERHEAD, now());
        if (verdict !== true) {
          counters.drop(`relay-${verdict}`);
          if (verdict === 'bytes') {
            closeServed(session, 'bytes', [session.opener, session.target]);
            return;
          }
          // Tell the sender, at most once a second, that traffic beyond the budget is refused.
          if (now() - session.lastRefusalAt >= 1_000) {
            session.lastRefusalAt = now();
            sendRelay(from, { type: RELAY_MESSAGE.refused, id: session.id, idKind: 'session', reason: verdict === 'sessions' ? 'unknown' : verdict });
          }
          return;
        }
        session.lastActive = now();
        counters.add('relay-forwarded');
        counters.add('relay-forwarded-bytes', payload.byteLength);
        raw(to, encodeRelayData(session.id, payload));
      };

      // --- relayed data that overtook its OPENED -------------------------------------

      const early = new Map<string, { at: number; payloads: Uint8Array[] }>();
      const EARLY_LIMIT = 32;
      /** Whether we wait for an OPENED from `relay`. */
      const relayOpening = (relay: Address): boolean => {
        for (const path of relayOpens.values()) {
          if (path.state === 'relay-pending' && sameAddress(path.relayCandidates[path.relayIndex] ?? path.logical, relay)) return true;
        }
        return false;
      };
      const holdEarly = (key: string, payload: Uint8Array): void => {
        const at = now();
        for (const [k, entry] of early) if (at - entry.at > 2_000) early.delete(k);
        let entry = early.get(key);
        if (!entry) {
          if (early.size >= EARLY_LIMIT) {
            counters.drop('relay-early-full');
            return;
          }
          entry = { at, payloads: [] };
          early.set(key, entry);
        }
        if (entry.payloads.length >= 8) {
          counters.drop('relay-early-full');
          return;
        }
        entry.payloads.push(payload.slice());
        counters.add('relay-early-held');
      };
      const replayEarly = (key: string, from: Address, session: number): void => {
        const entry = early.get(key);
        if (!entry) return;
        early.delete(key);
        for (const payload of entry.payloads) onRelayMessage({ type: RELAY_MESSAGE.data, session, payload }, from);
      };

      // --- receive ----------------------------------------------------------------

      const deliver = (payload: Uint8Array, from: Address): void => {
        const slot = ctx.slots.datagram;
        if (slot) slot(payload, from);
        else counters.drop('no-receiver');
      };

      /** The path a datagram from `from` belongs to (directly, or through an alias). */
      const pathFrom = (from: Address): Path | undefined => aliases.get(addressKey(from)) ?? paths.get(addressKey(from));

      const onPunch = (message: PunchMessage, from: Address, tunnel: Path | undefined): void => {
        switch (message.type) {
          case PUNCH_MESSAGE.probe: {
            if (!serve()) return;
            counters.add('probes-in');
            if (tunnel) {
              // A ping through the relay: answer through it.
              sendTo(tunnel.logical, encodeProbeAck(message.nonce, 0, tunnel.logical));
              return;
            }
            const path = byNonce.get(message.nonce) ?? pathFrom(from);
            raw(from, encodeProbeAck(message.nonce, path === undefined ? PROBE_ACK_UNSOLICITED : 0, from));
            if (path && (path.state === 'punching' || path.state === 'relay-pending')) opened(path, from, 'punched-udp');
            return;
          }
          case PUNCH_MESSAGE.probeAck: {
            if (tunnel) {
              pings.resolve(`${tunnel.key}|${message.nonce}`, now());
              return;
            }
            if (pings.resolve(`${pathFrom(from)?.key ?? addressKey(from)}|${message.nonce}`, now())) return;
            const ours = byNonce.get(message.nonce);
            if (ours) classifier.observe(from, message.observed, now());
            const path = ours ?? pathFrom(from);
            if (path && (path.state === 'punching' || path.state === 'relay-pending')) {
              opened(path, from, ours && message.flags & PROBE_ACK_UNSOLICITED ? 'direct' : 'punched-udp');
            }
            return;
          }
          case PUNCH_MESSAGE.punchRequest: {
            if (tunnel || !serve()) return;
            counters.add('punch-requests-in');
            // Tell the requester how we see it (NAT classification), then forward.
            sendPunch(from, { type: PUNCH_MESSAGE.observed, nonce: message.nonce, transport: 'udp', observed: from });
            if (!heardRecently(message.target) || sameAddress(message.target, from)) {
              counters.drop('punch-unknown-target');
              return;
            }
            counters.add('punches-relayed');
            sendTo(message.target, encodePunchMessage({ type: PUNCH_MESSAGE.punchRelayed, nonce: message.nonce, natType: message.natType, peer: from }));
            return;
          }
          case PUNCH_MESSAGE.punchRelayed: {
            if (!serve()) return;
            counters.add('punches-relayed-in');
            const peer = message.peer;
            book.add(peer, tunnel?.relay?.via ?? from);
            let path = paths.get(addressKey(peer));
            if (path?.state === 'open' && path.target !== undefined) {
              // Already open here; probe anyway so the initiator's side opens too.
              raw(path.target, encodePunchMessage({ type: PUNCH_MESSAGE.probe, nonce: message.nonce }));
              return;
            }
            if (path?.state === 'relayed') return;
            path ??= newPath(peer);
            path.peerNat = message.natType;
            if (path.state === 'punching' && path.nonce === message.nonce) return;
            // Both sides symmetric: no probe can meet a mapping, so open a relay at once.
            if (message.natType === 'symmetric' && ourNat() === 'symmetric' && relayFallback && path.state !== 'relay-pending') {
              if (punching >= maxConcurrentPunches) {
                counters.drop('punch-limit');
                if (!path.wanted) forget(path);
                return;
              }
              punching++;
              path.state = 'punching';
              path.startedAt = now();
              path.attempts = 0;
              counters.add('relay-shortcuts');
              startRelay(path, undefined);
              return;
            }
            if (path.state === 'punching' || path.state === 'relay-pending') {
              // We are punching towards it ourselves: probe with its nonce as well (its
              // probes reaching us open our path through pathFrom()).
              raw(peer, encodePunchMessage({ type: PUNCH_MESSAGE.probe, nonce: message.nonce }));
              return;
            }
            if (!startPunch(path, message.nonce) && !path.wanted) forget(path);
            return;
          }
          case PUNCH_MESSAGE.observeRequest: {
            if (!serve()) return;
            counters.add('observe-requests-in');
            sendTo(from, encodePunchMessage({ type: PUNCH_MESSAGE.observed, nonce: message.nonce, transport: 'udp', observed: tunnel ? tunnel.logical : from }));
            return;
          }
          case PUNCH_MESSAGE.observed: {
            if (message.transport === 'tcp') {
              if (!heardRecently(from) && !tunnel) return;
              const key = addressKey(message.observed);
              tcpObserved.delete(key);
              tcpObserved.set(key, { address: message.observed, at: now() });
              if (tcpObserved.size > 8) tcpObserved.delete(tcpObserved.keys().next().value!);
              counters.add('tcp-observations');
              return;
            }
            if (tunnel) return;
            const asked = observeNonces.get(message.nonce);
            const punch = byNonce.get(message.nonce);
            if (asked && sameAddress(asked.address, from)) observeNonces.delete(message.nonce);
            else if (!punch || !book.get(punch.logical).some((introducer) => sameAddress(introducer, from))) return;
            counters.add('observations');
            classifier.observe(from, message.observed, now());
            return;
          }
          case PUNCH_MESSAGE.tcpOffer:
            onTcpOffer(message.nonce, message.candidates, tunnel?.logical ?? (aliases.get(addressKey(from))?.logical ?? from));
            return;
          case PUNCH_MESSAGE.tcpAnswer: {
            const offer = tcpOffers.get(message.nonce);
            if (!offer) return;
            tcpOffers.delete(message.nonce);
            offer.resolve(message.candidates);
            return;
          }
        }
      };

      const onRelayMessage = (message: RelayMessage, from: Address): void => {
        switch (message.type) {
          case RELAY_MESSAGE.data: {
            const session = served.get(message.session);
            if (session && (sameAddress(from, session.opener) || sameAddress(from, session.target))) {
              if (session.state === 'pending') {
                // Data from the target before its ACCEPT (reordered): it did accept.
                if (!sameAddress(from, session.target)) {
                  counters.drop('relay-pending-session');
                  return;
                }
                activate(session);
              }
              onServedData(session, message.payload, from);
              return;
            }
            const key = `${addressKey(from)}#${message.session}`;
            const path = tunnels.get(key);
            if (!path) {
              // Data overtaking the OPENED that names its session: hold it briefly.
              if (relayOpening(from)) holdEarly(key, message.payload);
              else counters.drop('relay-unknown-session');
              return;
            }
            path.lastActivity = now();
            counters.add('relayed-in');
            let inner;
            try {
              inner = decodeIncoming(message.payload);
            } catch (error) {
              counters.drop(dropReason(error));
              return;
            }
            if (inner.kind === 'data') deliver(inner.payload, path.logical);
            else if (inner.kind === 'punch') onPunch(inner.message, path.logical, path);
            else counters.drop('relay-nested');
            return;
          }
          case RELAY_MESSAGE.open:
            if (!serve()) return;
            onRelayOpen(message.nonce, message.target, from);
            return;
          case RELAY_MESSAGE.incoming: {
            if (!acceptRelayed) {
              sendRelay(from, { type: RELAY_MESSAGE.refused, id: message.session, idKind: 'session', reason: 'declined' });
              return;
            }
            const peer = message.peer;
            book.add(peer, from);
            let path = paths.get(addressKey(peer));
            path ??= newPath(peer);
            sendRelay(from, { type: RELAY_MESSAGE.accept, session: message.session });
            if (path.state !== 'open' && path.state !== 'relayed') relayed(path, from, message.session);
            else addTunnel(path, from, message.session);
            return;
          }
          case RELAY_MESSAGE.accept: {
            const session = served.get(message.session);
            if (!session || !sameAddress(from, session.target)) return;
            if (session.state === 'pending') activate(session);
            else sendRelay(session.opener, { type: RELAY_MESSAGE.opened, nonce: session.nonce, session: session.id });
            return;
          }
          case RELAY_MESSAGE.opened: {
            const path = relayOpens.get(message.nonce);
            if (!path || paths.get(path.key) !== path) {
              // An answer nobody waits for: release the session.
              sendRelay(from, { type: RELAY_MESSAGE.close, session: message.session, reason: 'closed' });
              return;
            }
            // A session that arrives after the peer opened one to us too is kept as a
            // spare: the peer may be using it, and either may close first.
            if (path.state === 'relay-pending') relayed(path, from, message.session);
            else addTunnel(path, from, message.session);
            replayEarly(`${addressKey(from)}#${message.session}`, from, message.session);
            return;
          }
          case RELAY_MESSAGE.close: {
            const session = served.get(message.session);
            if (session && (sameAddress(from, session.opener) || sameAddress(from, session.target))) {
              closeServed(session, message.reason, [sameAddress(from, session.opener) ? session.target : session.opener]);
              return;
            }
            const key = `${addressKey(from)}#${message.session}`;
            const path = tunnels.get(key);
            if (!path) return;
            tunnels.delete(key);
            path.relays = path.relays.filter((t) => !(t.session === message.session && sameAddress(t.via, from)));
            counters.add(`relay-closed.${message.reason}`);
            if (message.reason !== 'closed' && ctx.observed('relay-refused')) {
              ctx.emit('relay-refused', path.logical, RelayError.fromReason(message.reason, `holepunch: relay ${addressKey(from)} closed the session to ${addressKey(path.logical)} (${message.reason})`));
            }
            if (path.relay && sameAddress(path.relay.via, from) && path.relay.session === message.session) {
              path.relay = path.relays[0];
              if (!path.relay && path.state === 'relayed') forget(path);
            }
            return;
          }
          case RELAY_MESSAGE.refused: {
            if (message.idKind === 'nonce') {
              const path = relayOpens.get(message.id);
              if (path && path.state === 'relay-pending') relayRefused(path, message.reason);
              return;
            }
            const session = served.get(message.id);
            if (session && session.state === 'pending' && sameAddress(from, session.target)) {
              sendRelay(session.opener, { type: RELAY_MESSAGE.refused, id: session.nonce, idKind: 'nonce', reason: message.reason });
              closeServed(session, message.reason, []);
              return;
            }
            const path = tunnels.get(`${addressKey(from)}#${message.id}`);
            if (path) {
              counters.add(`relay-refused.${message.reason}`);
              const error = RelayError.fromReason(message.reason, `holepunch: relay ${addressKey(from)} refused traffic to ${addressKey(path.logical)} (${message.reason})`);
              path.failure = error;
              if (ctx.observed('relay-refused')) ctx.emit('relay-refused', path.logical, error);
            }
            return;
          }
        }
      };

      const receive = (bytes: Uint8Array, from: Address): void => {
        const at = now();
        const known = heard.has(addressKey(from));
        markHeard(from, at);
        // A new peer is a chance to learn how our NAT maps us (until enough peers told us).
        if (!known) maybeObserve(from);
        let incoming;
        try {
          incoming = decodeIncoming(bytes);
        } catch (error) {
          counters.drop(dropReason(error));
          return;
        }
        if (incoming.kind === 'relay') {
          onRelayMessage(incoming.message, from);
          return;
        }
        const path = pathFrom(from);
        if (path) {
          path.lastActivity = at;
          // The first datagram from the target opens the path and flushes the queue.
          if ((path.state === 'punching' || path.state === 'relay-pending') && incoming.kind === 'data') opened(path, from, 'punched-udp');
        }
        if (incoming.kind === 'data') {
          deliver(incoming.payload, path && path.state === 'open' ? path.logical : from);
          return;
        }
        onPunch(incoming.message, from, undefined);
      };

      // --- TCP ---------------------------------------------------------------------

      const tcpHost = (): string => options.tcpHost ?? below.localAddress().host;

      const tcpCandidates = (port: number): Address[] => {
        const host = tcpHost();
        const family = ipFamily(host);
        const hosts: string[] = [];
        const add = (candidate: string | undefined): void => {
          if (candidate === undefined || ipFamily(candidate) !== family || candidate === '0.0.0.0' || candidate === '::') return;
          if (!hosts.includes(candidate)) hosts.push(candidate);
        };
        for (const { address, at } of [...tcpObserved.values()].reverse()) if (now() - at <= observationWindowMs * 5) add(address.host);
        add(classifier.classify(below.localAddress(), now()).publicAddress?.host);
        add(host);
        return hosts.slice(0, MAX_TCP_CANDIDATES).map((candidate) => ({ host: candidate, port }));
      };

      const punchSocket = async (remotes: readonly Address[], port: number, signal: AbortSignal | undefined) => {
        const result = await simultaneousOpen({
          localHost: tcpHost(),
          localPort: port,
          remotes,
          clock,
          attemptTimeoutMs: tcpAttemptTimeoutMs,
          pauseMs: tcpRoundPauseMs,
          deadlineMs: tcpPunchTimeoutMs,
          signal: signal ?? ctx.signal,
          onAttemptFailed: () => counters.add('tcp-attempts-failed'),
        });
        counters.add('tcp-punches-succeeded');
        return result;
      };

      const onTcpOffer = (nonce: number, candidates: readonly Address[], peer: Address): void => {
        const key = `${addressKey(peer)}#${nonce}`;
        const answered = tcpAnswered.get(key);
        if (answered) {
          sendTo(peer, encodePunchMessage({ type: PUNCH_MESSAGE.tcpAnswer, nonce, candidates: answered.candidates }));
          return;
        }
        for (const [k, entry] of tcpAnswered) if (now() - entry.at > tcpPunchTimeoutMs * 2) tcpAnswered.delete(k);
        const slot = ctx.slots['tcp-punched'];
        if (!slot || tcpAnswered.size >= 64 || !serve()) {
          sendTo(peer, encodePunchMessage({ type: PUNCH_MESSAGE.tcpAnswer, nonce, candidates: [] }));
          counters.add('tcp-offers-declined');
          return;
        }
        tcpAnswered.set(key, { candidates: [], at: now() });
        counters.add('tcp-offers-in');
        freeTcpPort(tcpHost()).then(
          (port) => {
            if (!running) return;
            const ours = tcpCandidates(port);
            tcpAnswered.set(key, { candidates: ours, at: now() });
            sendTo(peer, encodePunchMessage({ type: PUNCH_MESSAGE.tcpAnswer, nonce, candidates: ours }));
            punchSocket(candidates, port, undefined).then(
              ({ socket }) => {
                if (!running) {
                  socket.destroy();
                  return;
                }
                const taker = ctx.slots['tcp-punched'];
                if (taker) taker(socket, peer);
                else socket.destroy();
              },
              () => counters.add('tcp-punches-failed'),
            );
          },
          () => counters.add('tcp-punches-failed'),
        );
      };

      // --- provided capabilities ---------------------------------------------------

      const requireRunning = (what: string): void => {
        if (!running) throw new StateError('NOT_STARTED', `holepunch.${what}: the layer is not started`);
      };

      const connect = (address: Address, connectOptions: ConnectOptions = {}): Promise<ConnectOutcome> => {
        requireRunning('connect');
        if (typeof address !== 'object' || address === null || ipFamily(address.host) === 0 || !(address.port >= 1 && address.port <= 65_535)) {
          throw new InvalidArgumentError(`holepunch.connect: expected an IP address and a port 1..65535, got ${JSON.stringify(address)}`);
        }
        const key = addressKey(address);
        let path = paths.get(key);
        const allowRelay = connectOptions.relay ?? relayFallback;
        if (path && (path.state === 'open' || path.state === 'relayed')) {
          // The outcome it opened with, with where traffic goes now.
          const current = outcomeOf(path, path.state === 'relayed' ? 'relayed' : (path.mechanism ?? 'direct'));
          return Promise.resolve(path.opened ? { ...path.opened, via: current.via } : current);
        }
        if (!path && heardRecently(address)) {
          path = newPath(address);
          path.wanted = true;
          path.state = 'open';
          path.mechanism = 'direct';
          const outcome = outcomeOf(path, 'direct');
          path.opened = outcome;
          counters.add('outcome.direct');
          if (ctx.observed('punch-outcome')) ctx.emit('punch-outcome', outcome);
          return Promise.resolve(outcome);
        }
        path ??= newPath(address);
        path.wanted = true;
        if (allowRelay) path.allowRelay = true;
        const signal = connectOptions.signal;
        const target = path;
        return new Promise<ConnectOutcome>((resolve) => {
          if (signal?.aborted) {
            resolve(outcomeOf(target, 'failed', new PunchError('PUNCH_ABORTED', 'holepunch.connect: aborted', target.attempts, { cause: signal.reason })));
            return;
          }
          const waiter: Waiter = {
            relay: allowRelay,
            resolve: (outcome) => {
              signal?.removeEventListener('abort', onAbort);
              resolve(outcome);
            },
          };
          const onAbort = (): void => {
            if (!target.waiters.delete(waiter)) return;
            resolve(outcomeOf(target, 'failed', new PunchError('PUNCH_ABORTED', 'holepunch.connect: aborted', target.attempts, { cause: signal?.reason })));
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          target.waiters.add(waiter);
          if (target.state === 'failed') {
            if (!startPunch(target, nonce32())) {
              target.waiters.delete(waiter);
              waiter.resolve(outcomeOf(target, 'failed', new PunchError('PUNCH_LIMIT', `holepunch: ${maxConcurrentPunches} punches are under way`, 0)));
            }
          }
        });
      };

      const sendDatagram = (to: Address, data: Uint8Array): void => {
        requireRunning('sendDatagram');
        if (data.byteLength > maxDatagramSize()) {
          throw new InvalidArgumentError(`holepunch.sendDatagram: ${data.byteLength} bytes exceed maxDatagramSize() = ${maxDatagramSize()}`);
        }
        const key = addressKey(to);
        let path = paths.get(key);
        if (!path) {
          if (heardRecently(to) || !book.has(to)) {
            raw(to, encodeData(data));
            return;
          }
          path = newPath(to);
        }
        path.wanted = true;
        switch (path.state) {
          case 'open':
          case 'relayed':
            sendOnPath(path, encodeData(data));
            return;
          case 'failed':
            if (path.failedAt > 0 && now() - path.failedAt < failureCooldownMs) {
              counters.drop('punch-failed');
              return;
            }
            if (!startPunch(path, nonce32())) {
              forget(path);
              return;
            }
            break;
          default:
            break;
        }
        if (path.queue.push(data)) counters.add('queued');
        else counters.drop('queue-full');
      };

      /** A ping along the path to `address`: a PROBE answered by a PROBE_ACK, directly or through the relay. */
      const probePing = async (path: Path | undefined, address: Address, pingOptions: PingOptions): Promise<number> => {
        let nonce = nonce32();
        const key = path?.key ?? addressKey(address);
        while (pings.has(`${key}|${nonce}`)) nonce = nonce32();
        const startedAt = now();
        const answered = pings.add(`${key}|${nonce}`, pingOptions.timeoutMs ?? 2_000, `holepunch ping to ${addressKey(address)}`, pingOptions.signal);
        const probe = encodePunchMessage({ type: PUNCH_MESSAGE.probe, nonce });
        if (path) sendOnPath(path, probe);
        else raw(address, probe);
        counters.add('pings-out');
        return (await answered) - startedAt;
      };

      const sendPing = async (to: Address, pingOptions: PingOptions = {}): Promise<number> => {
        requireRunning('sendPing');
        checkTimeoutMs(pingOptions.timeoutMs, 'holepunch.sendPing');
        let path = paths.get(addressKey(to));
        if (!path && (heardRecently(to) || !book.has(to))) return below.sendPing ? below.sendPing(to, pingOptions) : probePing(undefined, to, pingOptions);
        if (!path || (path.state !== 'open' && path.state !== 'relayed')) {
          const outcome = await connect(to, pingOptions.signal ? { signal: pingOptions.signal } : {});
          if (outcome.mechanism === 'failed') throw new TimeoutError(`holepunch.sendPing: no path to ${addressKey(to)} (${outcome.reason})`, { cause: outcome.error });
          path = paths.get(addressKey(to));
          if (!path) throw new TimeoutError(`holepunch.sendPing: the path to ${addressKey(to)} closed`);
        }
        if (path.state === 'open' && below.sendPing) return below.sendPing(path.target, pingOptions);
        return probePing(path, to, pingOptions);
      };

      const punchTcp = async (address: Address, tcpOptions: TcpPunchOptions = {}): Promise<TcpPunchResult> => {
        requireRunning('punchTcp');
        const startedAt = now();
        const udp = await connect(address, tcpOptions.signal ? { signal: tcpOptions.signal } : {});
        if (udp.mechanism === 'failed') throw new PunchError('TCP_PUNCH_UNAVAILABLE', `holepunch.punchTcp: no UDP path to ${addressKey(address)} to exchange candidates`, udp.attempts, { cause: udp.error });
        const port = await freeTcpPort(tcpHost());
        const ours = tcpCandidates(port);
        if (ours.length === 0) throw new PunchError('TCP_PUNCH_UNAVAILABLE', 'holepunch.punchTcp: no TCP candidate address of our own');
        const nonce = nonce32();
        counters.add('tcp-offers-out');
        const theirs = await new Promise<readonly Address[]>((resolve, reject) => {
          let tries = 0;
          let timer: TimerHandle | undefined;
          const cleanup = (): void => {
            tcpOffers.delete(nonce);
            if (timer !== undefined) clock.clearTimeout(timer);
            tcpOptions.signal?.removeEventListener('abort', onAbort);
          };
          const onAbort = (): void => {
            cleanup();
            reject(new PunchError('PUNCH_ABORTED', 'holepunch.punchTcp: aborted'));
          };
          const offer = (): void => {
            if (tries >= 4) {
              cleanup();
              reject(new PunchError('TCP_PUNCH_FAILED', `holepunch.punchTcp: ${addressKey(address)} did not answer the TCP offer`, tries));
              return;
            }
            tries++;
            sendTo(address, encodePunchMessage({ type: PUNCH_MESSAGE.tcpOffer, nonce, candidates: ours }));
            timer = clock.setTimeout(offer, 1_000);
          };
          tcpOffers.set(nonce, {
            resolve: (candidates) => {
              cleanup();
              resolve(candidates);
            },
            reject: (error) => {
              cleanup();
              reject(error);
            },
          });
          tcpOptions.signal?.addEventListener('abort', onAbort, { once: true });
          offer();
        });
        if (theirs.length === 0) throw new PunchError('TCP_PUNCH_DECLINED', `holepunch.punchTcp: ${addressKey(address)} declined the TCP punch`);
        counters.add('tcp-punches-started');
        let result;
        try {
          result = await punchSocket(theirs, port, tcpOptions.signal);
        } catch (error) {
          counters.add('tcp-punches-failed');
          throw error;
        }
        tcpSockets.add(result.socket);
        result.socket.once('close', () => tcpSockets.delete(result.socket));
        return { socket: result.socket, remote: result.remote, attempts: result.attempts, elapsedMs: now() - startedAt, udp };
      };

      const sweep = (): void => {
        const at = now();
        for (const path of [...paths.values()]) {
          if (path.state === 'punching' || path.state === 'relay-pending') continue;
          if (path.state === 'failed' ? at - path.failedAt > Math.max(failureCooldownMs, pathIdleMs) : at - path.lastActivity > pathIdleMs) {
            if (path.state === 'relayed' && path.relay) sendRelay(path.relay.via, { type: RELAY_MESSAGE.close, session: path.relay.session, reason: 'idle' });
            forget(path);
          }
        }
        if (relayService) {
          for (const session of [...served.values()]) {
            if (session.state === 'active' && at - session.lastActive > relayService.idleTimeoutMs) closeServed(session, 'idle', [session.opener, session.target]);
          }
        }
        for (const [n, entry] of observeNonces) if (at - entry.at > 10_000) observeNonces.delete(n);
        counters.set('paths', paths.size);
      };

      return {
        start: () => {
          running = true;
          stopSweep = clock.setInterval(sweep, Math.min(10_000, pathIdleMs / 2));
        },
        stop: () => {
          running = false;
          stopSweep?.();
          pings.rejectAll(new StateError('STOPPED', 'holepunch: the node stopped'));
          const stopped = new PunchError('PUNCH_STOPPED', 'holepunch: the node stopped');
          for (const path of [...paths.values()]) {
            if (path.state === 'relayed' && path.relay) sendRelay(path.relay.via, { type: RELAY_MESSAGE.close, session: path.relay.session, reason: 'stopping' });
            if (path.state === 'punching' || path.state === 'relay-pending') {
              path.queue.drain();
              endPunch(path);
            }
            if (path.waiters.size > 0) settle(path, outcomeOf(path, 'failed', stopped));
          }
          for (const session of [...served.values()]) closeServed(session, 'stopping', session.state === 'active' ? [session.opener, session.target] : []);
          for (const offer of [...tcpOffers.values()]) offer.reject(new PunchError('PUNCH_STOPPED', 'holepunch: the node stopped'));
          for (const socket of tcpSockets) if (socket.connecting) socket.destroy();
          tcpSockets.clear();
          paths.clear();
          aliases.clear();
          byNonce.clear();
          relayOpens.clear();
          tunnels.clear();
          heard.clear();
          observeAsked.clear();
          observeNonces.clear();
          tcpAnswered.clear();
          early.clear();
          classifier.clear();
          punching = 0;
          budget = undefined;
        },
        status: () => {
          const report = running ? classifier.classify(below.localAddress(), now()) : undefined;
          return {
            natType: report?.type ?? 'unknown',
            publicAddress: report?.publicAddress,
            observers: report?.observers ?? 0,
            paths: paths.size,
            punching,
            relaySessions: served.size,
            introducedAddresses: book.size,
          };
        },
        takes: {
          datagram: receive,
        },
        provides: {
          heardFrom: (address: Address, introducer: PeerRecord) => {
            if (!running) return;
            if (book.add(address, introducer.address)) counters.add('introductions');
            maybeObserve(introducer.address);
          },
          sendDatagram,
          maxDatagramSize,
          sendPing,
          connect,
          natType: () => (running ? ourNat() : 'unknown'),
          punchTcp,
          reportTcpObservation: (address: Address, observed: Address) => {
            if (!running) return;
            sendTo(address, encodePunchMessage({ type: PUNCH_MESSAGE.observed, nonce: 0, transport: 'tcp', observed }));
          },
        },
      };
    },
  });
}

function encodeProbeAck(nonce: number, flags: number, observed: Address): Uint8Array {
  return encodePunchMessage({ type: PUNCH_MESSAGE.probeAck, nonce, flags, observed });
}
