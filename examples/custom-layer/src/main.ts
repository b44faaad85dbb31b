/** Two nodes with the custom echo layer on loopback: `pnpm --filter @deccom-examples/custom-layer start`. */
import { createNode, Identity } from '@deccom/core';
import { udp } from '@deccom/udp';
import { echo } from './echo.js';

const alice = createNode({ identity: Identity.fromString('alice'), layers: [udp({ host: '127.0.0.1' }), echo()] });
const bob = createNode({ identity: Identity.fromString('bob'), layers: [udp({ host: '127.0.0.1' }), echo()] });
await alice.start();
await bob.start();
const answer = await alice.echo(bob.localAddress(), 'hello, layer');
console.log(`bob echoed '${answer.text}' in ${answer.rttMs.toFixed(2)} ms`);
console.log(alice.mermaid());
await alice.stop();
await bob.stop();
