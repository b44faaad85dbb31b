/**
 * A deterministic fake link for the rudp engines: seeded loss, duplication, reordering,
 * corruption, latency, jitter and bandwidth on a virtual clock, with hooks to drop or
 * rewrite chosen packets. Engines are driven directly (no node, no layers), so every
 * test replays exactly.
 */
import { createHash } from 'node:crypto';
import { addressKey, Counters, seededRandom, type Address, type Random } from '@deccom/core';
import { VirtualClock } from '@deccom/core/testing';
import { Engine } from '../src/engine.js';
import { resolveOptions, type RudpOptions } from '../src/index.js';

export interface LinkFaults {
  loss?: number;
  duplicate?: number;
  /** Probability a packet is held back by `reorderDelayMs` so later ones overtake it. */
  reorder?: number;
  reorderDelayMs?: number;
  /** Probability one random byte of the packet is changed. */
  corrupt?: number;
  latencyMs?: number;
  jitterMs?: number;
  /** Serialisation delay per direction; packets queue behind each other. */
  bandwidthBytesPerSecond?: number;
}

export interface Endpoint {
  readonly address: Address;
  engine: Engine;
  readonly counters: Counters;
  readonly delivered: { data: Uint8Array; from: Address }[];
  readonly warnings: string[];
  /** Packets this endpoint sent (before faults). */
  sent: number;
  /**
   * Replaces the engine with a fresh one, keeping the address: a clean stop and start, or
   * with `crash` a process that died (the old engine sends nothing more, not even its
   * goodbye refusals).
   */
  restart(options?: RudpOptions & { crash?: boolean }): void;
}

/** What a filter may do with a packet: undefined passes it, 'drop' drops it, bytes replace it. */
export type PacketFilter = (bytes: Uint8Array, from: Address, to: Address) => undefined | 'drop' | Uint8Array;

export class FakeLink {
  readonly clock: VirtualClock;
  readonly random: Random;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly nextFreeAt = new Map<string, number>();
  faults: LinkFaults;
  filter: PacketFilter | undefined;
  stats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, corrupted: 0 };

  constructor(options: { seed?: number | string; faults?: LinkFaults; clock?: VirtualClock } = {}) {
    this.clock = options.clock ?? new VirtualClock();
    this.random = seededRandom(options.seed ?? 1);
    this.faults = options.faults ?? {};
  }

  /** An engine bound at `host:port` on this link, started. */
  endpoint(host: string, port: number, options: RudpOptions = {}, maxDatagramSize = 1400): Endpoint {
    const address = { host, port };
    const counters = new Counters();
    const delivered: { data: Uint8Array; from: Address }[] = [];
    const warnings: string[] = [];
    const instanceRandom = seededRandom(`instance/${host}:${port}`);
    let generation = 0;
    const make = (engineOptions: RudpOptions): Engine => {
      const mine = ++generation;
      return new Engine(
        {
          now: () => this.clock.now(),
          setTimeout: (callback, delayMs) => this.clock.setTimeout(callback, delayMs),
          clearTimeout: (handle) => this.clock.clearTimeout(handle),
          soon: (callback) => this.clock.setTimeout(callback, 0),
          transmit: (to, bytes) => {
            if (mine !== generation && crashed) return;
            endpoint.sent++;
            this.send(address, to, bytes);
          },
          deliver: (data, from) => delivered.push({ data, from }),
          maxDatagramSize: () => maxDatagramSize,
          count: (name, amount) => counters.add(name, amount),
          drop: (reason) => counters.drop(reason),
          randomInstanceBytes: () => instanceRandom.bytes(8),
          warn: (message) => warnings.push(message),
        },
        resolveOptions(engineOptions),
      );
    };
    let crashed = false;
    const endpoint: Endpoint = {
      address,
      engine: make(options),
      counters,
      delivered,
      warnings,
      sent: 0,
      restart: (restartOptions = options) => {
        const old = endpoint.engine;
        crashed = restartOptions.crash === true;
        endpoint.engine = make(restartOptions);
        old.stop();
        endpoint.engine.start();
      },
    };
    counters.attach(() => endpoint.engine.hotCounters());
    endpoint.engine.start();
    this.endpoints.set(addressKey(address), endpoint);
    return endpoint;
  }

  /** Makes `endpoint` reachable at a second address too (a wildcard bind reached through two interfaces). */
  alias(endpoint: Endpoint, host: string, port: number): Address {
    const address = { host, port };
    this.endpoints.set(addressKey(address), endpoint);
    return address;
  }

  /** Sends a packet over the link, applying the faults. The bytes are copied. */
  send(from: Address, to: Address, bytes: Uint8Array): void {
    this.stats.sent++;
    let data: Uint8Array | undefined = bytes.slice();
    if (this.filter) {
      const verdict = this.filter(data, from, to);
      if (verdict === 'drop') {
        this.stats.lost++;
        return;
      }
      if (verdict !== undefined) data = verdict;
    }
    const f = this.faults;
    const random = this.random;
    if (f.loss && random.float() < f.loss) {
      this.stats.lost++;
      return;
    }
    const copies = f.duplicate && random.float() < f.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const now = this.clock.now();
    let departure = now;
    if (f.bandwidthBytesPerSecond) {
      const key = `${addressKey(from)}>${addressKey(to)}`;
      departure = Math.max(now, this.nextFreeAt.get(key) ?? 0) + (data.byteLength / f.bandwidthBytesPerSecond) * 1000;
      this.nextFreeAt.set(key, departure);
    }
    for (let i = 0; i < copies; i++) {
      let copy = i === 0 ? data : data.slice();
      if (f.corrupt && random.float() < f.corrupt) {
        copy = copy.slice();
        const at = random.int(copy.byteLength);
        copy[at] = copy[at]! ^ (1 + random.int(255));
        this.stats.corrupted++;
      }
      let delay = departure - now + (f.latencyMs ?? 0);
      if (f.jitterMs) delay += random.float() * f.jitterMs;
      if (f.reorder && random.float() < f.reorder) {
        delay += f.reorderDelayMs ?? 5;
        this.stats.reordered++;
      }
      const packet = copy;
      this.clock.setTimeout(() => this.arrive(from, to, packet), delay);
    }
  }

  private arrive(from: Address, to: Address, bytes: Uint8Array): void {
    const endpoint = this.endpoints.get(addressKey(to));
    if (endpoint === undefined) return;
    this.stats.delivered++;
    endpoint.engine.onControl(bytes, from);
  }

  /** Runs the clock until `promise` settles or `maxMs` of virtual time pass; returns the outcome. */
  async settle<T>(promise: Promise<T>, maxMs = 3_600_000, stepMs = 50): Promise<{ value?: T; error?: unknown; settled: boolean }> {
    let outcome: { value?: T; error?: unknown; settled: boolean } = { settled: false };
    promise.then(
      (value) => (outcome = { value, settled: true }),
      (error: unknown) => (outcome = { error, settled: true }),
    );
    await this.clock.runUntil(() => outcome.settled, { maxMs, stepMs });
    return outcome;
  }
}

/** Deterministic pseudo-random bytes (fast: a xorshift word stream). */
export function patternBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < length; i++) out[i] = (seed + i) & 0xff;
  return out;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
