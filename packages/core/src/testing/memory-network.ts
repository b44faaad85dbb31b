/**
 * An in-memory datagram network on a virtual clock: per-link latency, jitter, loss,
 * duplication, reordering and bandwidth; partitions; NAT emulation (full cone,
 * address-restricted, port-restricted, symmetric). It carries thousands of nodes in one
 * process, deterministically for a given seed.
 */
import { addressKey, type Address } from '../address.js';
import { InvalidArgumentError } from '../errors.js';
import { seededRandom, type Random } from '../random.js';
import type { VirtualClock } from './virtual-clock.js';

export interface LinkOptions {
  /** One-way latency in ms. Default 0. */
  latencyMs?: number;
  /** Uniform extra latency in [0, jitterMs). Default 0. */
  jitterMs?: number;
  /** Probability a datagram is lost. Default 0. */
  loss?: number;
  /** Probability a datagram is delivered twice. Default 0. */
  duplicate?: number;
  /**
   * Probability a datagram is held back by an extra random delay (uniform in
   * (0, reorderDelayMs]) so later ones may overtake it. Default 0.
   */
  reorder?: number;
  /** Largest extra delay of a reordered datagram. Default 20 ms. */
  reorderDelayMs?: number;
  /** Link capacity; datagrams queue behind each other. Default unlimited. */
  bandwidthBytesPerSecond?: number;
  /**
   * Largest datagram (bytes as the transport hands them to the network, framing
   * included) the link carries; larger ones are dropped with reason 'mtu'. Default unlimited.
   */
  mtu?: number;
}

export type NatType = 'full-cone' | 'address-restricted' | 'port-restricted' | 'symmetric';

export interface NatOptions {
  type: NatType;
  /** The NAT's public IP. Default: a fresh host from the network. */
  publicHost?: string;
  /** A mapping unused (outbound) for this long expires. Default 120,000 ms. */
  mappingTimeoutMs?: number;
  /** Allow a node behind the NAT to reach another one through the public address. Default false. */
  hairpin?: boolean;
}

/** Something bound to an address on the network (a memory transport). */
export interface Endpoint {
  deliver(data: Uint8Array, from: Address): void;
}

interface Mapping {
  readonly privateAddress: Address;
  readonly publicPort: number;
  /** For symmetric NATs: the one destination this mapping serves. */
  readonly destination: string | undefined;
  /** Hosts (address-restricted) or host:port (port-restricted, symmetric) we sent to. */
  readonly permitted: Set<string>;
  lastUsed: number;
}

/** A NAT router in the memory network. */
export class Nat {
  readonly type: NatType;
  readonly publicHost: string;
  readonly privatePrefix: string;
  private nextPrivate = 2;
  private nextPort = 20_000;
  private readonly byPublicPort = new Map<number, Mapping>();
  private readonly byPrivate = new Map<string, Mapping>();
  readonly mappingTimeoutMs: number;
  readonly hairpin: boolean;

  constructor(
    private readonly clock: VirtualClock,
    options: Required<Pick<NatOptions, 'type' | 'publicHost'>> & NatOptions,
    index: number,
  ) {
    this.type = options.type;
    this.publicHost = options.publicHost;
    this.privatePrefix = `172.${16 + (Math.floor(index / 250) % 16)}.${index % 250}.`;
    this.mappingTimeoutMs = options.mappingTimeoutMs ?? 120_000;
    this.hairpin = options.hairpin ?? false;
  }

  /** A fresh private host behind this NAT. */
  allocatePrivateHost(): string {
    if (this.nextPrivate > 254) throw new InvalidArgumentError('Nat: no private hosts left (253 per NAT)');
    return `${this.privatePrefix}${this.nextPrivate++}`;
  }

  isPrivate(host: string): boolean {
    return host.startsWith(this.privatePrefix);
  }

  /** Number of live mappings. */
  get mappings(): number {
    return this.byPublicPort.size;
  }

  /** Translates an outbound datagram's source; returns the public source address. */
  outbound(from: Address, to: Address): Address {
    const symmetric = this.type === 'symmetric';
    const key = symmetric ? `${addressKey(from)}>${addressKey(to)}` : addressKey(from);
    let mapping = this.byPrivate.get(key);
    const now = this.clock.now();
    if (mapping && now - mapping.lastUsed > this.mappingTimeoutMs) {
      this.byPrivate.delete(key);
      this.byPublicPort.delete(mapping.publicPort);
      mapping = undefined;
    }
    if (!mapping) {
      const port = this.freePort(now);
      this.nextPort = port >= 65_535 ? 20_000 : port + 1;
      mapping = { privateAddress: from, publicPort: port, destination: symmetric ? addressKey(to) : undefined, permitted: new Set(), lastUsed: now };
      this.byPrivate.set(key, mapping);
      this.byPublicPort.set(port, mapping);
    }
    mapping.lastUsed = now;
    mapping.permitted.add(this.type === 'address-restricted' ? to.host : addressKey(to));
    return { host: this.publicHost, port: mapping.publicPort };
  }

