import { describe, expect, it } from 'vitest';
import { seededRandom } from '@deccom/core';
import { HYSTART_CSS_ROUNDS, NewReno, Pacer, VENO_BACKLOG_PACKETS } from '../src/congestion.js';
import { RangeSet } from '../src/ranges.js';
import { INITIAL_RTO_MS, RttEstimator } from '../src/rtt.js';

describe('RangeSet', () => {
  it('matches a reference set under random additions, and keeps ranges disjoint and sorted', () => {
    const random = seededRandom('ranges');
    const set = new RangeSet(1_000_000);
    const reference = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      const value = random.int(3) === 0 ? random.int(5000) : 4000 + i;
      expect(set.add(value)).toBe(!reference.has(value));
      reference.add(value);
    }
    for (let v = 0; v < 30_000; v++) expect(set.has(v)).toBe(reference.has(v));
    const ranges = set.topRanges(1_000_000);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.high).toBeLessThan(ranges[i - 1]!.low - 1);
    expect(set.highest).toBe(Math.max(...reference));
  });

  it('forgets the lowest ranges beyond its cap, and below a floor', () => {
    const set = new RangeSet(3);
    for (const v of [1, 3, 5, 7, 9]) set.add(v);
    expect(set.rangeCount).toBe(3);
    expect(set.has(1)).toBe(false);
    expect(set.has(5)).toBe(true);
    set.add(4);
    expect(set.topRanges(10)).toEqual([
      { high: 9, low: 9 },
      { high: 7, low: 7 },
      { high: 5, low: 4 },
    ]);
    set.dropBelow(8);
    expect(set.topRanges(10)).toEqual([{ high: 9, low: 9 }]);
    set.addRange(10, 12);
    expect(set.topRanges(10)).toEqual([{ high: 12, low: 9 }]);
  });
});

describe('RttEstimator (RFC 6298)', () => {
  it('uses the initial RTO before a sample, then SRTT = R, RTTVAR = R/2', () => {
    const rtt = new RttEstimator(50, 60_000);
    expect(rtt.rto()).toBe(INITIAL_RTO_MS);
    rtt.update(100, 0);
    expect(rtt.srtt).toBe(100);
    expect(rtt.rttvar).toBe(50);
    expect(rtt.rto()).toBe(100 + 4 * 50);
  });

  it('smooths with alpha 1/8 and beta 1/4, RTTVAR first (2.3)', () => {
    const rtt = new RttEstimator(1, 60_000);
    rtt.update(100, 0);
    rtt.update(200, 0);
    expect(rtt.rttvar).toBeCloseTo(0.75 * 50 + 0.25 * 100);
    expect(rtt.srtt).toBeCloseTo(0.875 * 100 + 0.125 * 200);
  });

  it('clamps to the minimum and maximum and doubles on backoff (5.5)', () => {
    const rtt = new RttEstimator(50, 400);
    rtt.update(1, 0);
    for (let i = 0; i < 50; i++) rtt.update(1, 0);
    expect(rtt.rto()).toBe(50);
    expect(rtt.backedOffRto(1)).toBe(100);
    expect(rtt.backedOffRto(10)).toBe(400);
    // The probe timeout has no floor: about an RTT on a fast path.
    expect(rtt.probeTimeout(1)).toBeLessThan(5);
  });

  it('discards a sample longer than the maximum RTO (a clock stepped forward), so SRTT is not held at minutes', () => {
    const rtt = new RttEstimator(50, 10_000);
    expect(rtt.update(3_600_000, 0)).toBe(false);
    expect(rtt.srtt).toBeUndefined();
    expect(rtt.update(20, 0)).toBe(true);
    expect(rtt.update(3_600_020, 0)).toBe(false);
    expect(rtt.srtt).toBe(20);
    expect(rtt.implausible).toBe(2);
    expect(rtt.samples).toBe(1);
    expect(rtt.update(10_000, 0)).toBe(true);
  });

  it('subtracts the reported ack delay only when the sample stays above the minimum RTT', () => {
    const rtt = new RttEstimator(1, 60_000);
    rtt.update(10, 0);
    rtt.update(30, 15);
    expect(rtt.latestRtt).toBe(30);
    expect(rtt.srtt).toBeCloseTo(0.875 * 10 + 0.125 * 15);
    const other = new RttEstimator(1, 60_000);
    other.update(10, 0);
    other.update(12, 5); // 12 - 5 < 10: not adjusted
    expect(other.srtt).toBeCloseTo(0.875 * 10 + 0.125 * 12);
  });
});

