/** Test helpers: a tap layer to watch and inject datagrams, and a small memory-network setup. */
import { createNode, defineLayer, Identity, type Address, type PeerRecord } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { noise, type NoiseOptions } from '../src/index.js';

export interface Tap {
  /** Datagrams this node sent (below noise), when recording. */
  readonly sent: { to: Address; data: Uint8Array }[];
  /** Datagrams this node received (below noise), when recording. */
  readonly received: { from: Address; data: Uint8Array }[];
  record: boolean;
  /** Return false to swallow an outgoing datagram. */
  outgoing: ((to: Address, data: Uint8Array) => boolean) | undefined;
  /** Return false to swallow an incoming datagram (it still gets recorded). */
  incoming: ((from: Address, data: Uint8Array) => boolean) | undefined;
  /** Delivers `data` to the layer above as if it came from `from`. */
  inject(data: Uint8Array, from: Address): void;
}

/** A pass-through layer that records and filters datagrams, and can inject them. */
export function tapLayer() {
  let slot: ((data: Uint8Array, from: Address) => void) | undefined;
  const tap: Tap = {
    sent: [],
    received: [],
    record: false,
    outgoing: undefined,
    incoming: undefined,
    inject: (data, from) => slot?.(data, from),
  };
  const layer = defineLayer({
    type: 'tap',
    needs: ['sendDatagram', 'maxDatagramSize'],
    takes: ['datagram'],
    provides: ['sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive' },
    create: (ctx) => {
      slot = (data, from) => ctx.slots.datagram?.(data, from);
      return {
        provides: {
          sendDatagram: (to: Address, data: Uint8Array) => {
            if (tap.record) tap.sent.push({ to, data: data.slice() });
            if (tap.outgoing && !tap.outgoing(to, data)) return;
            ctx.below.sendDatagram(to, data);
          },
          maxDatagramSize: () => ctx.below.maxDatagramSize(),
        },
        takes: {
          datagram: (data: Uint8Array, from: Address) => {
            if (tap.record) tap.received.push({ from, data: data.slice() });
            if (tap.incoming && !tap.incoming(from, data)) return;
            ctx.slots.datagram?.(data, from);
          },
        },
      };
    },
  });
  return { layer, tap };
}

/** A stand-in discovery layer that offers the `approve` hook, as kademlia does. */
export function fakeDiscovery() {
  let approve: ((peer: PeerRecord) => boolean | Promise<boolean>) | undefined;
  const layer = defineLayer({
    type: 'fake-discovery',
    needs: ['sendDatagram'],
    takes: ['datagram'],
    provides: ['sendDatagram'],
    offers: { datagram: 'exclusive', approve: 'exclusive' },
    create: (ctx) => {
      approve = (peer) => (ctx.slots.approve ? ctx.slots.approve(peer) : true);
      return {
        provides: { sendDatagram: (to: Address, data: Uint8Array) => ctx.below.sendDatagram(to, data) },
        takes: { datagram: (data: Uint8Array, from: Address) => ctx.slots.datagram?.(data, from) },
      };
    },
  });
  return { layer, approve: (peer: PeerRecord) => approve!(peer) };
}

export function makeNetwork(options: { loss?: number; latencyMs?: number; seed?: number } = {}) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: options.latencyMs ?? 5, loss: options.loss ?? 0 } });
  return { clock, network };
}

/** A node: memory transport, tap, noise. Collects delivered datagrams. */
export function makeNoiseNode(setup: { clock: VirtualClock; network: MemoryNetwork }, noiseOptions: NoiseOptions = {}, identity = Identity.generate()) {
  const { layer: tap, tap: handle } = tapLayer();
  // On the virtual clock, signatures are checked inline so runs are deterministic.
  const options: NoiseOptions = { verifyOnThreadPool: false, ...noiseOptions };
  const node = createNode({ identity, clock: setup.clock, random: identity.id.hex, layers: [memoryTransport(setup.network), tap, noise(options)] });
  const delivered: { data: string; from: Address }[] = [];
  node.handle('datagram', (data, from) => {
    delivered.push({ data: new TextDecoder().decode(data), from });
  });
  return { node, tap: handle, delivered, identity };
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
