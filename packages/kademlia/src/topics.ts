/**
 * Topic announcements a node stores for others: "peer P provides topic T until time t".
 * Bounded in total and per topic; an announcement beyond a bound is refused (refreshing
 * one already stored is always allowed, so a flood cannot push out known providers).
 */
import type { PeerRecord } from '@deccom/core';

interface Stored {
  peer: PeerRecord;
  expiresAt: number;
}

export type StoreResult = 'stored' | 'refreshed' | 'full';

export class TopicStore {
  private readonly topics = new Map<string, Map<string, Stored>>();
  private count = 0;

  constructor(
    /** Announcements kept at most, over all topics. */
    readonly maxAnnouncements: number,
    /** Providers kept at most per topic. */
    readonly maxPerTopic: number,
  ) {}

  /** Announcements stored. */
  get size(): number {
    return this.count;
  }

  /** Topics with at least one announcement. */
  get topicCount(): number {
    return this.topics.size;
  }

  store(topic: string, peer: PeerRecord, expiresAt: number): StoreResult {
    let providers = this.topics.get(topic);
    const existing = providers?.get(peer.id.hex);
    if (existing !== undefined) {
      existing.peer = peer;
      existing.expiresAt = Math.max(existing.expiresAt, expiresAt);
      return 'refreshed';
    }
    if (this.count >= this.maxAnnouncements) return 'full';
    if (providers === undefined) {
      providers = new Map();
      this.topics.set(topic, providers);
    } else if (providers.size >= this.maxPerTopic) return 'full';
    providers.set(peer.id.hex, { peer, expiresAt });
    this.count++;
    return 'stored';
  }

  /**
   * Removes `id`'s announcement of `topic` if it is stored with an address at `host` and
   * `port` (a withdrawal counts only from where the announcement came). True if removed.
   */
  remove(topic: string, id: string, host: string, port: number): boolean {
    const providers = this.topics.get(topic);
    const stored = providers?.get(id);
    if (stored === undefined || stored.peer.address.host !== host || stored.peer.address.port !== port) return false;
    providers!.delete(id);
    this.count--;
    if (providers!.size === 0) this.topics.delete(topic);
    return true;
  }

  /** Unexpired providers of `topic`, at most `limit`. */
  providers(topic: string, now: number, limit = Number.POSITIVE_INFINITY): PeerRecord[] {
    const out: PeerRecord[] = [];
    const providers = this.topics.get(topic);
    if (providers === undefined) return out;
    for (const stored of providers.values()) {
      if (out.length >= limit) break;
      if (stored.expiresAt > now) out.push(stored.peer);
    }
    return out;
  }

  /** Drops every announcement expired at `now`. */
  expire(now: number): void {
    for (const [topic, providers] of this.topics) {
      for (const [id, stored] of providers) {
        if (stored.expiresAt <= now) {
          providers.delete(id);
          this.count--;
        }
      }
      if (providers.size === 0) this.topics.delete(topic);
    }
  }

  clear(): void {
    this.topics.clear();
    this.count = 0;
  }
}
