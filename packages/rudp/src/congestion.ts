/**
 * Congestion control and pacing, per path (one remote address).
 *
 * The controller is NewReno (RFC 5681 with the RFC 6582 recovery rule), in the packet
 * number formulation QUIC uses (RFC 9002 section 7 and appendix B):
 *
 * - slow start from an initial window of 10 packets (RFC 6928), growing by the bytes
 *   acknowledged (appropriate byte counting, RFC 3465) while below ssthresh;
 * - congestion avoidance: one packet per window of bytes acknowledged;
 * - on loss of a packet sent after the current recovery period began: ssthresh = cwnd·β,
 *   cwnd = ssthresh, and a new recovery period starts now. Losses of packets sent before
 *   it do not reduce again: one reduction per window of data, as RFC 6582 does with its
 *   "recover" sequence number;
 * - no growth from packets sent during recovery, and none while the sender was not using
 *   its window (RFC 9002 7.8), so an application-limited path does not inflate cwnd;
 * - persistent congestion (repeated timeouts) collapses cwnd to the 2-packet minimum.
 *
 * Why NewReno and not CUBIC: CUBIC's gain is on paths with a large bandwidth-delay
 * product (long fat pipes), where Reno's one-packet-per-RTT growth is slow. DecCom's
 * reliable messages run between peers on home and data-centre links, where NewReno
 * fills the pipe within a few RTTs, shares it fairly with TCP (whose default on most
 * hosts is CUBIC running in its Reno-friendly region at these RTTs), is what RFC 9002
 * specifies for QUIC, and is small enough to verify by reading. The controller sits
 * behind {@link CongestionController}, so CUBIC (RFC 9438) can be added without touching
 * the sender. β defaults to 0.5 (RFC 5681); it is an option.
 *
 * Pacing (RFC 9002 7.7): packets leave at gain·cwnd/SRTT (gain 2 in slow start, 1.25
 * after), from a token bucket whose depth is the larger of `minBurstPackets` packets and
 * what the rate allows in `burstMs` (timers only fire at millisecond resolution, so the
 * bucket has to cover a timer tick).
 */

export interface CongestionController {
  /** Congestion window in bytes. */
  readonly window: number;
  readonly slowStart: boolean;
  /** A packet sent at `sentAt` of `bytes` was acknowledged; `windowLimited` if the sender was using its window. */
  onAcked(bytes: number, sentAt: number, windowLimited: boolean): void;
  /** A packet sent at `sentAt` was declared lost at `now`. */
  onLost(sentAt: number, now: number): void;
  /** Every packet in flight was lost over several timeouts. */
  onPersistentCongestion(now: number): void;
  /** Whether a packet sent at `sentAt` belongs to the current recovery period. */
  inRecovery(sentAt: number): boolean;
}

export interface NewRenoOptions {
  /** Bytes of one full-size packet (the controller's MSS). */
  packetBytes: number;
  /** Initial window in packets. Default 10 (RFC 6928). */
  initialPackets?: number;
  /** Minimum window in packets. Default 2 (RFC 9002 7.2). */
  minimumPackets?: number;
  /** Largest window in bytes. Default 32 MiB. */
  maximumBytes?: number;
  /** Multiplicative decrease β. Default 0.5 (RFC 5681). */
  beta?: number;
}

export class NewReno implements CongestionController {
  window: number;
  ssthresh = Infinity;
  /** Start (time) of the current recovery period. */
  private recoveryStart = -Infinity;
  private bytesAckedInAvoidance = 0;
  readonly packetBytes: number;
  readonly minimum: number;
  readonly maximum: number;
  readonly beta: number;
  /** Loss events that reduced the window. */
  reductions = 0;

  constructor(options: NewRenoOptions) {
    this.packetBytes = options.packetBytes;
    this.minimum = (options.minimumPackets ?? 2) * options.packetBytes;
    this.maximum = Math.max(this.minimum, options.maximumBytes ?? 32 * 1024 * 1024);
    this.window = Math.min(this.maximum, Math.max(this.minimum, (options.initialPackets ?? 10) * options.packetBytes));
    this.beta = options.beta ?? 0.5;
  }

  get slowStart(): boolean {
    return this.window < this.ssthresh;
  }

  inRecovery(sentAt: number): boolean {
    return sentAt <= this.recoveryStart;
  }

  onAcked(bytes: number, sentAt: number, windowLimited: boolean): void {
    if (this.inRecovery(sentAt) || !windowLimited) return;
    if (this.window < this.ssthresh) {
      this.window = Math.min(this.maximum, this.window + bytes);
      return;
    }
    this.bytesAckedInAvoidance += bytes;
    if (this.bytesAckedInAvoidance >= this.window) {
      this.bytesAckedInAvoidance -= this.window;
      this.window = Math.min(this.maximum, this.window + this.packetBytes);
    }
  }

  onLost(sentAt: number, now: number): void {
    if (this.inRecovery(sentAt)) return;
    this.recoveryStart = now;
    this.reductions++;
    this.ssthresh = Math.max(this.minimum, Math.floor(this.window * this.beta));
    this.window = this.ssthresh;
    this.bytesAckedInAvoidance = 0;
  }

  onPersistentCongestion(now: number): void {
    this.recoveryStart = now;
    this.ssthresh = Math.max(this.minimum, Math.floor(this.window * this.beta));
    this.window = this.minimum;
    this.bytesAckedInAvoidance = 0;
  }
}

/** Token-bucket pacer. Rates in bytes per ms. */
export class Pacer {
  private tokens: number;
  private lastRefill = -Infinity;

  constructor(
    readonly packetBytes: number,
    readonly minBurstPackets: number,
    readonly burstMs: number,
  ) {
    this.tokens = packetBytes * minBurstPackets;
  }

  /** RFC 9002 7.7: gain·cwnd/SRTT; Infinity when the RTT is unknown or zero (no pacing). */
  static rate(window: number, srttMs: number | undefined, slowStart: boolean): number {
    if (srttMs === undefined || !(srttMs > 0)) return Infinity;
    return ((slowStart ? 2 : 1.25) * window) / srttMs;
  }

  private depth(rate: number): number {
    return Math.max(this.packetBytes * this.minBurstPackets, rate * this.burstMs);
  }

  private refill(now: number, rate: number): void {
    if (rate === Infinity) {
      this.tokens = Infinity;
      this.lastRefill = now;
      return;
    }
    const depth = this.depth(rate);
    if (this.tokens === Infinity || this.lastRefill === -Infinity) this.tokens = depth;
    else this.tokens = Math.min(depth, this.tokens + (now - this.lastRefill) * rate);
    this.lastRefill = now;
  }

  /**
   * 0 when a packet may leave now (the bucket holds at least one byte: a packet may
   * overdraw it, repaid by the next refill), otherwise the delay in ms until it may.
   */
  delay(now: number, rate: number): number {
    this.refill(now, rate);
    return this.tokens > 0 ? 0 : (1 - this.tokens) / rate;
  }

  /** Takes a sent packet's bytes from the bucket. */
  spend(bytes: number): void {
    this.tokens -= bytes;
  }
}
