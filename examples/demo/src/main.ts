/**
 * The DecCom demo: several nodes on loopback, each with its own composed stack,
 * exchanging datagrams and pings; a Kademlia network whose traffic is Noise-encrypted;
 * large transfers over TCP and reliable UDP; two nodes behind NATs. Prints what happens.
 *
 * Run it with `npx -y pnpm@10.34.9 demo` from the repository root.
 */
import { createNode, Identity, type Address } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty } from '@deccom/faulty';
import { delay } from '@deccom/delay';
import { kademlia } from '@deccom/kademlia';
import { noise } from '@deccom/noise';
import { sha256, utf8Encode } from '@deccom/core';
import { discoveryScenario } from './discovery-scenario.js';
import { reliableUdpTransfer, tcpStreamTransfer } from './transfers.js';
import { natScenarios } from './nat.js';

const text = new TextEncoder();
const decode = (data: Uint8Array): string => new TextDecoder().decode(data);
const at = (address: Address): string => `${address.host}:${address.port}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

console.log('DecCom demo: three nodes on 127.0.0.1\n');

// Three stacks, bottom to top. Every node's id is SHA-256 of its public identity.
const alice = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' })] });
const bob = createNode({
  identity: Identity.generate(),
  layers: [udp({ host: '127.0.0.1' }), faulty({ seed: 5, outgoing: { loss: 0.3 } }), delay({ latencyMs: 40 })],
});
const carol = createNode({ identity: Identity.fromString('carol'), layers: [udp({ host: '127.0.0.1' }), delay({ latencyMs: 15, bandwidthBytesPerSecond: 100_000 })] });

const nodes = { alice, bob, carol } as const;
for (const [name, node] of Object.entries(nodes)) {
  await node.start();
  node.handle('datagram', (data, from) => console.log(`  ${name.padEnd(5)} <- ${at(from)}: "${decode(data)}"`));
  const layers = node.describe().layers.map((layer) => layer.name).join(' > ');
  console.log(`${name.padEnd(5)} id ${node.id.short}… at ${at(node.localAddress())}  stack: ${layers}`);
}

console.log("\nbob's stack, as it wires itself (Mermaid):\n");
console.log(bob.mermaid());

console.log('\nPings (answered by the UDP layer of each node; pings are transport-level, so faulty and delay above it do not touch them):');
for (const [from, to] of [
  ['alice', 'bob'],
  ['alice', 'carol'],
  ['carol', 'bob'],
] as const) {
  const rtt = await nodes[from].sendPing(nodes[to].localAddress());
  console.log(`  ${from} -> ${to}: ${rtt.toFixed(2)} ms`);
}

console.log('\nDatagrams (bob drops 30% of what he sends, seeded, and delays the rest by 40 ms):');
alice.sendDatagram(bob.localAddress(), text.encode('hello bob, from alice'));
carol.sendDatagram(alice.localAddress(), text.encode('hi alice, carol here'));
for (let i = 1; i <= 5; i++) bob.sendDatagram(carol.localAddress(), text.encode(`bob to carol #${i}`));
await sleep(300);

console.log('\nA ping to an address where nobody listens fails with a typed error:');
try {
  await alice.sendPing({ host: '127.0.0.1', port: 9 }, { timeoutMs: 200 });
} catch (error) {
  console.log(`  ${(error as Error).name} (${(error as { code?: string }).code}): ${(error as Error).message}`);
}

console.log('\nCounters:');
for (const [name, node] of Object.entries(nodes)) console.log(`  ${name}: ${JSON.stringify(node.counters())}`);

for (const node of Object.values(nodes)) await node.stop();

console.log('\nDiscovery, encrypted: eight nodes (udp > keepalive > kademlia > noise) join a Kademlia network through one');
console.log('bootstrap node; a peer joins only after a Noise handshake bound to its identity, and datagrams are encrypted.');
// Swap discovery protocols by changing this one line, e.g. to gossip({ bootstrap }) from @deccom/gossip.
const discovery = (bootstrap: Address[]) => kademlia({ bootstrap });
const { first } = await discoveryScenario(discovery, console.log, () => [noise()]);
console.log('\nnode 1\'s stack:');
console.log(first);

console.log('\nTopics (Kademlia): nodes announce a topic; another node finds who provides it.');
const topicNodes = [createNode({ layers: [udp({ host: '127.0.0.1' }), kademlia()] })];
await topicNodes[0]!.start();
for (let i = 0; i < 5; i++) {
  const node = createNode({ layers: [udp({ host: '127.0.0.1' }), kademlia({ bootstrap: [topicNodes[0]!.localAddress()] })] });
  await node.start();
  topicNodes.push(node);
}
await sleep(1000);
const topic = sha256(utf8Encode('demo/chat-room'));
await topicNodes[2]!.announce(topic);
await topicNodes[4]!.announce(topic);
const providers = await topicNodes[5]!.lookupTopic(topic);
console.log(`  'demo/chat-room' is provided by ${providers.map((p) => p.id.short + '…').join(', ')} (nodes ${topicNodes[2]!.id.short}… and ${topicNodes[4]!.id.short}…)`);
for (const node of topicNodes) await node.stop();

const MiB = 1024 * 1024;
console.log('\nA large transfer between two discovered nodes: udp > kademlia > tcp > noiseStream, one finds the other by id');
console.log('and streams 256 MiB to it (generated and hashed chunk by chunk on both sides, never held whole):');
await tcpStreamTransfer(256 * MiB, console.log);

console.log('\nA reliable 32 MiB message over UDP that loses 2% of its datagrams (udp > faulty > rudp), with progress:');
await reliableUdpTransfer(32 * MiB, 0.02, console.log);

console.log('\nTwo nodes behind separate NATs reach each other through a public introducer (holepunch, simulated NATs):');
await natScenarios(console.log);

console.log('\nAll nodes stopped; nothing is left running.');
