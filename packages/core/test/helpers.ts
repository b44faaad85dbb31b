/** Small test layers that exercise every kind of binding the real protocols use. */
import { defineLayer, type Address } from '../src/index.js';

export interface Sent {
  to: Address;
  data: Uint8Array;
}

/** A loopback-free fake transport: records sends, lets tests inject deliveries. */
export function fakeTransport(options: { name?: string; port?: number } = {}) {
  const sent: Sent[] = [];
  let deliver: ((data: Uint8Array, from: Address) => void) | undefined;
  const layer = defineLayer({
    type: 'fake-transport',
    name: options.name,
    provides: ['sendDatagram', 'localAddress', 'maxDatagramSize', 'sendPing'],
    offers: { datagram: 'exclusive', traffic: 'event' },
    create: (ctx) => {
      deliver = (data, from) => {
        ctx.emit('traffic', from, data.byteLength);
        const slot = ctx.slots.datagram;
        if (slot) slot(data, from);
        else ctx.counters.drop('no-receiver');
      };
      return {
        provides: {
          sendDatagram: (to: Address, data: Uint8Array) => {
            ctx.counters.add('datagrams-out');
            sent.push({ to, data });
          },
          localAddress: () => ({ host: '127.0.0.1', port: options.port ?? 4000 }),
          maxDatagramSize: () => 1200,
          sendPing: async () => 1,
        },
      };
    },
  });
  return { layer, sent, deliver: (data: Uint8Array, from: Address) => deliver?.(data, from) };
}
