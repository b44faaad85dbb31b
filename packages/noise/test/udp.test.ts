/**
 * noise() over real UDP sockets on loopback (signatures verified on the thread pool).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, Identity } from '@deccom/core';
import { udp } from '@deccom/udp';
import { noise, setIdentityProofCacheSize, type NoiseMode, type NoiseOptions } from '../src/index.js';
import { waitFor } from './helpers.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** Two started nodes over udp on 127.0.0.1 with `noise(options)`. */
async function udpPair(options: NoiseOptions) {
  const make = () => {
    const node = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), noise(options)] });
    stops.push(() => node.stop());
    return node;
  };
  const a = make();
  const b = make();
  await a.start();
  await b.start();
  return { a, b };
}

describe('noise() over udp on 127.0.0.1', () => {
  for (const mode of ['encrypt', 'sign-only', 'plaintext'] as NoiseMode[]) {
    it(`${mode}: handshake, messages both ways, simultaneous dial, stop`, async () => {
      const { a, b } = await udpPair({ mode });
      const got: string[] = [];
      b.handle('datagram', (data) => got.push(new TextDecoder().decode(data)));
      a.handle('datagram', (data) => got.push(`a:${new TextDecoder().decode(data)}`));
      const [sa, sb] = await Promise.all([
        a.secureConnect(b.localAddress(), { expectedId: b.id }),
        b.secureConnect(a.localAddress(), { expectedId: a.id }),
      ]);
      expect(Buffer.from(sa.handshakeHash).equals(Buffer.from(sb.handshakeHash))).toBe(true);
      for (let i = 0; i < 50; i++) a.sendDatagram(b.localAddress(), new TextEncoder().encode(`m${i}`));
      b.sendDatagram(a.localAddress(), new TextEncoder().encode('back'));
      expect(await waitFor(() => got.length === 51)).toBe(true);
      expect(got).toContain('a:back');
      expect(a.counters()['noise']!['handshakes-completed']).toBe(1);
      expect(a.counters()['noise']!['dropped'] ?? 0).toBe(0);
    });
  }

  for (const mode of ['encrypt', 'plaintext'] as NoiseMode[]) {
    it(`${mode}: a burst sent the moment secureConnect() resolves all arrives, while the responder still verifies the final message`, async () => {
      const { a, b } = await udpPair({ mode, strict: true });
      const got = new Set<string>();
      b.handle('datagram', (data) => got.add(new TextDecoder().decode(data)));
      await a.secureConnect(b.localAddress(), { expectedId: b.id });
      // 200 small datagrams (~20 KB, far below the socket buffer): the initiator is done
      // after sending the final message; the responder is not until its proof verified.
      const BURST = 200;
      for (let i = 0; i < BURST; i++) a.sendDatagram(b.localAddress(), new TextEncoder().encode(`m${i}-${'x'.repeat(90)}`));
      const arrived = await waitFor(() => got.size === BURST);
      const counters = b.counters()['noise']!;
      expect(arrived, `${got.size} of ${BURST} arrived; responder counters ${JSON.stringify(counters)}`).toBe(true);
      expect(counters['dropped.early-overflow'] ?? 0).toBe(0);
      expect(counters['dropped'] ?? 0).toBe(0);
    });

    it(`${mode}: a burst larger than the responder holds before it verified is paced by the initiator, and all arrives`, async () => {
      const { a, b } = await udpPair({ mode, strict: true });
      const got = new Set<string>();
      b.handle('datagram', (data) => got.add(new TextDecoder().decode(data)));
      await a.secureConnect(b.localAddress(), { expectedId: b.id });
      // 1,000 datagrams of ~100 bytes: four times what the responder holds while it
      // verifies (256), and well inside udp's 4 MiB socket buffers.
      const BURST = 1_000;
      for (let i = 0; i < BURST; i++) a.sendDatagram(b.localAddress(), new TextEncoder().encode(`m${i}-${'x'.repeat(90)}`));
      const arrived = await waitFor(() => got.size === BURST);
      const counters = b.counters()['noise']!;
      expect(arrived, `${got.size} of ${BURST} arrived; responder counters ${JSON.stringify(counters)}`).toBe(true);
      expect(counters['dropped'] ?? 0).toBe(0);
      const sender = a.counters()['noise']!;
      expect(sender['dropped'] ?? 0).toBe(0);
      // The initiator held back what did not fit before the responder confirmed.
      expect(sender['held-until-confirmed'] ?? 0).toBeGreaterThan(0);
    });
  }

  it('reconnecting the moment secureConnect() resolves needs no resend: the responder answers the new initiation once its check is over', async () => {
    // Every handshake verifies its proof (on the thread pool), as in the benchmark.
    setIdentityProofCacheSize(0);
    stops.push(async () => setIdentityProofCacheSize(4096));
    const { a, b } = await udpPair({});
    const CYCLES = 30;
    for (let i = 0; i < CYCLES; i++) {
      await a.secureConnect(b.localAddress(), { expectedId: b.id });
      a.secureDisconnect(b.localAddress());
    }
    const initiator = a.counters()['noise']!;
    const responder = b.counters()['noise']!;
    expect(initiator['handshakes-completed']).toBe(CYCLES);
    // Before 2026-12-07 the responder dropped such an initiation and the initiator waited
    // retransmitMs (250 ms) to resend it: 30 handshakes a second per pair.
    expect(initiator['retransmits'] ?? 0, JSON.stringify({ initiator, responder })).toBe(0);
    // The only drops: each CONFIRM reached an initiator that had already closed that session,
    // and its UNKNOWN_SESSION answer a responder that had closed it too (on the CLOSE).
    expect(responder['dropped'] ?? 0, JSON.stringify({ initiator, responder })).toBe(responder['dropped.unknown-handshake'] ?? 0);
    expect(initiator['dropped'] ?? 0).toBe(initiator['dropped.unknown-session'] ?? 0);
  });
});
