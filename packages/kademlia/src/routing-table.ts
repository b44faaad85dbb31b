/**
 * The Kademlia routing table: k-buckets over the XOR metric (Maymounkov and Mazieres
 * 2002, section 2.2), kept as a binary trie of id prefixes. A full bucket whose range
 * holds our own id splits (section 2.4); with `splitAlways` any full bucket splits, up to
 * `maxDepth`. Each bucket keeps its contacts least-recently-seen first, and a small
 * replacement cache of peers waiting for a slot (section 4.1).
 *
 * Memory per contact is one small object pointing at a peer record that the whole
 * process shares (decoded records are cached by core), so a table of a few hundred
 * contacts costs a few tens of kilobytes.
 */
import type { NodeId, PeerRecord } from '@deccom/core';
import { bitAt, compareDistance } from './distance.js';
import { DEFAULT_DIVERSITY, prefixKey, type DiversityRule } from './diversity.js';

export interface Contact {
  peer: PeerRecord;
  /** Clock time the peer was last heard from. */
  lastSeen: number;
  /** Requests in a row it did not answer. */
  failures: number;
  /** The network prefix its address counts against (see `DiversityRule`); undefined when exempt. */
  prefix?: string | undefined;
}

export interface Bucket {
  readonly depth: number;
  /** Prefix bits of this bucket's range (the first `depth` bits matter). */
  readonly prefix: Uint8Array;
  /** Least recently seen first. */
  readonly contacts: Contact[];
  /** Most recently seen last. */
  readonly replacements: Contact[];
  /** Clock time of the last lookup of an id in this bucket's range (section 2.3, refresh). */
  lastLookup: number;
}

interface TrieNode {
  bucket: Bucket | undefined;
  zero: TrieNode | undefined;
  one: TrieNode | undefined;
}

export interface RoutingTableOptions {
  /** Bucket size. Default 20, the paper's k (section 2.2). */
  k?: number;
  /** Replacement cache size per bucket. Default 5. */
  replacementCacheSize?: number;
  /** Split any full bucket, not only the one holding our id (a deeper, unbalanced trie). Default false. */
  splitAlways?: boolean;
  /** Deepest split when `splitAlways`. Default 64. */
  maxDepth?: number;
  /** Clock time the buckets start with as their last lookup. Default 0. */
  now?: number;
  /** Contacts per bucket from one network prefix (see `diversity.ts`). Default 2 per IPv4 /24 or IPv6 /48, private addresses exempt. */
  diversity?: DiversityRule;
}

export type AddResult =
  | { readonly kind: 'updated' }
  | { readonly kind: 'added' }
  /**
   * The bucket is full: the new peer waits in the replacement cache. Ping `oldest`
   * (least recently seen); if it does not answer, `remove` it and the freshest
   * replacement takes its slot (section 2.2).
   */
  | { readonly kind: 'full'; readonly oldest: Contact }
  /** The bucket already holds `maxPerPrefix` contacts from the peer's network prefix. */
  | { readonly kind: 'refused' };

const UPDATED: AddResult = { kind: 'updated' };
const ADDED: AddResult = { kind: 'added' };
const REFUSED: AddResult = { kind: 'refused' };

function countPrefix(contacts: readonly Contact[], prefix: string): number {
  let n = 0;
  for (const contact of contacts) if (contact.prefix === prefix) n++;
  return n;
}

