/**
 * `@deccom/kademlia`: Kademlia discovery (Maymounkov and Mazieres, 2002) for DecCom
 * stacks: a k-bucket routing table over the XOR metric, iterative lookups with alpha
 * parallelism, joining through bootstrap addresses, bucket refresh, and topic discovery
 * ("which peers provide X").
 *
 * @example
 * ```ts
 * import { createNode, Identity, sha256, utf8Encode } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 * import { keepalive } from '@deccom/keepalive';
 * import { kademlia } from '@deccom/kademlia';
 *
 * const node = createNode({
 *   identity: Identity.generate(),
 *   layers: [udp({ host: '127.0.0.1' }), keepalive(), kademlia({ bootstrap: [{ host: '127.0.0.1', port: 7000 }] })],
 * });
 * await node.start();
 * const peer = await node.findPeer(otherId); // rejects with NotFoundError
 * node.sendDatagram(peer.address, utf8Encode('hi'));
 * const topic = sha256(utf8Encode('chat room 1'));
 * await node.announce(topic);
 * const providers = await node.lookupTopic(topic);
 * await node.stop();
 * ```
 *
 * @packageDocumentation
 */
import { defineLayer, InvalidArgumentError, type Address, type FindOptions, type NodeId, type PeerRecord } from '@deccom/core';
import { KademliaEngine, type KademliaConfig } from './engine.js';
import { KADEMLIA_PROTOCOL } from './wire.js';
import { DEFAULT_DIVERSITY, type DiversityRule, type PrefixRuleExempt } from './diversity.js';

export { KademliaError } from './errors.js';
export { prefixKey, DEFAULT_DIVERSITY, type DiversityRule, type PrefixRuleExempt } from './diversity.js';
export { RoutingTable, type RoutingTableOptions, type Contact, type Bucket, type AddResult } from './routing-table.js';
export { Lookup, CANDIDATE_PENDING, CANDIDATE_IN_FLIGHT, CANDIDATE_ANSWERED, CANDIDATE_FAILED, type LookupOptions, type Candidate, type CandidateState } from './lookup.js';
export { compareDistance, commonPrefixLength } from './distance.js';
export {
  KADEMLIA_PROTOCOL,
  MESSAGE,
  TOPIC_LENGTH,
  decodeMessage,
  encodeMessage,
  messageLength,
  encodeResponse,
  type KademliaMessage,
  type MessageType,
} from './wire.js';

export interface TopicLookupOptions extends FindOptions {
  /** Stop once this many providers are known. Default: every provider the lookup meets. */
  limit?: number;
}

declare module '@deccom/core' {
  interface Capabilities {
    /**
     * Announces that this node provides `topic` (32 bytes, e.g. SHA-256 of a name): the
     * announcement is stored on the k nodes closest to the topic and renewed at half its
     * TTL until `unannounce`. Resolves to the number of nodes that acknowledged it.
     */
    announce(topic: Uint8Array): Promise<number>;
    /** Stops renewing the announcement of `topic` (stored copies expire at their TTL). */
    unannounce(topic: Uint8Array): void;
    /** Peers that announced `topic`. */
    lookupTopic(topic: Uint8Array, options?: TopicLookupOptions): Promise<PeerRecord[]>;
  }
}

/** What a lookup was for: finding a peer, the k closest nodes (join, refresh, announce), or topic providers. */
export type LookupKind = 'node' | 'closest' | 'topic';

/** Statistics of one lookup, for benchmarks and `onLookup`. */
export interface LookupStats {
  kind: LookupKind;
  /** Target id or topic, hex. */
  target: string;
  /** For 'node' lookups: whether the peer was found. */
  found: boolean;
  /**
   * Hops to the answer: 1 when a peer from our own table named the target, one more for
   * each peer in between. For lookups that run to the end: the deepest hop that answered.
   */
  rounds: number;
  /** Queries sent. */
  messages: number;
  /** Queries answered. */
  answers: number;
  /** Queries unanswered by the deadline. */
  failures: number;
  /** Clock time from start to end. */
  durationMs: number;
}

