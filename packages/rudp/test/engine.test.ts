import { describe, expect, it } from 'vitest';
import { AbortError, StateError, TimeoutError } from '@deccom/core';
import { MessageRefusedError, PeerUnresponsiveError } from '../src/index.js';
import { decodePacket, encodeAck, encodeChunk, isUnknownInstance, PACKET_ACK, PACKET_CHUNK, PACKET_REFUSE, sameInstance, type Chunk } from '../src/wire.js';
import { FakeLink, patternBytes, sha256 } from './harness.js';

const MiB = 1024 * 1024;

describe('rudp engine over a deterministic fake link', () => {
  it('delivers a message whole and exactly once, with monotone progress ending at the total', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const data = patternBytes(4 * MiB + 123, 1);
    const progress: number[] = [];
    const outcome = await link.settle(a.engine.send(b.address, data, { onProgress: (done, total) => progress.push(done / total) }));
    expect(outcome.error).toBeUndefined();
    expect(b.delivered).toHaveLength(1);
    expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
    expect(b.delivered[0]!.from).toEqual(a.address);
    expect(progress.at(-1)).toBe(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThanOrEqual(progress[i - 1]!);
    expect(progress.length).toBeGreaterThan(10);
    // Nothing is left behind on either side.
    expect(b.engine.receiverStatus()).toMatchObject({ reassemblies: 0, reassemblyBytes: 0 });
  });

  it('sends empty and single-chunk messages', async () => {
    const link = new FakeLink({ faults: { latencyMs: 1 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const sends = [a.engine.send(b.address, new Uint8Array(0)), a.engine.send(b.address, patternBytes(1000, 2)), a.engine.send(b.address, patternBytes(1150, 3))];
    const outcome = await link.settle(Promise.all(sends));
    expect(outcome.error).toBeUndefined();
    expect(b.delivered.map((d) => d.data.byteLength).sort((x, y) => x - y)).toEqual([0, 1000, 1150]);
  });

  it('survives loss, duplication, reordering, jitter and corruption together', async () => {
    const link = new FakeLink({ seed: 'mix', faults: { latencyMs: 15, jitterMs: 10, loss: 0.05, duplicate: 0.05, reorder: 0.1, reorderDelayMs: 8, corrupt: 0.02 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const data = patternBytes(6 * MiB, 4);
    const outcome = await link.settle(a.engine.send(b.address, data));
    expect(outcome.error).toBeUndefined();
    expect(b.delivered).toHaveLength(1);
    expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
    expect(link.stats.corrupted).toBeGreaterThan(50);
    // Corrupted packets are caught by the checksum (or a field check) and counted, never used.
    const dropped = b.counters.get('dropped') + a.counters.get('dropped');
    expect(dropped).toBeGreaterThan(0);
    expect(b.counters.get('duplicate-chunks')).toBeGreaterThan(0);
    expect(a.counters.get('retransmissions')).toBeGreaterThan(0);
  });

  it('learns a reordering path: spurious losses widen the thresholds and retransmissions stay rare', async () => {
    const link = new FakeLink({ seed: 'reorder', faults: { latencyMs: 15, reorder: 0.1, reorderDelayMs: 8 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const data = patternBytes(6 * MiB, 26);
    const outcome = await link.settle(a.engine.send(b.address, data));
    expect(outcome.error).toBeUndefined();
    expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
    expect(a.counters.get('spurious-losses')).toBeGreaterThan(0);
    const path = (a.engine.status() as { pathSample: { packetThreshold: number }[] }).pathSample[0]!;
    expect(path.packetThreshold).toBeGreaterThan(3);
    // About 5,500 chunks with 10% of them reordered: only a handful sent twice.
    expect(a.counters.get('retransmissions')).toBeLessThan(100);
  });

  it('delivers at 20% loss in both directions', async () => {
    const link = new FakeLink({ seed: 'twenty', faults: { latencyMs: 5, loss: 0.2 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const data = patternBytes(2 * MiB, 5);
    const outcome = await link.settle(a.engine.send(b.address, data));
    expect(outcome.error).toBeUndefined();
    expect(b.delivered).toHaveLength(1);
    expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
  });

  it('delivers 8 MiB at 30% loss in both directions: a lossy path that still answers is not given up on', async () => {
    // Seeds on which the sender gave up before 2026-12-07 (one probe per expiry, the
    // backoff doubling to maxRtoMs): 15 of 80 seeds then, none of them now.
    for (const seed of ['s3', 's8', 's9', 's11', 's13']) {
      const link = new FakeLink({ seed, faults: { latencyMs: 5, loss: 0.3 } });
      const a = link.endpoint('10.0.0.1', 1000);
      const b = link.endpoint('10.0.0.2', 2000);
      const data = patternBytes(8 * MiB, 7);
      const outcome = await link.settle(a.engine.send(b.address, data), 3_600_000);
      expect(outcome.error, `seed ${seed}`).toBeUndefined();
      expect(b.delivered).toHaveLength(1);
      expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
      expect(a.counters.get('peers-unresponsive')).toBe(0);
    }
  });

  it('fails with PeerUnresponsiveError when the peer goes silent, not a hang', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10 } });
    const a = link.endpoint('10.0.0.1', 1000, { peerTimeoutMs: 5_000 });
    const b = link.endpoint('10.0.0.2', 2000);
    let chunks = 0;
    // The receiver dies after 200 chunks: nothing reaches it any more.
    link.filter = (bytes, _from, to) => (to.port === 2000 && bytes[3] === PACKET_CHUNK && ++chunks > 200 ? 'drop' : undefined);
    const started = link.clock.now();
    const outcome = await link.settle(a.engine.send(b.address, patternBytes(4 * MiB, 6)), 120_000);
    expect(outcome.settled).toBe(true);
    expect(outcome.error).toBeInstanceOf(PeerUnresponsiveError);
    expect((outcome.error as PeerUnresponsiveError).code).toBe('RUDP_PEER_UNRESPONSIVE');
    expect(link.clock.now() - started).toBeLessThan(5_000 + 3_000);
    expect(b.delivered).toHaveLength(0);
  });

  it('fails with PeerUnresponsiveError towards an address where nobody listens', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10 } });
    const a = link.endpoint('10.0.0.1', 1000, { peerTimeoutMs: 3_000 });
    const outcome = await link.settle(a.engine.send({ host: '10.9.9.9', port: 9 }, patternBytes(10_000, 7)), 60_000);
    expect(outcome.error).toBeInstanceOf(PeerUnresponsiveError);
  });

  it('aborts with AbortError and frees the receiver at once (CANCEL)', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10, bandwidthBytesPerSecond: 5 * MiB } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const controller = new AbortController();
    const sending = a.engine.send(b.address, patternBytes(8 * MiB, 8), { signal: controller.signal });
    link.clock.setTimeout(() => controller.abort(new Error('changed my mind')), 300);
    const outcome = await link.settle(sending);
    expect(outcome.error).toBeInstanceOf(AbortError);
    expect((outcome.error as AbortError).code).toBe('ABORTED');
    // The CANCEL queues behind the chunks already on the link (5 MiB/s), then frees the
    // half-message long before the 30 s reassembly timeout would.
    await link.clock.advance(2_000);
    expect(b.counters.get('cancelled')).toBe(1);
    expect(b.engine.receiverStatus()).toMatchObject({ reassemblies: 0, reassemblyBytes: 0 });
    expect(b.delivered).toHaveLength(0);
  });

  it('rejects an already aborted signal without sending', async () => {
    const link = new FakeLink();
    const a = link.endpoint('10.0.0.1', 1000);
    await expect(a.engine.send({ host: '10.0.0.2', port: 2 }, new Uint8Array(10), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    expect(a.sent).toBe(0);
  });

  it('fails with TimeoutError after timeoutMs', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10, bandwidthBytesPerSecond: 1 * MiB } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const outcome = await link.settle(a.engine.send(b.address, patternBytes(8 * MiB, 9), { timeoutMs: 1_000 }));
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(link.clock.now()).toBeLessThan(1_100);
    expect(b.delivered).toHaveLength(0);
  });

  it('is refused (typed) beyond the receiver maxMessageBytes', async () => {
    const link = new FakeLink({ faults: { latencyMs: 5 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000, { maxMessageBytes: 100_000 });
    const outcome = await link.settle(a.engine.send(b.address, patternBytes(200_000, 10)));
    expect(outcome.error).toBeInstanceOf(MessageRefusedError);
    expect((outcome.error as MessageRefusedError).reason).toBe('too-large');
    expect(b.engine.receiverStatus()).toMatchObject({ reassemblies: 0, reassemblyBytes: 0 });
  });

  // A refused message's chunks are not acknowledged, so losing its REFUSEs can only delay
  // the refusal (or end in PeerUnresponsiveError), never make it look delivered.
  for (const [reason, receiverOptions, length] of [
    ['too-large', { maxMessageBytes: 100_000 }, 200_000],
    ['memory', { peerBudgetBytes: 1_500 }, 2_000],
  ] as const) {
    for (const [label, lose] of [
      ['every REFUSE', () => true],
      ['only the first REFUSE', (n: number) => n === 0],
    ] as const) {
      it(`a message refused (${reason}) never resolves as delivered when ${label} is lost`, async () => {
        const link = new FakeLink({ faults: { latencyMs: 5 } });
        const a = link.endpoint('10.0.0.1', 1000, { peerTimeoutMs: 5_000 });
        const b = link.endpoint('10.0.0.2', 2000, receiverOptions);
        let refuses = 0;
        link.filter = (bytes, _from, to) => (to.port === 1000 && bytes[3] === PACKET_REFUSE && lose(refuses++) ? 'drop' : undefined);
        const outcome = await link.settle(a.engine.send(b.address, patternBytes(length, 13)), 60_000);
        expect(b.delivered).toHaveLength(0);
        expect(b.counters.get(`refused.${reason}`)).toBe(1);
        if (label === 'every REFUSE') expect(outcome.error).toBeInstanceOf(PeerUnresponsiveError);
        else expect((outcome.error as MessageRefusedError).reason).toBe(reason);
        expect(a.counters.get('messages-delivered')).toBe(0);
      });
    }
  }

  it('holds a peer to the receive window: its second message waits for room instead of being refused', async () => {
    const link = new FakeLink({ faults: { latencyMs: 5, bandwidthBytesPerSecond: 20 * MiB } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000, { peerBudgetBytes: 3 * MiB });
    const finished: number[] = [];
    const first = a.engine.send(b.address, patternBytes(2 * MiB, 11)).then(() => finished.push(1));
    const second = a.engine.send(b.address, patternBytes(2 * MiB, 12)).then(() => finished.push(2));
    const outcome = await link.settle(Promise.all([first, second]));
    expect(outcome.error).toBeUndefined();
    expect(finished).toEqual([1, 2]);
    expect(b.delivered).toHaveLength(2);
    expect(b.engine.receiverStatus()!.peakReassemblyBytes).toBeLessThanOrEqual(3 * MiB);
    expect(b.counters.get('refused.memory')).toBe(0);
  });

  it('the window counts what the receiver charges: a second message that would not fit waits, it is not refused', async () => {
    const link = new FakeLink({ faults: { latencyMs: 5 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000, { peerBudgetBytes: 100_000 });
    // 50,000 + 48,500 bytes fit the budget, but not with the receiver's per-message charge
    // (length + one byte a chunk + 1,024): the second must wait for the first.
    const results = await link.settle(Promise.allSettled([a.engine.send(b.address, patternBytes(50_000, 1)), a.engine.send(b.address, patternBytes(48_500, 2))]));
    expect(results.value!.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(b.counters.get('refused.memory')).toBe(0);
    expect(b.delivered).toHaveLength(2);
  });

  it('messages started on an acknowledgement sent before the receiver saw the previous ones wait for room, they are not refused', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10, bandwidthBytesPerSecond: 20 * MiB } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000, { peerBudgetBytes: 2.5 * MiB });
    const sends = Array.from({ length: 5 }, (_, i) => a.engine.send(b.address, patternBytes(MiB, 10 + i)));
    const results = await link.settle(Promise.allSettled(sends), 120_000);
    expect(results.value!.map((r) => r.status)).toEqual(Array(5).fill('fulfilled'));
    expect(b.counters.get('refused.memory')).toBe(0);
    expect(b.delivered).toHaveLength(5);
    expect(b.engine.receiverStatus()!.peakReassemblyBytes).toBeLessThanOrEqual(2.5 * MiB);
  });

  it('is refused (typed) beyond the reassembly memory budget, per peer and in total', async () => {
    const link = new FakeLink({ faults: { latencyMs: 5, bandwidthBytesPerSecond: 20 * MiB } });
    const b = link.endpoint('10.0.0.2', 2000, { peerBudgetBytes: 3 * MiB, totalBudgetBytes: 5 * MiB });
    // One message larger than the per-peer budget (but allowed by maxMessageBytes).
    const a = link.endpoint('10.0.0.1', 1000);
    const tooBig = await link.settle(a.engine.send(b.address, patternBytes(4 * MiB, 10)));
    expect(tooBig.error).toBeInstanceOf(MessageRefusedError);
    expect((tooBig.error as MessageRefusedError).reason).toBe('memory');
    expect((tooBig.error as MessageRefusedError).code).toBe('RUDP_REFUSED');
    // Three senders at once, 2 MiB each: the total budget (5 MiB) takes two.
    const senders = [link.endpoint('10.0.0.3', 3000), link.endpoint('10.0.0.4', 4000), link.endpoint('10.0.0.5', 5000)];
    const results = await link.settle(Promise.allSettled(senders.map((sender, i) => sender.engine.send(b.address, patternBytes(2 * MiB, 30 + i)))));
    const statuses = results.value!.map((r) => r.status);
    expect(statuses.filter((status) => status === 'fulfilled')).toHaveLength(2);
    const refused = results.value!.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(MessageRefusedError);
    expect((refused.reason as MessageRefusedError).reason).toBe('memory');
    expect(b.delivered).toHaveLength(2);
    expect(b.engine.receiverStatus()!.peakReassemblyBytes).toBeLessThanOrEqual(5 * MiB);
    expect(b.engine.receiverStatus()).toMatchObject({ reassemblies: 0, reassemblyBytes: 0 });
  });

  it('keeps memory bounded under 100,000 bogus fragments from many addresses while a real transfer completes', async () => {
    const link = new FakeLink({ seed: 'flood', faults: { latencyMs: 5 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const budget = 64 * MiB;
    const b = link.endpoint('10.0.0.2', 2000, { peerBudgetBytes: 16 * MiB, totalBudgetBytes: budget, maxSessions: 2048, maxReassemblies: 512 });
    const data = patternBytes(12 * MiB, 14);
    const sending = a.engine.send(b.address, data);
    const random = link.random;
    let bogus = 0;
    let peak = 0;
    // 100,000 fragments over 400 ms of virtual time while the transfer runs (the link
    // carries 20 MiB/s from the real sender: 12 MiB take ~600 ms), from 5,000 source ports,
    // claiming messages of 1 KiB..16 MiB, each with its own random sender instance.
    link.faults = { latencyMs: 5, bandwidthBytesPerSecond: 20 * MiB };
    const burst = (): void => {
      for (let i = 0; i < 5000 && bogus < 100_000; i++, bogus++) {
        const length = 1024 + random.int(16 * MiB);
        const chunkSize = 1150;
        const chunks = Math.ceil(length / chunkSize);
        const index = random.int(chunks);
        const payload = patternBytes(Math.min(chunkSize, length - index * chunkSize), bogus);
        const header: Chunk = {
          source: { hi: random.int(2 ** 32), lo: random.int(2 ** 32) | 1 },
          destination: { hi: 0, lo: 0 },
          packetNumber: random.int(1000),
          counter: random.int(10),
          floor: 0,
          messageLength: length,
          chunkSize,
          chunkIndex: index,
          payload,
        };
        link.send({ host: `10.1.${(bogus >> 8) & 0xff}.${bogus & 0xff}`, port: 10_000 + (bogus % 5000) }, b.address, encodeChunk(header, payload));
      }
      peak = Math.max(peak, b.engine.receiverStatus()!.reassemblyBytes ?? 0);
      if (bogus < 100_000) link.clock.setTimeout(burst, 20);
      else flooded = true;
    };
    let flooded = false;
    burst();
    const outcome = await link.settle(sending);
    expect(flooded).toBe(true);
    expect(outcome.error).toBeUndefined();
    expect(bogus).toBe(100_000);
    expect(sha256(b.delivered.find((d) => d.from.port === 1000)!.data)).toBe(sha256(data));
    const status = b.engine.receiverStatus()!;
    expect(status.peakReassemblyBytes).toBeLessThanOrEqual(budget);
    expect(peak).toBeLessThanOrEqual(budget);
    expect(status.reassemblies).toBeLessThanOrEqual(512);
    expect(status.sessions).toBeLessThanOrEqual(2048);
    expect(b.counters.get('refused.memory') + b.counters.get('dropped.too-many-sessions')).toBeGreaterThan(1000);
    // Idle half-messages are dropped in time.
    await link.clock.advance(40_000);
    expect(b.engine.receiverStatus()).toMatchObject({ reassemblies: 0, reassemblyBytes: 0 });
  });

  it('never delivers a finished message again when its packets are replayed', async () => {
    const link = new FakeLink({ faults: { latencyMs: 5 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const captured: Uint8Array[] = [];
    link.filter = (bytes, _from, to) => {
      if (to.port === 2000 && bytes[3] === PACKET_CHUNK) captured.push(bytes.slice());
      return undefined;
    };
    const outcome = await link.settle(Promise.all([a.engine.send(b.address, patternBytes(300_000, 15)), a.engine.send(b.address, patternBytes(500, 16))]));
    expect(outcome.error).toBeUndefined();
    expect(b.delivered).toHaveLength(2);
    link.filter = undefined;
    for (const bytes of captured) b.engine.onControl(bytes, a.address);
    for (const bytes of captured.reverse()) b.engine.onControl(bytes, a.address);
    await link.clock.advance(100);
    expect(b.delivered).toHaveLength(2);
    expect(b.counters.get('duplicate-chunks')).toBeGreaterThanOrEqual(captured.length);
  });

  it('starts a message over when the receiver restarts in the middle, and delivers it once', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10, bandwidthBytesPerSecond: 10 * MiB } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const data = patternBytes(4 * MiB, 17);
    const sending = a.engine.send(b.address, data);
    link.clock.setTimeout(() => b.restart({ crash: true }), 200);
    const outcome = await link.settle(sending);
    expect(outcome.error).toBeUndefined();
    expect(b.delivered).toHaveLength(1);
    expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
    expect(a.counters.get('peer-restarts')).toBe(1);
    expect(b.counters.get('stale-chunks')).toBeGreaterThan(0);
  });

  it('a receiver that delivered a message and went down before its acknowledgement got out delivers it again after the restart (at least once across a crash, once per instance)', async () => {
    // Neither side can know the first instance delivered: the sender starts the message
    // over to the new instance, which delivers it once. Documented in docs/rudp.md.
    const link = new FakeLink({ faults: { latencyMs: 10 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const restartAt = 300;
    // Every acknowledgement of the first instance is lost.
    let acksDropped = 0;
    link.filter = (bytes, _from, to) => {
      if (to.port !== 1000 || bytes[3] !== PACKET_ACK || link.clock.now() >= restartAt) return undefined;
      acksDropped++;
      return 'drop';
    };
    const data = patternBytes(8_000, 31);
    const sending = a.engine.send(b.address, data);
    let deliveredBeforeRestart = -1;
    link.clock.setTimeout(() => {
      deliveredBeforeRestart = b.delivered.length;
      b.restart({ crash: true });
    }, restartAt);
    const outcome = await link.settle(sending);
    expect(outcome.error).toBeUndefined();
    expect(deliveredBeforeRestart).toBe(1);
    expect(acksDropped).toBeGreaterThan(0);
    expect(b.delivered).toHaveLength(2);
    for (const delivery of b.delivered) expect(sha256(delivery.data)).toBe(sha256(data));
    // The new instance keeps the message's retransmissions from delivering it a third time.
    await link.clock.advance(5_000);
    expect(b.delivered).toHaveLength(2);
  });

  it('ignores a late acknowledgement from the instance a restarted receiver replaced', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10, bandwidthBytesPerSecond: 10 * MiB } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const oldAcks: Uint8Array[] = [];
    link.filter = (bytes, _from, to) => {
      if (to.port === 1000 && bytes[3] === PACKET_ACK && oldAcks.length < 5) oldAcks.push(bytes.slice());
      return undefined;
    };
    const data = patternBytes(4 * MiB, 25);
    const sending = a.engine.send(b.address, data);
    link.clock.setTimeout(() => b.restart({ crash: true }), 200);
    // After the restart was noticed, acknowledgements of the dead instance arrive late.
    link.clock.setTimeout(() => {
      for (const bytes of oldAcks) a.engine.onControl(bytes, b.address);
    }, 400);
    const outcome = await link.settle(sending);
    expect(outcome.error).toBeUndefined();
    expect(a.counters.get('peer-restarts')).toBe(1);
    expect(a.counters.get('dropped.stale')).toBe(5);
    expect(b.delivered).toHaveLength(1);
    expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
  });

  it('a late copy of a packet declared lost, acknowledged by the restarted receiver as stale, does not count as delivered', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10 } });
    const a = link.endpoint('10.0.0.1', 1000, { peerTimeoutMs: 5_000 });
    const b = link.endpoint('10.0.0.2', 2000);
    // Hold back one chunk sent to the first instance (so the sender declares it lost), and
    // after the restart drop the first copy of that chunk sent to the new instance.
    let held: Uint8Array | undefined;
    let heldIndex = -1;
    let restarted = false;
    let droppedCopy = false;
    link.filter = (bytes, _from, to) => {
      if (to.port !== 2000 || bytes[3] !== PACKET_CHUNK) return undefined;
      const packet = decodePacket(bytes);
      if (packet.type !== PACKET_CHUNK) return undefined;
      const chunk = packet.packet;
      if (!restarted && held === undefined && !isUnknownInstance(chunk.destination)) {
        held = bytes.slice();
        heldIndex = chunk.chunkIndex;
        return 'drop';
      }
      if (restarted && !droppedCopy && chunk.chunkIndex === heldIndex && sameInstance(chunk.destination, b.engine.instance)) {
        droppedCopy = true;
        return 'drop';
      }
      return undefined;
    };
    const data = patternBytes(100_000, 3);
    const sending = a.engine.send(b.address, data);
    expect(await link.clock.runUntil(() => a.counters.get('packets-lost') > 0, { maxMs: 1_000, stepMs: 1 })).toBe(true);
    b.restart({ crash: true });
    restarted = true;
    // The late copy reaches the new instance, which acknowledges it as stale.
    b.engine.onControl(held!, a.address);
    const outcome = await link.settle(sending, 60_000);
    expect(outcome.error).toBeUndefined();
    expect(droppedCopy).toBe(true);
    expect(b.delivered).toHaveLength(1);
    expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
  });

  it('a late acknowledgement from a crashed instance, after the sender first heard of its successor, does not wedge the path', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10 } });
    const a = link.endpoint('10.0.0.1', 1000, { peerTimeoutMs: 5_000 });
    const b = link.endpoint('10.0.0.2', 2000);
    // The first instance's acknowledgements are all held back, so the sender first learns
    // of the second instance; then one of the first's arrives.
    const held: Uint8Array[] = [];
    let holding = true;
    link.filter = (bytes, _from, to) => {
      if (holding && to.port === 1000 && bytes[3] === PACKET_ACK) {
        held.push(bytes.slice());
        return 'drop';
      }
      return undefined;
    };
    const data = patternBytes(2_000_000, 4);
    const sending = a.engine.send(b.address, data);
    await link.clock.advance(15);
    b.restart({ crash: true });
    holding = false;
    expect(await link.clock.runUntil(() => a.counters.get('acks-in') > 0, { maxMs: 5_000, stepMs: 1 })).toBe(true);
    expect(held.length).toBeGreaterThan(0);
    a.engine.onControl(held[0]!, b.address);
    const outcome = await link.settle(sending, 120_000);
    expect(outcome.error).toBeUndefined();
    expect(a.counters.get('dropped.stale')).toBeGreaterThanOrEqual(1);
    expect(b.delivered).toHaveLength(1);
    expect(sha256(b.delivered[0]!.data)).toBe(sha256(data));
  });

  it('fails a message with MessageRefusedError stopped when the receiver stops cleanly', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10, bandwidthBytesPerSecond: 10 * MiB } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const sending = a.engine.send(b.address, patternBytes(4 * MiB, 24));
    link.clock.setTimeout(() => b.engine.stop(), 200);
    const outcome = await link.settle(sending);
    expect(outcome.error).toBeInstanceOf(MessageRefusedError);
    expect((outcome.error as MessageRefusedError).reason).toBe('stopped');
    expect(link.clock.now()).toBeLessThan(1_000);
  });

  it('keeps two paths to one receiver (reached at two addresses) apart', async () => {
    const link = new FakeLink({ faults: { latencyMs: 5 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const second = link.alias(b, '192.168.0.2', 2000);
    const first = patternBytes(200_000, 40);
    const other = patternBytes(200_000, 41);
    // Each path counts its messages from 0: without a session per path the second
    // message 0 would pass for the first, already finished.
    const outcome = await link.settle(Promise.all([a.engine.send(b.address, first), a.engine.send(second, other), a.engine.send(second, patternBytes(10, 42))]));
    expect(outcome.error).toBeUndefined();
    expect(b.delivered.map((d) => sha256(d.data)).sort()).toEqual([sha256(first), sha256(other), sha256(patternBytes(10, 42))].sort());
    expect(b.engine.receiverStatus()!.sessions).toBe(2);
  });

  it('cancels before the first acknowledgement arrived', async () => {
    const link = new FakeLink({ faults: { latencyMs: 50 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const controller = new AbortController();
    const sending = a.engine.send(b.address, patternBytes(4 * MiB, 43), { signal: controller.signal });
    link.clock.setTimeout(() => controller.abort(), 10);
    expect((await link.settle(sending)).error).toBeInstanceOf(AbortError);
    await link.clock.advance(500);
    expect(b.counters.get('cancelled')).toBe(1);
    expect(b.engine.receiverStatus()).toMatchObject({ reassemblies: 0 });
  });

  it('keeps message ids apart across sender restarts', async () => {
    const link = new FakeLink({ faults: { latencyMs: 5 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    expect((await link.settle(a.engine.send(b.address, patternBytes(5000, 18)))).error).toBeUndefined();
    const before = a.engine.instance;
    a.restart();
    expect(a.engine.instance).not.toEqual(before);
    // The restarted sender counts from 0 again; its instance id keeps counter 0 apart from the old one.
    expect((await link.settle(a.engine.send(b.address, patternBytes(5000, 19)))).error).toBeUndefined();
    expect(b.delivered).toHaveLength(2);
    expect(sha256(b.delivered[1]!.data)).toBe(sha256(patternBytes(5000, 19)));
  });

  it('shares a path fairly: a small message overtakes a large one in progress', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10, bandwidthBytesPerSecond: 10 * MiB } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const done: string[] = [];
    const large = a.engine.send(b.address, patternBytes(8 * MiB, 20)).then(() => done.push('large'));
    await link.clock.advance(100);
    const small = a.engine.send(b.address, patternBytes(100_000, 21)).then(() => done.push('small'));
    const outcome = await link.settle(Promise.all([large, small]));
    expect(outcome.error).toBeUndefined();
    expect(done).toEqual(['small', 'large']);
  });

  it('shares the sender between peers and many concurrent messages', async () => {
    const link = new FakeLink({ seed: 'many', faults: { latencyMs: 8, loss: 0.01, reorder: 0.02 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const receivers = [link.endpoint('10.0.0.2', 2000), link.endpoint('10.0.0.3', 3000), link.endpoint('10.0.0.4', 4000)];
    const expected = new Map<string, string[]>();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 60; i++) {
      const receiver = receivers[i % 3]!;
      const data = patternBytes(1 + ((i * 7919) % 400_000), 100 + i);
      const key = `${receiver.address.port}`;
      expected.set(key, [...(expected.get(key) ?? []), sha256(data)]);
      sends.push(a.engine.send(receiver.address, data));
    }
    const outcome = await link.settle(Promise.all(sends));
    expect(outcome.error).toBeUndefined();
    for (const receiver of receivers) {
      const got = receiver.delivered.map((d) => sha256(d.data)).sort();
      expect(got).toEqual([...expected.get(`${receiver.address.port}`)!].sort());
    }
  });

  it('delivers 10,000 small messages exactly once with bounded receiver state', async () => {
    const link = new FakeLink({ seed: 'small', faults: { latencyMs: 2, loss: 0.02, duplicate: 0.02 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 10_000; i++) {
      const data = new Uint8Array(1024);
      new DataView(data.buffer).setUint32(0, i);
      sends.push(a.engine.send(b.address, data));
    }
    const outcome = await link.settle(Promise.all(sends));
    expect(outcome.error).toBeUndefined();
    const seen = new Set(b.delivered.map((d) => new DataView(d.data.buffer, d.data.byteOffset).getUint32(0)));
    expect(b.delivered).toHaveLength(10_000);
    expect(seen.size).toBe(10_000);
  });

  it('ignores acknowledgements and refusals addressed to another instance', async () => {
    const link = new FakeLink({ faults: { latencyMs: 5 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const data = patternBytes(1 * MiB, 22);
    let acks = 0;
    // Rewrites the first few acks to name a different sender instance: they must be ignored.
    link.filter = (bytes, _from, to) => {
      if (to.port === 1000 && bytes[3] === PACKET_ACK && acks++ < 3) {
        const packet = decodePacket(bytes);
        if (packet.type !== PACKET_ACK) return undefined;
        return encodeAck({ ...packet.packet, destination: { hi: 1, lo: 2 } });
      }
      return undefined;
    };
    const outcome = await link.settle(a.engine.send(b.address, data));
    expect(outcome.error).toBeUndefined();
    expect(b.delivered).toHaveLength(1);
    expect(a.counters.get('dropped.stale')).toBe(3);
  });

  it('rejects pending sends with StateError STOPPED on stop, and frees the receiver at once (CANCEL)', async () => {
    const link = new FakeLink({ faults: { latencyMs: 10 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const sending = a.engine.send(b.address, patternBytes(4 * MiB, 23));
    await link.clock.advance(50);
    expect(b.engine.receiverStatus()).toMatchObject({ reassemblies: 1 });
    a.engine.stop();
    await expect(sending).rejects.toSatisfy((error: unknown) => error instanceof StateError && error.code === 'STOPPED');
    await expect(a.engine.send(b.address, new Uint8Array(1))).rejects.toSatisfy((error: unknown) => error instanceof StateError && error.code === 'STOPPED');
    expect(a.counters.get('cancels-at-stop')).toBe(1);
    await link.clock.advance(100);
    expect(b.counters.get('cancelled')).toBe(1);
    expect(b.engine.receiverStatus()).toMatchObject({ reassemblies: 0, reassemblyBytes: 0 });
    expect(b.delivered).toHaveLength(0);
  });

  it('advances the receiver floor so finished ids take little memory', async () => {
    const link = new FakeLink({ faults: { latencyMs: 2 } });
    const a = link.endpoint('10.0.0.1', 1000);
    const b = link.endpoint('10.0.0.2', 2000);
    const sends = Array.from({ length: 2000 }, (_, i) => a.engine.send(b.address, patternBytes(2000, i)));
    expect((await link.settle(Promise.all(sends))).error).toBeUndefined();
    // Every later chunk carries the sender's floor: a fresh message shows the receiver has moved on.
    expect((await link.settle(a.engine.send(b.address, patternBytes(10, 1)))).error).toBeUndefined();
    expect(b.delivered).toHaveLength(2001);
    expect(b.engine.receiverStatus()!.finishedRanges).toBeLessThanOrEqual(2);
  });
});
