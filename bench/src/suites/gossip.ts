/**
 * Suite `gossip`: gossip and BigGossip networks of 100 and 1,000 nodes bootstrapped from
 * one seed on the in-memory network (virtual clock, 50 +/- 10 ms links): intervals until
 * BigGossip nodes know >= 95% of the others, or until the gossip membership graph is
 * connected with every node knowing at least its fan-out; FIND success and messages per
 * FIND; intervals until a departed node is dropped by everyone.
 *
 * `BENCH_GOSSIP_SIZES=100` limits the sizes; `BENCH_GOSSIP_FINDS` sets the FINDs per
 * network (default 100). Smoke mode (BENCH_SMOKE=1): 20 nodes, 10 FINDs, and the
 * convergence acceptance that normally needs 1,000 nodes is computed for them too.
 */
import { createNode, Identity, seededRandom, type NodeId } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { gossip } from '@deccom/gossip';
import { biggossip } from '@deccom/biggossip';
import { accept, knob, median, printTable, SMOKE, writeResults, type Acceptance } from '../report.js';

const SIZES = (process.env['BENCH_GOSSIP_SIZES'] ?? (SMOKE ? '20' : '100,1000')).split(',').map(Number);
const FINDS = knob('BENCH_GOSSIP_FINDS', 100, 10);
/** The BigGossip convergence target is stated for networks from this size up. */
const CONVERGENCE_TARGET_FROM = SMOKE ? 0 : 1000;
const INTERVAL_MS = 1000;
const FAN_OUT = 5;
type Protocol = 'gossip' | 'biggossip';

async function build(protocol: Protocol, size: number) {
  const clock = new VirtualClock(0, 1);
  const network = new MemoryNetwork({ clock, random: seededRandom(size), defaultLink: { latencyMs: 50, jitterMs: 10 } });
  const layer = (bootstrap: { host: string; port: number }[]) =>
    protocol === 'gossip' ? gossip({ bootstrap, intervalMs: INTERVAL_MS }) : biggossip({ bootstrap, intervalMs: INTERVAL_MS });
  const seed = createNode({ clock, random: 0, identity: Identity.fromString(`${protocol}-0`), layers: [memoryTransport(network), layer([])] });
  await seed.start();
  const nodes = [seed];
  for (let i = 1; i < size; i++) {
    const node = createNode({ clock, random: i, identity: Identity.fromString(`${protocol}-${i}`), layers: [memoryTransport(network), layer([seed.localAddress()])] });
    await node.start();
    nodes.push(node);
  }
  return { clock, network, nodes };
}

type Sim = Awaited<ReturnType<typeof build>>;

function connected(nodes: Sim['nodes']): boolean {
  const index = new Map(nodes.map((n, i) => [n.id.hex, i]));
  const adjacency = nodes.map(() => [] as number[]);
  nodes.forEach((n, i) =>
    n.getPeers().forEach((p) => {
      const j = index.get(p.id.hex);
      if (j !== undefined) {
        adjacency[i]!.push(j);
        adjacency[j]!.push(i);
      }
    }),
  );
  const seen = new Set([0]);
  const stack = [0];
  while (stack.length) {
    for (const j of adjacency[stack.pop()!]!) {
      if (seen.has(j)) continue;
      seen.add(j);
      stack.push(j);
    }
  }
  return seen.size === nodes.length;
}

const messagesOut = (sim: Sim): number => sim.nodes.reduce((sum, n) => sum + (n.state === 'started' ? (Object.values(n.counters())[1]?.['messages-out'] ?? 0) : 0), 0);

const figures: Record<string, unknown> = { intervalMs: INTERVAL_MS, fanOut: FAN_OUT };
const rows: Record<string, unknown>[] = [];
const acceptance: Acceptance[] = [];