export interface KademliaOptions {
  /** Addresses to join through (ask-for-id, then a lookup of our own id). Default none: this node starts a network. */
  bootstrap?: readonly Address[];
  /** Bucket size and lookup shortlist. Default 20 (the paper's k, section 2.2). */
  k?: number;
  /** Queries in flight per lookup. Default 3 (the paper's alpha, section 2.3). */
  alpha?: number;
  /** A query unanswered after this long counts as failed. Default 1,000 ms. */
  requestTimeoutMs?: number;
  /** Overall deadline of `findPeer` and `lookupTopic` when the caller gives none. Default 10,000 ms. */
  lookupTimeoutMs?: number;
  /** Refresh buckets with no lookup in this long (section 2.3). Default 3,600,000 ms (the paper's hour). */
  refreshIntervalMs?: number;
  /** While the table is empty, ask the bootstrap addresses again this often. Default 5,000 ms. */
  bootstrapRetryMs?: number;
  /**
   * Ask a few evicted contacts this often whether they are back (`ASK_ID`); one that
   * answers rejoins the table and starts a self-lookup. This re-merges a network after a
   * partition heals (evicted contacts were the only bridge) and finds peers that
   * restarted at their old address. 0 turns it off. Default 30,000 ms.
   */
  rediscoverIntervalMs?: number;
  /** Split any full bucket, not only the one holding our own id. Default false. */
  splitAlways?: boolean;
  /** Peers waiting per bucket for a slot (section 4.1). Default 5. */
  replacementCacheSize?: number;
  /** Unanswered queries in a row before a contact is evicted (its freshest replacement takes the slot). Default 2. */
  maxFailures?: number;
  /** When a bucket is full, ping its least-recently-seen contact only if silent this long. Default 60,000 ms. */
  evictionPingAfterMs?: number;
  /** Lookups running at once, at most (bounded memory); beyond it `findPeer` rejects with `LOOKUP_LIMIT`. Default 256. */
  maxConcurrentLookups?: number;
  /** Requests waiting for an answer, at most; beyond it a query fails at once. Default 4,096. */
  maxPendingRequests?: number;
  /** Topic announcements stored for others, in all. Default 10,000. */
  maxAnnouncements?: number;
  /** Providers stored and returned per topic. Default 50. */
  maxProvidersPerTopic?: number;
  /** Lifetime of an announcement (and the most this node stores one for). Default 600 s; renewed at half of it. */
  announceTtlSeconds?: number;
  /**
   * Largest Kademlia message sent (answers beyond it are split in parts), so datagrams
   * stay under a typical path MTU and are not fragmented; also capped by the layer
   * below's `maxDatagramSize()`. At least 256. Default 1,200 bytes.
   */
  maxMessageBytes?: number;
  /** Refuse unsigned records of Ed25519 identities. Default false (bad signatures are always refused). */
  requireSignedRecords?: boolean;
  /**
   * Address diversity: contacts of one bucket (and of its replacement cache) from one
   * network prefix, at most; a further peer from that prefix is refused (counted as
   * `dropped.prefix-limit`). Limits what one host or subnet with many identities can
   * take of a routing table (Sybil / eclipse attacks). 0 turns the rule off. Default 2.
   */
  maxPeersPerPrefix?: number;
  /** Prefix lengths the diversity rule groups addresses by. Default `{ ipv4: 24, ipv6: 48 }`. */
  prefixBits?: { ipv4?: number; ipv6?: number };
  /**
   * Addresses the diversity rule does not count: `'private'` (default: loopback, RFC 1918,
   * RFC 6598, link-local and unique-local addresses, where nodes legitimately share a
   * prefix), `'loopback'` (loopback only), or `'none'`.
   */
  prefixRuleExempt?: PrefixRuleExempt;
  /** Add peers named in answers to buckets that have room. Default true. */
  learnFromResponses?: boolean;
  /** After the self-lookup, refresh this many of the sparsest buckets farther than the closest neighbour. Default 2. */
  joinRefreshes?: number;
  /** Called after every lookup (for statistics). Default none. */
  onLookup?: (stats: LookupStats) => void;
  /** Instance name. Default `kademlia`. */
  name?: string;
}

