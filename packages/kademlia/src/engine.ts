/**
 * The running Kademlia layer of one node: requests and their deadlines, shared lookups,
 * joining, refresh, topics and the receive path. `index.ts` declares the layer; this file
 * is its implementation and is not part of the public surface.
 */
import {
  addressKey,
  AbortError,
  checkTimeoutMs,
  decodeFrame,
  dropReason,
  encodeData,
  FRAME_DATA,
  InvalidArgumentError,
  NodeId,
  NotFoundError,
  StateError,
  throwIfAborted,
  TimeoutError,
  verifyPeerRecord,
  type Address,
  type FindOptions,
  type LayerContext,
  type PeerRecord,
  type TimerHandle,
} from '@deccom/core';
import { Lookup, type Candidate } from './lookup.js';
import { randomIdIn, RoutingTable } from './routing-table.js';
import type { DiversityRule } from './diversity.js';
import { TopicStore } from './topics.js';
import { decodeMessage, encodeMessage, encodeResponse, KADEMLIA_PROTOCOL, MESSAGE, TOPIC_LENGTH, type KademliaMessage } from './wire.js';
import { KademliaError } from './errors.js';
import type { LookupKind, LookupStats, TopicLookupOptions } from './index.js';

export type KademliaContext = LayerContext<
  'sendDatagram' | 'sendPing' | 'maxDatagramSize' | 'localAddress',
  'heardFrom' | 'trackPeer' | 'untrackPeer',
  'datagram' | 'approve' | 'peer-connect' | 'peer-disconnect'
>;

/** Options with every default applied. */
export interface KademliaConfig {
  readonly bootstrap: readonly Address[];
  readonly k: number;
  readonly alpha: number;
  readonly requestTimeoutMs: number;
  readonly lookupTimeoutMs: number;
  readonly refreshIntervalMs: number;
  readonly bootstrapRetryMs: number;
  readonly rediscoverIntervalMs: number;
  readonly splitAlways: boolean;
  readonly replacementCacheSize: number;
  readonly maxFailures: number;
  readonly evictionPingAfterMs: number;
  readonly maxConcurrentLookups: number;
  readonly maxPendingRequests: number;
  readonly maxAnnouncements: number;
  readonly maxProvidersPerTopic: number;
  readonly announceTtlSeconds: number;
  readonly maxMessageBytes: number;
  readonly requireSignedRecords: boolean;
  readonly diversity: DiversityRule;
  readonly learnFromResponses: boolean;
  readonly joinRefreshes: number;
  readonly onLookup: ((stats: LookupStats) => void) | undefined;
}

/** Approvals waiting for the approve hook, at most. */
const MAX_APPROVALS_IN_PROGRESS = 1024;
/** A rejected peer is not asked about again for this long. */
const REJECTION_MEMORY_MS = 60_000;
const MAX_REJECTIONS_REMEMBERED = 1024;
/** Stored announcements are swept this often. */
const EXPIRY_SWEEP_MS = 30_000;
/** Stale buckets refreshed per refresh check, at most. */
const REFRESHES_PER_CHECK = 8;
/**
 * Evicted contacts remembered for rediscovery, at most, and for how long: a partition
 * longer than an hour, or a peer gone that long, is left to the bootstrap path.
 */
const MAX_DEPARTED = 64;
const DEPARTED_MEMORY_MS = 3_600_000;
/** Evicted contacts asked per rediscovery tick (round robin). */
const REDISCOVERY_PROBES = 3;

// Signature checks cost tens of microseconds and the same records arrive again and
// again (core caches decoded records, so equal bytes give the same object): remember
// each record's verdict for as long as the record lives.
const signatureVerdicts = new WeakMap<PeerRecord, boolean>();

interface Request {
  readonly host: string;
  readonly port: number;
  readonly peer: PeerRecord | undefined;
  parts: number;
  received: number;
  /** Part numbers seen (only for responses of more than one part). */
  seen: Set<number> | undefined;
  /** Cancels the request's deadline. */
  cancel: (() => void) | undefined;
  readonly onPart: ((providers: readonly PeerRecord[], nodes: readonly PeerRecord[]) => void) | undefined;
  readonly onDone: (ok: boolean) => void;
}

interface SearchResult {
  readonly found: PeerRecord | undefined;
  readonly providers: readonly PeerRecord[];
  /** The k closest peers that answered. */
  readonly closest: readonly PeerRecord[];
  readonly stats: LookupStats;
}

interface Search {
  readonly key: string;
  readonly kind: LookupKind;
  readonly target: Uint8Array;
  readonly targetHex: string;
  readonly lookup: Lookup;
  readonly startedAt: number;
  readonly providerLimit: number;
  readonly providers: Map<string, PeerRecord> | undefined;
  found: PeerRecord | undefined;
  foundRound: number;
  waiters: number;
  finished: boolean;
  resolve(result: SearchResult): void;
  reject(error: unknown): void;
  readonly promise: Promise<SearchResult>;
}

const sameHostPort = (a: Address, b: Address): boolean => a.port === b.port && a.host === b.host;

