/**
 * A bootstrap node: the address new nodes join a network through. It runs the same stack
 * as the nodes that join it (udp > keepalive > kademlia > noise), prints its id and
 * address, logs peers joining and leaving, and stops cleanly on Ctrl-C or SIGTERM.
 *
 * Run it: `npx -y pnpm@10.34.9 --filter @deccom-examples/bootstrap-node start` (after a
 * build), or `node examples/bootstrap-node/dist/main.js --port 7000 --host 0.0.0.0`.
 */
import { parseArgs } from 'node:util';
import { createNode, Identity, type Address } from '@deccom/core';
import { udp } from '@deccom/udp';
import { keepalive } from '@deccom/keepalive';
import { kademlia } from '@deccom/kademlia';
import { noise } from '@deccom/noise';

const { values } = parseArgs({ options: { port: { type: 'string', default: '7000' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be 0..65535, got ${values.port}`);
  process.exit(2);
}

const at = (address: Address) => `${address.host}:${address.port}`;
const node = createNode({
  identity: Identity.generate(),
  // No bootstrap addresses: this node starts the network. Joiners must run noise() too:
  // it admits a peer into Kademlia's table only after a handshake bound to its identity.
  layers: [udp({ host: values.host, port }), keepalive(), kademlia(), noise()],
});
node.on('peer-connect', (peer) => console.log(`peer joined ${peer.id.short}… at ${at(peer.address)}`));
node.on('peer-disconnect', (peer) => console.log(`peer left   ${peer.id.short}… at ${at(peer.address)}`));
await node.start();

console.log(`bootstrap node ${node.id.hex}`);
console.log(`listening at ${at(node.localAddress())}; join with kademlia({ bootstrap: [{ host: '${node.localAddress().host}', port: ${node.localAddress().port} }] })`);
console.log('Ctrl-C stops it');

// Stop on the first SIGINT / SIGTERM: stop() releases the socket and every timer, so the
// process then ends by itself.
await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
console.log(`stopping; ${node.getPeers().length} peers known`);
await node.stop();
console.log('stopped');
