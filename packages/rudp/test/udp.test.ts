/**
 * rudp over real UDP sockets on loopback (the slow suite, udp.slow.test.ts, moves 100 MiB
 * in every fault case).
 */
import { describe, expect, it } from 'vitest';
import { createNode } from '@deccom/core';
import { udp } from '@deccom/udp';
import { MessageRefusedError, PeerUnresponsiveError, rudp } from '../src/index.js';
import { patternBytes } from './harness.js';
import { udpTransfer } from './udp-cases.js';

const MiB = 1024 * 1024;

describe('rudp over real UDP sockets', () => {
  it('moves 32 MiB intact at 5% loss, 2% duplication and 2% reordering on 127.0.0.1', async () => {
    const result = await udpTransfer(32 * MiB, { loss: 0.05, duplicate: 0.02, reorder: 0.02 });
    expect(result.digestReceived).toBe(result.digestSent);
    expect(result.deliveries).toBe(1);
    expect(result.from).toEqual(result.sender);
    expect(result.lastProgress).toBe(32 * MiB);
    expect(result.counters.a!['retransmissions']).toBeGreaterThan(0);
  });

  it('moves 4 MiB intact over ::1 at 1% loss', async () => {
    const result = await udpTransfer(4 * MiB, { loss: 0.01 }, {}, '::1', 2);
    expect(result.digestReceived).toBe(result.digestSent);
    expect(result.deliveries).toBe(1);
  });

  it('ends in PeerUnresponsiveError when nobody answers, not a hang', async () => {
    const a = createNode({ layers: [udp(), rudp({ peerTimeoutMs: 1_500, sweepIntervalMs: 250 })] });
    const silent = createNode({ layers: [udp()] });
    await a.start();
    await silent.start();
    // A UDP socket that reads and never answers.
    const target = silent.localAddress();
    await silent.stop();
    const started = performance.now();
    await expect(a.sendReliable(target, patternBytes(MiB, 3))).rejects.toBeInstanceOf(PeerUnresponsiveError);
    expect(performance.now() - started).toBeLessThan(10_000);
    await a.stop();
  });

  it('ends in MessageRefusedError (stopped) when the receiver stops mid-message', async () => {
    const a = createNode({ layers: [udp(), rudp()] });
    const b = createNode({ layers: [udp(), rudp()] });
    await a.start();
    await b.start();
    let progressed = false;
    const sending = a.sendReliable(b.localAddress(), patternBytes(64 * MiB, 4), {
      onProgress: (done) => {
        if (!progressed && done > 1 * MiB) {
          progressed = true;
          void b.stop();
        }
      },
    });
    await expect(sending).rejects.toSatisfy((error: unknown) => error instanceof MessageRefusedError || error instanceof PeerUnresponsiveError);
    await a.stop();
    await b.stop();
  });

  it('carries many concurrent messages to several peers over real sockets', async () => {
    const a = createNode({ layers: [udp(), rudp()] });
    const peers = [createNode({ layers: [udp(), rudp()] }), createNode({ layers: [udp(), rudp()] }), createNode({ layers: [udp(), rudp()] })];
    await a.start();
    for (const peer of peers) await peer.start();
    const counts = peers.map(() => 0);
    peers.forEach((peer, i) => peer.handle('reliable-message', () => void counts[i]!++));
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) sends.push(a.sendReliable(peers[i % 3]!.localAddress(), patternBytes(1 + ((i * 7919) % 200_000), i)));
    await Promise.all(sends);
    expect(counts).toEqual([100, 100, 100]);
    await a.stop();
    for (const peer of peers) await peer.stop();
  });
});
