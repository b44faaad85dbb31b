/**
 * NAT classification from peers' observations of our address ("I see you at X").
 *
 * What decides whether hole punching can work is the NAT's *mapping* behaviour
 * (RFC 4787 section 4.1): an endpoint-independent mapping (a "cone" NAT) shows every
 * peer the same public address, so a peer told that address by an introducer reaches
 * the mapping we opened; an endpoint-dependent mapping (a "symmetric" NAT) shows each
 * destination another port, so an introducer's observation is useless to a third peer.
 * Comparing what different peers saw answers exactly that question:
 *
 * - every observer sees our bound address: `none` (no translation);
 * - two or more observers agree on one translated address: `cone`;
 * - two observers disagree within the window: `symmetric`;
 * - fewer than two observers and no untranslated sighting: `unknown`.
 *
 * Filtering (full-cone vs address- vs port-restricted) cannot be told from observations
 * of our own mapping alone; punching works for every cone filtering because both sides
 * probe, so the strategy does not need it.
 */
import { addressKey, sameAddress, type Address } from '@deccom/core';

/** This node's NAT, as far as its peers' observations tell. */
export type NatType = 'unknown' | 'none' | 'cone' | 'symmetric';

export interface NatClassifierOptions {
  /** Observations considered (latest per observer). Default 16. */
  maxObservations?: number;
  /** Observations older than this are ignored (mappings expire, NATs reboot). Default 120,000 ms. */
  windowMs?: number;
}

interface Observation {
  readonly observer: Address;
  readonly observed: Address;
  readonly at: number;
}

/** Details behind a classification, for `status()` and tests. */
export interface NatReport {
  readonly type: NatType;
  /** The address most observers saw (our public mapping for cone NATs). */
  readonly publicAddress: Address | undefined;
  /** Distinct observers within the window. */
  readonly observers: number;
}

export class NatClassifier {
  readonly maxObservations: number;
  readonly windowMs: number;
  private readonly byObserver = new Map<string, Observation>();

  constructor(options: NatClassifierOptions = {}) {
    this.maxObservations = options.maxObservations ?? 16;
    this.windowMs = options.windowMs ?? 120_000;
    if (!Number.isInteger(this.maxObservations) || this.maxObservations < 2) throw new RangeError(`NatClassifier: maxObservations must be an integer >= 2, got ${this.maxObservations}`);
    if (!(this.windowMs > 0)) throw new RangeError(`NatClassifier: windowMs must be > 0, got ${this.windowMs}`);
  }

  /** `observer` reports it saw us at `observed`. The latest report per observer counts. */
  observe(observer: Address, observed: Address, now: number): void {
    const key = addressKey(observer);
    this.byObserver.delete(key);
    this.byObserver.set(key, { observer, observed, at: now });
    if (this.byObserver.size > this.maxObservations) {
      const oldest = this.byObserver.keys().next().value;
      if (oldest !== undefined) this.byObserver.delete(oldest);
    }
  }

  private recent(now: number): Observation[] {
    const out: Observation[] = [];
    for (const observation of this.byObserver.values()) if (now - observation.at <= this.windowMs) out.push(observation);
    return out;
  }

  /** Number of distinct observers within the window. */
  observers(now: number): number {
    return this.recent(now).length;
  }

  /**
   * Classifies the NAT in front of a socket bound to `local`. Sightings of `local`
   * itself (peers on the same network, or no NAT at all) never count as a second
   * mapping. A socket bound to a wildcard host (`0.0.0.0`, `::`) cannot tell `none`
   * from `cone`; it reports `cone`, which leads to the same strategy.
   */
  classify(local: Address, now: number): NatReport {
    const recent = this.recent(now);
    if (recent.length === 0) return { type: 'unknown', publicAddress: undefined, observers: 0 };
    const translated = recent.filter(({ observed }) => !sameAddress(observed, local));
    if (translated.length === 0) return { type: 'none', publicAddress: local, observers: recent.length };
    const counts = new Map<string, { address: Address; count: number }>();
    for (const { observed } of translated) {
      const key = addressKey(observed);
      const entry = counts.get(key);
      if (entry) entry.count++;
      else counts.set(key, { address: observed, count: 1 });
    }
    let best: { address: Address; count: number } | undefined;
    for (const entry of counts.values()) if (!best || entry.count > best.count) best = entry;
    const publicAddress = best!.address;
    if (counts.size > 1) return { type: 'symmetric', publicAddress, observers: recent.length };
    return { type: translated.length >= 2 ? 'cone' : 'unknown', publicAddress, observers: recent.length };
  }

  clear(): void {
    this.byObserver.clear();
  }
}
