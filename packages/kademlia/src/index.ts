/**
 * `@deccom/kademlia`: Kademlia discovery (Maymounkov and Mazieres, 2002) for DecCom
 * stacks: a k-bucket routing table over the XOR metric, iterative lookups with alpha
 * parallelism, bootstrap, bucket refresh, and topic discovery ("peers for X").
 *
 * @example
 * ```ts
 * import { createNode, Identity } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 * import { kademlia } from '@deccom/kademlia';
 *
 * const node = createNode({
 *   identity: Identity.generate(),
 *   layers: [udp({ host: '127.0.0.1' }), kademlia({ bootstrap: [{ host: '127.0.0.1', port: 7000 }] })],
 * });
 * await node.start();
 * const peer = await node.findPeer(otherId);
 * node.sendDatagram(peer.address, new TextEncoder().encode('hi'));
 * ```
 *
 * @packageDocumentation
 */
import {
  AbortError,
  decodeFrame,
  defineLayer,
  dropReason,
  encodeData,
  InvalidArgumentError,
  NodeId,
  NotFoundError,
  StateError,
  TimeoutError,
  DecComError,
  verifyPeerRecord,
  type Address,
  type FindOptions,
  type PeerRecord,
  type LayerContext,
} from '@deccom/core';
import { compareDistance } from './distance.js';
import { RoutingTable } from './routing-table.js';
import {
  decodeMessage,
  encodeAnnounce,
  encodeAnnounceAck,
  encodeFind,
  encodeIntroduce,
  encodeResponse,
  KADEMLIA_PROTOCOL,
  MESSAGE,
  TOPIC_LENGTH,
  type KademliaMessage,
} from './wire.js';

export { RoutingTable, type RoutingTableOptions, type Contact, type Bucket } from './routing-table.js';
export { compareDistance, commonPrefixLength } from './distance.js';
export { KADEMLIA_PROTOCOL, MESSAGE, decodeMessage, encodeResponse, encodeFind, encodeIntroduce, encodeAnnounce } from './wire.js';

export interface TopicLookupOptions extends FindOptions {
  /** Stop once this many providers are known. Default: collect from the whole lookup. */
  limit?: number;
}

declare module '@deccom/core' {
  interface Capabilities {
    /**
     * Announces that this node provides `topic` (32 bytes) on the k nodes closest to it,
     * re-announcing until `unannounce`. Resolves to the number of nodes that stored it.
     */
    announce(topic: Uint8Array): Promise<number>;
    /** Stops re-announcing `topic` (records expire at their TTL). */
    unannounce(topic: Uint8Array): void;
    /** Peers that announced `topic`. */
    lookupTopic(topic: Uint8Array, options?: TopicLookupOptions): Promise<PeerRecord[]>;
  }
}

/** Errors of this package: `LOOKUP_LIMIT` (too many concurrent lookups), `NO_PEERS` (empty table). */
export class KademliaError extends DecComError {}

/** Statistics of one lookup, for benchmarks and `onLookup`. */
export interface LookupStats {
  target: string;
  found: boolean;
  /** Hops on the path to the answer (1 = a node we knew answered). */
  rounds: number;
  /** Requests sent. */
  messages: number;
  durationMs: number;
}

export interface KademliaOptions {
  /** Addresses to join through. Default none (this node is the first). */
  bootstrap?: readonly Address[];
  /** Bucket size. Default 20 (the paper's k). */
  k?: number;
  /** Lookup parallelism. Default 3 (the paper's alpha). */
  alpha?: number;
  /** Per-request timeout. Default 1000 ms. */
  requestTimeoutMs?: number;
  /** Overall lookup deadline when the caller gives none. Default 10,000 ms. */
  lookupTimeoutMs?: number;
  /** Refresh buckets untouched for this long. Default 3,600,000 ms (one hour, the paper's value). */
  refreshIntervalMs?: number;
  /** While the table is empty, retry the bootstrap this often. Default 5,000 ms. */
  bootstrapRetryMs?: number;
  /** Split any full bucket, not only the one holding our id. Default false. */
  splitAlways?: boolean;
  /** Replacement cache per bucket. Default 5. */
  replacementCacheSize?: number;
  /** Concurrent lookups at most (bounded memory). Default 256. */
  maxConcurrentLookups?: number;
  /** Topic announcements kept, in all. Default 10,000. */
  maxAnnouncements?: number;
  /** Providers kept per topic. Default 50. */
  maxProvidersPerTopic?: number;
  /** Lifetime of an announcement. Default 600 s; re-announced at half of it. */
  announceTtlSeconds?: number;
  /** Reject unsigned records of Ed25519 identities. Default false (invalid signatures are always rejected). */
  requireSignedRecords?: boolean;
  /** When a bucket is full, ping its least-recently-seen contact only if it was silent this long. Default 60,000 ms. */
  evictionPingAfterMs?: number;
  /** Add peers named in lookup responses to buckets that have room. Default true. */
  learnFromResponses?: boolean;
  /** After joining, refresh up to this many sparse buckets farther than the closest neighbour (section 2.3). Default 2. */
  joinRefreshes?: number;
  /** Called after every lookup (for statistics). */
  onLookup?: (stats: LookupStats) => void;
  /** Instance name. Default `kademlia`. */
  name?: string;
}

