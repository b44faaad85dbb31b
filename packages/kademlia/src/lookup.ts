/**
 * The iterative lookup of Maymounkov and Mazieres (2002), section 2.3, as a pure state
 * machine: no I/O, no timers. The layer asks `next()` whom to query, and reports each
 * answer (`answered`) or silence (`failed`); the machine keeps the shortlist.
 *
 * - Candidates are every peer heard of, kept sorted by XOR distance to the target.
 * - At most `alpha` queries are in flight, always to the closest not-yet-queried of the
 *   `k` closest live candidates ("the recursion can begin before all alpha of the
 *   previous RPCs have returned").
 * - A peer that does not answer is removed from consideration.
 * - When a round (alpha answers in a row) brings nothing closer than the closest already
 *   seen, every not-yet-queried one of the k closest is queried at once.
 * - The lookup is done when each of the k closest live candidates has answered.
 *
 * Memory is bounded: at most `maxCandidates` candidates are kept (the farthest are
 * forgotten) and at most `k` peers of one answer are considered.
 */
import type { NodeId, PeerRecord } from '@deccom/core';
import { compareDistance } from './distance.js';

export const CANDIDATE_PENDING = 0;
export const CANDIDATE_IN_FLIGHT = 1;
export const CANDIDATE_ANSWERED = 2;
export const CANDIDATE_FAILED = 3;
export type CandidateState = typeof CANDIDATE_PENDING | typeof CANDIDATE_IN_FLIGHT | typeof CANDIDATE_ANSWERED | typeof CANDIDATE_FAILED;

export interface Candidate {
  readonly peer: PeerRecord;
  /** 1 for peers from our own table; one more than the peer that named it otherwise. */
  readonly round: number;
  state: CandidateState;
  /** Whether its answer brought a peer closer than any seen before. */
  improved: boolean;
  /** Peers of its answer considered so far (at most k). */
  heard: number;
}

export interface LookupOptions {
  /** Shortlist size, the paper's k. */
  k: number;
  /** Queries in flight at once, the paper's alpha. */
  alpha: number;
  /** Candidates remembered at most (bounded memory). Default 8 * k. */
  maxCandidates?: number;
  /** An id never to consider (our own). */
  self?: NodeId;
}

export class Lookup {
  readonly target: Uint8Array;
  readonly k: number;
  readonly alpha: number;
  private readonly maxCandidates: number;
  private readonly self: string | undefined;
  /** Ids ever considered (so a forgotten or failed peer is not taken up again). */
  private readonly known = new Set<string>();
  /** Live candidates (not failed), closest first. */
  private readonly list: Candidate[] = [];
  private inFlight = 0;
  private quietAnswers = 0;
  private closestSeen: Uint8Array | undefined;
  private exhaustive = false;
  /** Queries handed out by `next()`. */
  queries = 0;
  /** Answers received. */
  answers = 0;
  /** Queries that failed. */
  failures = 0;

  constructor(target: Uint8Array, options: LookupOptions) {
    if (!Number.isInteger(options.k) || options.k < 1) throw new RangeError(`Lookup: k must be a positive integer, got ${options.k}`);
    if (!Number.isInteger(options.alpha) || options.alpha < 1) throw new RangeError(`Lookup: alpha must be a positive integer, got ${options.alpha}`);
    this.target = target;
    this.k = options.k;
    this.alpha = options.alpha;
    this.maxCandidates = Math.max(options.k, options.maxCandidates ?? 8 * options.k);
    this.self = options.self?.hex;
  }

  /** Queries in flight. */
  get pending(): number {
    return this.inFlight;
  }

  /** Whether every query finished and none is left to send (call after `next()`). */
  get done(): boolean {
    return this.inFlight === 0 && !this.hasUnqueried();
  }

  /** Whether `id` was ever a candidate (or is our own). */
  has(id: NodeId): boolean {
    return id.hex === this.self || this.known.has(id.hex);
  }

  /** Whether the final phase (query all of the k closest) has begun. */
  get final(): boolean {
    return this.exhaustive;
  }

  /** Adds peers as candidates of `round` (1 for our own table's peers). Returns how many were new. */
  add(peers: readonly PeerRecord[], round = 1): number {
    let added = 0;
    const limit = Math.min(peers.length, this.k);
    for (let i = 0; i < limit; i++) if (this.consider(peers[i]!, round, undefined)) added++;
    return added;
  }

  private addFrom(via: Candidate, peers: readonly PeerRecord[]): void {
    for (let i = 0; i < peers.length && via.heard < this.k; i++) {
      via.heard++;
      this.consider(peers[i]!, via.round + 1, via);
    }
  }