export class RoutingTable {
  readonly k: number;
  private readonly replacementCacheSize: number;
  private readonly splitAlways: boolean;
  private readonly maxDepth: number;
  private readonly diversity: DiversityRule;
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
    this.maxDepth = Math.min(255, options.maxDepth ?? 64);
    this.diversity = options.diversity ?? DEFAULT_DIVERSITY;
    this.root = { bucket: newBucket(0, new Uint8Array(32), options.now ?? 0), zero: undefined, one: undefined };
  }

  /** Contacts in the table (replacements not counted). */
  get size(): number {
    return this.index.size;
  }

  /** Number of buckets. */
  get buckets(): number {
    return this.bucketCount;
  }

  has(id: NodeId): boolean {
    return this.index.has(id.hex);
  }

  get(id: NodeId): PeerRecord | undefined {
    return this.index.get(id.hex)?.peer;
  }

  contact(id: NodeId): Contact | undefined {
    return this.index.get(id.hex);
  }

  all(): PeerRecord[] {
    const out: PeerRecord[] = [];
    for (const contact of this.index.values()) out.push(contact.peer);
    return out;
  }

  private leaf(id: Uint8Array): TrieNode {
    let node = this.root;
    let depth = 0;
    while (node.bucket === undefined) {
      node = bitAt(id, depth) === 0 ? node.zero! : node.one!;
      depth++;
    }
    return node;
  }

  /** The bucket whose range holds `id`. */
  bucketFor(id: Uint8Array): Bucket {
    return this.leaf(id).bucket!;
  }

  /** Whether a new peer with this id would get a slot now (room in its bucket, or a split). */
  hasRoomFor(id: NodeId): boolean {
    if (this.index.has(id.hex) || id.equals(this.self)) return false;
    const bucket = this.leaf(id.bytes).bucket!;
    return bucket.contacts.length < this.k || this.canSplit(bucket);
  }

  /** Records that `peer` was heard from: moves it to the tail, adds it, or reports a full bucket. */
  add(peer: PeerRecord, now: number): AddResult {
    if (peer.id.equals(this.self)) return UPDATED;
    const existing = this.index.get(peer.id.hex);
    if (existing !== undefined) {
      // A known identity keeps its slot when its address changes (it proved itself there).
      if (existing.peer.address.host !== peer.address.host) existing.prefix = prefixKey(peer.address.host, this.diversity);
      existing.peer = peer;
      existing.lastSeen = now;
      existing.failures = 0;
      moveToTail(this.leaf(peer.id.bytes).bucket!.contacts, existing);
      return UPDATED;
    }
    let node = this.leaf(peer.id.bytes);
    while (node.bucket!.contacts.length >= this.k && this.canSplit(node.bucket!)) {
      const depth = node.bucket!.depth;
      this.split(node);
      node = bitAt(peer.id.bytes, depth) === 0 ? node.zero! : node.one!;
    }
    const bucket = node.bucket!;
    const prefix = prefixKey(peer.address.host, this.diversity);
    if (prefix !== undefined && countPrefix(bucket.contacts, prefix) >= this.diversity.maxPerPrefix) {
      removeById(bucket.replacements, peer.id);
      return REFUSED;
    }
    if (bucket.contacts.length < this.k) {
      const contact: Contact = { peer, lastSeen: now, failures: 0, prefix };
      bucket.contacts.push(contact);
      this.index.set(peer.id.hex, contact);
      removeById(bucket.replacements, peer.id);
      return ADDED;
    }
    removeById(bucket.replacements, peer.id);
    if (prefix !== undefined && countPrefix(bucket.replacements, prefix) >= this.diversity.maxPerPrefix) return REFUSED;
    bucket.replacements.push({ peer, lastSeen: now, failures: 0, prefix });
    if (bucket.replacements.length > this.replacementCacheSize) bucket.replacements.shift();
    return { kind: 'full', oldest: bucket.contacts[0]! };
  }

  private canSplit(bucket: Bucket): boolean {
    if (bucket.depth >= 255) return false;
    if (inRange(bucket, this.self.bytes)) return true;
    return this.splitAlways && bucket.depth < this.maxDepth;
  }

  private split(node: TrieNode): void {
    const bucket = node.bucket!;
    const depth = bucket.depth;
    const prefixOne = bucket.prefix.slice();
    prefixOne[depth >> 3]! |= 1 << (7 - (depth & 7));
    const zero = newBucket(depth + 1, bucket.prefix, bucket.lastLookup);
    const one = newBucket(depth + 1, prefixOne, bucket.lastLookup);
    for (const contact of bucket.contacts) (bitAt(contact.peer.id.bytes, depth) === 0 ? zero : one).contacts.push(contact);
    for (const contact of bucket.replacements) (bitAt(contact.peer.id.bytes, depth) === 0 ? zero : one).replacements.push(contact);
    node.bucket = undefined;
    node.zero = { bucket: zero, zero: undefined, one: undefined };
    node.one = { bucket: one, zero: undefined, one: undefined };
    this.bucketCount++;
  }

  /** Removes a peer; its bucket's freshest replacement takes the slot and is returned. */
  remove(id: NodeId): PeerRecord | undefined {
    const contact = this.index.get(id.hex);
    if (contact === undefined) return undefined;
    const bucket = this.bucketFor(id.bytes);
    const at = bucket.contacts.indexOf(contact);
    if (at >= 0) bucket.contacts.splice(at, 1);
    this.index.delete(id.hex);
    // The freshest replacement whose prefix still has room takes the slot.
    let pick = bucket.replacements.length - 1;
    while (pick >= 0) {
      const prefix = bucket.replacements[pick]!.prefix;
      if (prefix === undefined || countPrefix(bucket.contacts, prefix) < this.diversity.maxPerPrefix) break;
      pick--;
    }
    if (pick < 0) return undefined;
    const replacement = bucket.replacements.splice(pick, 1)[0]!;
    bucket.contacts.push(replacement);
    this.index.set(replacement.peer.id.hex, replacement);
    return replacement.peer;
  }

  /** The peer answered: it moves to the tail as most recently seen. */
  touch(id: NodeId, now: number): void {
    const contact = this.index.get(id.hex);
    if (contact === undefined) return;
    contact.lastSeen = now;
    contact.failures = 0;
    moveToTail(this.bucketFor(id.bytes).contacts, contact);
  }

  /** The peer did not answer a request; returns how many in a row it has missed (0 if unknown). */
  failed(id: NodeId): number {
    const contact = this.index.get(id.hex);
    if (contact === undefined) return 0;
    return ++contact.failures;
  }

  /** Records a lookup of `target`, for the refresh of untouched buckets. */
  markLookup(target: Uint8Array, now: number): void {
    this.bucketFor(target).lastLookup = now;
  }

  /**
   * The `count` known peers closest to `target`, closest first (or, with `sorted` false,
   * the same set in no particular order: what a responder needs, as the asker sorts).
   * The trie is walked from the target's side outward: every peer in the subtree that
   * shares the target's next bit is closer than every peer in its sibling, so only the
   * buckets visited are sorted, and with `sorted` false only the last one when it
   * overflows.
   */
  closest(target: Uint8Array, count: number = this.k, exclude?: NodeId, sorted = true): PeerRecord[] {
    const out: PeerRecord[] = [];
    if (count <= 0) return out;
    const excluded = exclude?.hex;
    const byDistance = (a: PeerRecord, b: PeerRecord): number => compareDistance(a.id.bytes, b.id.bytes, target);
    const visit = (node: TrieNode, depth: number): void => {
      const bucket = node.bucket;
      if (bucket !== undefined) {
        const start = out.length;
        for (const contact of bucket.contacts) if (contact.peer.id.hex !== excluded) out.push(contact.peer);
        const added = out.length - start;
        if (added > 1 && (sorted || out.length > count)) {
          const part = out.splice(start).sort(byDistance);
          for (const peer of part) out.push(peer);
        }
        return;
      }
      const near = bitAt(target, depth) === 0 ? node.zero! : node.one!;
      visit(near, depth + 1);
      if (out.length < count) visit(near === node.zero ? node.one! : node.zero!, depth + 1);
    };
    visit(this.root, 0);
    if (out.length > count) out.length = count;
    return out;
  }

  /** Every bucket, from the all-zeros side of the id space to the all-ones side. */
  allBuckets(): Bucket[] {
    const out: Bucket[] = [];
    const visit = (node: TrieNode): void => {
      if (node.bucket !== undefined) out.push(node.bucket);
      else {
        visit(node.zero!);
        visit(node.one!);
      }
    };
    visit(this.root);
    return out;
  }

  /** Buckets with no lookup since `before`, for refresh. */
  staleBuckets(before: number): Bucket[] {
    return this.allBuckets().filter((bucket) => bucket.lastLookup < before);
  }

  /** Whether the bucket's range holds our own id. */
  inOwnBucket(bucket: Bucket): boolean {
    return inRange(bucket, this.self.bytes);
  }

  /** Checks the trie's invariants (for tests): every contact in its bucket's range, no bucket over k, index in sync. */
  checkInvariants(): void {
    let count = 0;
    for (const bucket of this.allBuckets()) {
      if (bucket.contacts.length > this.k) throw new Error(`bucket at depth ${bucket.depth} holds ${bucket.contacts.length} > k contacts`);
      if (bucket.replacements.length > this.replacementCacheSize) throw new Error('replacement cache over its size');
      for (const contact of bucket.contacts) {
        if (!inRange(bucket, contact.peer.id.bytes)) throw new Error('contact outside its bucket range');
        if (this.index.get(contact.peer.id.hex) !== contact) throw new Error('index out of sync');
        count++;
      }
      for (const contact of bucket.replacements) {
        if (!inRange(bucket, contact.peer.id.bytes)) throw new Error('replacement outside its bucket range');
        if (this.index.has(contact.peer.id.hex)) throw new Error('a replacement is also a contact');
      }
      if (this.diversity.maxPerPrefix > 0) {
        for (const list of [bucket.contacts, bucket.replacements]) {
          const seen = new Map<string, number>();
          for (const contact of list) {
            if (contact.prefix === undefined) continue;
            const n = (seen.get(contact.prefix) ?? 0) + 1;
            seen.set(contact.prefix, n);
            // An identity that moved keeps its slot, so only new entries are held to the limit.
            if (n > this.diversity.maxPerPrefix && list === bucket.replacements) throw new Error(`replacement cache holds ${n} > maxPerPrefix from ${contact.prefix}`);
          }
        }
      }
    }
    if (count !== this.index.size) throw new Error(`index has ${this.index.size} contacts, buckets ${count}`);
  }
}

