/**
 * Hole punching in a stack: `holepunch()` needs a datagram transport below it, and
 * `tcpHolepunch()` needs the TCP layer, discovery and `holepunch()` below it; the top of a
 * valid stack exposes `connect`, `natType` and `connectTcp`, typed.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { createNode, defineLayer, type Address } from '@deccom/core';
import { holepunch, tcpHolepunch, type ConnectOutcome, type NatType } from '../src/index.js';

const transport = defineLayer({
  type: 'transport',
  provides: ['sendDatagram', 'localAddress', 'maxDatagramSize'],
  offers: { datagram: 'exclusive' },
  create: () => ({ provides: { sendDatagram: () => {}, localAddress: () => ({ host: '127.0.0.1', port: 1 }), maxDatagramSize: () => 1200 } }),
});

const nothing = defineLayer({ type: 'nothing', create: () => ({}) });

const discoveryAndTcp = defineLayer({
  type: 'discovery-and-tcp',
  provides: ['getPeer', 'openConnection', 'adoptTcpSocket'],
  create: () => ({
    provides: {
      getPeer: () => undefined,
      openConnection: async () => {},
      adoptTcpSocket: async () => Promise.reject(new Error('none')),
    },
  }),
});

describe('holepunch in a stack', () => {
  it('does not type-check without a transport below', () => {
    // @ts-expect-error: layer 'holepunch' needs 'sendDatagram', which no layer below it provides
    void (() => createNode({ layers: [nothing, holepunch()] }));
  });

  it('tcpHolepunch does not type-check without holepunch, discovery and tcp below', () => {
    // @ts-expect-error: layer 'tcp-holepunch' needs capabilities nobody below provides
    void (() => createNode({ layers: [transport, holepunch(), tcpHolepunch()] }));
    // @ts-expect-error: layer 'tcp-holepunch' needs 'punchTcp' (holepunch) below it
    void (() => createNode({ layers: [transport, discoveryAndTcp, tcpHolepunch()] }));
  });

  it('exposes connect, natType, connectTcp and the outcome event', () => {
    const node = createNode({ layers: [transport, holepunch(), discoveryAndTcp, tcpHolepunch()] });
    expectTypeOf(node.connect).parameters.toMatchTypeOf<[Address, ({ signal?: AbortSignal; relay?: boolean } | undefined)?]>();
    expectTypeOf(node.connect).returns.toEqualTypeOf<Promise<ConnectOutcome>>();
    expectTypeOf(node.natType).returns.toEqualTypeOf<NatType>();
    expectTypeOf(node.connectTcp).returns.toEqualTypeOf<Promise<ConnectOutcome>>();
    node.on('punch-outcome', (outcome) => expectTypeOf(outcome.mechanism).toEqualTypeOf<'direct' | 'punched-udp' | 'punched-tcp' | 'relayed' | 'failed'>());
  });
});
