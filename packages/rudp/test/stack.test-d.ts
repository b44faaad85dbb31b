/**
 * The rudp layer needs a datagram transport below it: a stack without one does not
 * type-check, and a stack with one exposes sendReliable and the reliable-message hook, typed.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { createNode, defineLayer, type Address } from '@deccom/core';
import { rudp } from '../src/index.js';

const transport = defineLayer({
  type: 'transport',
  provides: ['sendDatagram', 'maxDatagramSize', 'localAddress'],
  offers: { datagram: 'exclusive' },
  create: () => ({
    provides: { sendDatagram: () => {}, maxDatagramSize: () => 1400, localAddress: () => ({ host: '127.0.0.1', port: 1 }) },
  }),
});

const noDatagrams = defineLayer({
  type: 'nothing',
  provides: ['localAddress'],
  create: () => ({ provides: { localAddress: () => ({ host: '127.0.0.1', port: 1 }) } }),
});

describe('rudp in a stack', () => {
  it('does not type-check without a datagram transport below', () => {
    // @ts-expect-error: layer 'rudp' needs 'sendDatagram', which no layer below it provides
    void (() => createNode({ layers: [noDatagrams, rudp()] }));
  });

  it('exposes sendReliable, the pass-through datagram capabilities and its hooks', () => {
    const node = createNode({ layers: [transport, rudp()] });
    expectTypeOf(node.sendReliable).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(node.sendReliable).parameter(0).toEqualTypeOf<Address>();
    expectTypeOf(node.maxDatagramSize).returns.toEqualTypeOf<number>();
    node.handle('reliable-message', (data, from) => {
      expectTypeOf(data).toEqualTypeOf<Uint8Array>();
      expectTypeOf(from).toEqualTypeOf<Address>();
    });
    node.handle('datagram', (data) => expectTypeOf(data).toEqualTypeOf<Uint8Array>());
  });
});