function newBucket(depth: number, prefix: Uint8Array, lastLookup: number): Bucket {
  return { depth, prefix, contacts: [], replacements: [], lastLookup };
}

/** Whether `id` lies in the bucket's prefix range. */
export function inRange(bucket: { readonly depth: number; readonly prefix: Uint8Array }, id: Uint8Array): boolean {
  const whole = bucket.depth >> 3;
  for (let i = 0; i < whole; i++) if (id[i] !== bucket.prefix[i]) return false;
  const rest = bucket.depth & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (id[whole]! & mask) === (bucket.prefix[whole]! & mask);
}

/** A random id in the bucket's range (for refresh lookups). */
export function randomIdIn(bucket: { readonly depth: number; readonly prefix: Uint8Array }, random: Uint8Array): Uint8Array {
  const id = random.slice(0, 32);
  for (let i = 0; i < bucket.depth; i++) {
    const mask = 1 << (7 - (i & 7));
    id[i >> 3] = (id[i >> 3]! & ~mask) | (bucket.prefix[i >> 3]! & mask);
  }
  return id;
}

function moveToTail(contacts: Contact[], contact: Contact): void {
  if (contacts[contacts.length - 1] === contact) return;
  const at = contacts.indexOf(contact);
  if (at < 0) return;
  contacts.splice(at, 1);
  contacts.push(contact);
}

function removeById(contacts: Contact[], id: NodeId): void {
  for (let i = 0; i < contacts.length; i++) {
    if (contacts[i]!.peer.id.equals(id)) {
      contacts.splice(i, 1);
      return;
    }
  }
}
