import { createSocket } from 'node:dgram';
import { describe, it } from 'vitest';
import { createNode, type Address, type AnyLayer } from '@deccom/core';
import { delay } from '@deccom/delay';
import { faulty } from '@deccom/faulty';
import { pollUntil, sleep, transportConformanceCases, type TransportHarness } from '@deccom/core/testing';
import { udp } from '../src/index.js';


function harness(host: '127.0.0.1' | '::1', layers: (host: string) => readonly [ReturnType<typeof udp>, ...AnyLayer[]]) {
  return async (): Promise<TransportHarness> => {
    const raw = createSocket(host === '::1' ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => raw.bind(0, host, () => resolve()));
    // A silent address: a bound socket that never answers.
    const silent = createSocket(host === '::1' ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => silent.bind(0, host, () => resolve()));
    return {
      createNode: () => createNode({ layers: layers(host) as [ReturnType<typeof udp>] }),
      injectRaw: (to: Address, bytes: Uint8Array) => new Promise<void>((resolve) => raw.send(bytes, to.port, to.host, () => resolve())),
      silentAddress: () => ({ host, port: silent.address().port }),
      settle: async (ms) => void (await sleep(ms)),
      waitFor: (predicate, maxMs) => pollUntil(predicate, maxMs, 5),
      cleanup: async () => {
        await new Promise<void>((resolve) => raw.close(() => resolve()));
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      },
    };
  };
}

/** Whether this machine can bind a UDP socket on the IPv6 loopback (some containers cannot). */
async function probeIpv6Loopback(): Promise<boolean> {
  const probe = createSocket({ type: 'udp6', ipv6Only: true });
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    await new Promise<void>((resolve) => {
      try {
        probe.close(() => resolve());
      } catch {
        resolve(); // never bound
      }
    });
  }
}

const hasIpv6Loopback = await probeIpv6Loopback();

describe('transport conformance: udp over 127.0.0.1', () => {
  for (const c of transportConformanceCases(harness('127.0.0.1', (host) => [udp({ host })]))) it(c.name, c.run);
});

describe.skipIf(!hasIpv6Loopback)(
  hasIpv6Loopback ? 'transport conformance: udp over ::1' : 'transport conformance: udp over ::1 (SKIPPED: this machine cannot bind a UDP socket on ::1)',
  () => {
    for (const c of transportConformanceCases(harness('::1', (host) => [udp({ host })]))) it(c.name, c.run);
  },
);

describe('transport conformance: udp + faulty (no faults) + delay (zero) over 127.0.0.1', () => {
  for (const c of transportConformanceCases(harness('127.0.0.1', (host) => [udp({ host }), faulty(), delay()]))) it(c.name, c.run);
});

describe('transport conformance: udp + faulty (loss-free delay) + delay (5 ms) over 127.0.0.1', () => {
  for (const c of transportConformanceCases(harness('127.0.0.1', (host) => [udp({ host }), faulty({ seed: 1, delayMs: 2, jitterMs: 2 }), delay({ latencyMs: 5 })]))) {
    it(c.name, c.run);
  }
});