export class KademliaEngine {
  private readonly self: NodeId;
  private readonly table: RoutingTable;
  private readonly pending = new Map<number, Request>();
  private readonly searches = new Map<string, Search>();
  private readonly topics: TopicStore;
  private readonly announcing = new Map<string, () => void>();
  /** Topic -> the nodes that acknowledged our latest announcement of it (told when we withdraw). */
  private readonly announcedAt = new Map<string, readonly PeerRecord[]>();
  private readonly approving = new Set<string>();
  private readonly rejected = new Map<string, number>();
  private readonly pingingOldest = new Set<string>();
  /**
   * Evicted contacts by id hex, in probing order (see `rediscover`): only the address and
   * the eviction time, not the record, so a churning network does not keep records alive.
   */
  private readonly departed = new Map<string, { address: Address; at: number }>();
  private running = false;
  /** Stopped after running (calls now get STOPPED rather than NOT_STARTED). */
  private stopped = false;
  private joinWanted = false;
  private joinReady = false;
  private joinTimer: TimerHandle | undefined;
  private readonly awaitingIntroductions = new Set<string>();
  /** `findPeer({ fresh: true })` calls waiting for a peer's own introduction, by address. */
  private readonly confirmations = new Map<string, Set<(peer: PeerRecord | undefined) => void>>();
  /** Self-lookups repeated because the table stayed smaller than k. */
  private smallTableRejoins = 0;
  private joining = false;
  private stopTimers: (() => void)[] = [];
  // Hot-path counters live in fields and are read when a snapshot is taken.
  private messagesIn = 0;
  private messagesOut = 0;
  private bytesOut = 0;
  private requests = 0;
  private timeouts = 0;

  constructor(
    private readonly ctx: KademliaContext,
    private readonly config: KademliaConfig,
  ) {
    this.self = ctx.identity.id;
    this.table = new RoutingTable(this.self, {
      k: config.k,
      splitAlways: config.splitAlways,
      replacementCacheSize: config.replacementCacheSize,
      diversity: config.diversity,
      now: ctx.clock.now(),
    });
    this.topics = new TopicStore(config.maxAnnouncements, config.maxProvidersPerTopic);
    ctx.counters.attach(() => ({
      'messages-in': this.messagesIn,
      'messages-out': this.messagesOut,
      'bytes-out': this.bytesOut,
      requests: this.requests,
      'request-timeouts': this.timeouts,
    }));
  }

  // ---------------------------------------------------------------------------
  // Lifecycle

  start(): void {
    this.running = true;
    this.stopped = false;
    const { clock } = this.ctx;
    const { refreshIntervalMs, bootstrapRetryMs } = this.config;
    this.stopTimers = [
      clock.setInterval(() => this.checkTableSize(), bootstrapRetryMs),
      clock.setInterval(() => this.refresh(), Math.max(1000, Math.min(refreshIntervalMs / 4, 600_000))),
      clock.setInterval(() => this.expire(), EXPIRY_SWEEP_MS),
    ];
    if (this.config.rediscoverIntervalMs > 0) this.stopTimers.push(clock.setInterval(() => this.rediscover(), this.config.rediscoverIntervalMs));
  }

  /**
   * The whole stack is up: join now, so that the record we introduce ourselves with is
   * complete (a TCP port bound by a layer above us is in it; joining from `start` would
   * hand the bootstrap nodes a record without it, and they would pass that on).
   */
  started(): void {
    if (this.running) this.beginJoin();
  }

  stop(): void {
    for (const stop of this.stopTimers) stop();
    this.stopTimers = [];
    // Withdraw our announcements (still sendable: the layers below stop after this one).
    for (const key of [...this.announcing.keys()]) this.withdraw(key);
    this.announcing.clear();
    this.running = false;
    this.stopped = true;
    if (this.joinTimer !== undefined) this.ctx.clock.clearTimeout(this.joinTimer);
    this.joinTimer = undefined;
    this.joinWanted = false;
    this.awaitingIntroductions.clear();
    const stopped = new StateError('STOPPED', 'kademlia: the node stopped');
    for (const search of [...this.searches.values()]) this.finish(search, stopped);
    for (const [id, request] of [...this.pending]) {
      this.pending.delete(id);
      request.cancel?.();
      request.onDone(false);
    }
    this.approving.clear();
    this.pingingOldest.clear();
    for (const waiters of [...this.confirmations.values()]) for (const waiter of [...waiters]) waiter(undefined);
    this.confirmations.clear();
  }

  status(): Record<string, unknown> {
    return {
      peers: this.table.size,
      buckets: this.table.buckets,
      pendingRequests: this.pending.size,
      lookups: this.searches.size,
      topics: this.topics.topicCount,
      announcements: this.topics.size,
    };
  }

  // ---------------------------------------------------------------------------
  // Sending and requests

  private send(to: Address, bytes: Uint8Array): void {
    this.messagesOut++;
    this.bytesOut += bytes.byteLength;
    try {
      this.ctx.below.sendDatagram(to, bytes);
    } catch (error) {
      // An unusable address in someone's record: count it, never throw out of a handler.
      this.ctx.counters.drop('send-error');
      this.ctx.logger.debug('send failed', { error });
    }
  }

  /**
   * Sends a request built around a fresh request id and calls `onDone` exactly once:
   * true when every part of the answer arrived (or some did by the deadline), false on
   * silence, refusal (too many pending) or stop.
   */
  private request(
    peer: PeerRecord | undefined,
    address: Address,
    build: (requestId: number) => Uint8Array,
    onPart: Request['onPart'],
    onDone: (ok: boolean) => void,
  ): void {
    if (this.pending.size >= this.config.maxPendingRequests) {
      this.ctx.counters.drop('pending-full');
      queueMicrotask(() => onDone(false));
      return;
    }
    // Random ids: an answer forged from a peer's address must also guess 32 bits.
    let id = this.ctx.random.int(2 ** 32);
    while (this.pending.has(id)) id = this.ctx.random.int(2 ** 32);
    const request: Request = { host: address.host, port: address.port, peer, parts: 1, received: 0, seen: undefined, cancel: undefined, onPart, onDone };
    // A deadline: answers that arrived while this process was blocked are read before the
    // request (and so the contact) is judged unanswered.
    request.cancel = this.ctx.clock.setDeadline(() => {
      if (this.pending.get(id) !== request) return;
      this.pending.delete(id);
      const ok = request.received > 0;
      if (!ok) {
        this.timeouts++;
        if (peer !== undefined) this.noteFailure(peer);
      }
      onDone(ok);
    }, this.config.requestTimeoutMs);
    this.pending.set(id, request);
    this.requests++;
    this.send(address, build(id));
  }

