/**
 * `@deccom/kademlia/simulation`: whole Kademlia networks on the in-memory network with a
 * virtual clock, in one process — for tests, benchmarks and experiments.
 *
 * @example
 * ```ts
 * const sim = await buildNetwork(1000, { link: { latencyMs: 50, jitterMs: 10 } });
 * const results = await runLookups(sim, 500);
 * await stopAll(sim);
 * ```
 */
import { createNode, Identity, seededRandom, type NodeId } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport, type LinkOptions } from '@deccom/core/testing';
import { kademlia, type KademliaOptions, type LookupStats } from './index.js';

export function makeNode(network: MemoryNetwork, clock: VirtualClock, index: number, options: KademliaOptions) {
  return createNode({
    clock,
    random: index,
    identity: Identity.fromString(`node-${index}`),
    layers: [memoryTransport(network), kademlia(options)],
  });
}

export type SimNode = ReturnType<typeof makeNode>;

export interface Simulation {
  clock: VirtualClock;
  network: MemoryNetwork;
  nodes: SimNode[];
  alive: SimNode[];
  lookups: LookupStats[];
}

export async function buildNetwork(size: number, options: { link?: LinkOptions; kademlia?: KademliaOptions; joinBatch?: number; seed?: number; clockResolutionMs?: number } = {}): Promise<Simulation> {
  const clock = new VirtualClock(0, options.clockResolutionMs ?? 1);
  const network = new MemoryNetwork({ clock, random: seededRandom(options.seed ?? 1), defaultLink: options.link ?? { latencyMs: 50, jitterMs: 10 } });
  const lookups: LookupStats[] = [];
  const config: KademliaOptions = { ...options.kademlia, onLookup: (s) => void lookups.push(s) };
  const seed = makeNode(network, clock, 0, config);
  await seed.start();
  const nodes: SimNode[] = [seed];
  const batch = options.joinBatch ?? 50;
  for (let i = 1; i < size; i++) {
    const node = makeNode(network, clock, i, { ...config, bootstrap: [seed.localAddress()] });
    nodes.push(node);
    await node.start();
    if (i % batch === 0) await clock.advance(200);
  }
  await clock.advance(3000);
  return { clock, network, nodes, alive: [...nodes], lookups };
}

/** Runs `count` lookups from random live nodes for random live targets; returns per-lookup results. */
export async function runLookups(sim: Simulation, count: number, seed = 5, parallel = 20): Promise<{ ok: boolean; stats?: LookupStats }[]> {
  const random = seededRandom(seed);
  const results: { ok: boolean; stats?: LookupStats }[] = [];
  for (let done = 0; done < count; done += parallel) {
    const wave: Promise<void>[] = [];
    for (let j = 0; j < Math.min(parallel, count - done); j++) {
      const from = sim.alive[random.int(sim.alive.length)]!;
      let target: SimNode = from;
      while (target === from) target = sim.alive[random.int(sim.alive.length)]!;
      wave.push(
        lookup(from, target.id).then(
          (stats) => void results.push({ ok: true, stats }),
          () => void results.push({ ok: false }),
        ),
      );
    }
    const all = Promise.all(wave);
    let settled = false;
    void all.then(() => (settled = true));
    await sim.clock.runUntil(() => settled, { maxMs: 60_000, stepMs: 50 });
    await all;
  }
  return results;

  async function lookup(from: SimNode, id: NodeId): Promise<LookupStats | undefined> {
    const start = sim.lookups.length;
    const peer = await from.findPeer(id);
    if (!peer.id.equals(id)) throw new Error('wrong peer');
    // The stats entry of this lookup (if it was not answered from the table).
    return sim.lookups.slice(start).find((s) => s.target === id.hex);
  }
}

export async function stopAll(sim: Simulation): Promise<void> {
  for (const node of sim.nodes) await node.stop();
}
