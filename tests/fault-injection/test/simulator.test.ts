/**
 * Fault injection on core's in-memory network with a virtual clock: partitions that
 * heal, crashes, restarts with the same identity (same or new address), and clock
 * jumps, against Kademlia, keep-alive, rudp and Noise.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createNode, DecComError, Identity, type NodeId } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { keepalive } from '@deccom/keepalive';
import { noise } from '@deccom/noise';
import { PeerUnresponsiveError, rudp } from '@deccom/rudp';
import { JumpClock } from '../src/jump-clock.js';
import { KademliaSim } from '../src/sim.js';

const KEEPALIVE = { intervalMs: 5000, pingTimeoutMs: 1000, maxFailures: 3 };
/** Keep-alive's worst case from a crash to the report: one interval of silence, then maxFailures pings a check period (interval / 4) apart. */
const KEEPALIVE_DETECTION_MS = KEEPALIVE.intervalMs + KEEPALIVE.maxFailures * (KEEPALIVE.intervalMs / 4 + KEEPALIVE.pingTimeoutMs) + KEEPALIVE.intervalMs / 4;

const digest = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2 + 1) | 0;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('kademlia under partitions and restarts (simulator)', () => {
  it('re-merges after a partition long enough for keep-alive to evict every contact across it', async () => {
    const sim = new KademliaSim({ size: 60, keepalive: KEEPALIVE });
    try {
      await sim.start();
      const left = sim.slots.slice(0, 30);
      const right = sim.slots.slice(30);
      const rightHosts = new Set(sim.hosts(right));
      expect((await sim.lookups(left, right, 40)).found).toBe(40);

      sim.network.partition(sim.hosts(left), sim.hosts(right));
      await sim.clock.advance(120_000);
      // Every contact across the partition is gone: the two halves are separate networks.
      const across = left.reduce((sum, slot) => sum + slot.node.getPeers().filter((peer) => rightHosts.has(peer.address.host)).length, 0);
      expect(across).toBe(0);
      expect((await sim.lookups(left, right, 20)).found).toBe(0);

      sim.network.heal();
      // Within two rediscovery intervals (30 s each) the halves find each other again.
      await sim.clock.advance(60_000);
      const after = await sim.lookups(left, right, 40);
      const back = await sim.lookups(right, left, 40);
      expect(after).toMatchObject({ found: 40, wrongAddress: 0 });
      expect(back).toMatchObject({ found: 40, wrongAddress: 0 });
      const rediscovered = sim.slots.reduce((sum, slot) => sum + (slot.node.counters()['kademlia']?.['rediscovered'] ?? 0), 0);
      expect(rediscovered).toBeGreaterThan(0);
    } finally {
      await sim.stopAll();
    }
  });

  it('stays split without rediscovery (what the rediscovery fixes)', async () => {
    // 60 nodes: in smaller networks (under k per side) stale records of the other side keep
    // circulating through replacement caches and answers, and happen to bridge the heal.
    const sim = new KademliaSim({ size: 60, keepalive: KEEPALIVE, kademlia: { rediscoverIntervalMs: 0 } });
    try {
      await sim.start();
      const left = sim.slots.slice(0, 30);
      const right = sim.slots.slice(30);
      sim.network.partition(sim.hosts(left), sim.hosts(right));
      await sim.clock.advance(120_000);
      sim.network.heal();
      await sim.clock.advance(300_000);
      expect((await sim.lookups(left, right, 20)).found).toBe(0);
    } finally {
      await sim.stopAll();
    }
  });

  it('a partition shorter than keep-alive detection leaves the network whole', async () => {
    const sim = new KademliaSim({ size: 40, keepalive: KEEPALIVE });
    try {
      await sim.start();
      const left = sim.slots.slice(0, 20);
      const right = sim.slots.slice(20);
      sim.network.partition(sim.hosts(left), sim.hosts(right));
      await sim.clock.advance(3000);
      sim.network.heal();
      await sim.clock.advance(10_000);
      expect((await sim.lookups(left, right, 30)).found).toBe(30);
      expect((await sim.lookups(right, left, 30)).found).toBe(30);
    } finally {
      await sim.stopAll();
    }
  });

  it('finds a node that crashed and restarted with the same identity at a new address', async () => {
    const sim = new KademliaSim({ size: 50, keepalive: KEEPALIVE });
    try {
      await sim.start();
      const moved = sim.slots.slice(40, 45);
      const oldHosts = sim.hosts(moved);
      for (const slot of moved) await sim.crash(slot);
      // Back after 2 s, at new hosts: the others still hold the old addresses.
      await sim.clock.advance(2000);
      for (const slot of moved) await sim.restart(slot, { sameAddress: false, through: sim.slots[1]! });
      expect(sim.hosts(moved)).not.toEqual(oldHosts);
      // Within keep-alive's detection time the stale entries are gone or updated.
      await sim.clock.advance(KEEPALIVE_DETECTION_MS + 5000);
      const others = sim.slots.filter((slot) => !moved.includes(slot));
      const result = await sim.lookups(others, moved, 60);
      expect(result).toMatchObject({ found: 60, wrongAddress: 0, failed: 0 });
      // And the restarted nodes find everyone.
      expect((await sim.lookups(moved, others, 30)).found).toBe(30);
    } finally {
      await sim.stopAll();
    }
  });

  it('finds a node that restarted at its old address after it had been evicted everywhere', async () => {
    const sim = new KademliaSim({ size: 40, keepalive: KEEPALIVE });
    try {
      await sim.start();
      const slot = sim.slots[25]!;
      await sim.crash(slot);
      await sim.clock.advance(KEEPALIVE_DETECTION_MS + 5000);
      const holders = sim.slots.filter((other) => other.up && other.node.getPeer(slot.node.id) !== undefined);
      expect(holders).toHaveLength(0);
      await sim.restart(slot, { sameAddress: true, through: sim.slots[3]! });
      await sim.clock.advance(5000);
      const others = sim.slots.filter((other) => other !== slot);
      expect((await sim.lookups(others, [slot], 30)).found).toBe(30);
    } finally {
      await sim.stopAll();
    }
  });
});