  private requestAsync(peer: PeerRecord, build: (requestId: number) => Uint8Array): Promise<boolean> {
    return new Promise((resolve) => this.request(peer, peer.address, build, undefined, resolve));
  }

  /** A response or acknowledgement arrived: match it to its request by id and address. */
  private answer(requestId: number, from: Address, part: number, parts: number, providers: readonly PeerRecord[], nodes: readonly PeerRecord[]): void {
    const request = this.pending.get(requestId);
    if (request === undefined || request.port !== from.port || request.host !== from.host) {
      this.ctx.counters.drop('unsolicited-response');
      return;
    }
    if (request.received === 0) request.parts = parts;
    else if (parts !== request.parts) {
      this.ctx.counters.drop('inconsistent-parts');
      return;
    }
    if (parts > 1) {
      request.seen ??= new Set();
      if (request.seen.has(part)) {
        this.ctx.counters.drop('duplicate-part');
        return;
      }
      request.seen.add(part);
    }
    request.received++;
    if (request.peer !== undefined) this.heardDirectly(request.peer);
    request.onPart?.(providers, nodes);
    if (request.received >= request.parts && this.pending.get(requestId) === request) {
      this.pending.delete(requestId);
      request.cancel?.();
      request.onDone(true);
    }
  }

  // ---------------------------------------------------------------------------
  // Peers: approval, table, eviction

  /** Whether a record may be used: a valid signature when signed; signed when required; not ourselves; reachable. */
  private acceptable(peer: PeerRecord): boolean {
    if (peer.signature !== undefined) {
      let ok = signatureVerdicts.get(peer);
      if (ok === undefined) {
        ok = verifyPeerRecord(peer);
        signatureVerdicts.set(peer, ok);
      }
      if (!ok) {
        this.ctx.counters.drop('bad-signature');
        return false;
      }
    } else if (this.config.requireSignedRecords && peer.identity.kind === 'ed25519') {
      this.ctx.counters.drop('unsigned-record');
      return false;
    }
    if (peer.address.port === 0) {
      this.ctx.counters.drop('unreachable-record');
      return false;
    }
    return !peer.id.equals(this.self);
  }

  /**
   * The record as seen from `from`: a peer behind a NAT is reachable where its datagrams
   * come from. The signature covered the record's own address, so a rewritten record is
   * unsigned; when signed records are required, the signed record is kept as it is.
   */
  private observed(peer: PeerRecord, from: Address): PeerRecord {
    if (sameHostPort(peer.address, from) || this.config.requireSignedRecords) return peer;
    return { identity: peer.identity, id: peer.id, address: { host: from.host, port: from.port }, tcpPort: peer.tcpPort };
  }

  /** A peer we heard from directly (it sent us a message or answered one). */
  private heardDirectly(peer: PeerRecord): void {
    const known = this.table.get(peer.id);
    if (known !== undefined) {
      // Never trade a verified signed record for an unsigned one naming another address:
      // anyone can send a datagram carrying someone else's record.
      const moved = !sameHostPort(known.address, peer.address);
      const downgrade = moved && known.signature !== undefined && peer.signature === undefined;
      this.table.add(downgrade ? known : peer, this.ctx.clock.now());
      // Keep-alive must ping the peer where it is now.
      if (moved && !downgrade) this.ctx.below.trackPeer?.(peer.id, peer.address);
      return;
    }
    this.admit(peer);
  }

  /** A new peer: asks the approval hook (once at a time per peer), then inserts it. */
  private admit(peer: PeerRecord): void {
    const approve = this.ctx.slots.approve;
    if (approve === undefined) {
      this.insert(peer);
      return;
    }
    const hex = peer.id.hex;
    const rejectedUntil = this.rejected.get(hex);
    if (rejectedUntil !== undefined) {
      if (rejectedUntil > this.ctx.clock.now()) return;
      this.rejected.delete(hex);
    }
    if (this.approving.has(hex) || this.approving.size >= MAX_APPROVALS_IN_PROGRESS) return;
    this.approving.add(hex);
    const settle = (ok: boolean): void => {
      this.approving.delete(hex);
      if (!this.running) return;
      if (ok) this.insert(peer);
      else {
        this.ctx.counters.add('rejected-peers');
        if (this.rejected.size >= MAX_REJECTIONS_REMEMBERED) this.rejected.clear();
        this.rejected.set(hex, this.ctx.clock.now() + REJECTION_MEMORY_MS);
      }
    };
    Promise.resolve()
      .then(() => approve(peer))
      .then(
        (ok) => settle(ok === true),
        () => settle(false),
      );
  }

