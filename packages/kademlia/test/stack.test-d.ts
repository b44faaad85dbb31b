/**
 * Kademlia in a stack: it needs a datagram transport with ping below it; the top of a
 * valid stack exposes discovery and topics, typed, and its hooks.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { createNode, defineLayer, type NodeId, type PeerRecord } from '@deccom/core';
import { kademlia } from '../src/index.js';

const transport = defineLayer({
  type: 'transport',
  provides: ['sendDatagram', 'localAddress', 'sendPing', 'maxDatagramSize'],
  offers: { datagram: 'exclusive', traffic: 'event' },
  create: () => ({
    provides: { sendDatagram: () => {}, localAddress: () => ({ host: '127.0.0.1', port: 1 }), sendPing: async () => 1, maxDatagramSize: () => 1200 },
  }),
});

const noPing = defineLayer({
  type: 'no-ping',
  provides: ['sendDatagram', 'localAddress', 'maxDatagramSize'],
  offers: { datagram: 'exclusive' },
  create: () => ({ provides: { sendDatagram: () => {}, localAddress: () => ({ host: '127.0.0.1', port: 1 }), maxDatagramSize: () => 1200 } }),
});

/** Stands in for @deccom/keepalive (not a dependency of this package). */
const liveness = defineLayer({
  type: 'liveness',
  needs: ['sendPing'],
  provides: ['trackPeer', 'untrackPeer'],
  offers: { 'peer-unresponsive': 'event' },
  create: () => ({ provides: { trackPeer: () => {}, untrackPeer: () => {} } }),
});

describe('kademlia in a stack', () => {
  it('does not type-check without sendPing below', () => {
    // @ts-expect-error: layer 'kademlia' needs 'sendPing', which no layer below it provides
    void (() => createNode({ layers: [noPing, kademlia()] }));
  });

  it('exposes discovery, topics and the datagram pass-through at the top, with keep-alive between', () => {
    const node = createNode({ layers: [transport, liveness, kademlia()] });
    expectTypeOf(node.findPeer).returns.toEqualTypeOf<Promise<PeerRecord>>();
    expectTypeOf(node.getPeer).parameters.toEqualTypeOf<[NodeId]>();
    expectTypeOf(node.announce).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(node.lookupTopic).returns.toEqualTypeOf<Promise<PeerRecord[]>>();
    expectTypeOf(node.trackPeer).toBeFunction();
    node.on('peer-connect', (peer) => expectTypeOf(peer).toEqualTypeOf<PeerRecord>());
    node.handle('approve', (peer) => peer.identity.kind === 'ed25519');
    node.handle('datagram', (data) => expectTypeOf(data).toEqualTypeOf<Uint8Array>());
  });
});
