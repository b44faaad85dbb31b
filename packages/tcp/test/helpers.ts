/**
 * Test helpers: a fixed directory (the smallest discovery layer: a shared address book)
 * and a few node builders on loopback.
 */
import { networkInterfaces } from 'node:os';
import { createNode, defineLayer, Identity, type Address, type PeerRecord } from '@deccom/core';
import { pollUntil } from '@deccom/core/testing';
import { tcp, type TcpOptions } from '../src/index.js';

/** A shared address book: every node started with it can `getPeer` every other. */
export class Book {
  readonly records = new Map<string, PeerRecord>();
  private port = 40_000;

  /** A discovery layer over this book, with a made-up UDP address on `host`. */
  layer(host: string) {
    const records = this.records;
    const address: Address = { host, port: this.port++ };
    return defineLayer({
      type: 'book',
      provides: ['localAddress', 'getPeer', 'getPeers', 'addPeer'],
      offers: { 'peer-connect': 'event' },
      create: (ctx) => ({
        provides: {
          localAddress: () => address,
          getPeer: (id) => records.get(id.hex),
          getPeers: () => [...records.values()],
          addPeer: (peer: PeerRecord) => {
            records.set(peer.id.hex, peer);
            ctx.emit('peer-connect', peer);
          },
        },
      }),
    });
  }
}

export type TestNode = ReturnType<typeof makeNode>;

export function makeNode(book: Book, host: string, options: TcpOptions = {}, identity: Identity = Identity.generate()) {
  return createNode({ identity, layers: [book.layer(host), tcp({ host, ...options })] });
}

/** Starts `node` and publishes its record (with the TCP port) in the book. */
export async function startIn(book: Book, node: TestNode): Promise<void> {
  await node.start();
  book.records.set(node.id.hex, node.localPeer());
}

export const hasIpv6Loopback = Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6' && i.address === '::1'));

export const HOSTS: readonly ('127.0.0.1' | '::1')[] = hasIpv6Loopback ? ['127.0.0.1', '::1'] : ['127.0.0.1'];

export { sleep } from '@deccom/core/testing';

/** Polls `predicate` every 5 ms until it holds or `maxMs` passed. */
export const waitFor = (predicate: () => boolean, maxMs = 10_000): Promise<boolean> => pollUntil(predicate, maxMs, 5);

/** Deterministic bytes: a cheap pattern that differs at every offset for short runs. */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The tcp layer's live status (connections, peers, pending bytes). */
export interface TcpStatus {
  connections: number;
  outbound: number;
  peers: number;
  pendingBytes: number;
  port: number;
}

export function tcpStatus(node: TestNode): TcpStatus {
  return node.describe().layers.find((l) => l.type === 'tcp')!.status as unknown as TcpStatus;
}

/** The tcp layer's counters. */
export function tcpCounters(node: TestNode): Record<string, number> {
  return node.counters()['tcp'] ?? {};
}
