import { createNode, Identity, seededRandom } from '@deccom/core';
import { udp } from '@deccom/udp';
import { kademlia } from '../src/index.js';

/** Real UDP sockets on 127.0.0.1: nodes join through one bootstrap node and find each other. */
export async function loopbackNetwork(size: number, lookups: number) {
  const make = (i: number, bootstrap: { host: string; port: number }[]) =>
    createNode({ identity: Identity.fromString(`udp-${i}`), layers: [udp({ host: '127.0.0.1' }), kademlia({ bootstrap, requestTimeoutMs: 2000 })] });
  const seed = make(0, []);
  const nodes = [seed];
  try {
    await seed.start();
    for (let i = 1; i < size; i++) {
      const node = make(i, [seed.localAddress()]);
      nodes.push(node);
      await node.start();
      if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Joining takes a few round trips; generous for a loaded machine.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const random = seededRandom(size);
    const pairs: [number, number][] = [];
    for (let i = 0; i < lookups; i++) {
      const to = i < size ? i : random.int(size);
      let from = random.int(size);
      while (from === to) from = random.int(size);
      pairs.push([from, to]);
    }
    let ok = 0;
    const failures: string[] = [];
    for (let i = 0; i < pairs.length; i += 20) {
      await Promise.all(
        pairs.slice(i, i + 20).map(async ([from, to]) => {
          try {
            const peer = await nodes[from]!.findPeer(nodes[to]!.id, { timeoutMs: 20_000 });
            if (peer.id.equals(nodes[to]!.id) && peer.address.port === nodes[to]!.localAddress().port) ok++;
          } catch (error) {
            failures.push(`${from}->${to}: ${String(error)}`);
          }
        }),
      );
    }
    return { ok, total: pairs.length, failures, nodes };
  } finally {
    for (const node of nodes) await node.stop();
  }
}