  private insert(peer: PeerRecord): void {
    const now = this.ctx.clock.now();
    const result = this.table.add(peer, now);
    if (result.kind === 'added') {
      this.connected(peer);
      if (this.joinWanted) this.tryJoin();
      return;
    }
    if (result.kind === 'refused') this.ctx.counters.drop('prefix-limit');
    if (result.kind !== 'full') return;
    // Section 2.2: a full bucket pings its least-recently-seen contact and evicts it only
    // if it does not answer; the newcomer waits in the replacement cache meanwhile. A
    // contact heard from recently is alive enough to keep without a ping.
    const oldest = result.oldest;
    if (now - oldest.lastSeen < this.config.evictionPingAfterMs) return;
    const hex = oldest.peer.id.hex;
    if (this.pingingOldest.has(hex)) return;
    this.pingingOldest.add(hex);
    this.ctx.counters.add('eviction-pings');
    const target = oldest.peer;
    this.ctx.below.sendPing(target.address, { timeoutMs: this.config.requestTimeoutMs, signal: this.ctx.signal }).then(
      () => {
        this.pingingOldest.delete(hex);
        if (this.running) this.table.touch(target.id, this.ctx.clock.now());
      },
      () => {
        this.pingingOldest.delete(hex);
        if (this.running) this.evict(target.id, 'unresponsive');
      },
    );
  }

  private connected(peer: PeerRecord): void {
    if (this.departed.delete(peer.id.hex)) {
      // An evicted contact is back: the network may have been split and healed, so look
      // ourselves up again through it to relearn the other side.
      this.ctx.counters.add('rediscovered');
      if (!this.joining && this.running) this.join().catch((error: unknown) => this.ctx.logger.debug('rejoin ended early', { error }));
    }
    this.ctx.counters.set('peers', this.table.size);
    this.ctx.below.trackPeer?.(peer.id, peer.address);
    this.ctx.emit('peer-connect', peer);
  }

  private evict(id: NodeId, reason: string): void {
    const peer = this.table.get(id);
    if (peer === undefined) return;
    const replacement = this.table.remove(id);
    this.ctx.counters.add(`evicted.${reason}`);
    if (this.config.rediscoverIntervalMs > 0) {
      this.departed.delete(id.hex);
      this.departed.set(id.hex, { address: { host: peer.address.host, port: peer.address.port }, at: this.ctx.clock.now() });
      if (this.departed.size > MAX_DEPARTED) this.departed.delete(this.departed.keys().next().value!);
    }
    this.ctx.counters.set('peers', this.table.size);
    this.ctx.below.untrackPeer?.(id);
    this.ctx.emit('peer-disconnect', peer);
    if (replacement !== undefined) this.connected(replacement);
  }

  /** Keep-alive reports the peer stopped answering pings. */
  evictUnresponsive(id: NodeId): void {
    this.evict(id, 'keepalive');
  }

  private noteFailure(peer: PeerRecord): void {
    if (this.running && this.table.failed(peer.id) >= this.config.maxFailures) this.evict(peer.id, 'timeout');
  }

  // ---------------------------------------------------------------------------
  // Lookups

  /** Starts (or joins) a search. `kind` 'node' stops once the target is found; 'topic' once `providerLimit` providers are known. */
  private search(target: Uint8Array, kind: LookupKind, providerLimit = Number.POSITIVE_INFINITY, share = true): Search {
    const targetHex = new NodeId(target).hex;
    const key = `${kind}:${targetHex}`;
    if (share) {
      const existing = this.searches.get(key);
      if (existing !== undefined) return existing;
    }
    if (this.searches.size >= this.config.maxConcurrentLookups) {
      throw new KademliaError('LOOKUP_LIMIT', `kademlia: ${this.config.maxConcurrentLookups} lookups are already running`);
    }
    const now = this.ctx.clock.now();
    const lookup = new Lookup(target, { k: this.config.k, alpha: this.config.alpha, self: this.self });
    lookup.add(this.table.closest(target, this.config.k));
    this.table.markLookup(target, now);
    let resolve!: (result: SearchResult) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<SearchResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const search: Search = {
      key: share ? key : `${key}:${this.ctx.random.int(2 ** 32)}`,
      kind,
      target,
      targetHex,
      lookup,
      startedAt: now,
      providerLimit,
      providers: kind === 'topic' ? new Map() : undefined,
      found: undefined,
      foundRound: 0,
      waiters: 0,
      finished: false,
      resolve,
      reject,
      promise,
    };
    // A shared search always has a handler: callers may all have given up.
    promise.catch(() => undefined);
    this.searches.set(search.key, search);
    this.pump(search);
    return search;
  }

  private pump(search: Search): void {
    if (search.finished) return;
    if (!this.running) {
      this.finish(search, new StateError('STOPPED', 'kademlia: the node stopped'));
      return;
    }
    if (search.found !== undefined || (search.providers !== undefined && search.providers.size >= search.providerLimit)) {
      this.finish(search);
      return;
    }
    const lookup = search.lookup;
    const type = search.kind === 'topic' ? MESSAGE.findTopic : MESSAGE.findNode;
    for (const candidate of lookup.next()) {
      const local = this.ctx.localPeer();
      this.request(
        candidate.peer,
        candidate.peer.address,
        (requestId) => encodeMessage({ type, requestId, target: search.target, peer: local }),
        (providers, nodes) => this.onLookupAnswer(search, candidate, providers, nodes),
        (ok) => {
          if (ok) lookup.answered(candidate);
          else lookup.failed(candidate);
          this.pump(search);
        },
      );
    }
    if (lookup.done) this.finish(search);
  }

