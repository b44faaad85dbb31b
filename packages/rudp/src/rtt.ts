/**
 * Round-trip time estimation and the retransmission timeout, after RFC 6298 (Computing
 * TCP's Retransmission Timer), section 2:
 *
 * - first sample R: SRTT = R, RTTVAR = R/2;
 * - later samples: RTTVAR = (1 - β)·RTTVAR + β·|SRTT - R'|, SRTT = (1 - α)·SRTT + α·R',
 *   α = 1/8, β = 1/4 (in that order, as 2.3 requires);
 * - RTO = SRTT + max(G, K·RTTVAR) with K = 4 and G the clock granularity, clamped to
 *   [minRtoMs, maxRtoMs], 1 s before the first sample (2.1), doubled on each expiry (5.5).
 *
 * Karn's algorithm (RFC 6298 section 3) is not needed: every transmission, first or
 * repeated, carries a packet number of its own, so an acknowledgement names exactly which
 * transmission it answers and every sample is unambiguous (as in QUIC, RFC 9002 5.1).
 * Following RFC 9002 5.3, the receiver's reported ack delay is subtracted from a sample
 * when that leaves it above the smallest RTT seen.
 *
 * Deviation: RFC 6298 2.4 asks for a 1 s minimum RTO, chosen for TCP with delayed acks
 * and no selective acknowledgement. Our receivers acknowledge at the end of each receive
 * batch, report their ack delay, and losses are mostly found by acknowledgements of later
 * packets (packet and time thresholds, RFC 9002 6.1), so the timer is only the backstop
 * for tail losses; the floor is an option (`minRtoMs`, default 50 ms).
 */
export const RTT_ALPHA = 1 / 8;
export const RTT_BETA = 1 / 4;
export const RTO_K = 4;
/** Clock granularity G (ms): timers in Node fire with 1 ms resolution. */
export const CLOCK_GRANULARITY_MS = 1;
/** RFC 6298 2.1: the RTO before any sample. */
export const INITIAL_RTO_MS = 1000;

export class RttEstimator {
  /** Smoothed RTT (ms), undefined before the first sample. */
  srtt: number | undefined;
  rttvar = 0;
  /** Smallest sample seen. */
  minRtt = Infinity;
  /** Most recent sample. */
  latestRtt = 0;
  samples = 0;
  /** Samples discarded as longer than `maxRtoMs` (see `update`). */
  implausible = 0;

  constructor(
    readonly minRtoMs: number,
    readonly maxRtoMs: number,
    readonly initialRtoMs = INITIAL_RTO_MS,
  ) {}

  /** Feeds one sample: `rttMs` measured, `ackDelayMs` reported by the receiver. Returns whether it was used. */
  update(rttMs: number, ackDelayMs: number): boolean {
    if (!(rttMs >= 0) || !Number.isFinite(rttMs)) return false;
    // A round trip longer than the longest retransmission timeout is not the path's: the
    // sender's clock was stepped forward (one such sample of an hour held SRTT, and with it
    // the pacing rate and the time threshold, at minutes for tens of seconds) or the ack
    // is for a packet the timer long gave up on. Either way it must not steer the estimate.
    if (rttMs > this.maxRtoMs) {
      this.implausible++;
      return false;
    }
    this.samples++;
    this.latestRtt = rttMs;
    if (rttMs < this.minRtt) this.minRtt = rttMs;
    let adjusted = rttMs;
    if (ackDelayMs > 0 && rttMs - ackDelayMs >= this.minRtt) adjusted = rttMs - ackDelayMs;
    if (this.srtt === undefined) {
      this.srtt = adjusted;
      this.rttvar = adjusted / 2;
      return true;
    }
    this.rttvar = (1 - RTT_BETA) * this.rttvar + RTT_BETA * Math.abs(this.srtt - adjusted);
    this.srtt = (1 - RTT_ALPHA) * this.srtt + RTT_ALPHA * adjusted;
    return true;
  }

  /** The RTO before backoff (ms). */
  rto(): number {
    if (this.srtt === undefined) return Math.min(this.maxRtoMs, Math.max(this.minRtoMs, this.initialRtoMs));
    const raw = this.srtt + Math.max(CLOCK_GRANULARITY_MS, RTO_K * this.rttvar);
    return Math.min(this.maxRtoMs, Math.max(this.minRtoMs, raw));
  }

  /** The RTO after `backoff` expiries without an acknowledgement (RFC 6298 5.5). */
  backedOffRto(backoff: number): number {
    return Math.min(this.maxRtoMs, this.rto() * 2 ** Math.min(backoff, 16));
  }

  /**
   * The tail-loss probe timeout (RFC 8985 7.2, RFC 9002 6.2.1): SRTT + max(4·RTTVAR, G)
   * plus `ackDelayMs` for the receiver's batching, without the RTO's floor: when the last
   * packets of a window or their acknowledgements are lost, one probe after about an RTT
   * brings an acknowledgement that lets the thresholds find the losses, instead of a
   * stall of `minRtoMs`. Before the first sample it is the initial RTO.
   */
  probeTimeout(ackDelayMs: number): number {
    if (this.srtt === undefined) return this.rto();
    return Math.min(this.rto(), this.srtt + Math.max(CLOCK_GRANULARITY_MS, RTO_K * this.rttvar) + ackDelayMs);
  }

  /** SRTT, or the initial RTO's worth of guess before the first sample (for pacing). */
  smoothed(): number {
    return this.srtt ?? this.initialRtoMs / 3;
  }

  /**
   * Time threshold for declaring a packet lost once a later one was acknowledged
   * (RFC 9002 6.1.2): 9/8 of max(SRTT, latest RTT), at least the granularity.
   */
  lossDelay(): number {
    const base = Math.max(this.srtt ?? this.initialRtoMs, this.latestRtt);
    return Math.max(CLOCK_GRANULARITY_MS, (9 / 8) * base);
  }
}
