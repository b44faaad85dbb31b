/**
 * The Kademlia routing table: k-buckets over the XOR metric, kept as a binary trie of
 * id prefixes. A full bucket whose range holds our own id splits (section 2.4 of the
 * paper); with `splitAlways` any full bucket splits, up to `maxDepth`. Each bucket keeps
 * its peers least-recently-seen first and a small replacement cache.
 */
import type { NodeId, PeerRecord } from '@deccom/core';
import { bitAt, compareDistance } from './distance.js';

export interface Contact {
  peer: PeerRecord;
  lastSeen: number;
}

export interface Bucket {
  readonly depth: number;
  /** Prefix bits of this bucket's range (first `depth` bits matter). */
  readonly prefix: Uint8Array;
  /** Least recently seen first. */
  readonly contacts: Contact[];
  readonly replacements: Contact[];
  lastTouched: number;
}

interface TrieNode {
  bucket: Bucket | undefined;
  zero: TrieNode | undefined;
  one: TrieNode | undefined;
}

export interface RoutingTableOptions {
  /** Bucket size. Default 20 (the paper's k). */
  k?: number;
  /** Replacement cache size per bucket. Default 5. */
  replacementCacheSize?: number;
  /** Split any full bucket, not only the one holding our id. Default false. */
  splitAlways?: boolean;
  /** Deepest split when `splitAlways`. Default 64. */
  maxDepth?: number;
}

export type AddResult =
  | { kind: 'updated' }
  | { kind: 'added' }
  /** The bucket is full: ping `oldest`; if it fails, call `replace`. The new peer waits in the replacement cache. */
  | { kind: 'full'; oldest: Contact; bucket: Bucket };

export class RoutingTable {
  readonly k: number;
  private readonly replacementCacheSize: number;
  private readonly splitAlways: boolean;
  private readonly maxDepth: number;
  private readonly root: TrieNode;
  private readonly index = new Map<string, Contact>();
  private bucketCount = 1;

  constructor(
    private readonly self: NodeId,
    options: RoutingTableOptions = {},
  ) {
    this.k = options.k ?? 20;
    this.replacementCacheSize = options.replacementCacheSize ?? 5;
    this.splitAlways = options.splitAlways ?? false;
    this.maxDepth = options.maxDepth ?? 64;
    this.root = { bucket: { depth: 0, prefix: new Uint8Array(32), contacts: [], replacements: [], lastTouched: 0 }, zero: undefined, one: undefined };
  }

  get size(): number {
    return this.index.size;
  }

  get buckets(): number {
    return this.bucketCount;
  }

  has(id: NodeId): boolean {
    return this.index.has(id.hex);
  }

  get(id: NodeId): PeerRecord | undefined {
    return this.index.get(id.hex)?.peer;
  }

  all(): PeerRecord[] {
    return [...this.index.values()].map((c) => c.peer);
  }

  private leaf(id: Uint8Array): TrieNode {
    let node = this.root;
    let depth = 0;
    while (!node.bucket) {
      node = bitAt(id, depth) === 0 ? node.zero! : node.one!;
      depth++;
    }
    return node;
  }

  bucketFor(id: Uint8Array): Bucket {
    return this.leaf(id).bucket!;
  }

  private inRange(bucket: Bucket, id: Uint8Array): boolean {
    for (let i = 0; i < bucket.depth; i++) if (bitAt(id, i) !== bitAt(bucket.prefix, i)) return false;
    return true;
  }

  /** Whether `peer` would fit without evicting anyone (its bucket has room or can split). */
  hasRoomFor(id: NodeId): boolean {
    if (this.index.has(id.hex) || id.equals(this.self)) return false;
    const bucket = this.leaf(id.bytes).bucket!;
    return bucket.contacts.length < this.k || this.canSplit(bucket);
  }

  /** Records that `peer` was seen now: moves it to the tail, adds it, or reports a full bucket. */
  add(peer: PeerRecord, now: number): AddResult {
    if (peer.id.equals(this.self)) return { kind: 'updated' };
    const existing = this.index.get(peer.id.hex);
    const node = this.leaf(peer.id.bytes);
    const bucket = node.bucket!;
    bucket.lastTouched = now;
    if (existing) {
      existing.peer = peer;
      existing.lastSeen = now;
      const at = bucket.contacts.indexOf(existing);
      if (at >= 0) {
        bucket.contacts.splice(at, 1);
        bucket.contacts.push(existing);
      }
      return { kind: 'updated' };
    }
    if (bucket.contacts.length < this.k) {
      const contact = { peer, lastSeen: now };
      bucket.contacts.push(contact);
      this.index.set(peer.id.hex, contact);
      this.removeReplacement(bucket, peer.id);
      return { kind: 'added' };
    }
    if (this.canSplit(bucket)) {
      this.split(node);
      return this.add(peer, now);
    }
    this.removeReplacement(bucket, peer.id);
    bucket.replacements.push({ peer, lastSeen: now });
    if (bucket.replacements.length > this.replacementCacheSize) bucket.replacements.shift();
    return { kind: 'full', oldest: bucket.contacts[0]!, bucket };
  }