describe('keep-alive notices a crash (simulator)', () => {
  it('reports a crashed peer within its detection bound, and never a live one', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 20 } });
    const watcher = createNode({ clock, random: 1, layers: [memoryTransport(network), keepalive(KEEPALIVE)] });
    const live = createNode({ clock, random: 2, layers: [memoryTransport(network), keepalive(KEEPALIVE)] });
    const doomed = createNode({ clock, random: 3, layers: [memoryTransport(network), keepalive(KEEPALIVE)] });
    await Promise.all([watcher.start(), live.start(), doomed.start()]);
    try {
      const reports: { id: NodeId; at: number }[] = [];
      watcher.on('peer-unresponsive', (id) => void reports.push({ id, at: clock.now() }));
      watcher.trackPeer(live.id, live.localAddress());
      watcher.trackPeer(doomed.id, doomed.localAddress());
      await clock.advance(60_000);
      expect(reports).toHaveLength(0);
      const crashedAt = clock.now();
      await doomed.stop();
      await clock.advance(KEEPALIVE_DETECTION_MS + 1000);
      expect(reports.map((r) => r.id.hex)).toEqual([doomed.id.hex]);
      expect(reports[0]!.at - crashedAt).toBeLessThanOrEqual(KEEPALIVE_DETECTION_MS);
      await clock.advance(60_000);
      expect(reports).toHaveLength(1);
    } finally {
      await Promise.all([watcher.stop(), live.stop(), doomed.stop()]);
    }
  });
});

