/**
 * `@deccom/fixed-peers`: discovery for private networks of known members. A node says
 * HELLO to every address on its list (and again, every interval, to those that have not
 * answered), learns who is at each address, sends to a node id or to everyone, and says
 * EXIT when it stops so its peers report it gone at once. It offers the same discovery
 * contract as `@deccom/kademlia`; `findPeer` answers from the list only.
 *
 * @example
 * ```ts
 * const node = createNode({ layers: [udp({ port: 7001 }), fixedPeers({ peers: [{ host: '10.0.0.2', port: 7001 }] })] });
 * await node.start();
 * node.broadcast(new TextEncoder().encode('hello, everyone'));
 * ```
 *
 * @packageDocumentation
 */
import {
  addressKey,
  decodeFrame,
  defineLayer,
  dropReason,
  encodeData,
  NotFoundError,
  PeerStore,
  StateError,
  verifyPeerRecord,
  type Address,
  type NodeId,
  type PeerRecord,
} from '@deccom/core';
import { decodeMessage, encodeMessage, FIXED_PEERS_PROTOCOL, MESSAGE } from './wire.js';

export { FIXED_PEERS_PROTOCOL, MESSAGE, decodeMessage, encodeMessage, type FixedPeersMessage } from './wire.js';

export interface FixedPeersOptions {
  /** The members' addresses. */
  peers: readonly Address[];
  /** Re-send HELLO to members that have not answered this often. Default 2,000 ms. */
  helloIntervalMs?: number;
  /**
   * A closed network: only listed addresses become peers, and datagrams from any other
   * address are dropped (counted `dropped.not-listed`), neither answered nor passed up.
   * Default true.
   */
  closed?: boolean;
  /** Instance name. Default `fixed-peers`. */
  name?: string;
}

export function fixedPeers(options: FixedPeersOptions) {
  const addresses = [...(options?.peers ?? [])];
  const helloIntervalMs = options.helloIntervalMs ?? 2000;
  const closed = options.closed ?? true;
  const listed = new Set(addresses.map(addressKey));
  return defineLayer({
    type: 'fixed-peers',
    name: options.name,
    protocol: FIXED_PEERS_PROTOCOL,
    needs: ['sendDatagram', 'maxDatagramSize'],
    optional: ['heardFrom'],
    takes: ['datagram'],
    provides: ['findPeer', 'getPeer', 'getPeers', 'addPeer', 'sendTo', 'broadcast', 'sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive', approve: 'exclusive', 'peer-connect': 'event', 'peer-disconnect': 'event' },
    create: (ctx) => {
      const store = new PeerStore(Math.max(1, addresses.length * 2 + 16));
      const counters = ctx.counters;
      let running = false;
      let stopHello: (() => void) | undefined;

      const send = (to: Address, bytes: Uint8Array): void => {
        counters.add('messages-out');
        ctx.below.sendDatagram(to, bytes);
      };

      const admit = (peer: PeerRecord, from: Address): void => {
        if (closed && !listed.has(addressKey(from))) {
          counters.drop('not-listed');
          return;
        }
        if (peer.signature !== undefined && !verifyPeerRecord(peer)) {
          counters.drop('bad-signature');
          return;
        }
        const record = peer.address.host === from.host && peer.address.port === from.port ? peer : { ...peer, address: from, signature: undefined };
        if (store.has(record.id)) {
          store.upsert(record, ctx.clock.now());
          return;
        }
        const finish = (ok: boolean): void => {
          if (!running) return;
          if (!ok) {
            counters.add('rejected-peers');
            return;
          }
          const { added, evicted } = store.upsert(record, ctx.clock.now());
          if (evicted) ctx.emit('peer-disconnect', evicted);
          if (added) {
            counters.set('peers', store.size);
            ctx.emit('peer-connect', record);
          }
        };
        const approve = ctx.slots.approve;
        if (!approve) return finish(true);
        Promise.resolve()
          .then(() => approve(record))
          .then(finish, () => finish(false));
      };

      const helloMissing = (): void => {
        const local = ctx.localPeer();
        for (const address of addresses) if (!store.byAddressOf(address)) send(address, encodeMessage(MESSAGE.hello, local));
      };

      const requirePeer = (id: NodeId, what: string): PeerRecord => {
        if (!running) throw new StateError('NOT_STARTED', `fixed-peers.${what}: the layer is not started`);
        const stored = store.get(id);
        if (!stored) throw new NotFoundError(`fixed-peers.${what}: ${id.short}… is not a known member`);
        return stored.peer;
      };

      return {
        start: () => {
          running = true;
          stopHello = ctx.clock.setInterval(helloMissing, helloIntervalMs);
        },
        // Hello once the whole stack is up, so our record carries a TCP port bound above.
        started: () => {
          if (running) helloMissing();
        },
        stop: () => {
          if (running) {
            const local = ctx.localPeer();
            for (const peer of store.peers()) send(peer.address, encodeMessage(MESSAGE.exit, local));
          }
          running = false;
          stopHello?.();
          store.clear();
        },
        status: () => ({ members: addresses.length, known: store.size }),
        provides: {
          findPeer: async (id: NodeId) => requirePeer(id, 'findPeer'),
          getPeer: (id: NodeId) => store.get(id)?.peer,
          getPeers: () => store.peers(),
          addPeer: (peer: PeerRecord) => admit(peer, peer.address),
          sendTo: (id: NodeId, data: Uint8Array) => send(requirePeer(id, 'sendTo').address, encodeData(data)),
          broadcast: (data: Uint8Array) => {
            if (!running) throw new StateError('NOT_STARTED', 'fixed-peers.broadcast: the layer is not started');
            const framed = encodeData(data);
            for (const peer of store.peers()) send(peer.address, framed);
          },
          sendDatagram: (to: Address, data: Uint8Array) => ctx.below.sendDatagram(to, encodeData(data)),
          maxDatagramSize: () => ctx.below.maxDatagramSize() - 1,
        },
        takes: {
          datagram: (bytes: Uint8Array, from: Address) => {
            // A closed network neither answers nor passes up anything from outside its list.
            if (closed && !listed.has(addressKey(from))) {
              counters.drop('not-listed');
              return;
            }
            try {
              const frame = decodeFrame(bytes, FIXED_PEERS_PROTOCOL);
              if (frame.kind === 'data') {
                const slot = ctx.slots.datagram;
                if (slot) slot(frame.payload, from);
                else counters.drop('no-receiver');
                return;
              }
              const message = decodeMessage(frame.type, frame.body);
              counters.add('messages-in');
              if (!running || message.peer.id.equals(ctx.identity.id)) return;
              if (message.type === MESSAGE.exit) {
                const stored = store.byAddressOf(from);
                if (stored && stored.peer.id.equals(message.peer.id)) {
                  store.remove(stored.peer.id);
                  counters.set('peers', store.size);
                  counters.add('exits');
                  ctx.emit('peer-disconnect', stored.peer);
                }
                return;
              }
              admit(message.peer, from);
              if (message.type === MESSAGE.hello) send(from, encodeMessage(MESSAGE.welcome, ctx.localPeer()));
            } catch (error) {
              counters.drop(dropReason(error));
            }
          },
        },
      };
    },
  });
}