  /** The next public port without a live mapping; expired mappings are reclaimed on the way. */
  private freePort(now: number): number {
    let port = this.nextPort;
    for (let tries = 0; tries <= 65_535 - 20_000; tries++) {
      const holder = this.byPublicPort.get(port);
      if (!holder) return port;
      if (now - holder.lastUsed > this.mappingTimeoutMs) {
        this.byPublicPort.delete(port);
        const key = holder.destination === undefined ? addressKey(holder.privateAddress) : `${addressKey(holder.privateAddress)}>${holder.destination}`;
        if (this.byPrivate.get(key) === holder) this.byPrivate.delete(key);
        return port;
      }
      port = port >= 65_535 ? 20_000 : port + 1;
    }
    throw new InvalidArgumentError(`Nat ${this.publicHost}: all ${65_536 - 20_000} public ports are mapped`);
  }

  /** Translates an inbound datagram's destination, or undefined when the NAT filters it. */
  inbound(to: Address, from: Address): Address | undefined {
    const mapping = this.byPublicPort.get(to.port);
    if (!mapping) return undefined;
    if (this.clock.now() - mapping.lastUsed > this.mappingTimeoutMs) return undefined;
    switch (this.type) {
      case 'full-cone':
        return mapping.privateAddress;
      case 'address-restricted':
        return mapping.permitted.has(from.host) ? mapping.privateAddress : undefined;
      default:
        return mapping.permitted.has(addressKey(from)) ? mapping.privateAddress : undefined;
    }
  }
}

interface LinkState {
  options: ReturnType<typeof normalise>;
  nextFreeAt: number;
}

export interface NetworkStats {
  /** Datagrams handed to `send`. */
  sent: number;
  /** Datagrams handed to an endpoint (a duplicate counts twice). */
  delivered: number;
  /** Bytes handed to endpoints. */
  bytesDelivered: number;
  /** Datagrams the link duplicated. */
  duplicated: number;
  /**
   * Datagrams dropped, by reason: 'loss', 'mtu', 'partition', 'hairpin' (to the own
   * NAT's public address with hairpinning off), 'unroutable' (to a private host behind
   * another NAT), 'nat-filtered' (no mapping, or the NAT type filters the sender),
   * 'unreachable' (nothing bound at the address).
   */
  dropped: Record<string, number>;
}

/** One step of the delivery trace, for observers (see `MemoryNetwork.observe`). */
export interface NetworkEvent {
  readonly at: number;
  readonly kind: 'deliver' | 'drop';
  /** Why it was dropped (see `NetworkStats.dropped`). */
  readonly reason?: string;
  /** Source as the receiver sees it (after NAT translation once translated). */
  readonly from: Address;
  /** Destination as addressed by the sender, or the private address delivered to. */
  readonly to: Address;
  readonly bytes: number;
}

export interface MemoryNetworkOptions {
  clock: VirtualClock;
  /** Randomness for loss, jitter and the like. Default: seeded with 1. */
  random?: Random;
  /** Link properties for every pair without its own `setLink`. */
  defaultLink?: LinkOptions;
}

function normalise(options: LinkOptions) {
  for (const key of ['loss', 'duplicate', 'reorder'] as const) {
    const value = options[key];
    if (value !== undefined && (!(value >= 0) || value > 1)) throw new InvalidArgumentError(`LinkOptions.${key} must be a probability in [0, 1], got ${value}`);
  }
  for (const key of ['latencyMs', 'jitterMs', 'reorderDelayMs'] as const) {
    const value = options[key];
    if (value !== undefined && !(value >= 0 && Number.isFinite(value))) throw new InvalidArgumentError(`LinkOptions.${key} must be a finite number >= 0, got ${value}`);
  }
  for (const key of ['bandwidthBytesPerSecond', 'mtu'] as const) {
    const value = options[key];
    if (value !== undefined && !(value > 0)) throw new InvalidArgumentError(`LinkOptions.${key} must be > 0, got ${value}`);
  }
  return {
    latencyMs: options.latencyMs ?? 0,
    jitterMs: options.jitterMs ?? 0,
    loss: options.loss ?? 0,
    duplicate: options.duplicate ?? 0,
    reorder: options.reorder ?? 0,
    reorderDelayMs: options.reorderDelayMs ?? 20,
    bandwidthBytesPerSecond: options.bandwidthBytesPerSecond,
    mtu: options.mtu ?? Number.POSITIVE_INFINITY,
  };
}

