/**
 * The tcp layer needs discovery (`getPeer`) below it: a stack without one does not
 * type-check, and a stack with one exposes the transport's capabilities, typed.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { createNode, defineLayer, type NodeId } from '@deccom/core';
import { tcp } from '../src/index.js';

const transportOnly = defineLayer({
  type: 'transport',
  provides: ['localAddress'],
  create: () => ({ provides: { localAddress: () => ({ host: '127.0.0.1', port: 1 }) } }),
});

const discovery = defineLayer({
  type: 'discovery',
  provides: ['localAddress', 'getPeer'],
  offers: { 'peer-connect': 'event' },
  create: () => ({ provides: { localAddress: () => ({ host: '127.0.0.1', port: 1 }), getPeer: () => undefined } }),
});

describe('tcp in a stack', () => {
  it('does not type-check without a discovery layer', () => {
    // @ts-expect-error: layer 'tcp' needs 'getPeer', which no layer below it provides
    void (() => createNode({ layers: [transportOnly, tcp()] }));
  });

  it('exposes sendMessage, sendStream, openConnection and the message hooks with discovery below', () => {
    const node = createNode({ layers: [discovery, tcp()] });
    expectTypeOf(node.sendMessage).parameters.toEqualTypeOf<[NodeId, Uint8Array, ({ signal?: AbortSignal; timeoutMs?: number; early?: boolean } | undefined)?]>();
    expectTypeOf(node.sendStream).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(node.openConnection).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(node.localTcpPort).returns.toEqualTypeOf<number | undefined>();
    expectTypeOf(node.adoptTcpSocket).returns.toEqualTypeOf<Promise<NodeId>>();
    node.handle('message', (data, from) => {
      expectTypeOf(data).toEqualTypeOf<Uint8Array>();
      expectTypeOf(from).toEqualTypeOf<NodeId>();
    });
    node.handle('stream', (source) => expectTypeOf(source).toEqualTypeOf<AsyncIterable<Uint8Array>>());
    node.on('connection-close', (_id, reason) => expectTypeOf(reason).toEqualTypeOf<Error | undefined>());
  });
});