describe('rudp transfers across a partition (simulator)', () => {
  const PEER_TIMEOUT_MS = 15_000;
  // Partitions of several lengths struck at several points of a 2 MiB transfer: each
  // send either completes after the heal or fails with a typed error, never hangs, and
  // the receiver gets the message at most once (exactly once when the send resolved).
  const cases: { startMs: number; lengthMs: number }[] = [];
  for (const startMs of [50, 400, 1500]) for (const lengthMs of [2000, 8000, 30_000]) cases.push({ startMs, lengthMs });
  for (const { startMs, lengthMs } of cases) {
    it(`2 MiB send, partition at ${startMs} ms for ${lengthMs} ms`, async () => {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 10, bandwidthBytesPerSecond: 4_000_000 } });
      const a = createNode({ clock, random: 'a', layers: [memoryTransport(network), rudp({ peerTimeoutMs: PEER_TIMEOUT_MS })] });
      const b = createNode({ clock, random: 'b', layers: [memoryTransport(network), rudp()] });
      await a.start();
      await b.start();
      try {
        const data = pattern(2 * 1024 * 1024, startMs + lengthMs);
        const deliveries: string[] = [];
        b.handle('reliable-message', (message) => void deliveries.push(digest(message)));
        let outcome: { error?: unknown } | undefined;
        const sentAt = clock.now();
        let settledAt = 0;
        a.sendReliable(b.localAddress(), data).then(
          () => ((outcome = {}), (settledAt = clock.now())),
          (error: unknown) => ((outcome = { error }), (settledAt = clock.now())),
        );
        await clock.advance(startMs);
        network.partition([a.localAddress().host], [b.localAddress().host]);
        await clock.advance(lengthMs);
        network.heal();
        // No hang: settled within the partition plus the peer timeout plus the transfer's own time.
        expect(await clock.runUntil(() => outcome !== undefined, { maxMs: PEER_TIMEOUT_MS + 20_000, stepMs: 100 })).toBe(true);
        // Late chunks or retransmissions must not deliver it again.
        await clock.advance(30_000);
        expect(deliveries.length).toBeLessThanOrEqual(1);
        if (deliveries.length === 1) expect(deliveries[0]).toBe(digest(data));
        if (outcome!.error === undefined) {
          expect(deliveries).toHaveLength(1);
        } else {
          expect(outcome!.error).toBeInstanceOf(PeerUnresponsiveError);
          // Only a partition longer than the peer timeout may fail the send.
          expect(lengthMs).toBeGreaterThan(PEER_TIMEOUT_MS);
          expect(settledAt - sentAt).toBeLessThanOrEqual(startMs + PEER_TIMEOUT_MS + 5000);
        }
        if (lengthMs < PEER_TIMEOUT_MS) expect(outcome!.error).toBeUndefined();
        // The path works again: a fresh message goes through exactly once.
        const again = pattern(100_000, 7);
        const before = deliveries.length;
        let ok = false;
        a.sendReliable(b.localAddress(), again).then(() => (ok = true));
        expect(await clock.runUntil(() => ok, { maxMs: 20_000 })).toBe(true);
        await clock.advance(5000);
        expect(deliveries.slice(before)).toEqual([digest(again)]);
      } finally {
        await a.stop();
        await b.stop();
      }
    });
  }

  it('a receiver that crashes and restarts at the same address mid-transfer gets the message once (or the send fails typed)', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 10, bandwidthBytesPerSecond: 4_000_000 } });
    const a = createNode({ clock, random: 'a', layers: [memoryTransport(network), rudp({ peerTimeoutMs: 15_000 })] });
    const makeB = (seed: string) => createNode({ clock, random: seed, identity: Identity.fromString('receiver'), layers: [memoryTransport(network, { host: '10.9.9.9', port: 9000 }), rudp()] });
    let b = makeB('b1');
    await a.start();
    await b.start();
    const deliveries: string[] = [];
    const take = (node: ReturnType<typeof makeB>) => node.handle('reliable-message', (message) => void deliveries.push(digest(message)));
    take(b);
    try {
      const data = pattern(3 * 1024 * 1024, 99);
      let outcome: { error?: unknown } | undefined;
      a.sendReliable(b.localAddress(), data).then(
        () => (outcome = {}),
        (error: unknown) => (outcome = { error }),
      );
      await clock.advance(500);
      await b.stop();
      await clock.advance(1000);
      b = makeB('b2');
      take(b);
      await b.start();
      expect(await clock.runUntil(() => outcome !== undefined, { maxMs: 60_000, stepMs: 100 })).toBe(true);
      await clock.advance(30_000);
      if (outcome!.error === undefined) expect(deliveries).toEqual([digest(data)]);
      else {
        expect(outcome!.error).toBeInstanceOf(DecComError);
        expect(deliveries.length).toBeLessThanOrEqual(1);
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('noise sessions after a peer restart (simulator)', () => {
  async function pairWithRestart(sameAddress: boolean) {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 10 } });
    const options = { verifyOnThreadPool: false };
    const bobIdentity = Identity.generate();
    const alice = createNode({ clock, random: 'alice', identity: Identity.generate(), layers: [memoryTransport(network), noise(options)] });
    const bobAddress = (n: number) => ({ host: sameAddress ? '10.7.7.7' : `10.7.7.${7 + n}`, port: 7000 });
    const makeBob = (n: number) =>
      createNode({ clock, random: `bob-${n}`, identity: bobIdentity, layers: [memoryTransport(network, bobAddress(n)), noise(options)] });
    return { clock, alice, makeBob };
  }

  for (const sameAddress of [true, false]) {
    it(`re-handshakes after the peer restarted with the same identity (${sameAddress ? 'same' : 'new'} address), whoever speaks first`, async () => {
      for (const firstSpeaker of ['alice', 'bob'] as const) {
        const { clock, alice, makeBob } = await pairWithRestart(sameAddress);
        let bob = makeBob(0);
        await alice.start();
        await bob.start();
        const atAlice: string[] = [];
        const atBob: string[] = [];
        alice.handle('datagram', (data) => void atAlice.push(new TextDecoder().decode(data)));
        bob.handle('datagram', (data) => void atBob.push(new TextDecoder().decode(data)));
        try {
          const first = alice.secureConnect(bob.localAddress(), { expectedId: bob.id });
          await clock.advance(1000);
          const hashBefore = Buffer.from((await first).handshakeHash).toString('hex');
          alice.sendDatagram(bob.localAddress(), new TextEncoder().encode('before'));
          await clock.advance(200);
          expect(atBob).toEqual(['before']);

          // Bob crashes (no goodbye: his transport vanishes first) and restarts.
          await bob.stop();
          await clock.advance(3000);
          bob = makeBob(1);
          bob.handle('datagram', (data) => void atBob.push(new TextDecoder().decode(data)));
          await bob.start();

          // Keep talking once a second, as an application would; within a few seconds
          // messages flow again in both directions over a new session.
          const deadline = clock.now() + 10_000;
          let n = 0;
          while (clock.now() < deadline && !(atBob.some((m) => m.startsWith('after')) && atAlice.some((m) => m.startsWith('reply')))) {
            if (firstSpeaker === 'alice' || n > 0) alice.sendDatagram(bob.localAddress(), new TextEncoder().encode(`after-${n}`));
            bob.sendDatagram(alice.localAddress(), new TextEncoder().encode(`reply-${n}`));
            n++;
            await clock.advance(1000);
          }
          expect(atBob.some((m) => m.startsWith('after'))).toBe(true);
          expect(atAlice.some((m) => m.startsWith('reply'))).toBe(true);
          const session = alice.secureSession(bob.localAddress());
          expect(session).toBeDefined();
          expect(session!.remoteId.equals(bob.id)).toBe(true);
          expect(Buffer.from(session!.handshakeHash).toString('hex')).not.toBe(hashBefore);
          // Nothing from the old session was delivered twice.
          expect(atBob.filter((m) => m === 'before')).toHaveLength(1);
        } finally {
          await alice.stop();
          await bob.stop();
        }
      }
    });
  }
});

