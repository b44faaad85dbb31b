/**
 * Two nodes chat, encrypted, in one process: a bootstrap node starts a Kademlia network;
 * alice and bob join through it, announce a topic, find each other (bob by topic, alice
 * by id) and exchange messages. Every message is a datagram sealed by a Noise session
 * (XX, bound to each node's Ed25519 identity); the sender shown is the identity the
 * handshake proved.
 *
 * Run it: `npx -y pnpm@10.34.9 --filter @deccom-examples/chat start` (after a build),
 * or `node examples/chat/dist/main.js`.
 */
import { createNode, Identity, sha256, utf8Encode, type Address } from '@deccom/core';
import { udp } from '@deccom/udp';
import { keepalive } from '@deccom/keepalive';
import { kademlia } from '@deccom/kademlia';
import { noise } from '@deccom/noise';

// One stack for every node, bottom to top. noise() above kademlia admits a peer into the
// routing table only after a handshake, and encrypts the datagrams the application sends.
const chatNode = (bootstrap: Address[]) =>
  createNode({
    identity: Identity.generate(),
    layers: [udp({ host: '127.0.0.1' }), keepalive(), kademlia({ bootstrap }), noise({ mode: 'encrypt' })],
  });

const at = (address: Address) => `${address.host}:${address.port}`;
const text = (data: Uint8Array) => new TextDecoder().decode(data);

const seed = chatNode([]);
await seed.start();
console.log(`bootstrap node ${seed.id.short}… at ${at(seed.localAddress())}`);

const alice = chatNode([seed.localAddress()]);
const bob = chatNode([seed.localAddress()]);
const names = new Map<string, string>();
const nodes = { alice, bob };
const received: string[] = [];
// Datagrams can be lost; wait for each message a bounded time.
let settle: () => void = () => undefined;
const nextMessage = () =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('a message did not arrive within 5 s')), 5000);
    settle = () => {
      clearTimeout(timer);
      resolve();
    };
  });

for (const [name, node] of Object.entries(nodes)) {
  names.set(node.id.hex, name);
  // The sender's id comes from the Noise session of the address the datagram came from.
  node.handle('datagram', (data, from) => {
    const sender = node.secureSession(from)?.remoteId;
    if (sender === undefined) return;
    const line = `  ${name} <- ${names.get(sender.hex) ?? sender.short}: ${text(data)}`;
    received.push(line);
    console.log(line);
    settle();
  });
  await node.start();
  console.log(`${name.padEnd(5)} ${node.id.short}… at ${at(node.localAddress())} joins through the bootstrap node`);
}

// Wait until both are in each other's network (a peer is admitted after its handshake).
for (let i = 0; i < 100 && (alice.getPeers().length === 0 || bob.getPeers().length === 0); i++) await new Promise((resolve) => setTimeout(resolve, 50));

const topic = sha256(utf8Encode('deccom-chat/lobby'));
await alice.announce(topic);
await bob.announce(topic);

console.log('\nbob looks up who is in the lobby, and writes to them:');
const inLobby = (await bob.lookupTopic(topic)).filter((peer) => !peer.id.equals(bob.id));
console.log(`  lobby: ${inLobby.map((peer) => `${names.get(peer.id.hex) ?? '?'} (${peer.id.short}…)`).join(', ')}`);
for (const peer of inLobby) {
  await bob.secureConnect(peer.address, { expectedId: peer.id });
  const arrived = nextMessage();
  bob.sendDatagram(peer.address, utf8Encode('hi everyone in the lobby!'));
  await arrived;
}

console.log('\nalice finds bob by his id and answers him directly:');
const found = await alice.findPeer(bob.id, { timeoutMs: 5000 });
console.log(`  found ${found.id.short}… at ${at(found.address)}`);
for (const line of ['hello bob, alice here', 'this message is encrypted end to end']) {
  const arrived = nextMessage();
  alice.sendDatagram(found.address, utf8Encode(line));
  await arrived;
}
const answered = nextMessage();
bob.sendDatagram(alice.localAddress(), utf8Encode('nice, and only you and I can read it'));
await answered;

const session = alice.secureSession(found.address)!;
const handshakeHash = Buffer.from(session.handshakeHash.subarray(0, 8)).toString('hex');
const noiseCounters = alice.counters()['noise'] ?? {};
console.log(`\nalice and bob share a Noise XX session (handshake hash ${handshakeHash}…); counters of alice's noise layer: datagrams-out ${noiseCounters['datagrams-out']}, handshakes-completed ${noiseCounters['handshakes-completed']}.`);
console.log(`${received.length} messages delivered.`);

for (const node of [alice, bob, seed]) await node.stop();
console.log('All nodes stopped.');
