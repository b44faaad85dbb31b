/**
 * A flood of 100,000 bogus handshake initiations from spoofed sources: memory stays
 * bounded (the responder keeps at most `cookieThreshold` half-open states from sources
 * that never prove they receive) while a real peer's handshake completes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom, type Address } from '@deccom/core';
import { encodeInitiation } from '../src/index.js';
import { makeNetwork, makeNoiseNode, text } from './harness.js';

const nodes: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.stop();
});

describe('handshake flood', () => {
  it('100,000 bogus initiations: bounded state, and a real handshake still completes', { timeout: 300_000 }, async () => {
    const net = makeNetwork({ latencyMs: 10 });
    const a = makeNoiseNode(net);
    const b = makeNoiseNode(net, { maxHalfOpen: 1024, cookieThreshold: 32 });
    nodes.push(a.node, b.node);
    await a.node.start();
    await b.node.start();
    // Answers to spoofed sources go nowhere (they would be unreachable anyway).
    let swallowed = 0;
    b.tap.outgoing = (to) => {
      if (to.host.startsWith('172.')) {
        swallowed++;
        return false;
      }
      return true;
    };
    const random = seededRandom('flood');
    const ephemeral = new Uint8Array(32);
    const status = (): { halfOpen: number; peers: number } => b.node.describe().layers.find((l) => l.name === 'noise')!.status as { halfOpen: number; peers: number };
    globalThis.gc?.();
    const baseline = process.memoryUsage().heapUsed;
    let peakHeap = baseline;
    let peakHalfOpen = 0;
    let peakPeers = 0;
    const TOTAL = 100_000;
    const CHUNK = 2_000;
    let connected: Promise<unknown> | undefined;
    for (let sent = 0; sent < TOTAL; sent += CHUNK) {
      for (let i = 0; i < CHUNK; i++) {
        for (let j = 0; j < 32; j++) ephemeral[j] = random.int(256);
        const from: Address = { host: `172.${16 + random.int(16)}.${random.int(256)}.${random.int(256)}`, port: 1 + random.int(65_000) };
        b.tap.inject(encodeInitiation(random.int(2 ** 32), undefined, ephemeral), from);
      }
      // The real peer starts its handshake in the middle of the flood.
      if (sent === 20 * CHUNK) connected = a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id });
      await net.clock.advance(20);
      const s = status();
      peakHalfOpen = Math.max(peakHalfOpen, s.halfOpen);
      peakPeers = Math.max(peakPeers, s.peers);
      peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    }
    await net.clock.advance(1_000);
    const session = (await connected) as { remoteId: { equals(x: unknown): boolean } };
    expect(session.remoteId.equals(b.node.id)).toBe(true);
    a.node.sendDatagram(b.node.localAddress(), text('through the flood'));
    expect(await net.clock.runUntil(() => b.delivered.length === 1, { maxMs: 2_000 })).toBe(true);
    const counters = b.node.counters()['noise']!;
    // 32 from spoofed sources before cookies were required, plus the real peer (which echoed its cookie).
    expect(peakHalfOpen).toBeLessThanOrEqual(33);
    expect(peakPeers).toBeLessThanOrEqual(34);
    expect(counters['cookies-sent']).toBeGreaterThanOrEqual(TOTAL - 40);
    expect(a.node.counters()['noise']!['cookies-received']).toBe(1);
    expect(swallowed).toBeGreaterThanOrEqual(TOTAL - 40);
    // Half-open states expire; nothing is left of the flood.
    await net.clock.advance(11_000);
    expect(status().halfOpen).toBe(0);
    const growthMiB = (peakHeap - baseline) / 2 ** 20;
    // Reported for the issue: the peak heap growth during the flood.
    console.log(`flood: peak half-open ${peakHalfOpen}, peak peer entries ${peakPeers}, peak heap growth ${growthMiB.toFixed(1)} MiB over ${TOTAL} initiations`);
    expect(growthMiB).toBeLessThan(64);
  });
});
