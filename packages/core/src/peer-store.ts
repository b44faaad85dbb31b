/**
 * Bounded data structures that discovery layers share: a peer store with a capacity and a
 * least-recently-seen eviction rule, and a duplicate-suppression cache for flooded
 * messages. Both keep memory bounded whatever the network sends.
 */
import { addressKey, type Address } from './address.js';
import type { NodeId } from './identity.js';
import type { PeerRecord } from './peer-record.js';
import type { Random } from './random.js';

export interface StoredPeer {
  peer: PeerRecord;
  lastSeen: number;
  failures: number;
}

export class PeerStore {
  private readonly byId = new Map<string, StoredPeer>();
  private readonly byAddress = new Map<string, StoredPeer>();
  private list: StoredPeer[] | undefined;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.byId.size;
  }

  has(id: NodeId): boolean {
    return this.byId.has(id.hex);
  }

  get(id: NodeId): StoredPeer | undefined {
    return this.byId.get(id.hex);
  }

  byAddressOf(address: Address): StoredPeer | undefined {
    return this.byAddress.get(addressKey(address));
  }

  peers(): PeerRecord[] {
    return [...this.byId.values()].map((s) => s.peer);
  }

  /**
   * Adds or refreshes `peer`. When full, the least recently seen peer is evicted and
   * returned (a peer that keeps answering is kept over one we have not heard from).
   */
  upsert(peer: PeerRecord, now: number): { added: boolean; evicted: PeerRecord | undefined } {
    const existing = this.byId.get(peer.id.hex);
    if (existing) {
      if (addressKey(existing.peer.address) !== addressKey(peer.address)) {
        this.byAddress.delete(addressKey(existing.peer.address));
        this.byAddress.set(addressKey(peer.address), existing);
      }
      existing.peer = peer;
      existing.lastSeen = now;
      existing.failures = 0;
      return { added: false, evicted: undefined };
    }
    let evicted: PeerRecord | undefined;
    if (this.byId.size >= this.capacity) {
      let oldest: StoredPeer | undefined;
      for (const stored of this.byId.values()) if (!oldest || stored.lastSeen < oldest.lastSeen) oldest = stored;
      if (oldest) {
        this.remove(oldest.peer.id);
        evicted = oldest.peer;
      }
    }
    const stored = { peer, lastSeen: now, failures: 0 };
    this.byId.set(peer.id.hex, stored);
    this.byAddress.set(addressKey(peer.address), stored);
    this.list = undefined;
    return { added: true, evicted };
  }

  touch(id: NodeId, now: number): void {
    const stored = this.byId.get(id.hex);
    if (stored) {
      stored.lastSeen = now;
      stored.failures = 0;
    }
  }

  remove(id: NodeId): PeerRecord | undefined {
    const stored = this.byId.get(id.hex);
    if (!stored) return undefined;
    this.byId.delete(id.hex);
    if (this.byAddress.get(addressKey(stored.peer.address)) === stored) this.byAddress.delete(addressKey(stored.peer.address));
    this.list = undefined;
    return stored.peer;
  }

  /** Up to `count` distinct random peers (all of them, shuffled, when `count` >= size), optionally excluding one id. */
  sample(count: number, random: Random, exclude?: NodeId): StoredPeer[] {
    this.list ??= [...this.byId.values()];
    const list = this.list;
    const n = list.length;
    if (n === 0 || count <= 0) return [];
    const want = Math.min(count + (exclude ? 1 : 0), n);
    let picked: StoredPeer[];
    if (want * 3 < n) {
      // Few out of many: rejection sampling, no copy.
      const indexes = new Set<number>();
      while (indexes.size < want) indexes.add(random.int(n));
      picked = [...indexes].map((i) => list[i]!);
    } else {
      // Partial Fisher-Yates on a copy: every peer can be picked, none twice.
      const copy = list.slice();
      for (let i = 0; i < want; i++) {
        const j = i + random.int(n - i);
        const tmp = copy[i]!;
        copy[i] = copy[j]!;
        copy[j] = tmp;
      }
      picked = copy.slice(0, want);
    }
    const out = exclude ? picked.filter((s) => !s.peer.id.equals(exclude)) : picked;
    return out.slice(0, count);
  }

  clear(): void {
    this.byId.clear();
    this.byAddress.clear();
    this.list = undefined;
  }
}

/** Remembers the last `capacity` message ids (first in, first out). */
export class DuplicateCache {
  private readonly seen = new Set<string>();
  private readonly order: string[] = [];
  private head = 0;

  constructor(readonly capacity: number) {}

  /** True the first time `id` is offered; false for a duplicate. */
  add(id: string): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.order.length < this.capacity) this.order.push(id);
    else {
      this.seen.delete(this.order[this.head]!);
      this.order[this.head] = id;
      this.head = (this.head + 1) % this.capacity;
    }
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  clear(): void {
    this.seen.clear();
    this.order.length = 0;
    this.head = 0;
  }
}

/**
 * Lets each key (e.g. a sender's address) through at most once per `intervalMs`,
 * remembering at most `capacity` keys; beyond that the one let through longest ago is
 * forgotten first, so memory stays bounded whatever the number of senders.
 */
export class OncePerInterval {
  /** When each key was last let through, oldest first (Map insertion order). */
  private readonly lastAt = new Map<string, number>();

  constructor(
    readonly intervalMs: number,
    readonly capacity: number,
  ) {}

  /** True when `key` was not let through in the last `intervalMs` (and counts this one). */
  allow(key: string, now: number): boolean {
    const last = this.lastAt.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.lastAt.delete(key);
    if (this.lastAt.size >= this.capacity) this.lastAt.delete(this.lastAt.keys().next().value as string);
    this.lastAt.set(key, now);
    return true;
  }

  get size(): number {
    return this.lastAt.size;
  }

  clear(): void {
    this.lastAt.clear();
  }
}