function positiveInteger(value: number | undefined, fallback: number, name: string, max = Number.MAX_SAFE_INTEGER): number {
  const out = value ?? fallback;
  if (!Number.isInteger(out) || out < 1 || out > max) throw new InvalidArgumentError(`kademlia: ${name} must be an integer in 1..${max}, got ${String(value)}`);
  return out;
}

function positiveNumber(value: number | undefined, fallback: number, name: string): number {
  const out = value ?? fallback;
  if (typeof out !== 'number' || !(out > 0) || !Number.isFinite(out)) throw new InvalidArgumentError(`kademlia: ${name} must be a finite number > 0, got ${String(value)}`);
  return out;
}

function configureDiversity(options: KademliaOptions): DiversityRule {
  const exempt = options.prefixRuleExempt ?? DEFAULT_DIVERSITY.exempt;
  if (exempt !== 'private' && exempt !== 'loopback' && exempt !== 'none') {
    throw new InvalidArgumentError(`kademlia: prefixRuleExempt must be 'private', 'loopback' or 'none', got ${String(exempt)}`);
  }
  const bits = (value: number | undefined, fallback: number, min: number, max: number, name: string): number => {
    const out = value ?? fallback;
    if (!Number.isInteger(out) || out < min || out > max) throw new InvalidArgumentError(`kademlia: prefixBits.${name} must be an integer in ${min}..${max}, got ${String(value)}`);
    return out;
  };
  return {
    maxPerPrefix: options.maxPeersPerPrefix === 0 ? 0 : positiveInteger(options.maxPeersPerPrefix, DEFAULT_DIVERSITY.maxPerPrefix, 'maxPeersPerPrefix', 255),
    ipv4Bits: bits(options.prefixBits?.ipv4, DEFAULT_DIVERSITY.ipv4Bits, 8, 32, 'ipv4'),
    ipv6Bits: bits(options.prefixBits?.ipv6, DEFAULT_DIVERSITY.ipv6Bits, 16, 128, 'ipv6'),
    exempt,
  };
}

function configure(options: KademliaOptions): KademliaConfig {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('kademlia: options must be an object');
  const bootstrap = options.bootstrap ?? [];
  if (!Array.isArray(bootstrap)) throw new InvalidArgumentError('kademlia: bootstrap must be an array of addresses');
  for (const address of bootstrap) {
    if (address === null || typeof address !== 'object' || typeof address.host !== 'string' || !Number.isInteger(address.port) || address.port < 1 || address.port > 65_535) {
      throw new InvalidArgumentError(`kademlia: bootstrap address ${JSON.stringify(address)} needs a host and a port 1..65535`);
    }
  }
  if (options.maxMessageBytes !== undefined && options.maxMessageBytes < 256) {
    throw new InvalidArgumentError(`kademlia: maxMessageBytes must be at least 256, got ${options.maxMessageBytes}`);
  }
  const announceTtlSeconds = positiveInteger(options.announceTtlSeconds, 600, 'announceTtlSeconds', 0xffff_ffff);
  return {
    bootstrap: bootstrap.map((address) => ({ host: address.host, port: address.port })),
    k: positiveInteger(options.k, 20, 'k', 255),
    alpha: positiveInteger(options.alpha, 3, 'alpha', 64),
    requestTimeoutMs: positiveNumber(options.requestTimeoutMs, 1000, 'requestTimeoutMs'),
    lookupTimeoutMs: positiveNumber(options.lookupTimeoutMs, 10_000, 'lookupTimeoutMs'),
    refreshIntervalMs: positiveNumber(options.refreshIntervalMs, 3_600_000, 'refreshIntervalMs'),
    bootstrapRetryMs: positiveNumber(options.bootstrapRetryMs, 5000, 'bootstrapRetryMs'),
    rediscoverIntervalMs: options.rediscoverIntervalMs === 0 ? 0 : positiveNumber(options.rediscoverIntervalMs, 30_000, 'rediscoverIntervalMs'),
    splitAlways: options.splitAlways ?? false,
    replacementCacheSize: options.replacementCacheSize === 0 ? 0 : positiveInteger(options.replacementCacheSize, 5, 'replacementCacheSize', 1000),
    maxFailures: positiveInteger(options.maxFailures, 2, 'maxFailures', 1000),
    evictionPingAfterMs: options.evictionPingAfterMs === 0 ? 0 : positiveNumber(options.evictionPingAfterMs, 60_000, 'evictionPingAfterMs'),
    maxConcurrentLookups: positiveInteger(options.maxConcurrentLookups, 256, 'maxConcurrentLookups'),
    maxPendingRequests: positiveInteger(options.maxPendingRequests, 4096, 'maxPendingRequests'),
    maxAnnouncements: positiveInteger(options.maxAnnouncements, 10_000, 'maxAnnouncements'),
    maxProvidersPerTopic: positiveInteger(options.maxProvidersPerTopic, 50, 'maxProvidersPerTopic', 255),
    announceTtlSeconds,
    maxMessageBytes: positiveInteger(options.maxMessageBytes, 1200, 'maxMessageBytes'),
    requireSignedRecords: options.requireSignedRecords ?? false,
    diversity: configureDiversity(options),
    learnFromResponses: options.learnFromResponses ?? true,
    joinRefreshes: (options.joinRefreshes ?? 0) === 0 ? 0 : positiveInteger(options.joinRefreshes, 0, 'joinRefreshes', 256),
    onLookup: options.onLookup,
  };
}

