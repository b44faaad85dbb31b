/**
 * The demo's large transfers: a stream between two nodes that found each other through
 * Kademlia, over TCP sealed by Noise, and a reliable message over lossy UDP with a
 * progress bar. Both are hash-checked at the receiver.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { createNode, Identity } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty } from '@deccom/faulty';
import { kademlia } from '@deccom/kademlia';
import { tcp } from '@deccom/tcp';
import { noiseStream } from '@deccom/noise';
import { rudp } from '@deccom/rudp';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

export interface TransferResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly intact: boolean;
}

/** A text progress bar: `[#########...........]  45%`. */
export function progressBar(done: number, total: number, width = 30): string {
  const fraction = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}%`;
}

/**
 * Two nodes join a Kademlia network through a bootstrap node; one finds the other by id
 * and streams `totalBytes` to it over TCP, encrypted by Noise (`noiseStream`). The stream
 * is produced and consumed chunk by chunk, so neither side holds it whole.
 */
export async function tcpStreamTransfer(totalBytes: number, log: (line: string) => void): Promise<TransferResult> {
  const stack = (bootstrap: { host: string; port: number }[]) => [udp({ host: '127.0.0.1' }), kademlia({ bootstrap }), tcp({ host: '127.0.0.1' }), noiseStream()] as const;
  const seed = createNode({ identity: Identity.generate(), layers: stack([]) });
  await seed.start();
  const sender = createNode({ identity: Identity.generate(), layers: stack([seed.localAddress()]) });
  const receiver = createNode({ identity: Identity.generate(), layers: stack([seed.localAddress()]) });
  await sender.start();
  await receiver.start();
  try {
    await sleep(500);
    const peer = await sender.findPeer(receiver.id, { timeoutMs: 5000 });
    log(`  the sender found ${peer.id.short}… through Kademlia at ${peer.address.host}:${peer.address.port} (TCP port ${receiver.localTcpPort()})`);

    const received = new Promise<{ bytes: number; digest: string }>((resolve, reject) => {
      receiver.handle('stream', async (source) => {
        try {
          const hash = createHash('sha256');
          let bytes = 0;
          for await (const chunk of source) {
            hash.update(chunk);
            bytes += chunk.byteLength;
          }
          resolve({ bytes, digest: hash.digest('hex') });
        } catch (error) {
          reject(error as Error);
        }
      });
    });

    const chunk = new Uint8Array(MiB);
    const sentHash = createHash('sha256');
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let offset = 0; offset < totalBytes; offset += chunk.byteLength) {
        const piece = randomFillSync(chunk).subarray(0, Math.min(chunk.byteLength, totalBytes - offset));
        sentHash.update(piece);
        yield piece;
      }
    }
    const startedAt = performance.now();
    await sender.sendStream(receiver.id, source());
    const result = await received;
    const seconds = (performance.now() - startedAt) / 1000;
    const intact = result.bytes === totalBytes && result.digest === sentHash.digest('hex');
    log(`  ${totalBytes / MiB} MiB streamed over TCP, Noise-encrypted, in ${seconds.toFixed(2)} s (${(totalBytes / MiB / seconds).toFixed(0)} MiB/s); SHA-256 ${intact ? 'matches' : 'DIFFERS'}`);
    return { bytes: result.bytes, seconds, intact };
  } finally {
    for (const node of [sender, receiver, seed]) await node.stop();
  }
}

/**
 * One message of `totalBytes` over UDP that loses `loss` of its datagrams (seeded), made
 * reliable by `rudp`, with a progress bar drawn from the sender's acknowledgements.
 */
export async function reliableUdpTransfer(totalBytes: number, loss: number, log: (line: string) => void): Promise<TransferResult> {
  const sender = createNode({ layers: [udp({ host: '127.0.0.1' }), faulty({ seed: 7, outgoing: { loss } }), rudp()] });
  const receiver = createNode({ layers: [udp({ host: '127.0.0.1' }), faulty({ seed: 8, outgoing: { loss } }), rudp()] });
  await sender.start();
  await receiver.start();
  try {
    const message = randomFillSync(new Uint8Array(totalBytes));
    const received = new Promise<string>((resolve) => receiver.handle('reliable-message', (data) => resolve(sha256Hex(data))));
    const interactive = process.stdout.isTTY === true;
    let nextQuarter = 0.25;
    const startedAt = performance.now();
    await sender.sendReliable(receiver.localAddress(), message, {
      timeoutMs: 60_000,
      onProgress: (acknowledged, total) => {
        if (interactive) process.stdout.write(`\r  ${progressBar(acknowledged, total)}`);
        else if (acknowledged / total >= nextQuarter) {
          log(`  ${progressBar(acknowledged, total)}`);
          while (acknowledged / total >= nextQuarter) nextQuarter += 0.25;
        }
      },
    });
    const seconds = (performance.now() - startedAt) / 1000;
    if (interactive) process.stdout.write('\n');
    const intact = (await received) === sha256Hex(message);
    const counters = sender.counters()['rudp'] ?? {};
    const resent = (counters['lost-by-packet-threshold'] ?? 0) + (counters['lost-by-time-threshold'] ?? 0);
    const dropped = (sender.counters()['faulty'] ?? {})['outgoing.lost'] ?? 0;
    log(
      `  ${totalBytes / MiB} MiB delivered reliably in ${seconds.toFixed(2)} s (${(totalBytes / MiB / seconds).toFixed(1)} MiB/s) ` +
        `although the sender's link lost ${dropped} datagrams (${resent} chunks found lost and sent again); SHA-256 ${intact ? 'matches' : 'DIFFERS'}`,
    );
    return { bytes: totalBytes, seconds, intact };
  } finally {
    await sender.stop();
    await receiver.stop();
  }
}