interface PendingRequest {
  to: PeerRecord | undefined;
  address: Address;
  partsSeen: Set<number>;
  parts: number;
  onPart: (providers: PeerRecord[], nodes: PeerRecord[]) => void;
  onDone: (ok: boolean) => void;
  timer: ReturnType<LayerContext['clock']['setTimeout']>;
}

interface Candidate {
  peer: PeerRecord;
  round: number;
  state: 'new' | 'asked' | 'answered' | 'failed';
}

const randomIdIn = (prefix: Uint8Array, depth: number, random: () => Uint8Array): Uint8Array => {
  const id = random();
  for (let i = 0; i < depth; i++) {
    const mask = 1 << (7 - (i & 7));
    id[i >> 3] = (id[i >> 3]! & ~mask) | (prefix[i >> 3]! & mask);
  }
  return id;
};

function inRangeOf(bucket: { depth: number; prefix: Uint8Array }, id: Uint8Array): boolean {
  for (let i = 0; i < bucket.depth; i++) {
    const mask = 1 << (7 - (i & 7));
    if ((id[i >> 3]! & mask) !== (bucket.prefix[i >> 3]! & mask)) return false;
  }
  return true;
}

/** The Kademlia discovery layer. */
export function kademlia(options: KademliaOptions = {}) {
  const alpha = options.alpha ?? 3;
  const k = options.k ?? 20;
  if (!Number.isInteger(k) || k < 1 || k > 255) throw new InvalidArgumentError(`kademlia: k must be 1..255, got ${k}`);
  if (!Number.isInteger(alpha) || alpha < 1) throw new InvalidArgumentError(`kademlia: alpha must be a positive integer, got ${alpha}`);
  const requestTimeoutMs = options.requestTimeoutMs ?? 1000;
  const lookupTimeoutMs = options.lookupTimeoutMs ?? 10_000;
  const refreshIntervalMs = options.refreshIntervalMs ?? 3_600_000;
  const bootstrapRetryMs = options.bootstrapRetryMs ?? 5_000;
  const maxLookups = options.maxConcurrentLookups ?? 256;
  const maxAnnouncements = options.maxAnnouncements ?? 10_000;
  const maxProvidersPerTopic = options.maxProvidersPerTopic ?? 50;
  const ttlSeconds = options.announceTtlSeconds ?? 600;
  const bootstrap = [...(options.bootstrap ?? [])];
  const learnFromResponses = options.learnFromResponses ?? true;
  const joinRefreshes = options.joinRefreshes ?? 2;
  const evictionPingAfterMs = options.evictionPingAfterMs ?? 60_000;

  return defineLayer({
    type: 'kademlia',
    name: options.name,
    protocol: KADEMLIA_PROTOCOL,
    needs: ['sendDatagram', 'sendPing', 'maxDatagramSize'],
    optional: ['heardFrom', 'trackPeer', 'untrackPeer'],
    takes: ['datagram'],
    takesOptional: ['peer-unresponsive'],
    provides: ['findPeer', 'getPeer', 'getPeers', 'addPeer', 'announce', 'unannounce', 'lookupTopic', 'sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive', approve: 'exclusive', 'peer-connect': 'event', 'peer-disconnect': 'event' },
    create: (ctx) => {
      const self = ctx.identity.id;
      const table = new RoutingTable(self, { k, splitAlways: options.splitAlways, replacementCacheSize: options.replacementCacheSize });
      const counters = ctx.counters;
      const pending = new Map<number, PendingRequest>();
      const lookups = new Map<string, Promise<{ peer?: PeerRecord; providers: PeerRecord[] }>>();
      const approving = new Set<string>();
      const pingingOldest = new Set<string>();
      const topics = new Map<string, Map<string, { peer: PeerRecord; expiresAt: number }>>();
      let storedAnnouncements = 0;
      const announcing = new Map<string, () => void>();
      let nextRequestId = ctx.random.int(2 ** 32);
      let running = false;

      const send = (to: Address, bytes: Uint8Array): void => {
        counters.add('messages-out');
        ctx.below.sendDatagram(to, bytes);
      };

      const acceptable = (peer: PeerRecord): boolean => {
        if (peer.signature !== undefined) {
          if (!verifyPeerRecord(peer)) {
            counters.drop('bad-signature');
            return false;
          }
        } else if (options.requireSignedRecords && peer.identity.kind === 'ed25519') {
          counters.drop('unsigned-record');
          return false;
        }
        return !peer.id.equals(self);
      };

      const insert = (peer: PeerRecord): void => {
        const result = table.add(peer, ctx.clock.now());
        if (result.kind === 'added') {
          counters.set('peers', table.size);
          ctx.below.trackPeer?.(peer.id, peer.address);
          ctx.emit('peer-connect', peer);
        } else if (result.kind === 'full') {
          // Ping the least-recently-seen contact; evict it only if it does not answer (section 2.2).
          // A contact heard from recently is alive enough: the newcomer waits in the replacement cache.
          const oldest = result.oldest.peer;
          if (ctx.clock.now() - result.oldest.lastSeen < evictionPingAfterMs) return;
          if (pingingOldest.has(oldest.id.hex)) return;
          pingingOldest.add(oldest.id.hex);
          counters.add('eviction-pings');
          ctx.below.sendPing(oldest.address, { timeoutMs: requestTimeoutMs, signal: ctx.signal }).then(
            () => {
              pingingOldest.delete(oldest.id.hex);
              table.touch(oldest.id, ctx.clock.now());
            },
            () => {
              pingingOldest.delete(oldest.id.hex);
              if (running) evict(oldest.id, 'unresponsive');
            },
          );
        }
      };

      /** A peer we heard from directly: add it (after approval, once). */
      const seen = (peer: PeerRecord): void => {
        if (table.has(peer.id)) {
          table.add(peer, ctx.clock.now());
          return;
        }
        const approve = ctx.slots.approve;
        if (!approve) {
          insert(peer);
          return;
        }
        if (approving.has(peer.id.hex) || approving.size >= 1024) return;
        approving.add(peer.id.hex);
        Promise.resolve()
          .then(() => approve(peer))
          .then(
            (ok) => {
              approving.delete(peer.id.hex);
              if (!running) return;
              if (ok) insert(peer);
              else counters.add('rejected-peers');
            },
            () => {
              approving.delete(peer.id.hex);
              counters.add('rejected-peers');
            },
          );
      };

      const evict = (id: NodeId, reason: string): void => {
        const peer = table.get(id);
        if (!peer) return;
        const replacement = table.remove(id);
        counters.add(`evicted.${reason}`);
        counters.set('peers', table.size);
        ctx.below.untrackPeer?.(id);
        ctx.emit('peer-disconnect', peer);
        if (replacement) {
          ctx.below.trackPeer?.(replacement.id, replacement.address);
          ctx.emit('peer-connect', replacement);
        }
      };

      const request = (
        to: PeerRecord | undefined,
        address: Address,
        build: (requestId: number) => Uint8Array,
        onPart: (providers: PeerRecord[], nodes: PeerRecord[]) => void,
      ): Promise<boolean> =>
        new Promise((resolve) => {
          let requestId = (nextRequestId = (nextRequestId + 1) >>> 0);
          while (pending.has(requestId)) requestId = (nextRequestId = (nextRequestId + 1) >>> 0);
          const entry: PendingRequest = {
            to,
            address,
            partsSeen: new Set(),
            parts: 1,
            onPart,
            onDone: (ok) => {
              ctx.clock.clearTimeout(entry.timer);
              pending.delete(requestId);
              resolve(ok);
            },
            timer: ctx.clock.setTimeout(() => {
              // Some parts but not all: still an answer.
              entry.onDone(entry.partsSeen.size > 0);
            }, requestTimeoutMs),
          };
          pending.set(requestId, entry);
          send(address, build(requestId));
        });

      /**
       * The iterative lookup of section 2.3: query the alpha closest unqueried candidates,
       * keep the k closest seen, stop when a round brings nothing closer and the k closest
       * have all answered or failed.
       */
      const iterativeLookup = async (
        target: Uint8Array,
        mode: 'node' | 'topic',
        signal: AbortSignal | undefined,
        stopWhen?: (found: PeerRecord | undefined, providers: Map<string, PeerRecord>) => boolean,
      ): Promise<{ peer?: PeerRecord; providers: PeerRecord[]; stats: LookupStats }> => {
        const startedAt = ctx.clock.now();
        const targetHex = new NodeId(target).hex;
        const candidates = new Map<string, Candidate>();
        let shortlist: Candidate[] = [];
        const providers = new Map<string, PeerRecord>();
        let found: PeerRecord | undefined;
        let foundRound = 0;
        let messages = 0;
        let inFlight = 0;
        const consider = (peer: PeerRecord, round: number): void => {
          if (peer.id.equals(self) || candidates.has(peer.id.hex)) return;
          const candidate: Candidate = { peer, round, state: 'new' };
          candidates.set(peer.id.hex, candidate);
          shortlist.push(candidate);
        };
        for (const peer of table.closest(target, k)) consider(peer, 1);
        if (mode === 'node') {
          const known = table.get(new NodeId(target));
          if (known) {
            found = known;
            foundRound = 0;
          }
        }
        const done = (): boolean => (stopWhen ? stopWhen(found, providers) : false);
        return new Promise((resolve, reject) => {
          let finished = false;
          const finish = (): void => {
            if (finished) return;
            finished = true;
            signal?.removeEventListener('abort', onAbort);
            const stats: LookupStats = {
              target: targetHex,
              found: found !== undefined,
              rounds: found ? foundRound : Math.max(0, ...[...candidates.values()].filter((c) => c.state === 'answered').map((c) => c.round)),
              messages,
              durationMs: ctx.clock.now() - startedAt,
            };
            counters.add('lookups');
            options.onLookup?.(stats);
            resolve({ ...(found ? { peer: found } : {}), providers: [...providers.values()], stats });
          };
          const onAbort = (): void => {
            if (finished) return;
            finished = true;
            reject(new AbortError('kademlia lookup aborted', { cause: signal?.reason }));
          };
          if (signal?.aborted) return onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
          const step = (): void => {
            if (finished) return;
            if (!running) {
              finished = true;
              reject(new StateError('STOPPED', 'kademlia: the node stopped'));
              return;
            }
            if (done()) return finish();
            shortlist.sort((a, b) => compareDistance(a.peer.id.bytes, b.peer.id.bytes, target));
            // Forget failed candidates and keep the k closest live ones as the shortlist.
            shortlist = shortlist.filter((c) => c.state !== 'failed').slice(0, k);
            const next = shortlist.filter((c) => c.state === 'new');
            while (inFlight < alpha && next.length > 0) {
              const candidate = next.shift()!;
              candidate.state = 'asked';
              inFlight++;
              messages++;
              const local = ctx.localPeer();
              void request(
                candidate.peer,
                candidate.peer.address,
                (id) => encodeFind(mode === 'node' ? MESSAGE.findNode : MESSAGE.findTopic, id, target, local),
                (newProviders, nodes) => {
                  for (const p of newProviders) if (acceptable(p)) providers.set(p.id.hex, p);
                  for (const node of nodes) {
                    if (!acceptable(node)) continue;
                    if (!candidates.has(node.id.hex)) ctx.below.heardFrom?.(node.address, candidate.peer);
                    // A peer learned from a response fills a bucket with room (never evicts
                    // anyone); a stale one is evicted when a request to it times out.
                    if (learnFromResponses && table.hasRoomFor(node.id)) seen(node);
                    if (mode === 'node' && node.id.hex === targetHex && !found) {
                      found = node;
                      foundRound = candidate.round;
                    }
                    consider(node, candidate.round + 1);
                  }
                },
              ).then((ok) => {
                inFlight--;
                candidate.state = ok ? 'answered' : 'failed';
                if (!ok && running) evict(candidate.peer.id, 'timeout');
                step();
              });
            }
            if (inFlight === 0) finish();
          };
          step();
        });
      };

      const findPeer = async (id: NodeId, findOptions: FindOptions = {}): Promise<PeerRecord> => {
        if (!running) throw new StateError('NOT_STARTED', 'kademlia.findPeer: the layer is not started');
        if (!(id instanceof NodeId)) throw new InvalidArgumentError('kademlia.findPeer: id must be a NodeId');
        const known = table.get(id);
        if (known) return known;
        let shared = lookups.get(id.hex);
        if (!shared) {
          if (lookups.size >= maxLookups) throw new KademliaError('LOOKUP_LIMIT', `kademlia: ${maxLookups} lookups already running`);
          shared = iterativeLookup(id.bytes, 'node', ctx.signal, (found) => found !== undefined).finally(() => lookups.delete(id.hex));
          lookups.set(id.hex, shared);
        }
        const deadline = findOptions.timeoutMs ?? lookupTimeoutMs;
        const result = await raceWith(shared, findOptions.signal, deadline, ctx);
        if (!result.peer) {
          counters.add('lookups-not-found');
          throw new NotFoundError(`kademlia: peer ${id.short}… not found`);
        }
        return result.peer;
      };

      const storeAnnouncement = (topic: Uint8Array, peer: PeerRecord, ttl: number): void => {
        const key = new NodeId(topic).hex;
        let providers = topics.get(key);
        if (!providers) {
          if (topics.size >= maxAnnouncements) {
            counters.drop('announcements-full');
            return;
          }
          providers = new Map();
          topics.set(key, providers);
        }
        const fresh = !providers.has(peer.id.hex);
        if (fresh && (providers.size >= maxProvidersPerTopic || storedAnnouncements >= maxAnnouncements)) {
          counters.drop('announcements-full');
          return;
        }
        providers.set(peer.id.hex, { peer, expiresAt: ctx.clock.now() + Math.min(ttl, ttlSeconds) * 1000 });
        if (fresh) storedAnnouncements++;
        counters.set('announcements', storedAnnouncements);
      };

      const providersOf = (topic: Uint8Array): PeerRecord[] => {
        const providers = topics.get(new NodeId(topic).hex);
        if (!providers) return [];
        const now = ctx.clock.now();
        return [...providers.values()].filter((p) => p.expiresAt > now).map((p) => p.peer);
      };

      const expireAnnouncements = (): void => {
        const now = ctx.clock.now();
        for (const [key, providers] of topics) {
          for (const [id, entry] of providers) {
            if (entry.expiresAt <= now) {
              providers.delete(id);
              storedAnnouncements--;
            }
          }
          if (providers.size === 0) topics.delete(key);
        }
        counters.set('announcements', storedAnnouncements);
      };

      const announceOnce = async (topic: Uint8Array): Promise<number> => {
        await iterativeLookup(topic, 'node', ctx.signal);
        const closest = table.closest(topic, k);
        const local = ctx.localPeer();
        const results = await Promise.all(
          closest.map((peer) => request(peer, peer.address, (id) => encodeAnnounce(id, topic, ttlSeconds, local), () => undefined)),
        );
        // The announcer stores its own topic too: lookups that reach it find it.
        storeAnnouncement(topic, local, ttlSeconds);
        return results.filter(Boolean).length;
      };

      /**
       * Joining (section 2.3): look up our own id, then refresh the buckets farther away
       * than our closest neighbour, sparsest first, so far regions of the id space are known.
       */
      const join = async (): Promise<void> => {
        await iterativeLookup(self.bytes, 'node', ctx.signal);
        const sparse = table
          .staleBuckets(Infinity)
          .filter((bucket) => bucket.contacts.length < k / 2 && !inRangeOf(bucket, self.bytes))
          .sort((a, b) => a.contacts.length - b.contacts.length)
          .slice(0, joinRefreshes);
        await Promise.all(
          sparse.map((bucket) => {
            bucket.lastTouched = ctx.clock.now();
            counters.add('refreshes');
            return iterativeLookup(randomIdIn(bucket.prefix, bucket.depth, () => ctx.random.bytes(32)), 'node', ctx.signal);
          }),
        );
      };

      const bootstrapNow = (): void => {
        const local = ctx.localPeer();
        for (const address of bootstrap) send(address, encodeIntroduce(MESSAGE.askId, local));
      };

      const onMessage = (message: KademliaMessage, from: Address): void => {
        switch (message.type) {
          case MESSAGE.askId:
          case MESSAGE.introduce: {
            const peer = { ...message.peer, address: from };
            const observed = message.peer.address.host === from.host && message.peer.address.port === from.port;
            if (!acceptable(message.peer)) return;
            seen(observed ? message.peer : peer);
            if (message.type === MESSAGE.askId) send(from, encodeIntroduce(MESSAGE.introduce, ctx.localPeer()));
            break;
          }
          case MESSAGE.findNode:
          case MESSAGE.findTopic: {
            if (acceptable(message.peer)) {
              const sameAddress = message.peer.address.host === from.host && message.peer.address.port === from.port;
              seen(sameAddress ? message.peer : { ...message.peer, address: from, signature: undefined });
            }
            const nodes = table.closest(message.target, k, message.peer.id);
            const providers = message.type === MESSAGE.findTopic ? providersOf(message.target) : [];
            counters.add(message.type === MESSAGE.findNode ? 'find-node-in' : 'find-topic-in');
            for (const part of encodeResponse(message.requestId, providers, nodes, ctx.below.maxDatagramSize())) send(from, part);
            break;
          }
          case MESSAGE.response: {
            const entry = pending.get(message.requestId);
            if (!entry || entry.address.port !== from.port || entry.address.host !== from.host) {
              counters.drop('unsolicited-response');
              return;
            }
            if (entry.partsSeen.has(message.part)) {
              counters.drop('duplicate-part');
              return;
            }
            entry.partsSeen.add(message.part);
            entry.parts = message.parts;
            if (entry.to) table.touch(entry.to.id, ctx.clock.now());
            if (entry.to && !table.has(entry.to.id)) seen(entry.to);
            entry.onPart(message.providers, message.nodes);
            if (entry.partsSeen.size >= entry.parts) entry.onDone(true);
            break;
          }
          case MESSAGE.announce: {
            if (!acceptable(message.peer)) return;
            const sameAddress = message.peer.address.host === from.host && message.peer.address.port === from.port;
            storeAnnouncement(message.topic, sameAddress ? message.peer : { ...message.peer, address: from, signature: undefined }, message.ttlSeconds);
            send(from, encodeAnnounceAck(message.requestId));
            break;
          }
          case MESSAGE.announceAck: {
            const entry = pending.get(message.requestId);
            if (!entry || entry.address.port !== from.port || entry.address.host !== from.host) {
              counters.drop('unsolicited-response');
              return;
            }
            entry.onDone(true);
            break;
          }
        }
      };

      let stopRefresh: (() => void) | undefined;
      let stopBootstrap: (() => void) | undefined;
      let stopExpiry: (() => void) | undefined;

      return {
        start: () => {
          running = true;
          bootstrapNow();
          if (bootstrap.length > 0) {
            // Self-lookup once the bootstrap nodes had time to answer (section 2.3, joining).
            ctx.clock.setTimeout(() => {
              if (running) void join().catch(() => undefined);
            }, Math.min(requestTimeoutMs, 500));
          }
          stopBootstrap = ctx.clock.setInterval(() => {
            if (table.size === 0 && bootstrap.length > 0) {
              counters.add('rebootstraps');
              bootstrapNow();
              ctx.clock.setTimeout(() => {
                if (running) void join().catch(() => undefined);
              }, Math.min(requestTimeoutMs, 500));
            }
          }, bootstrapRetryMs);
          stopRefresh = ctx.clock.setInterval(() => {
            const stale = table.staleBuckets(ctx.clock.now() - refreshIntervalMs);
            for (const bucket of stale.slice(0, 16)) {
              counters.add('refreshes');
              bucket.lastTouched = ctx.clock.now();
              const id = randomIdIn(bucket.prefix, bucket.depth, () => ctx.random.bytes(32));
              void iterativeLookup(id, 'node', ctx.signal).catch(() => undefined);
            }
          }, Math.max(1000, Math.floor(refreshIntervalMs / 4)));
          stopExpiry = ctx.clock.setInterval(expireAnnouncements, 30_000);
        },
        stop: () => {
          running = false;
          stopRefresh?.();
          stopBootstrap?.();
          stopExpiry?.();
          for (const stop of announcing.values()) stop();
          announcing.clear();
          for (const entry of [...pending.values()]) entry.onDone(false);
          pending.clear();
        },
        status: () => ({ peers: table.size, buckets: table.buckets, pendingRequests: pending.size, lookups: lookups.size, topics: topics.size }),
        provides: {
          findPeer,
          getPeer: (id: NodeId) => table.get(id),
          getPeers: () => table.all(),
          addPeer: (peer: PeerRecord) => {
            if (acceptable(peer)) seen(peer);
          },
          announce: async (topic: Uint8Array) => {
            if (!running) throw new StateError('NOT_STARTED', 'kademlia.announce: the layer is not started');
            if (!(topic instanceof Uint8Array) || topic.length !== TOPIC_LENGTH) throw new InvalidArgumentError('kademlia.announce: a topic is 32 bytes (e.g. SHA-256 of a name)');
            const key = new NodeId(topic).hex;
            if (!announcing.has(key)) {
              const copy = topic.slice();
              announcing.set(
                key,
                ctx.clock.setInterval(() => void announceOnce(copy).catch(() => undefined), (ttlSeconds * 1000) / 2),
              );
            }
            return announceOnce(topic);
          },
          unannounce: (topic: Uint8Array) => {
            const key = new NodeId(topic).hex;
            announcing.get(key)?.();
            announcing.delete(key);
          },
          lookupTopic: async (topic: Uint8Array, lookupOptions: TopicLookupOptions = {}) => {
            if (!running) throw new StateError('NOT_STARTED', 'kademlia.lookupTopic: the layer is not started');
            if (!(topic instanceof Uint8Array) || topic.length !== TOPIC_LENGTH) throw new InvalidArgumentError('kademlia.lookupTopic: a topic is 32 bytes');
            const limit = lookupOptions.limit;
            const own = providersOf(topic);
            const lookup = iterativeLookup(topic, 'topic', ctx.signal, limit ? (_f, providers) => providers.size >= limit : undefined);
            const result = await raceWith(lookup, lookupOptions.signal, lookupOptions.timeoutMs ?? lookupTimeoutMs, ctx);
            const all = new Map(result.providers.map((p) => [p.id.hex, p]));
            for (const p of own) all.set(p.id.hex, p);
            return [...all.values()];
          },
          sendDatagram: (to: Address, data: Uint8Array) => ctx.below.sendDatagram(to, encodeData(data)),
          maxDatagramSize: () => ctx.below.maxDatagramSize() - 1,
        },
        takes: {
          datagram: (bytes: Uint8Array, from: Address) => {
            let message: KademliaMessage;
            try {
              const frame = decodeFrame(bytes, KADEMLIA_PROTOCOL);
              if (frame.kind === 'data') {
                const slot = ctx.slots.datagram;
                if (slot) slot(frame.payload, from);
                else counters.drop('no-receiver');
                return;
              }
              message = decodeMessage(frame.type, frame.body);
            } catch (error) {
              counters.drop(dropReason(error));
              return;
            }
            counters.add('messages-in');
            if (!running) return;
            onMessage(message, from);
          },
          'peer-unresponsive': (id: NodeId) => evict(id, 'keepalive'),
        },
      };
    },
  });
}

/** Waits for `promise`, or rejects on the caller's signal or deadline (without cancelling a shared lookup). */
function raceWith<T>(promise: Promise<T>, signal: AbortSignal | undefined, timeoutMs: number, ctx: LayerContext): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError('kademlia lookup aborted', { cause: signal.reason }));
      return;
    }
    const onAbort = (): void => {
      ctx.clock.clearTimeout(timer);
      reject(new AbortError('kademlia lookup aborted', { cause: signal?.reason }));
    };
    const timer = ctx.clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      reject(new TimeoutError(`kademlia lookup: no result within ${timeoutMs} ms`));
    }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        ctx.clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        ctx.clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
