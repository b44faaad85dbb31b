import { describe, expect, it } from 'vitest';
import { createNode, Identity, type Address } from '@deccom/core';
import { udp } from '@deccom/udp';
import { tcp } from '@deccom/tcp';
import { kademlia } from '@deccom/kademlia';
import { gossip } from '@deccom/gossip';
import { biggossip } from '@deccom/biggossip';

// A node introduces itself to its bootstrap node only once the whole stack is up, so the
// record it hands out carries the TCP port of the tcp layer above discovery.
const variants = {
  kademlia: (bootstrap: Address[]) => kademlia({ bootstrap }),
  gossip: (bootstrap: Address[]) => gossip({ bootstrap }),
  biggossip: (bootstrap: Address[]) => biggossip({ bootstrap }),
};

describe('a discovery layer under tcp introduces a record with the TCP port', () => {
  for (const [name, discovery] of Object.entries(variants)) {
    it(`with ${name}`, async () => {
      const make = (bootstrap: Address[]) =>
        createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), discovery(bootstrap), tcp({ host: '127.0.0.1' })] as never }) as unknown as ReturnType<
          typeof createNode<[ReturnType<typeof udp>, ReturnType<typeof kademlia>, ReturnType<typeof tcp>]>
        >;
      const seed = make([]);
      await seed.start();
      // The record as the seed first admits it (later traffic would correct a stale one).
      const firstRecord = new Promise<{ tcpPort?: number | undefined }>((resolve) => seed.on('peer-connect', (peer) => resolve(peer)));
      const joiner = make([seed.localAddress()]);
      await joiner.start();
      try {
        const record = await firstRecord;
        expect(record.tcpPort).toBe(joiner.localTcpPort());
      } finally {
        await joiner.stop();
        await seed.stop();
      }
    }, 20_000);
  }
});