for (const size of SIZES) {
  for (const protocol of ['gossip', 'biggossip'] as Protocol[]) {
    const started = performance.now();
    const sim = await build(protocol, size);
    const converged = () =>
      protocol === 'biggossip'
        ? sim.nodes.every((n) => n.getPeers().length >= 0.95 * (size - 1))
        : connected(sim.nodes) && sim.nodes.every((n) => n.getPeers().length >= FAN_OUT);
    const maxIntervals = 60;
    let intervals = 0;
    while (!converged() && intervals < maxIntervals) {
      await sim.clock.advance(INTERVAL_MS);
      intervals++;
    }
    const convergedIn = converged() ? intervals : Number.POSITIVE_INFINITY;
    const knowledge = sim.nodes.map((n) => n.getPeers().length / (size - 1));

    // FIND: FINDS lookups, preferring targets the origin does not know.
    const random = seededRandom(size + 7);
    let found = 0;
    let attempted = 0;
    let floodedFinds = 0;
    const perFind: number[] = [];
    for (let i = 0; i < FINDS; i++) {
      const from = sim.nodes[random.int(size)]!;
      let to = from;
      for (let tries = 0; tries < 50 && (to === from || from.getPeer(to.id)); tries++) to = sim.nodes[random.int(size)]!;
      if (to === from) continue;
      attempted++;
      const local = from.getPeer(to.id) !== undefined;
      const before = messagesOut(sim);
      let settled = false;
      const result = from
        .findPeer(to.id as NodeId)
        .then(
          (p) => p.id.equals(to.id),
          () => false,
        )
        .finally(() => (settled = true));
      await sim.clock.runUntil(() => settled, { maxMs: 6000, stepMs: 20 });
      if (await result) found++;
      if (!local) {
        floodedFinds++;
        perFind.push(messagesOut(sim) - before);
      }
    }

    // Departure: a node stops; intervals until nobody lists it.
    const leaving = sim.nodes[Math.floor(size / 2)]!;
    await leaving.stop();
    let departureIntervals = 0;
    const knowers = () => sim.nodes.filter((n) => n !== leaving && n.state === 'started' && n.getPeer(leaving.id)).length;
    while (knowers() > 0 && departureIntervals < 20) {
      await sim.clock.advance(INTERVAL_MS / 10);
      departureIntervals += 0.1;
    }
    const departure = knowers() === 0 ? Math.round(departureIntervals * 10) / 10 : Number.POSITIVE_INFINITY;
    for (const n of sim.nodes) await n.stop();

    const figure = {
      nodes: size,
      convergenceIntervals: convergedIn,
      knowledgeMedian: median(knowledge),
      knowledgeMin: Math.min(...knowledge),
      findSuccessRate: found / attempted,
      finds: attempted,
      findsThatFlooded: floodedFinds,
      messagesPerFloodedFindMedian: perFind.length ? median(perFind) : 0,
      departureDroppedByAllIntervals: departure,
      wallSeconds: (performance.now() - started) / 1000,
    };
    figures[`${protocol}${size}`] = figure;
    rows.push({ protocol, nodes: size, 'converged (intervals)': convergedIn, 'knows (median)': figure.knowledgeMedian, 'FIND ok': figure.findSuccessRate, 'msgs/flooded FIND': figure.messagesPerFloodedFindMedian, 'departed dropped (intervals)': departure, 'wall s': figure.wallSeconds });
    acceptance.push(accept(`${protocol} ${size} nodes: FIND success`, found / attempted, 1));
    acceptance.push(accept(`${protocol} ${size} nodes: departed node dropped by all (intervals)`, departure, 3, '<='));
    if (protocol === 'biggossip' && size >= CONVERGENCE_TARGET_FROM) acceptance.push(accept(`biggossip ${size} nodes: intervals until all know >= 95%`, convergedIn, 2 * Math.log2(size), '<='));
  }
}
printTable('gossip and BigGossip (virtual clock, 50 +/- 10 ms links, 1 s intervals)', rows);
writeResults('gossip', figures, acceptance);
