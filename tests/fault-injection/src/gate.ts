/**
 * `gate()`: a datagram layer that a test opens and closes, cutting a node off the network
 * (both directions) on real sockets, as a partition would. Closed, it drops what is sent
 * and what arrives, counting both; open, it passes everything through untouched.
 */
import { defineLayer, type Address } from '@deccom/core';

export interface Gate {
  close(): void;
  open(): void;
  readonly closed: boolean;
}

export function gate(control: { current?: Gate }) {
  return defineLayer({
    type: 'gate',
    needs: ['sendDatagram', 'maxDatagramSize'],
    takes: ['datagram'],
    provides: ['sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive' },
    create: (ctx) => {
      let closed = false;
      control.current = {
        close: () => void (closed = true),
        open: () => void (closed = false),
        get closed() {
          return closed;
        },
      };
      return {
        provides: {
          sendDatagram: (to: Address, data: Uint8Array) => {
            if (closed) return void ctx.counters.drop('closed-out');
            ctx.below.sendDatagram(to, data);
          },
          maxDatagramSize: ctx.below.maxDatagramSize,
        },
        takes: {
          datagram: (data: Uint8Array, from: Address) => {
            if (closed) return void ctx.counters.drop('closed-in');
            const slot = ctx.slots.datagram;
            if (slot !== undefined) slot(data, from);
            else ctx.counters.drop('no-receiver');
          },
        },
      };
    },
  });
}