  private onLookupAnswer(search: Search, candidate: Candidate, providers: readonly PeerRecord[], nodes: readonly PeerRecord[]): void {
    const k = this.config.k;
    const accepted: PeerRecord[] = [];
    const learn = this.config.learnFromResponses;
    for (let i = 0; i < nodes.length && i < k; i++) {
      const node = nodes[i]!;
      if (!this.acceptable(node)) continue;
      // A peer learned from an answer fills a bucket with room; it never evicts anyone.
      if (learn && this.table.hasRoomFor(node.id)) this.admit(node);
      if (search.finished) continue;
      if (!search.lookup.has(node.id)) this.ctx.below.heardFrom?.(node.address, candidate.peer);
      if (search.kind === 'node' && search.found === undefined && node.id.hex === search.targetHex) {
        search.found = node;
        search.foundRound = candidate.round;
      }
      accepted.push(node);
    }
    if (search.finished) return;
    if (search.providers !== undefined) {
      for (let i = 0; i < providers.length && i < this.config.maxProvidersPerTopic; i++) {
        const provider = providers[i]!;
        if (this.acceptable(provider)) search.providers.set(provider.id.hex, provider);
      }
    }
    search.lookup.partial(candidate, accepted);
    if (search.found !== undefined || (search.providers !== undefined && search.providers.size >= search.providerLimit)) this.finish(search);
  }

  private finish(search: Search, error?: unknown): void {
    if (search.finished) return;
    search.finished = true;
    this.searches.delete(search.key);
    if (error !== undefined) {
      search.reject(error);
      return;
    }
    const lookup = search.lookup;
    const stats: LookupStats = {
      kind: search.kind,
      target: search.targetHex,
      found: search.found !== undefined,
      rounds: search.found !== undefined ? search.foundRound : lookup.deepestRound,
      messages: lookup.queries,
      answers: lookup.answers,
      failures: lookup.failures,
      durationMs: this.ctx.clock.now() - search.startedAt,
    };
    this.ctx.counters.add('lookups');
    this.config.onLookup?.(stats);
    search.resolve({
      found: search.found,
      providers: search.providers === undefined ? [] : [...search.providers.values()],
      closest: lookup.closest(),
      stats,
    });
  }

  /**
   * Waits for a search on behalf of one caller, with the caller's signal and deadline.
   * When every caller of a search gave up, the search itself stops.
   */
  private wait(search: Search, signal: AbortSignal | undefined, timeoutMs: number): Promise<SearchResult> {
    search.waiters++;
    return new Promise<SearchResult>((resolve, reject) => {
      let settled = false;
      const leave = (error: unknown): void => {
        if (settled) return;
        settled = true;
        this.ctx.clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (--search.waiters === 0 && !search.finished) {
          this.ctx.counters.add('lookups-abandoned');
          this.finish(search, error);
        }
        reject(error);
      };
      const onAbort = (): void => leave(new AbortError('kademlia lookup aborted', { cause: signal?.reason }));
      const timer = this.ctx.clock.setTimeout(() => leave(new TimeoutError(`kademlia lookup: no result within ${timeoutMs} ms`)), timeoutMs);
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      search.promise.then(
        (result) => {
          if (settled) return;
          settled = true;
          this.ctx.clock.clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          search.waiters--;
          resolve(result);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          this.ctx.clock.clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          search.waiters--;
          reject(error);
        },
      );
    });
  }

  private requireRunning(what: string): void {
    if (this.running) return;
    if (this.stopped) throw new StateError('STOPPED', `kademlia.${what}: the node stopped`);
    throw new StateError('NOT_STARTED', `kademlia.${what}: the layer is not started`);
  }

  async findPeer(id: NodeId, options: FindOptions = {}): Promise<PeerRecord> {
    this.requireRunning('findPeer');
    if (!(id instanceof NodeId)) throw new InvalidArgumentError('kademlia.findPeer: id must be a NodeId');
    checkTimeoutMs(options.timeoutMs, 'kademlia.findPeer');
    throwIfAborted(options.signal);
    if (id.equals(this.self)) return this.ctx.localPeer();
    const timeoutMs = options.timeoutMs ?? this.config.lookupTimeoutMs;
    const deadline = this.ctx.clock.now() + timeoutMs;
    const remaining = (): number => {
      const left = deadline - this.ctx.clock.now();
      if (left <= 0) throw new TimeoutError(`kademlia.findPeer: no confirmed record within ${timeoutMs} ms`);
      return left;
    };
    const known = this.table.get(id);
    if (known !== undefined) {
      if (!options.fresh) return known;
      // The peer itself, asked at the address we know, is the freshest source.
      const confirmed = await this.confirm(known, options.signal, Math.min(this.config.requestTimeoutMs, timeoutMs));
      if (confirmed !== undefined) return confirmed;
      this.settledCheck(options.signal);
    }
    const search = this.search(id.bytes, 'node');
    const result = await this.wait(search, options.signal, remaining());
    const found = result.found;
    if (found === undefined) {
      this.ctx.counters.add('lookups-not-found');
      throw new NotFoundError(`kademlia: peer ${id.short}… not found (${result.stats.messages} queries)`);
    }
    if (!options.fresh || known === undefined) return found;
    // Fresh, and the peer did not answer at the address we knew: the network's record is
    // only worth more if it names another address, and only once the peer answers there.
    if (sameHostPort(found.address, known.address)) {
      this.ctx.counters.add('lookups-not-found');
      throw new NotFoundError(`kademlia: peer ${id.short}… does not answer at ${known.address.host}:${known.address.port}, the only address the network knows`);
    }
    const moved = await this.confirm(found, options.signal, Math.min(this.config.requestTimeoutMs, remaining()));
    if (moved !== undefined) return moved;
    this.settledCheck(options.signal);
    remaining();
    this.ctx.counters.add('lookups-not-found');
    throw new NotFoundError(`kademlia: peer ${id.short}… answers neither at the address known here nor at the one the network gave`);
  }

