/**
 * `@deccom/kademlia/simulation`: whole Kademlia networks on core's in-memory network
 * with a virtual clock, in one process, for tests, benchmarks and experiments.
 *
 * @example
 * ```ts
 * import { buildNetwork, runLookups, churn, stopAll } from '@deccom/kademlia/simulation';
 *
 * const sim = await buildNetwork(1000); // 5 seeds, links of 50 +/- 10 ms
 * const before = await runLookups(sim, 500);
 * await churn(sim, 0.25); // a quarter leave without warning, as many join
 * const after = await runLookups(sim, 500);
 * await stopAll(sim);
 * ```
 */
import { createNode, Identity, seededRandom, type Address } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport, type LinkOptions } from '@deccom/core/testing';
import { kademlia, type KademliaOptions, type LookupStats } from './index.js';

export interface SimulationOptions {
  /** Seed nodes everybody else bootstraps from. Default 5. */
  seeds?: number;
  /** Link properties. Default 40 ms + up to 20 ms jitter: 50 +/- 10 ms one way. */
  link?: LinkOptions;
  /** Options of every node's Kademlia layer (bootstrap and onLookup are set per node). */
  kademlia?: KademliaOptions;
  /** Nodes started together before the clock moves on. Default 100. */
  joinBatch?: number;
  /** Virtual time between batches. Default 200 ms. */
  joinGapMs?: number;
  /** Virtual time to settle after the last node joined. Default 5,000 ms. */
  settleMs?: number;
  /** Seed of the network's and the nodes' randomness. Default 1. */
  seed?: number;
  /** Virtual clock resolution (see VirtualClock). Default 1 ms. */
  clockResolutionMs?: number;
}

export function makeNode(network: MemoryNetwork, clock: VirtualClock, name: string, options: KademliaOptions, seed: number) {
  return createNode({
    clock,
    random: seed,
    identity: Identity.fromString(name),
    layers: [memoryTransport(network), kademlia(options)],
  });
}

export type SimNode = ReturnType<typeof makeNode>;

export interface Simulation {
  readonly clock: VirtualClock;
  readonly network: MemoryNetwork;
  /** Every node ever created (stopped ones included). */
  readonly nodes: SimNode[];
  /** Nodes running now. */
  alive: SimNode[];
  readonly seeds: SimNode[];
  /** The last lookup statistics per `${from id}:${target hex}` (only lookups that went to the network). */
  readonly lastLookup: Map<string, LookupStats>;
  readonly options: SimulationOptions;
  /** Nodes created so far (names are `node-<n>`). */
  created: number;
}

export interface LookupResult {
  ok: boolean;
  /** The target was in the searcher's own table: no messages, no rounds. */
  fromTable: boolean;
  stats: LookupStats | undefined;
}

function addNode(sim: Simulation, bootstrap: readonly Address[]): SimNode {
  const index = sim.created++;
  const seed = (sim.options.seed ?? 1) * 1_000_003 + index;
  const name = `node-${index}`;
  const id = Identity.fromString(name).id.hex;
  const options: KademliaOptions = {
    ...sim.options.kademlia,
    bootstrap,
    onLookup: (stats) => {
      sim.lastLookup.set(`${id}:${stats.target}`, stats);
      sim.options.kademlia?.onLookup?.(stats);
    },
  };
  const node = makeNode(sim.network, sim.clock, name, options, seed);
  sim.nodes.push(node);
  sim.alive.push(node);
  return node;
}

/**
 * A network of `size` nodes: the seeds start first and know each other; then the rest
 * join in batches, each bootstrapping from every seed; then the clock runs `settleMs`.
 */
export async function buildNetwork(size: number, options: SimulationOptions = {}): Promise<Simulation> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`buildNetwork: size must be a positive integer, got ${size}`);
  const clock = new VirtualClock(0, options.clockResolutionMs ?? 1);
  const network = new MemoryNetwork({ clock, random: seededRandom(options.seed ?? 1), defaultLink: options.link ?? { latencyMs: 40, jitterMs: 20 } });
  const sim: Simulation = { clock, network, nodes: [], alive: [], seeds: [], lastLookup: new Map(), options, created: 0 };
  const seedCount = Math.min(size, options.seeds ?? 5);
  const seedAddresses: Address[] = [];
  for (let i = 0; i < seedCount; i++) {
    const node = addNode(sim, [...seedAddresses]);
    await node.start();
    sim.seeds.push(node);
    seedAddresses.push(node.localAddress());
  }
  await clock.advance(options.joinGapMs ?? 200);
  const batch = options.joinBatch ?? 100;
  for (let i = seedCount; i < size; i++) {
    await addNode(sim, seedAddresses).start();
    if ((i - seedCount + 1) % batch === 0) await clock.advance(options.joinGapMs ?? 200);
  }
  await clock.advance(options.settleMs ?? 5000);
  return sim;
}

/**
 * `count` lookups, `parallel` at a time, each of a random live node's id from another
 * random live node. Every lookup gets up to 60 s of virtual time.
 */
export async function runLookups(sim: Simulation, count: number, seed = 5, parallel = 20): Promise<LookupResult[]> {
  const random = seededRandom(seed);
  const results: LookupResult[] = [];
  for (let done = 0; done < count; done += parallel) {
    const wave: Promise<void>[] = [];
    for (let j = 0; j < Math.min(parallel, count - done); j++) {
      const from = sim.alive[random.int(sim.alive.length)]!;
      let target = from;
      for (let tries = 0; target === from && tries < 100; tries++) target = sim.alive[random.int(sim.alive.length)]!;
      const fromTable = from.getPeer(target.id) !== undefined;
      const key = `${from.id.hex}:${target.id.hex}`;
      sim.lastLookup.delete(key);
      wave.push(
        from.findPeer(target.id).then(
          (peer) => void results.push({ ok: peer.id.equals(target.id), fromTable, stats: sim.lastLookup.get(key) }),
          () => void results.push({ ok: false, fromTable, stats: sim.lastLookup.get(key) }),
        ),
      );
    }
    let settled = false;
    const all = Promise.all(wave).then(() => void (settled = true));
    await sim.clock.runUntil(() => settled, { maxMs: 60_000, stepMs: 50 });
    await all;
  }
  return results;
}

/**
 * Churn: `fraction` of the live nodes leave at once without a word (their transports
 * vanish), and as many new nodes join, each through three random live nodes. Then the
 * clock runs `settleMs` (default 5,000 ms). Newcomers bootstrap from nodes that were
 * there before the churn.
 */
export async function churn(sim: Simulation, fraction: number, seed = 7, settleMs = 5000): Promise<{ left: number; joined: number }> {
  const random = seededRandom(seed);
  const leaving = Math.floor(sim.alive.length * fraction);
  for (let i = 0; i < leaving; i++) {
    const [gone] = sim.alive.splice(random.int(sim.alive.length), 1);
    await gone!.stop();
  }
  const batch = sim.options.joinBatch ?? 100;
  // Newcomers bootstrap from nodes that were there before them (as a bootstrap list would name).
  const settled = sim.alive.slice();
  for (let i = 0; i < leaving; i++) {
    const bootstrap = Array.from({ length: Math.min(3, settled.length) }, () => settled[random.int(settled.length)]!.localAddress());
    await addNode(sim, bootstrap).start();
    if ((i + 1) % batch === 0) await sim.clock.advance(sim.options.joinGapMs ?? 200);
  }
  await sim.clock.advance(settleMs);
  return { left: leaving, joined: leaving };
}

export async function stopAll(sim: Simulation): Promise<void> {
  for (const node of sim.alive) await node.stop();
  sim.alive = [];
}
