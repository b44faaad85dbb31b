import { describe, expect, it } from 'vitest';
import { createNode, Identity, NotFoundError, seededRandom, WireError, createPeerRecord, decodeFrame, encodeData } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { decodeMessage, encodeMessage, fixedPeers, FIXED_PEERS_PROTOCOL, MESSAGE } from '../src/index.js';

async function group(count: number) {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ clock, defaultLink: { latencyMs: 10 } });
  const hosts = Array.from({ length: count }, () => net.allocateHost());
  const members = hosts.map((host) => ({ host, port: 7000 }));
  const nodes = hosts.map((host, i) =>
    createNode({ clock, identity: Identity.fromString(`m${i}`), layers: [memoryTransport(net, { host, port: 7000 }), fixedPeers({ peers: members.filter((m) => m.host !== host) })] }),
  );
  return { clock, net, nodes };
}

describe('fixed-peers', () => {
  it('members find each other, send to an id, broadcast, and report an EXIT', async () => {
    const { clock, nodes } = await group(4);
    // Start at different times: later members are greeted by the retries.
    await nodes[0]!.start();
    await clock.advance(500);
    for (const n of nodes.slice(1)) await n.start();
    await clock.advance(3000);
    for (const n of nodes) expect(n.getPeers()).toHaveLength(3);
    const inbox: string[] = [];
    nodes.forEach((n, i) => n.handle('datagram', (data) => void inbox.push(`${i}:${new TextDecoder().decode(data)}`)));
    nodes[0]!.sendTo(nodes[2]!.id, new TextEncoder().encode('direct'));
    nodes[1]!.broadcast(new TextEncoder().encode('all'));
    await clock.advance(100);
    expect(inbox.sort()).toEqual(['0:all', '2:all', '2:direct', '3:all']);
    expect((await nodes[3]!.findPeer(nodes[0]!.id)).id.equals(nodes[0]!.id)).toBe(true);
    await expect(nodes[3]!.findPeer(Identity.fromString('stranger').id)).rejects.toBeInstanceOf(NotFoundError);
    const gone: string[] = [];
    nodes[0]!.on('peer-disconnect', (p) => void gone.push(p.identity.toString()));
    await nodes[3]!.stop();
    await clock.advance(50);
    expect(gone).toEqual(['m3']);
    for (const n of nodes) await n.stop();
  });

  it('a closed network ignores strangers: no table entry, no answer to their HELLO, none of their data passed up', async () => {
    const { clock, net, nodes } = await group(2);
    for (const n of nodes) await n.start();
    await clock.advance(1000);
    const replies: Uint8Array[] = [];
    const stranger = net.bind(net.allocateHost(), 1, { deliver: (data) => void replies.push(data) });
    const record = createPeerRecord(Identity.fromString('x').public, stranger);
    const delivered: string[] = [];
    nodes[0]!.handle('datagram', (data) => void delivered.push(new TextDecoder().decode(data)));
    net.send(stranger, nodes[0]!.localAddress(), new Uint8Array([0, ...encodeMessage(MESSAGE.hello, record)]));
    net.send(stranger, nodes[0]!.localAddress(), new Uint8Array([0, ...encodeData(new TextEncoder().encode('from outside'))]));
    // A member's data still goes through.
    nodes[1]!.sendTo(nodes[0]!.id, new TextEncoder().encode('from a member'));
    await clock.advance(100);
    expect(nodes[0]!.getPeers()).toHaveLength(1);
    expect(replies).toEqual([]);
    expect(delivered).toEqual(['from a member']);
    expect(nodes[0]!.counters()['fixed-peers']!['dropped.not-listed']).toBe(2);
    for (const n of nodes) await n.stop();
  });

  it('wire: round trip and 100,000 fuzzed inputs', () => {
    const record = createPeerRecord(Identity.fromString('alice').public, { host: '10.0.0.1', port: 1 });
    const frame = decodeFrame(encodeMessage(MESSAGE.exit, record), FIXED_PEERS_PROTOCOL);
    if (frame.kind !== 'control') throw new Error('control expected');
    expect(decodeMessage(frame.type, frame.body).peer.id.equals(record.id)).toBe(true);
    const random = seededRandom(3);
    for (let i = 0; i < 100_000; i++) {
      let input = random.int(2) ? frame.body.slice() : random.bytes(random.int(60));
      if (input.length) {
        const at = random.int(input.length);
        input[at] = input[at]! ^ (1 << random.int(8));
      }
      if (random.int(3) === 0) input = input.subarray(0, random.int(input.length + 1));
      try {
        decodeMessage(1 + random.int(4), input);
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
      }
    }
  }, 30_000);
});