  /** After a confirmation came back empty: STOPPED if the node stopped, AbortError if aborted. */
  private settledCheck(signal: AbortSignal | undefined): void {
    if (!this.running) throw new StateError('STOPPED', 'kademlia: the node stopped');
    throwIfAborted(signal);
  }

  /**
   * Asks the peer of `known` at its address to introduce itself (ASK_ID) and resolves with
   * its record as it now stands (the introduction updates the table like any direct
   * contact), or undefined after `waitMs` without an acceptable introduction from that
   * address naming that id.
   */
  private confirm(known: PeerRecord, signal: AbortSignal | undefined, waitMs: number): Promise<PeerRecord | undefined> {
    const key = addressKey(known.address);
    this.ctx.counters.add('fresh-confirmations');
    return new Promise((resolve) => {
      let waiters = this.confirmations.get(key);
      if (waiters === undefined) this.confirmations.set(key, (waiters = new Set()));
      const set = waiters;
      const done = (peer: PeerRecord | undefined): void => {
        if (peer !== undefined && !peer.id.equals(known.id)) return; // another node answers there
        set.delete(done);
        if (set.size === 0 && this.confirmations.get(key) === set) this.confirmations.delete(key);
        cancel();
        signal?.removeEventListener('abort', onAbort);
        if (peer === undefined) return resolve(undefined);
        // The table's record once it names where the peer answered (it may hold more, e.g. a signature).
        const entry = this.table.get(known.id);
        resolve(entry !== undefined && sameHostPort(entry.address, peer.address) ? entry : peer);
      };
      const onAbort = (): void => done(undefined);
      const cancel = this.ctx.clock.setDeadline(() => done(undefined), waitMs);
      set.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.send(known.address, encodeMessage({ type: MESSAGE.askId, peer: this.ctx.localPeer() }));
    });
  }

  // ---------------------------------------------------------------------------
  // Joining and refresh

  /**
   * Asks every bootstrap address to introduce itself. The self-lookup starts once every
   * one of them answered (so it starts from all of them), or after `requestTimeoutMs`.
   */
  private beginJoin(): void {
    const bootstrap = this.config.bootstrap;
    if (bootstrap.length === 0 || !this.running) return;
    this.joinWanted = true;
    this.joinReady = false;
    this.awaitingIntroductions.clear();
    for (const address of bootstrap) this.awaitingIntroductions.add(`${address.host}|${address.port}`);
    const ask = encodeMessage({ type: MESSAGE.askId, peer: this.ctx.localPeer() });
    for (const address of bootstrap) this.send(address, ask);
    if (this.joinTimer !== undefined) this.ctx.clock.clearTimeout(this.joinTimer);
    this.joinTimer = this.ctx.clock.setTimeout(() => {
      this.joinTimer = undefined;
      this.readyToJoin();
    }, this.config.requestTimeoutMs);
  }

  private introduced(from: Address): void {
    if (!this.joinWanted || this.joinReady) return;
    this.awaitingIntroductions.delete(`${from.host}|${from.port}`);
    if (this.awaitingIntroductions.size === 0) this.readyToJoin();
  }

  private readyToJoin(): void {
    if (this.joinTimer !== undefined) this.ctx.clock.clearTimeout(this.joinTimer);
    this.joinTimer = undefined;
    this.joinReady = true;
    this.tryJoin();
  }

  /** Runs the join once it is wanted, the bootstrap nodes had their chance, and the table holds someone. */
  private tryJoin(): void {
    if (!this.joinWanted || !this.joinReady || !this.running || this.table.size === 0) return;
    this.joinWanted = false;
    this.ctx.counters.add('joins');
    this.join().catch((error: unknown) => this.ctx.logger.debug('join ended early', { error }));
  }

  /**
   * While the table is empty, bootstrap again. While it holds fewer than k peers, look up
   * our own id again, a few times (a node that joined through nodes that were
   * themselves joining may have learned little the first time).
   */
  private checkTableSize(): void {
    if (this.table.size >= this.config.k) {
      this.smallTableRejoins = 0;
      return;
    }
    if (this.table.size === 0) {
      if (this.config.bootstrap.length > 0) {
        this.ctx.counters.add('rebootstraps');
        this.beginJoin();
      }
      return;
    }
    if (this.joining || this.joinWanted || this.smallTableRejoins >= 3) return;
    this.smallTableRejoins++;
    this.ctx.counters.add('small-table-rejoins');
    this.join().catch((error: unknown) => this.ctx.logger.debug('rejoin ended early', { error }));
  }

  /**
   * Joining (section 2.3): a lookup of our own id fills the buckets near us and makes
   * our neighbours learn of us; then lookups of random ids in the sparsest buckets
   * farther than our closest neighbour fill the far side of the table.
   */
  private async join(): Promise<void> {
    this.joining = true;
    try {
      await this.joinLookups();
    } finally {
      this.joining = false;
    }
  }

  private async joinLookups(): Promise<void> {
    await this.search(this.self.bytes, 'closest').promise;
    const k = this.config.k;
    const sparse = this.table
      .allBuckets()
      .filter((bucket) => bucket.contacts.length < k / 2 && !this.table.inOwnBucket(bucket))
      .sort((a, b) => a.contacts.length - b.contacts.length)
      .slice(0, this.config.joinRefreshes);
    await Promise.all(
      sparse.map((bucket) => {
        this.ctx.counters.add('refreshes');
        return this.search(randomIdIn(bucket, this.ctx.random.bytes(32)), 'closest', undefined, false).promise;
      }),
    );
  }

