/**
 * The DecCom demo: several nodes on loopback, each with its own composed stack,
 * exchanging datagrams and pings, printing what happens.
 *
 * Run it with `npx -y pnpm@10.34.9 demo` from the repository root.
 */
import { createNode, Identity, type Address } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty } from '@deccom/faulty';
import { delay } from '@deccom/delay';
import { keepalive } from '@deccom/keepalive';
import { kademlia } from '@deccom/kademlia';
import { sha256, utf8Encode } from '@deccom/core';

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

console.log('\nDiscovery: eight nodes join a Kademlia network through one bootstrap node.');
const discoveryStack = (bootstrap: Address[]) => [udp({ host: '127.0.0.1' }), keepalive({ intervalMs: 5000 }), kademlia({ bootstrap })] as const;
const seed = createNode({ identity: Identity.generate(), layers: discoveryStack([]) });
await seed.start();
const members = [seed];
for (let i = 0; i < 7; i++) {
  const member = createNode({ identity: Identity.generate(), layers: discoveryStack([seed.localAddress()]) });
  await member.start();
  members.push(member);
}
await sleep(1500);
for (const [i, member] of members.entries()) console.log(`  node ${i} (${member.id.short}…) knows ${member.getPeers().length} peers`);
const [first, last] = [members[1]!, members[7]!];
const found = await first.findPeer(last.id);
console.log(`  node 1 looked up node 7 by id: ${found.id.short}… at ${at(found.address)}`);
const greeting = new Promise<string>((resolve) => last.handle('datagram', (data) => resolve(decode(data))));
first.sendDatagram(found.address, text.encode('hello node 7, I found you by id'));
console.log(`  node 7 received: "${await greeting}"`);
const topic = sha256(utf8Encode('demo/chat-room'));
await members[3]!.announce(topic);
await members[5]!.announce(topic);
const providers = await members[6]!.lookupTopic(topic);
console.log(`  topic 'demo/chat-room' is provided by: ${providers.map((p) => p.id.short + '…').join(', ')} (nodes 3 and 5)`);
console.log('\nnode 1\'s stack:');
console.log(first.mermaid());
for (const member of members) await member.stop();
console.log('\nAll nodes stopped; nothing is left running.');