  private removeReplacement(bucket: Bucket, id: NodeId): void {
    const at = bucket.replacements.findIndex((c) => c.peer.id.equals(id));
    if (at >= 0) bucket.replacements.splice(at, 1);
  }

  private canSplit(bucket: Bucket): boolean {
    if (bucket.depth >= 255) return false;
    if (this.inRange(bucket, this.self.bytes)) return true;
    return this.splitAlways && bucket.depth < this.maxDepth;
  }

  private split(node: TrieNode): void {
    const bucket = node.bucket!;
    const depth = bucket.depth;
    const prefixOne = bucket.prefix.slice();
    prefixOne[depth >> 3]! |= 1 << (7 - (depth & 7));
    const make = (prefix: Uint8Array): Bucket => ({ depth: depth + 1, prefix, contacts: [], replacements: [], lastTouched: bucket.lastTouched });
    const zero = make(bucket.prefix.slice());
    const one = make(prefixOne);
    for (const contact of bucket.contacts) (bitAt(contact.peer.id.bytes, depth) === 0 ? zero : one).contacts.push(contact);
    for (const contact of bucket.replacements) (bitAt(contact.peer.id.bytes, depth) === 0 ? zero : one).replacements.push(contact);
    node.bucket = undefined;
    node.zero = { bucket: zero, zero: undefined, one: undefined };
    node.one = { bucket: one, zero: undefined, one: undefined };
    this.bucketCount++;
  }

  /** Removes a peer; its bucket's freshest replacement takes its place. Returns the replacement. */
  remove(id: NodeId): PeerRecord | undefined {
    const contact = this.index.get(id.hex);
    if (!contact) return undefined;
    const bucket = this.bucketFor(id.bytes);
    const at = bucket.contacts.indexOf(contact);
    if (at >= 0) bucket.contacts.splice(at, 1);
    this.index.delete(id.hex);
    const replacement = bucket.replacements.pop();
    if (replacement) {
      bucket.contacts.push(replacement);
      this.index.set(replacement.peer.id.hex, replacement);
      return replacement.peer;
    }
    return undefined;
  }

  /** Marks `oldest` alive after a successful ping: it moves to the tail. */
  touch(id: NodeId, now: number): void {
    const contact = this.index.get(id.hex);
    if (!contact) return;
    contact.lastSeen = now;
    const bucket = this.bucketFor(id.bytes);
    const at = bucket.contacts.indexOf(contact);
    if (at >= 0) {
      bucket.contacts.splice(at, 1);
      bucket.contacts.push(contact);
    }
  }

  /** The `count` known peers closest to `target`. */
  closest(target: Uint8Array, count = this.k, exclude?: NodeId): PeerRecord[] {
    // Walk buckets outward from the target's bucket: cheaper than sorting everything.
    const out: PeerRecord[] = [];
    const visit = (node: TrieNode, depth: number): void => {
      if (node.bucket) {
        for (const c of node.bucket.contacts) if (!exclude || !c.peer.id.equals(exclude)) out.push(c.peer);
        return;
      }
      const first = bitAt(target, depth) === 0 ? node.zero! : node.one!;
      const second = first === node.zero ? node.one! : node.zero!;
      visit(first, depth + 1);
      if (out.length < count) visit(second, depth + 1);
    };
    visit(this.root, 0);
    out.sort((a, b) => compareDistance(a.id.bytes, b.id.bytes, target));
    return out.slice(0, count);
  }

  /** Buckets not touched since `before`, for refresh. */
  staleBuckets(before: number): Bucket[] {
    const out: Bucket[] = [];
    const visit = (node: TrieNode): void => {
      if (node.bucket) {
        if (node.bucket.lastTouched < before) out.push(node.bucket);
        return;
      }
      visit(node.zero!);
      visit(node.one!);
    };
    visit(this.root);
    return out;
  }

  /** Checks the trie's invariants (for tests): every contact lies in its bucket's range, no bucket over k. */
  checkInvariants(): void {
    let count = 0;
    const visit = (node: TrieNode): void => {
      if (node.bucket) {
        if (node.bucket.contacts.length > this.k) throw new Error(`bucket at depth ${node.bucket.depth} holds ${node.bucket.contacts.length} > k`);
        for (const c of node.bucket.contacts) {
          if (!this.inRange(node.bucket, c.peer.id.bytes)) throw new Error('contact outside its bucket range');
          if (this.index.get(c.peer.id.hex) !== c) throw new Error('index out of sync');
          count++;
        }
        return;
      }
      visit(node.zero!);
      visit(node.one!);
    };
    visit(this.root);
    if (count !== this.index.size) throw new Error(`index has ${this.index.size} contacts, buckets ${count}`);
  }
}
