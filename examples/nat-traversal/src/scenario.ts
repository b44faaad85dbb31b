/**
 * Two nodes behind separate NATs connect through a public node, with the stack
 * `transport > holepunch > kademlia`: Kademlia finds the peer (its address as the public
 * node saw it, i.e. the peer's NAT mapping) and tells hole punching who introduced it;
 * the first datagram to that address is queued while both sides punch (each probes the
 * other, opening its own NAT), then flows directly. When both NATs are symmetric, punching
 * cannot work and the traffic goes through the introducer as a relay. A control run with
 * two symmetric NATs and no hole punching layer shows the datagram does not get through.
 * (Between two cone NATs, Kademlia's own requests in both directions may open the path by
 * chance; hole punching makes it happen on purpose, and for any pair of NAT types.)
 *
 * Runs on core's in-memory network with emulated NATs and a virtual clock, so it takes
 * milliseconds and gives the same result every time. `scripts/netns/holepunch-nat.sh`
 * does the same through real Linux NATs (as root).
 */
import { createNode, Identity, utf8Decode, utf8Encode, type Address } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport, type NatType } from '@deccom/core/testing';
import { holepunch, type ConnectOutcome } from '@deccom/holepunch';
import { kademlia } from '@deccom/kademlia';

const MAX_VIRTUAL_MS = 30_000;

export interface NatTraversalResult {
  natA: NatType;
  natB: NatType;
  /** Whether the hole punching layer was in the stack. */
  holepunch: boolean;
  /** Where A found B (B's NAT mapping as the introducer saw it), and B's private address. */
  foundAddress: Address | undefined;
  privateAddress: Address;
  /** A's outcome for its first datagram to B (holepunch only). */
  outcome: ConnectOutcome | undefined;
  /** B received A's datagram; A received B's answer. */
  delivered: boolean;
  answered: boolean;
  /** Virtual ms from A's send to B's answer arriving at A. */
  roundTripMs: number | undefined;
}

async function pair(natA: NatType, natB: NatType, withHolepunch: boolean, seed: number): Promise<NatTraversalResult> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 20 } });
  const introducer = createNode({
    identity: Identity.fromString('introducer'),
    clock,
    random: `${seed}-introducer`,
    // Every node runs the same stack (hole punching frames what passes through it).
    layers: withHolepunch ? [memoryTransport(network), holepunch(), kademlia()] : [memoryTransport(network), kademlia()],
  });
  await introducer.start();
  const bootstrap = [introducer.localAddress()];
  const behindNat = (name: string, type: NatType) =>
    withHolepunch
      ? createNode({ identity: Identity.fromString(name), clock, random: `${seed}-${name}`, layers: [memoryTransport(network, { nat: network.createNat({ type }) }), holepunch(), kademlia({ bootstrap })] })
      : createNode({ identity: Identity.fromString(name), clock, random: `${seed}-${name}`, layers: [memoryTransport(network, { nat: network.createNat({ type }) }), kademlia({ bootstrap })] });
  const a = behindNat('a', natA);
  const b = behindNat('b', natB);
  const nodes = [introducer, a, b];
  // Outcomes of a's punches (kademlia's own traffic to b may start the punch before the app sends).
  const outcomes: ConnectOutcome[] = [];
  if (withHolepunch) (a as unknown as { on(event: 'punch-outcome', listener: (o: ConnectOutcome) => void): void }).on('punch-outcome', (o) => outcomes.push(o));
  try {
    await a.start();
    await b.start();
    await clock.advance(2_000); // both join through the introducer

    let foundAddress: Address | undefined;
    const lookup = a.findPeer(b.id).then(
      (peer) => void (foundAddress = peer.address),
      () => undefined, // not found: reported as foundAddress undefined
    );
    let looked = false;
    void lookup.then(() => (looked = true));
    await clock.runUntil(() => looked, { maxMs: MAX_VIRTUAL_MS, stepMs: 10 });

    let delivered = false;
    let answered = false;
    b.handle('datagram', (data: Uint8Array, from: Address) => {
      if (utf8Decode(data) !== 'hello through the NATs') return;
      delivered = true;
      b.sendDatagram(from, utf8Encode('hello back'));
    });
    a.handle('datagram', (data: Uint8Array) => void (answered ||= utf8Decode(data) === 'hello back'));
    let roundTripMs: number | undefined;
    if (foundAddress) {
      const sentAt = clock.now();
      a.sendDatagram(foundAddress, utf8Encode('hello through the NATs'));
      await clock.runUntil(() => answered, { maxMs: withHolepunch ? MAX_VIRTUAL_MS : 5_000, stepMs: 5 });
      if (answered) roundTripMs = clock.now() - sentAt;
    }
    const sameAddress = (x: Address, y: Address | undefined) => y !== undefined && x.host === y.host && x.port === y.port;
    const outcome = outcomes.find((candidate) => sameAddress(candidate.address, foundAddress));
    return { natA, natB, holepunch: withHolepunch, foundAddress, privateAddress: b.localAddress(), outcome, delivered, answered, roundTripMs };
  } finally {
    for (const node of nodes) await node.stop();
    await clock.advance(1_000);
  }
}

const describeAddress = (address: Address | undefined): string => (address ? `${address.host}:${address.port}` : 'none');

export async function natTraversal(log: (line: string) => void): Promise<NatTraversalResult[]> {
  const runs: [NatType, NatType, boolean][] = [
    ['port-restricted', 'port-restricted', true],
    ['symmetric', 'address-restricted', true],
    ['symmetric', 'symmetric', false],
    ['symmetric', 'symmetric', true],
  ];
  const results: NatTraversalResult[] = [];
  for (const [index, [natA, natB, withHolepunch]] of runs.entries()) {
    const result = await pair(natA, natB, withHolepunch, index + 1);
    results.push(result);
    const stack = withHolepunch ? 'memory transport > holepunch > kademlia' : 'memory transport > kademlia (no holepunch)';
    log(`${natA} NAT <-> ${natB} NAT, ${stack}:`);
    log(`  a found b at ${describeAddress(result.foundAddress)} (b's NAT mapping; b itself is at ${describeAddress(result.privateAddress)})`);
    const how = result.outcome ? `${result.outcome.mechanism} after ${result.outcome.attempts} attempt(s)${result.outcome.reason ? ` (${result.outcome.reason})` : ''}` : 'no hole punching';
    const got = result.answered ? `answered in ${result.roundTripMs} ms (virtual)` : result.delivered ? 'delivered, answer lost' : 'datagram did not get through';
    log(`  ${how}; ${got}`);
  }
  return results;
}