describe('NewReno with Veno loss differentiation and HyStart++', () => {
  const packet = 1000;

  it('starts at 10 packets, grows by the bytes acknowledged in slow start, by a packet per window after', () => {
    const cc = new NewReno({ packetBytes: packet });
    expect(cc.window).toBe(10 * packet);
    cc.onAcked(packet, 1, true);
    expect(cc.window).toBe(11 * packet);
    cc.onLost(2, 10);
    expect(cc.slowStart).toBe(false);
    const before = cc.window;
    for (let i = 0; i < before / packet; i++) cc.onAcked(packet, 20, true);
    expect(cc.window).toBe(before + packet);
  });

  it('does not grow when the window was not in use, nor from packets of the recovery period', () => {
    const cc = new NewReno({ packetBytes: packet });
    cc.onAcked(packet, 1, false);
    expect(cc.window).toBe(10 * packet);
    cc.onLost(5, 10);
    const after = cc.window;
    cc.onAcked(packet, 9, true);
    expect(cc.window).toBe(after);
  });

  it('reduces once per recovery period (RFC 6582)', () => {
    const cc = new NewReno({ packetBytes: packet });
    cc.onRttUpdate(10, 0);
    cc.onRttUpdate(50, 1); // a standing queue: losses are congestion
    cc.onLost(5, 100);
    const once = cc.window;
    cc.onLost(6, 101); // sent before the recovery began: same event
    expect(cc.window).toBe(once);
    expect(cc.reductions).toBe(1);
    cc.onLost(150, 200); // sent after: a new event
    expect(cc.reductions).toBe(2);
  });

  it('halves on a congestive loss and cuts by a fifth on a loss with no standing queue (Veno)', () => {
    const queued = new NewReno({ packetBytes: packet, initialPackets: 20 });
    queued.onRttUpdate(10, 0);
    queued.onRttUpdate(20, 1);
    expect(queued.backlogPackets()).toBeGreaterThanOrEqual(VENO_BACKLOG_PACKETS);
    queued.onLost(2, 3);
    expect(queued.window).toBe(10 * packet);
    expect(queued.randomReductions).toBe(0);
    const clean = new NewReno({ packetBytes: packet, initialPackets: 20 });
    clean.onRttUpdate(10, 0);
    clean.onRttUpdate(10.5, 1);
    expect(clean.backlogPackets()).toBeLessThan(VENO_BACKLOG_PACKETS);
    clean.onLost(2, 3);
    expect(clean.window).toBe(16 * packet);
    expect(clean.randomReductions).toBe(1);
  });

  it('collapses to the minimum on persistent congestion and respects the cap', () => {
    const cc = new NewReno({ packetBytes: packet, maximumBytes: 15 * packet });
    for (let i = 0; i < 100; i++) cc.onAcked(packet, 1, true);
    expect(cc.window).toBe(15 * packet);
    cc.onPersistentCongestion(5);
    expect(cc.window).toBe(2 * packet);
  });

  it('leaves slow start when a round shows the RTT rising (HyStart++), then enters avoidance after the CSS rounds', () => {
    const cc = new NewReno({ packetBytes: packet });
    let pn = 0;
    const round = (rtt: number): void => {
      cc.onAckRound(pn, pn + 10);
      for (let i = 0; i < 10; i++) {
        cc.onRttSample(rtt);
        cc.onAcked(packet, 1, true);
      }
      pn += 10;
    };
    round(1);
    round(1);
    expect(cc.inConservativeSlowStart).toBe(false);
    round(10); // +9 ms, above the 4 ms threshold
    expect(cc.inConservativeSlowStart).toBe(true);
    expect(cc.hystartExits).toBe(1);
    const cssStart = cc.window;
    round(10);
    // A quarter of the slow-start growth.
    expect(cc.window - cssStart).toBeLessThanOrEqual((10 * packet) / 4 + 1);
    for (let i = 0; i < HYSTART_CSS_ROUNDS; i++) round(10);
    expect(cc.slowStart).toBe(false);
  });
});

describe('Pacer', () => {
  it('does not pace paths faster than its minimum RTT, or of unknown RTT', () => {
    expect(Pacer.rate(10_000, 1, false, 4)).toBe(Infinity);
    expect(Pacer.rate(10_000, undefined, false, 4)).toBe(Infinity);
    expect(Pacer.rate(10_000, 10, false, 4)).toBe(1250);
    expect(Pacer.rate(10_000, 10, true, 4)).toBe(2000);
  });

  it('lets a burst out, then spaces packets at the rate', () => {
    const pacer = new Pacer(1000, 4, 1);
    const rate = 100; // bytes per ms: one packet per 10 ms
    let sent = 0;
    for (let i = 0; i < 10; i++) {
      if (pacer.delay(0, rate) > 0) break;
      pacer.spend(1000);
      sent++;
    }
    expect(sent).toBe(4);
    expect(pacer.delay(0, rate)).toBeCloseTo(0.01 + 0, 1);
    expect(pacer.delay(5, rate)).toBe(0);
  });
});
