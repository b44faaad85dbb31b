import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { describe, it } from 'vitest';
import { createNode, type Address } from '@deccom/core';
import { transportConformanceCases, type TransportHarness } from '@deccom/core/testing';
import { udp } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function harness(host: '127.0.0.1' | '::1') {
  return async (): Promise<TransportHarness> => {
    const raw = createSocket(host === '::1' ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => raw.bind(0, host, () => resolve()));
    // A silent address: a bound socket that never answers.
    const silent = createSocket(host === '::1' ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => silent.bind(0, host, () => resolve()));
    return {
      createNode: () => createNode({ layers: [udp({ host })] }),
      injectRaw: (to: Address, bytes: Uint8Array) => new Promise<void>((resolve) => raw.send(bytes, to.port, to.host, () => resolve())),
      silentAddress: () => ({ host, port: silent.address().port }),
      settle: async (ms) => void (await sleep(ms)),
      waitFor: async (predicate, maxMs) => {
        const deadline = Date.now() + maxMs;
        while (!predicate()) {
          if (Date.now() > deadline) return false;
          await sleep(5);
        }
        return true;
      },
      cleanup: async () => {
        await new Promise<void>((resolve) => raw.close(() => resolve()));
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      },
    };
  };
}

const hasIpv6Loopback = Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6' && i.address === '::1'));

describe('transport conformance: udp over 127.0.0.1', () => {
  for (const c of transportConformanceCases(harness('127.0.0.1'))) it(c.name, c.run);
});

describe.skipIf(!hasIpv6Loopback)('transport conformance: udp over ::1', () => {
  for (const c of transportConformanceCases(harness('::1'))) it(c.name, c.run);
});
