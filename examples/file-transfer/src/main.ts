/**
 * A generated file goes from one node to another twice: as one reliable message over UDP
 * (rudp above noise: every chunk encrypted) and as a TCP stream (tcp with noiseStream,
 * the receiver found through Kademlia). A progress bar shows while it travels; the rate
 * and a SHA-256 comparison of the file on both sides print at the end.
 *
 * Run it: `npx -y pnpm@10.34.9 --filter @deccom-examples/file-transfer start` (after a
 * build), or `node examples/file-transfer/dist/main.js --mib 64`.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createNode, Identity } from '@deccom/core';
import { udp } from '@deccom/udp';
import { noise, noiseStream } from '@deccom/noise';
import { rudp } from '@deccom/rudp';
import { kademlia } from '@deccom/kademlia';
import { tcp } from '@deccom/tcp';

const MiB = 1024 * 1024;
const megabytesPerSecond = (bytes: number, seconds: number) => bytes / 1e6 / seconds;

/** A progress bar: redrawn in place on a terminal, one line per quarter through a pipe. */
class Progress {
  private nextQuarter = 0.25;
  private lastDrawAt = 0;
  private readonly startedAt = performance.now();
  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {}
  update(done: number): void {
    const fraction = Math.min(1, done / this.total);
    const filled = Math.round(fraction * 30);
    const rate = megabytesPerSecond(done, (performance.now() - this.startedAt) / 1000).toFixed(1);
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${(done / MiB).toFixed(1)} MiB / ${(this.total / MiB).toFixed(1)} MiB  ${rate} MB/s`;
    if (process.stdout.isTTY) {
      if (performance.now() - this.lastDrawAt < 100 && fraction < 1) return;
      this.lastDrawAt = performance.now();
      process.stdout.write(`\r${line}`);
    } else if (fraction >= this.nextQuarter) {
      while (fraction >= this.nextQuarter) this.nextQuarter += 0.25;
      console.log(line);
    }
  }
  finish(): void {
    if (process.stdout.isTTY) process.stdout.write('\n');
  }
}
const { values } = parseArgs({ options: { mib: { type: 'string', default: '16' } } });
const size = Number(values.mib) * MiB;
if (!Number.isInteger(size) || size <= 0 || size > 1024 * MiB) {
  console.error(`--mib must be a whole number of MiB, 1..1024; got ${values.mib}`);
  process.exit(2);
}

const fileHash = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'deccom-file-transfer-'));
const source = join(dir, 'generated.bin');
const content = new Uint8Array(size);
for (let offset = 0; offset < size; offset += MiB) randomFillSync(content, offset, Math.min(MiB, size - offset));
writeFileSync(source, content);
const sourceHash = fileHash(source);
console.log(`generated ${source}: ${values.mib} MiB, SHA-256 ${sourceHash.slice(0, 16)}…\n`);

try {
  // 1. Reliable UDP: udp > noise > rudp. The whole file is one message, delivered exactly once.
  {
    const stack = () => [udp({ host: '127.0.0.1' }), noise(), rudp()] as const;
    const sender = createNode({ identity: Identity.generate(), layers: stack() });
    const receiver = createNode({ identity: Identity.generate(), layers: stack() });
    await sender.start();
    await receiver.start();
    try {
      const target = join(dir, 'received-over-rudp.bin');
      const saved = new Promise<void>((resolve) => receiver.handle('reliable-message', (data) => resolve(writeFileSync(target, data))));
      console.log('over reliable UDP (udp > noise > rudp), encrypted chunk by chunk:');
      const progress = new Progress('  sending', size);
      const startedAt = performance.now();
      await sender.sendReliable(receiver.localAddress(), readFileSync(source), {
        timeoutMs: 120_000,
        onProgress: (acknowledged, total) => progress.update(Math.round((acknowledged / total) * size)),
      });
      const seconds = (performance.now() - startedAt) / 1000;
      progress.update(size);
      progress.finish();
      await saved;
      const same = fileHash(target) === sourceHash;
      console.log(`  ${values.mib} MiB in ${seconds.toFixed(2)} s: ${megabytesPerSecond(size, seconds).toFixed(1)} MB/s; SHA-256 of the received file ${same ? 'matches' : 'DIFFERS'}\n`);
      if (!same) process.exitCode = 1;
    } finally {
      await sender.stop();
      await receiver.stop();
    }
  }

  // 2. TCP: udp > kademlia > tcp > noiseStream. The sender joins through the receiver and
  // streams the file from disk by node id; the receiver writes it to disk as it arrives.
  {
    const receiver = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), kademlia(), tcp(), noiseStream()] });
    await receiver.start();
    const sender = createNode({
      identity: Identity.generate(),
      layers: [udp({ host: '127.0.0.1' }), kademlia({ bootstrap: [receiver.localAddress()] }), tcp(), noiseStream()],
    });
    await sender.start();
    try {
      // Joining takes a round trip: wait (bounded) until the receiver's record, with its TCP port, is known.
      for (let i = 0; i < 200 && sender.getPeer(receiver.id) === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      const target = join(dir, 'received-over-tcp.bin');
      const saved = new Promise<void>((resolve, reject) => {
        receiver.handle('stream', async (incoming) => {
          try {
            const file = createWriteStream(target);
            for await (const chunk of incoming) if (!file.write(chunk)) await once(file, 'drain');
            file.end();
            await once(file, 'close');
            resolve();
          } catch (error) {
            reject(error as Error);
          }
        });
      });
      console.log('over TCP (udp > kademlia > tcp > noiseStream), streamed from disk to disk:');
      const progress = new Progress('  sending', size);
      let sent = 0;
      async function* read(): AsyncGenerator<Uint8Array> {
        for await (const chunk of createReadStream(source, { highWaterMark: 256 * 1024 })) {
          sent += (chunk as Buffer).byteLength;
          progress.update(sent);
          yield chunk as Buffer;
        }
      }
      const startedAt = performance.now();
      await sender.sendStream(receiver.id, read()); // resolves once the receiver has it all
      await saved;
      const seconds = (performance.now() - startedAt) / 1000;
      progress.update(size);
      progress.finish();
      const same = fileHash(target) === sourceHash;
      console.log(`  ${values.mib} MiB in ${seconds.toFixed(2)} s: ${megabytesPerSecond(size, seconds).toFixed(1)} MB/s; SHA-256 of the received file ${same ? 'matches' : 'DIFFERS'}\n`);
      if (!same) process.exitCode = 1;
    } finally {
      await sender.stop();
      await receiver.stop();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log('Both nodes of each transfer stopped; temporary files removed.');
