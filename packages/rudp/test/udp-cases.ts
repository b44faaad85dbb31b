/**
 * Real-socket transfers: two nodes `udp + faulty + rudp` on 127.0.0.1 (or ::1), with the
 * faulty layer on both (so acknowledgements suffer the same faults), a message hashed on
 * both ends. Shared by the normal suite (one lossy transfer) and the slow one (100 MiB in
 * every case).
 */
import { createNode, type Address } from '@deccom/core';
import { udp } from '@deccom/udp';
import { faulty, type FaultOptions } from '@deccom/faulty';
import { rudp, type RudpOptions } from '../src/index.js';
import { patternBytes, sha256 } from './harness.js';

export interface TransferResult {
  digestSent: string;
  digestReceived: string | undefined;
  deliveries: number;
  from: Address | undefined;
  sender: Address;
  seconds: number;
  lastProgress: number;
  counters: Record<string, Record<string, number>>;
}

export async function udpTransfer(bytes: number, faults: FaultOptions, options: RudpOptions = {}, host = '127.0.0.1', seed = 1): Promise<TransferResult> {
  const stack = (faultSeed: string) => [udp({ host }), faulty({ seed: faultSeed, outgoing: faults }), rudp(options)] as const;
  const a = createNode({ layers: stack(`a-${seed}`) });
  const b = createNode({ layers: stack(`b-${seed}`) });
  await a.start();
  await b.start();
  try {
    const data = patternBytes(bytes, seed);
    let received: Uint8Array | undefined;
    let from: Address | undefined;
    let deliveries = 0;
    b.handle('reliable-message', (message, sender) => {
      deliveries++;
      received = message;
      from = sender;
    });
    let lastProgress = 0;
    const started = performance.now();
    // Generous: the machine running the tests may be busy; behaviour is asserted, not speed.
    await a.sendReliable(b.localAddress(), data, { timeoutMs: 600_000, onProgress: (done) => (lastProgress = done) });
    const seconds = (performance.now() - started) / 1000;
    return {
      digestSent: sha256(data),
      digestReceived: received === undefined ? undefined : sha256(received),
      deliveries,
      from,
      sender: a.localAddress(),
      seconds,
      lastProgress,
      counters: { a: a.counters().rudp ?? {}, b: b.counters().rudp ?? {} },
    };
  } finally {
    await a.stop();
    await b.stop();
  }
}
