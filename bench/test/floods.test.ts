/**
 * Floods and abuse over real sockets on 127.0.0.1 (bench/src/hardening/floods.ts): for
 * each, the victim's peak heap growth stays under the stated bound and legitimate
 * exchanges during the flood succeed (a ping answered within three tries, a handshake within
 * two, as a real peer retries: a full socket buffer drops everyone's datagrams alike). `pnpm bench hardening` reports the same figures.
 */
import { describe, expect, it } from 'vitest';
import { floodKademliaFakePeers, floodNoiseHandshake, floodRudpFragments, floodTcpOversized, floodTcpSlowLoris, floodUdpSpoof, type FloodResult } from '../src/hardening/floods.js';

function check(result: FloodResult): void {
  expect(result.peakHeapDeltaMiB, `${result.name}: peak heap growth`).toBeLessThan(result.boundMiB);
  expect(result.legitOk, `${result.name}: legitimate exchanges`).toBeGreaterThanOrEqual(Math.ceil(result.legitAttempts * result.legitRequired));
}

describe('floods over real sockets', () => {
  it('udp: 50,000 spoofed-looking datagrams from 128 ports; pings still answered', { timeout: 120_000 }, async () => {
    const result = await floodUdpSpoof(50_000);
    check(result);
    expect(result.counters['datagrams-in']).toBeGreaterThan(1000);
  });

  it('noise: 20,000 bogus initiations from 64 ports; fresh peers still complete handshakes', { timeout: 120_000 }, async () => {
    check(await floodNoiseHandshake(20_000));
  });

  it('rudp: 30,000 forged chunks of 1 GiB messages; a 1 MiB reliable message still arrives', { timeout: 120_000 }, async () => {
    check(await floodRudpFragments(30_000));
  });

  it('tcp: 300 connections announcing 4 GiB frames; messages still flow', { timeout: 120_000 }, async () => {
    const result = await floodTcpOversized(300);
    check(result);
  });

  it('tcp: 500 slow-loris connections from one host; peers from another host still connect', { timeout: 120_000 }, async () => {
    const result = await floodTcpSlowLoris(500, 2000);
    check(result);
    expect(result.counters['refused.introducing-per-host']).toBeGreaterThan(0);
  });

  it('kademlia: 3,000 identities from one host; honest nodes still found, the host holds few contacts', { timeout: 120_000 }, async () => {
    const result = await floodKademliaFakePeers(3000, 8);
    check(result);
    expect(result.counters['attacker-contacts']).toBeLessThanOrEqual(2 * 12);
    expect(result.counters['dropped.prefix-limit']).toBeGreaterThan(2000);
  });
});