  /**
   * Kademlia by itself never heals a split: once a partition made every node evict the
   * contacts across it, lookups only ever ask the own side, and the bootstrap path runs
   * only for an empty table. So a few evicted contacts are asked, round robin, whether
   * they are back; one that answers is admitted as usual and triggers a self-lookup
   * (see `connected`). Contacts evicted more than an hour ago are forgotten.
   */
  private rediscover(): void {
    const now = this.ctx.clock.now();
    for (const [hex, entry] of this.departed) if (now - entry.at > DEPARTED_MEMORY_MS) this.departed.delete(hex);
    if (this.departed.size === 0) return;
    const ask = encodeMessage({ type: MESSAGE.askId, peer: this.ctx.localPeer() });
    const probes: [string, { address: Address; at: number }][] = [];
    for (const entry of this.departed) {
      probes.push(entry);
      if (probes.length >= REDISCOVERY_PROBES) break;
    }
    for (const [hex, entry] of probes) {
      // To the back of the queue, keeping its eviction time (so it still ages out).
      this.departed.delete(hex);
      if (this.table.get(NodeId.fromHex(hex)) !== undefined) continue;
      this.departed.set(hex, entry);
      this.ctx.counters.add('rediscovery-probes');
      this.send(entry.address, ask);
    }
  }

  /** Refreshes buckets with no lookup in `refreshIntervalMs` (section 2.3). */
  private refresh(): void {
    if (this.table.size === 0) return;
    const stale = this.table.staleBuckets(this.ctx.clock.now() - this.config.refreshIntervalMs);
    for (const bucket of stale.slice(0, REFRESHES_PER_CHECK)) {
      if (this.searches.size >= this.config.maxConcurrentLookups) break;
      this.ctx.counters.add('refreshes');
      this.search(randomIdIn(bucket, this.ctx.random.bytes(32)), 'closest', undefined, false).promise.catch(() => undefined);
    }
  }

  // ---------------------------------------------------------------------------
  // Topics

  private expire(): void {
    this.topics.expire(this.ctx.clock.now());
    this.ctx.counters.set('announcements', this.topics.size);
  }

  private storeAnnouncement(topic: Uint8Array, peer: PeerRecord, ttlSeconds: number): void {
    const ttl = Math.min(ttlSeconds, this.config.announceTtlSeconds);
    const result = this.topics.store(new NodeId(topic).hex, peer, this.ctx.clock.now() + ttl * 1000);
    if (result === 'full') this.ctx.counters.drop('announcements-full');
    this.ctx.counters.set('announcements', this.topics.size);
  }

  private checkTopic(topic: Uint8Array, what: string): void {
    if (!(topic instanceof Uint8Array) || topic.length !== TOPIC_LENGTH) {
      throw new InvalidArgumentError(`kademlia.${what}: a topic is ${TOPIC_LENGTH} bytes (e.g. SHA-256 of a name)`);
    }
  }

  async announce(topic: Uint8Array): Promise<number> {
    this.requireRunning('announce');
    this.checkTopic(topic, 'announce');
    const copy = topic.slice();
    const key = new NodeId(copy).hex;
    if (!this.announcing.has(key)) {
      const every = (this.config.announceTtlSeconds * 1000) / 2;
      this.announcing.set(
        key,
        this.ctx.clock.setInterval(() => {
          this.announceOnce(copy).catch((error: unknown) => this.ctx.logger.debug('re-announce failed', { error }));
        }, every),
      );
    }
    return this.announceOnce(copy);
  }

  unannounce(topic: Uint8Array): void {
    this.checkTopic(topic, 'unannounce');
    this.withdraw(new NodeId(topic).hex);
  }

  /**
   * Stops renewing the announcement of topic `key`, drops our own copy and tells the
   * nodes that stored it, so lookups stop returning us at once rather than at its TTL.
   */
  private withdraw(key: string): void {
    this.announcing.get(key)?.();
    this.announcing.delete(key);
    const local = this.ctx.localPeer();
    this.topics.remove(key, local.id.hex, local.address.host, local.address.port);
    const storedAt = this.announcedAt.get(key);
    this.announcedAt.delete(key);
    if (storedAt === undefined || !this.running) return;
    const message = encodeMessage({ type: MESSAGE.withdraw, topic: NodeId.fromHex(key).bytes, peer: local });
    for (const peer of storedAt) this.send(peer.address, message);
    this.ctx.counters.add('withdrawals');
  }

  /** Stores the announcement on the k closest nodes to the topic (and here); resolves to how many acknowledged. */
  private async announceOnce(topic: Uint8Array): Promise<number> {
    const result = await this.search(topic, 'closest').promise;
    const local = this.ctx.localPeer();
    this.storeAnnouncement(topic, local, this.config.announceTtlSeconds);
    const ttlSeconds = this.config.announceTtlSeconds;
    const acks = await Promise.all(
      result.closest.map((peer) => this.requestAsync(peer, (requestId) => encodeMessage({ type: MESSAGE.announce, requestId, topic, ttlSeconds, peer: local }))),
    );
    const storedAt = result.closest.filter((_, i) => acks[i]);
    // Only while still announced: an unannounce during this round has already withdrawn.
    const key = new NodeId(topic).hex;
    if (this.announcing.has(key)) this.announcedAt.set(key, storedAt);
    this.ctx.counters.add('announces');
    return storedAt.length;
  }