describe('clock jumps (virtual clock under a stepped now())', () => {
  it('forward and backward jumps cause no timer storm, no crash, and the stack keeps working', async () => {
    const virtual = new VirtualClock(1_000_000, 1);
    const jump = new JumpClock(virtual);
    const sim = new KademliaSim({ size: 24, keepalive: KEEPALIVE, clock: virtual, nodeClock: () => jump });
    const network = sim.network;
    const errors: unknown[] = [];
    const onError = (error: unknown): void => void errors.push(error);
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    const ra = createNode({ clock: jump, random: 'ra', layers: [memoryTransport(network), rudp({ peerTimeoutMs: 15_000 })] });
    const rb = createNode({ clock: jump, random: 'rb', layers: [memoryTransport(network), rudp()] });
    try {
      await sim.start();
      await ra.start();
      await rb.start();
      const received: string[] = [];
      rb.handle('reliable-message', (message) => void received.push(digest(message)));

      const timerRate = async (ms: number): Promise<number> => {
        const before = jump.timersStarted;
        await virtual.advance(ms);
        return (jump.timersStarted - before) / (ms / 1000);
      };
      const baseline = await timerRate(20_000);

      const results: Record<string, { rate: number; lookups: number; transfer: string }> = {};
      for (const [index, name, ms] of [
        [1, 'forward 1 h', 3_600_000],
        [2, 'backward 2 h', -7_200_000],
        [3, 'forward 10 min', 600_000],
      ] as const) {
        // A 1 MiB transfer in flight across the jump.
        const data = pattern(1024 * 1024, 1000 + index);
        let outcome: { error?: unknown } | undefined;
        ra.sendReliable(rb.localAddress(), data).then(
          () => (outcome = {}),
          (error: unknown) => (outcome = { error }),
        );
        await virtual.advance(50);
        jump.jump(ms);
        const rate = await timerRate(20_000);
        expect(await virtual.runUntil(() => outcome !== undefined, { maxMs: 60_000, stepMs: 100 })).toBe(true);
        // Completed, or failed with a typed error; delivered at most once either way.
        const deliveredTimes = received.filter((h) => h === digest(data)).length;
        if (outcome!.error === undefined) expect(deliveredTimes).toBe(1);
        else {
          expect(outcome!.error).toBeInstanceOf(DecComError);
          expect(deliveredTimes).toBeLessThanOrEqual(1);
        }
        // A transfer started after the jump completes.
        const fresh = pattern(200_000, 3);
        let ok: boolean | undefined;
        ra.sendReliable(rb.localAddress(), fresh).then(
          () => (ok = true),
          () => (ok = false),
        );
        expect(await virtual.runUntil(() => ok !== undefined, { maxMs: 60_000, stepMs: 100 })).toBe(true);
        expect(ok).toBe(true);
        const lookups = await sim.lookups(sim.slots, sim.slots, 30);
        results[name] = { rate, lookups: lookups.found, transfer: outcome!.error === undefined ? 'completed' : (outcome!.error as DecComError).code };
        // No timer storm: the rate of timers started stays within a small factor of the steady rate.
        expect(rate).toBeLessThanOrEqual(baseline * 3 + 5);
        expect(lookups.found).toBe(30);
      }

      // Keep-alive still notices a crash after the clock went backward.
      const watcher = sim.slots[0]!;
      const victim = sim.slots[5]!;
      const reports: string[] = [];
      watcher.node.on('peer-unresponsive', (id) => void reports.push(id.hex));
      jump.jump(-3_600_000);
      await sim.crash(victim);
      watcher.node.trackPeer(victim.node.id, { host: victim.host, port: 7000 });
      await virtual.advance(KEEPALIVE_DETECTION_MS + 1000);
      expect(reports).toContain(victim.node.id.hex);
      expect(errors).toEqual([]);
      console.log('clock jumps:', { baselineTimersPerSecond: baseline, ...results });
    } finally {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
      await ra.stop();
      await rb.stop();
      await sim.stopAll();
    }
  });
});
