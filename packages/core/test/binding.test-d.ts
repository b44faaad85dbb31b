/**
 * Compile-time guarantees of the binding model (ARCHITECTURE.md requirement 2 and 3):
 * a stack missing a capability or a hook does not type-check, and the top of a stack
 * exposes every capability of its layers, typed.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { createNode, defineLayer, type NodeId, type PeerRecord, type StackError } from '../src/index.js';

const transport = defineLayer({
  type: 'transport',
  provides: ['sendDatagram', 'localAddress', 'sendPing', 'maxDatagramSize'],
  offers: { datagram: 'exclusive', traffic: 'event' },
  create: () => ({
    provides: {
      sendDatagram: () => {},
      localAddress: () => ({ host: '127.0.0.1', port: 1 }),
      sendPing: async () => 1,
      maxDatagramSize: () => 1200,
    },
  }),
});

const discovery = defineLayer({
  type: 'discovery',
  needs: ['sendDatagram', 'sendPing'],
  takes: ['datagram'],
  provides: ['getPeer', 'findPeer'],
  offers: { 'peer-connect': 'event', approve: 'exclusive' },
  create: () => ({
    provides: { getPeer: () => undefined, findPeer: async () => Promise.reject(new Error('none')) },
    takes: { datagram: () => {} },
  }),
});

const streams = defineLayer({
  type: 'streams',
  needs: ['getPeer'],
  provides: ['sendMessage'],
  create: () => ({ provides: { sendMessage: async () => {} } }),
});

const security = defineLayer({
  type: 'security',
  takes: ['approve'],
  create: () => ({ takes: { approve: () => true } }),
});

describe('stack types', () => {
  it('exposes every lower capability at the top, typed', () => {
    const node = createNode({ layers: [transport, discovery, streams] });
    expectTypeOf(node.findPeer).toEqualTypeOf<(id: NodeId, options?: { signal?: AbortSignal; timeoutMs?: number; fresh?: boolean }) => Promise<PeerRecord>>();
    expectTypeOf(node.sendDatagram).parameter(1).toEqualTypeOf<Uint8Array>();
    expectTypeOf(node.sendMessage).returns.toEqualTypeOf<Promise<void>>();
    node.on('traffic', (from, bytes) => {
      expectTypeOf(from.port).toBeNumber();
      expectTypeOf(bytes).toBeNumber();
    });
    node.on('peer-connect', (peer) => expectTypeOf(peer).toEqualTypeOf<PeerRecord>());
    node.handle('approve', (peer) => peer.id.hex.length > 0);
    node.handle('datagram', (data) => expectTypeOf(data).toEqualTypeOf<Uint8Array>());
    // @ts-expect-error approve is exclusive: taken with handle(), not observed with on()
    node.on('approve', () => true);
    // @ts-expect-error traffic is an event: observed with on()
    node.handle('traffic', () => {});
  });

  it('does not expose what no layer provides', () => {
    const node = createNode({ layers: [transport] });
    // @ts-expect-error no discovery layer in this stack
    void node.findPeer;
    // @ts-expect-error no layer offers peer-connect
    node.on('peer-connect', () => {});
  });

  it('rejects a layer that needs getPeer on a stack with no discovery', () => {
    // @ts-expect-error 'streams' needs 'getPeer', which no layer below it provides
    createNode({ layers: [transport, streams] });
  });

  it('rejects a layer placed below the layer it needs', () => {
    // @ts-expect-error order matters: discovery must be below streams
    createNode({ layers: [transport, streams, discovery] });
  });

  it('rejects a layer that takes a hook nobody below offers', () => {
    // @ts-expect-error 'security' takes 'approve', offered only by discovery
    createNode({ layers: [transport, security] });
    createNode({ layers: [transport, discovery, security] });
  });

  it('reports the missing capability by name in the error type', () => {
    type Result = Parameters<typeof createNode<readonly [typeof transport, typeof streams]>>[0]['layers'][1];
    expectTypeOf<Result>().toMatchTypeOf<
      StackError<"layer 'streams' needs 'getPeer', which no layer below it provides: add a layer that provides 'getPeer' below 'streams'">
    >();
  });

  it('types a layer context from its declarations', () => {
    defineLayer({
      type: 'ctx-check',
      needs: ['sendPing'],
      optional: ['heardFrom'],
      offers: { 'peer-connect': 'event', approve: 'exclusive' },
      create: (ctx) => {
        expectTypeOf(ctx.below.sendPing).toBeFunction();
        expectTypeOf(ctx.below.heardFrom).toEqualTypeOf<((address: { readonly host: string; readonly port: number }, introducer: PeerRecord) => void) | undefined>();
        // @ts-expect-error not declared
        void ctx.below.sendDatagram;
        ctx.emit('peer-connect', {} as PeerRecord);
        // @ts-expect-error approve is exclusive, not an event
        ctx.emit('approve', {} as PeerRecord);
        expectTypeOf(ctx.slots.approve).toEqualTypeOf<((peer: PeerRecord) => boolean | Promise<boolean>) | undefined>();
        return {};
      },
    });
  });
});