/** The network. Create transports on it with `memoryTransport(network, ...)`. */
export class MemoryNetwork {
  readonly clock: VirtualClock;
  readonly random: Random;
  private defaultLink: ReturnType<typeof normalise>;
  private readonly links = new Map<string, LinkState>();
  private readonly defaultLinkState = new Map<string, number>();
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly nats = new Map<string, Nat>();
  private readonly natOf = new Map<string, Nat>();
  private partitions: [Set<string>, Set<string>][] = [];
  private nextHost = 1;
  private readonly portsInUse = new Map<string, number>();
  readonly stats: NetworkStats = { sent: 0, delivered: 0, bytesDelivered: 0, duplicated: 0, dropped: {} };
  private readonly observers = new Set<(event: NetworkEvent) => void>();

  constructor(options: MemoryNetworkOptions) {
    this.clock = options.clock;
    this.random = options.random ?? seededRandom(1);
    this.defaultLink = normalise(options.defaultLink ?? {});
  }

  /** A fresh public IPv4 host (10.x.y.z). */
  allocateHost(): string {
    const n = this.nextHost++;
    if (n >= 2 ** 24 - 2) throw new InvalidArgumentError('MemoryNetwork: out of hosts');
    return `10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`;
  }

  setDefaultLink(options: LinkOptions): void {
    this.defaultLink = normalise(options);
  }

  /**
   * Properties of the link between two hosts, in both directions, or only from `hostA` to
   * `hostB` when `oneWay`. Hosts are as seen on the wire: for a node behind a NAT, the
   * NAT's public host (links between hosts behind the same NAT use the private hosts).
   */
  setLink(hostA: string, hostB: string, options: LinkOptions, oneWay = false): void {
    this.links.set(`${hostA}>${hostB}`, { options: normalise(options), nextFreeAt: 0 });
    if (!oneWay) this.links.set(`${hostB}>${hostA}`, { options: normalise(options), nextFreeAt: 0 });
  }

  /** Datagrams between a host of `groupA` and one of `groupB` are dropped until `heal()`. */
  partition(groupA: readonly string[], groupB: readonly string[]): void {
    this.partitions.push([new Set(groupA), new Set(groupB)]);
  }

  heal(): void {
    this.partitions = [];
  }

  /**
   * Calls `listener` for every delivery and every drop, in order: the delivery trace,
   * identical between runs with the same seed. Returns a function that unsubscribes.
   */
  observe(listener: (event: NetworkEvent) => void): () => void {
    this.observers.add(listener);
    return () => void this.observers.delete(listener);
  }

  createNat(options: NatOptions): Nat {
    const publicHost = options.publicHost ?? this.allocateHost();
    if (this.nats.has(publicHost)) throw new InvalidArgumentError(`MemoryNetwork: ${publicHost} already has a NAT`);
    // Each NAT gets its own /24 in 172.16.0.0/12 (16 x 250 of them), so private hosts stay unique.
    if (this.nats.size >= 16 * 250) throw new InvalidArgumentError('MemoryNetwork: at most 4,000 NATs per network');
    const nat = new Nat(this.clock, { ...options, publicHost }, this.nats.size);
    this.nats.set(publicHost, nat);
    return nat;
  }

  /** Binds an endpoint; port 0 picks a free one. Returns the bound address. */
  bind(host: string, port: number, endpoint: Endpoint, nat?: Nat): Address {
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InvalidArgumentError(`MemoryNetwork.bind: port must be 0..65535, got ${port}`);
    let chosen = port;
    if (chosen === 0) {
      let next = this.portsInUse.get(host) ?? 40_000;
      for (let tries = 0; this.endpoints.has(`${host}:${next}`); tries++) {
        if (tries > 65_535) throw new InvalidArgumentError(`MemoryNetwork.bind: no free port on ${host}`);
        next = next >= 65_535 ? 1024 : next + 1;
      }
      chosen = next;
      this.portsInUse.set(host, next >= 65_535 ? 1024 : next + 1);
    }
    const key = `${host}:${chosen}`;
    if (this.endpoints.has(key)) throw new InvalidArgumentError(`MemoryNetwork: ${key} is already bound`);
    this.endpoints.set(key, endpoint);
    if (nat) this.natOf.set(host, nat);
    return { host, port: chosen };
  }

