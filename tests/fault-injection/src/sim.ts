/**
 * Helpers for fault-injection runs on core's in-memory network with a virtual clock:
 * Kademlia networks whose nodes can crash and come back with the same identity, and
 * lookups judged against where each node lives now.
 */
import { createNode, Identity, seededRandom, type Clock } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { keepalive, type KeepaliveOptions } from '@deccom/keepalive';
import { kademlia, type KademliaOptions } from '@deccom/kademlia';

export interface SimOptions {
  size: number;
  seed?: number;
  kademlia?: KademliaOptions;
  keepalive?: KeepaliveOptions;
  /** One-way link latency in virtual ms. Default 20. */
  latencyMs?: number;
  /** The virtual clock driving the network (default: a new one at 0 with 1 ms resolution). */
  clock?: VirtualClock;
  /** The clock the nodes read (default: the virtual clock itself). */
  nodeClock?: (clock: VirtualClock) => Clock;
}

function makeNode(network: MemoryNetwork, clock: Clock, index: number, host: string, options: SimOptions, bootstrap: { host: string; port: number }[], generation: number) {
  return createNode({
    clock,
    random: (options.seed ?? 1) * 100_003 + index * 101 + generation,
    identity: Identity.fromString(`fault-${index}`),
    layers: [memoryTransport(network, { host, port: 7000 }), keepalive(options.keepalive), kademlia({ ...options.kademlia, bootstrap })],
  });
}
export type SimNode = ReturnType<typeof makeNode>;

export interface SimSlot {
  readonly index: number;
  host: string;
  node: SimNode;
  up: boolean;
  generation: number;
}

export class KademliaSim {
  readonly clock: VirtualClock;
  readonly network: MemoryNetwork;
  readonly slots: SimSlot[] = [];
  readonly random;
  private readonly nodeClock: Clock;

  constructor(readonly options: SimOptions) {
    this.clock = options.clock ?? new VirtualClock(0, 1);
    this.network = new MemoryNetwork({ clock: this.clock, random: seededRandom(options.seed ?? 1), defaultLink: { latencyMs: options.latencyMs ?? 20 } });
    this.random = seededRandom((options.seed ?? 1) + 77);
    this.nodeClock = options.nodeClock ? options.nodeClock(this.clock) : this.clock;
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.options.size; i++) {
      const host = this.network.allocateHost();
      const bootstrap = i === 0 ? [] : [{ host: this.slots[0]!.host, port: 7000 }];
      const node = makeNode(this.network, this.nodeClock, i, host, this.options, bootstrap, 0);
      this.slots.push({ index: i, host, node, up: false, generation: 0 });
      await node.start();
      this.slots[i]!.up = true;
      if (i % 10 === 9) await this.clock.advance(100);
    }
    await this.clock.advance(10_000);
  }

  /** Crash: the node stops answering at once (its transport unbinds; nobody is told). */
  async crash(slot: SimSlot): Promise<void> {
    slot.up = false;
    await slot.node.stop();
  }

  /**
   * Brings a crashed node back with the same identity, on a new host (a new address)
   * unless `sameAddress`, bootstrapping through `through`.
   */
  async restart(slot: SimSlot, options: { sameAddress: boolean; through: SimSlot }): Promise<void> {
    if (!options.sameAddress) slot.host = this.network.allocateHost();
    slot.generation++;
    slot.node = makeNode(this.network, this.nodeClock, slot.index, slot.host, this.options, [{ host: options.through.host, port: 7000 }], slot.generation);
    await slot.node.start();
    slot.up = true;
  }

  hosts(slots: readonly SimSlot[]): string[] {
    return slots.map((slot) => slot.host);
  }

  /**
   * Runs `count` lookups from random nodes of `from` for random nodes of `to` (both up)
   * and returns how many found the target at its current address.
   */
  async lookups(from: readonly SimSlot[], to: readonly SimSlot[], count: number, timeoutMs = 10_000): Promise<{ found: number; total: number; wrongAddress: number; failed: number }> {
    const result = { found: 0, total: 0, wrongAddress: 0, failed: 0 };
    const upFrom = from.filter((slot) => slot.up);
    const upTo = to.filter((slot) => slot.up);
    const runs: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const source = upFrom[this.random.int(upFrom.length)]!;
      let target = upTo[this.random.int(upTo.length)]!;
      if (target === source) target = upTo[(upTo.indexOf(target) + 1) % upTo.length]!;
      if (target === source) continue;
      result.total++;
      runs.push(
        source.node.findPeer(target.node.id, { timeoutMs }).then(
          (peer) => {
            if (peer.address.host === target.host && peer.address.port === 7000) result.found++;
            else result.wrongAddress++;
          },
          () => {
            result.failed++;
          },
        ),
      );
    }
    const all = Promise.all(runs);
    await this.clock.advance(timeoutMs + 1000);
    await all;
    return result;
  }

  async stopAll(): Promise<void> {
    for (const slot of this.slots) if (slot.up) await slot.node.stop();
    for (const slot of this.slots) slot.up = false;
  }
}
