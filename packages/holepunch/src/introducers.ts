/**
 * Who told us about which address ("A told me about B"), fed by discovery through
 * `heardFrom`. The last few introducers per address are kept, most recent first; they
 * are the peers asked to relay a punch request, and the candidates for a relay.
 */
import { addressKey, sameAddress, type Address } from '@deccom/core';

export interface IntroducerBookOptions {
  /** Introducers kept per address. Default 3 (PROTOCOLS.md: "the last few"). */
  perAddress?: number;
  /** Addresses remembered; the least recently introduced is forgotten beyond it. Default 10,000. */
  maxAddresses?: number;
}

export class IntroducerBook {
  readonly perAddress: number;
  readonly maxAddresses: number;
  // Map iteration order is insertion order: re-inserting on every update makes the
  // first key the least recently introduced one (an LRU without extra bookkeeping).
  private readonly byAddress = new Map<string, Address[]>();

  constructor(options: IntroducerBookOptions = {}) {
    this.perAddress = options.perAddress ?? 3;
    this.maxAddresses = options.maxAddresses ?? 10_000;
    if (!Number.isInteger(this.perAddress) || this.perAddress < 1) throw new RangeError(`IntroducerBook: perAddress must be an integer >= 1, got ${this.perAddress}`);
    if (!Number.isInteger(this.maxAddresses) || this.maxAddresses < 1) throw new RangeError(`IntroducerBook: maxAddresses must be an integer >= 1, got ${this.maxAddresses}`);
  }

  /**
   * Records that `introducer` told us about `address`. A peer introducing its own
   * address is ignored (it cannot relay a punch to itself). Returns whether it was kept.
   */
  add(address: Address, introducer: Address): boolean {
    if (sameAddress(address, introducer)) return false;
    const key = addressKey(address);
    const list = this.byAddress.get(key) ?? [];
    const kept = list.filter((known) => !sameAddress(known, introducer));
    kept.unshift(introducer);
    if (kept.length > this.perAddress) kept.length = this.perAddress;
    this.byAddress.delete(key);
    this.byAddress.set(key, kept);
    if (this.byAddress.size > this.maxAddresses) {
      const oldest = this.byAddress.keys().next().value;
      if (oldest !== undefined) this.byAddress.delete(oldest);
    }
    return true;
  }

  /** Introducers of `address`, most recent first (empty when none is known). */
  get(address: Address): readonly Address[] {
    return this.byAddress.get(addressKey(address)) ?? [];
  }

  has(address: Address): boolean {
    return this.byAddress.has(addressKey(address));
  }

  /** Drops an introducer that proved useless (it stopped answering), for every address. */
  removeIntroducer(introducer: Address): void {
    for (const [key, list] of this.byAddress) {
      const kept = list.filter((known) => !sameAddress(known, introducer));
      if (kept.length === 0) this.byAddress.delete(key);
      else if (kept.length !== list.length) this.byAddress.set(key, kept);
    }
  }

  forget(address: Address): void {
    this.byAddress.delete(addressKey(address));
  }

  /** Addresses with at least one introducer. */
  get size(): number {
    return this.byAddress.size;
  }
}