  unbind(address: Address): void {
    this.endpoints.delete(`${address.host}:${address.port}`);
  }

  /** Number of bound endpoints. */
  get size(): number {
    return this.endpoints.size;
  }

  private drop(reason: string, from: Address, to: Address, bytes: number): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
    if (this.observers.size > 0) this.notify({ at: this.clock.now(), kind: 'drop', reason, from, to, bytes });
  }

  private notify(event: NetworkEvent): void {
    for (const listener of [...this.observers]) listener(event);
  }

  private blocked(a: string, b: string): boolean {
    for (const [x, y] of this.partitions) {
      if ((x.has(a) && y.has(b)) || (y.has(a) && x.has(b))) return true;
    }
    return false;
  }

  private link(fromHost: string, toHost: string): LinkState {
    const specific = this.links.get(`${fromHost}>${toHost}`);
    if (specific) return specific;
    return { options: this.defaultLink, nextFreeAt: this.defaultLinkState.get(`${fromHost}>${toHost}`) ?? 0 };
  }

  /** Sends a datagram from a bound endpoint. The payload is copied. */
  send(from: Address, to: Address, data: Uint8Array): void {
    this.stats.sent++;
    const bytes = data.byteLength;
    const senderNat = this.natOf.get(from.host);
    const targetNat = this.natOf.get(to.host);
    if (targetNat !== undefined && targetNat !== senderNat) {
      // A private address is only reachable from behind the same NAT.
      this.drop('unroutable', from, to, bytes);
      return;
    }
    let wireFrom = from;
    if (senderNat && targetNat !== senderNat) {
      if (to.host === senderNat.publicHost && !senderNat.hairpin) {
        this.drop('hairpin', from, to, bytes);
        return;
      }
      wireFrom = senderNat.outbound(from, to);
    }
    if (this.blocked(from.host, to.host) || (wireFrom !== from && this.blocked(wireFrom.host, to.host))) {
      this.drop('partition', wireFrom, to, bytes);
      return;
    }
    const state = this.link(wireFrom.host, to.host);
    const link = state.options;
    if (bytes > link.mtu) {
      this.drop('mtu', wireFrom, to, bytes);
      return;
    }
    const random = this.random;
    if (link.loss > 0 && random.float() < link.loss) {
      this.drop('loss', wireFrom, to, bytes);
      return;
    }
    const now = this.clock.now();
    let departure = now;
    if (link.bandwidthBytesPerSecond !== undefined) {
      const start = Math.max(now, state.nextFreeAt);
      departure = start + (data.byteLength / link.bandwidthBytesPerSecond) * 1000;
      state.nextFreeAt = departure;
      if (!this.links.has(`${wireFrom.host}>${to.host}`)) this.defaultLinkState.set(`${wireFrom.host}>${to.host}`, departure);
    }
    const copies = link.duplicate > 0 && random.float() < link.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const payload = data.slice();
    for (let i = 0; i < copies; i++) {
      let delayMs = departure - now + link.latencyMs;
      if (link.jitterMs > 0) delayMs += random.float() * link.jitterMs;
      if (link.reorder > 0 && random.float() < link.reorder) delayMs += (1 - random.float()) * link.reorderDelayMs;
      if (delayMs <= 0) delayMs = 0;
      this.clock.setTimeout(() => this.arrive(wireFrom, to, payload), delayMs);
    }
  }

  private arrive(from: Address, to: Address, data: Uint8Array): void {
    let target = to;
    const nat = this.nats.get(to.host);
    if (nat) {
      const inside = nat.inbound(to, from);
      if (!inside) {
        this.drop('nat-filtered', from, to, data.byteLength);
        return;
      }
      target = inside;
    }
    const endpoint = this.endpoints.get(`${target.host}:${target.port}`);
    if (!endpoint) {
      this.drop('unreachable', from, target, data.byteLength);
      return;
    }
    this.stats.delivered++;
    this.stats.bytesDelivered += data.byteLength;
    if (this.observers.size > 0) this.notify({ at: this.clock.now(), kind: 'deliver', from, to: target, bytes: data.byteLength });
    endpoint.deliver(data, from);
  }
}