  private consider(peer: PeerRecord, round: number, via: Candidate | undefined): boolean {
    const hex = peer.id.hex;
    if (hex === this.self || this.known.has(hex)) return false;
    const list = this.list;
    const bytes = peer.id.bytes;
    // Beyond the farthest of a full list: not worth remembering.
    if (list.length >= this.maxCandidates && compareDistance(bytes, list[list.length - 1]!.peer.id.bytes, this.target) >= 0) return false;
    this.known.add(hex);
    let low = 0;
    let high = list.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (compareDistance(list[mid]!.peer.id.bytes, bytes, this.target) < 0) low = mid + 1;
      else high = mid;
    }
    list.splice(low, 0, { peer, round, state: CANDIDATE_PENDING, improved: false, heard: 0 });
    if (list.length > this.maxCandidates) {
      // Forget the farthest, unless a query to it is still out (it ends through answered/failed).
      for (let i = list.length - 1; i >= this.k; i--) {
        if (list[i]!.state !== CANDIDATE_IN_FLIGHT) {
          list.splice(i, 1);
          break;
        }
      }
    }
    if (this.closestSeen === undefined || compareDistance(bytes, this.closestSeen, this.target) < 0) {
      this.closestSeen = bytes;
      if (via !== undefined) via.improved = true;
    }
    return true;
  }

  private hasUnqueried(): boolean {
    const list = this.list;
    const end = Math.min(list.length, this.k);
    for (let i = 0; i < end; i++) if (list[i]!.state === CANDIDATE_PENDING) return true;
    return false;
  }

  /**
   * The candidates to query now (marked in flight): the closest pending ones among the k
   * closest, up to `alpha` in flight, or all of them in the final phase.
   */
  next(): Candidate[] {
    const out: Candidate[] = [];
    const room = this.exhaustive ? Number.POSITIVE_INFINITY : this.alpha - this.inFlight;
    if (room <= 0) return out;
    const list = this.list;
    const end = Math.min(list.length, this.k);
    for (let i = 0; i < end && out.length < room; i++) {
      const candidate = list[i]!;
      if (candidate.state === CANDIDATE_PENDING) {
        candidate.state = CANDIDATE_IN_FLIGHT;
        out.push(candidate);
      }
    }
    this.inFlight += out.length;
    this.queries += out.length;
    return out;
  }

  /**
   * `candidate` answered with `peers` (at most k of its answer are considered, parts
   * included). Returns whether its answer brought a peer closer than any seen before.
   */
  answered(candidate: Candidate, peers: readonly PeerRecord[] = []): boolean {
    if (candidate.state !== CANDIDATE_IN_FLIGHT) return false;
    candidate.state = CANDIDATE_ANSWERED;
    this.inFlight--;
    this.answers++;
    this.addFrom(candidate, peers);
    this.settle(candidate.improved);
    return candidate.improved;
  }

  /** `candidate` did not answer: it leaves the shortlist. */
  failed(candidate: Candidate): void {
    if (candidate.state !== CANDIDATE_IN_FLIGHT) return;
    candidate.state = CANDIDATE_FAILED;
    this.inFlight--;
    this.failures++;
    const at = this.list.indexOf(candidate);
    if (at >= 0) this.list.splice(at, 1);
    this.settle(false);
  }

  /** A part of an answer that arrives before the whole: adds its peers without ending the query. */
  partial(candidate: Candidate, peers: readonly PeerRecord[]): void {
    if (candidate.state === CANDIDATE_IN_FLIGHT) this.addFrom(candidate, peers);
  }

  private settle(closer: boolean): void {
    if (closer) this.quietAnswers = 0;
    else if (++this.quietAnswers >= this.alpha) this.exhaustive = true;
  }

  /** The `count` closest candidates that answered, closest first. */
  closest(count = this.k): PeerRecord[] {
    const out: PeerRecord[] = [];
    for (const candidate of this.list) {
      if (out.length >= count) break;
      if (candidate.state === CANDIDATE_ANSWERED) out.push(candidate.peer);
    }
    return out;
  }

  /** The highest round of any candidate that answered (0 when none did). */
  get deepestRound(): number {
    let deepest = 0;
    for (const candidate of this.list) if (candidate.state === CANDIDATE_ANSWERED && candidate.round > deepest) deepest = candidate.round;
    return deepest;
  }

  /** Live candidates remembered (for tests and bounds). */
  get size(): number {
    return this.list.length;
  }
}