/**
 * The Kademlia discovery layer. Needs a datagram transport below (`sendDatagram`,
 * `sendPing`, `localAddress`, `maxDatagramSize`); uses `heardFrom` (hole punching) and
 * `trackPeer` / `untrackPeer` (keep-alive) when a layer below provides them, and drops
 * the peers keep-alive reports unresponsive. Provides `findPeer`, `getPeer`, `getPeers`,
 * `addPeer`, `announce`, `unannounce`, `lookupTopic`, and passes application datagrams
 * through (`sendDatagram`, `maxDatagramSize`, the `datagram` hook). A security layer
 * above may take the `approve` hook: a new peer joins the table only once approved.
 */
export function kademlia(options: KademliaOptions = {}) {
  const config = configure(options);
  return defineLayer({
    type: 'kademlia',
    name: options.name,
    protocol: KADEMLIA_PROTOCOL,
    needs: ['sendDatagram', 'sendPing', 'maxDatagramSize', 'localAddress'],
    optional: ['heardFrom', 'trackPeer', 'untrackPeer'],
    takes: ['datagram'],
    takesOptional: ['peer-unresponsive'],
    provides: ['findPeer', 'getPeer', 'getPeers', 'addPeer', 'announce', 'unannounce', 'lookupTopic', 'sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive', approve: 'exclusive', 'peer-connect': 'event', 'peer-disconnect': 'event' },
    create: (ctx) => {
      const engine = new KademliaEngine(ctx, config);
      return {
        start: () => engine.start(),
        started: () => engine.started(),
        stop: () => engine.stop(),
        status: () => engine.status(),
        provides: {
          findPeer: (id: NodeId, findOptions?: FindOptions) => engine.findPeer(id, findOptions),
          getPeer: (id: NodeId) => engine.getPeer(id),
          getPeers: () => engine.getPeers(),
          addPeer: (peer: PeerRecord) => engine.addPeer(peer),
          announce: (topic: Uint8Array) => engine.announce(topic),
          unannounce: (topic: Uint8Array) => engine.unannounce(topic),
          lookupTopic: (topic: Uint8Array, lookupOptions?: TopicLookupOptions) => engine.lookupTopic(topic, lookupOptions),
          sendDatagram: (to: Address, data: Uint8Array) => engine.sendDatagram(to, data),
          maxDatagramSize: () => engine.maxDatagramSize(),
        },
        takes: {
          datagram: (bytes: Uint8Array, from: Address) => engine.receive(bytes, from),
          'peer-unresponsive': (id: NodeId) => engine.evictUnresponsive(id),
        },
      };
    },
  });
}