  async lookupTopic(topic: Uint8Array, options: TopicLookupOptions = {}): Promise<PeerRecord[]> {
    this.requireRunning('lookupTopic');
    this.checkTopic(topic, 'lookupTopic');
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (!(limit >= 1)) throw new InvalidArgumentError(`kademlia.lookupTopic: limit must be >= 1, got ${limit}`);
    checkTimeoutMs(options.timeoutMs, 'kademlia.lookupTopic');
    throwIfAborted(options.signal);
    const key = new NodeId(topic).hex;
    const all = new Map<string, PeerRecord>();
    for (const peer of this.topics.providers(key, this.ctx.clock.now())) all.set(peer.id.hex, peer);
    if (all.size < limit) {
      const search = this.search(topic.slice(), 'topic', limit - all.size, false);
      const result = await this.wait(search, options.signal, options.timeoutMs ?? this.config.lookupTimeoutMs);
      for (const peer of result.providers) all.set(peer.id.hex, peer);
    }
    const out = [...all.values()];
    return out.length > limit ? out.slice(0, limit) : out;
  }

  // ---------------------------------------------------------------------------
  // Receive path

  receive(bytes: Uint8Array, from: Address): void {
    if (bytes.byteLength > 0 && bytes[0] === FRAME_DATA) {
      const slot = this.ctx.slots.datagram;
      if (slot !== undefined) slot(bytes.subarray(1), from);
      else this.ctx.counters.drop('no-receiver');
      return;
    }
    let message: KademliaMessage;
    try {
      const frame = decodeFrame(bytes, KADEMLIA_PROTOCOL);
      if (frame.kind !== 'control') return;
      message = decodeMessage(frame.type, frame.body);
    } catch (error) {
      this.ctx.counters.drop(dropReason(error));
      return;
    }
    this.messagesIn++;
    if (!this.running) {
      this.ctx.counters.drop('stopped');
      return;
    }
    try {
      this.onMessage(message, from);
    } catch (error) {
      // A bug or a hostile input we did not foresee: count it; the socket callback never throws.
      this.ctx.counters.drop('error');
      this.ctx.logger.warn('message handling failed', { error });
    }
  }

  private onMessage(message: KademliaMessage, from: Address): void {
    switch (message.type) {
      case MESSAGE.askId:
      case MESSAGE.introduce: {
        const peer = this.acceptable(message.peer) ? this.observed(message.peer, from) : undefined;
        if (peer !== undefined) this.heardDirectly(peer);
        if (message.type === MESSAGE.askId) this.send(from, encodeMessage({ type: MESSAGE.introduce, peer: this.ctx.localPeer() }));
        else {
          this.introduced(from);
          const waiters = peer === undefined ? undefined : this.confirmations.get(addressKey(from));
          if (waiters !== undefined) for (const waiter of [...waiters]) waiter(peer);
        }
        break;
      }
      case MESSAGE.findNode:
      case MESSAGE.findTopic: {
        const requester = message.peer;
        if (this.acceptable(requester)) this.heardDirectly(this.observed(requester, from));
        const nodes = this.table.closest(message.target, this.config.k, requester.id, false);
        const providers = message.type === MESSAGE.findTopic ? this.topics.providers(new NodeId(message.target).hex, this.ctx.clock.now(), this.config.maxProvidersPerTopic) : [];
        this.ctx.counters.add(message.type === MESSAGE.findNode ? 'find-node-in' : 'find-topic-in');
        const size = Math.min(this.config.maxMessageBytes, this.ctx.below.maxDatagramSize());
        for (const part of encodeResponse(message.requestId, providers, nodes, size)) this.send(from, part);
        break;
      }
      case MESSAGE.response:
        this.answer(message.requestId, from, message.part, message.parts, message.providers, message.nodes);
        break;
      case MESSAGE.announce: {
        if (!this.acceptable(message.peer)) return;
        const peer = this.observed(message.peer, from);
        this.heardDirectly(peer);
        this.storeAnnouncement(message.topic, peer, message.ttlSeconds);
        this.send(from, encodeMessage({ type: MESSAGE.announceAck, requestId: message.requestId }));
        break;
      }
      case MESSAGE.announceAck:
        this.answer(message.requestId, from, 0, 1, [], []);
        break;
      case MESSAGE.withdraw: {
        if (!this.acceptable(message.peer)) return;
        // Counted only from the address the announcement was stored with.
        if (this.topics.remove(new NodeId(message.topic).hex, message.peer.id.hex, from.host, from.port)) {
          this.ctx.counters.add('withdrawals-in');
          this.ctx.counters.set('announcements', this.topics.size);
        } else this.ctx.counters.drop('withdraw-unknown');
        break;
      }
    }
  }

  // ---------------------------------------------------------------------------
  // Capabilities

  getPeer(id: NodeId): PeerRecord | undefined {
    return this.table.get(id);
  }

  getPeers(): PeerRecord[] {
    return this.table.all();
  }

  addPeer(peer: PeerRecord): void {
    if (peer === null || typeof peer !== 'object' || !(peer.id instanceof NodeId)) throw new InvalidArgumentError('kademlia.addPeer: expected a peer record');
    if (this.acceptable(peer)) this.heardDirectly(peer);
  }

  sendDatagram(to: Address, data: Uint8Array): void {
    this.ctx.below.sendDatagram(to, encodeData(data));
  }

  maxDatagramSize(): number {
    return this.ctx.below.maxDatagramSize() - 1;
  }

  /** The routing table (for tests and the simulation helpers). */
  get routingTable(): RoutingTable {
    return this.table;
  }
}
