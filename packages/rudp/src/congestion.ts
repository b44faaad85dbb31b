/**
 * Congestion control and pacing, per path (one remote address).
 *
 * The controller is NewReno (RFC 5681 with the RFC 6582 recovery rule), in the packet
 * number formulation QUIC uses (RFC 9002 section 7 and appendix B):
 *
 * - slow start from an initial window of 10 packets (RFC 6928), growing by the bytes
 *   acknowledged (appropriate byte counting, RFC 3465) while below ssthresh, and left
 *   early by HyStart++ (RFC 9406) when the round's minimum RTT rises by 4..16 ms, so a
 *   path with deep buffers (loopback's socket buffers hold megabytes) is not filled to
 *   overflow before the first loss;
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
 * bucket has to cover a timer tick). Paths with an RTT under `pacingMinRttMs` are not
 * paced (see {@link Pacer.rate}).
 */

export interface CongestionController {
  /** Congestion window in bytes. */
  readonly window: number;
  readonly slowStart: boolean;
  /** A packet sent at `sentAt` of `bytes` was acknowledged; `windowLimited` if the sender was using its window. */
  onAcked(bytes: number, sentAt: number, windowLimited: boolean): void;
  /** The path's smoothed RTT changed (ms); `now` for windowed minimum tracking. */
  onRttUpdate(srttMs: number, now: number): void;
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
  /** Multiplicative decrease β on a congestive loss. Default 0.5 (RFC 5681). */
  beta?: number;
  /** Multiplicative decrease on a loss taken as random (backlog under {@link VENO_BACKLOG_PACKETS}). Default 0.8 (Veno). */
  randomLossBeta?: number;
}

/** HyStart++ constants (RFC 9406 4.3). */
export const HYSTART_MIN_RTT_THRESH_MS = 4;
export const HYSTART_MAX_RTT_THRESH_MS = 16;
export const HYSTART_MIN_RTT_DIVISOR = 8;
export const HYSTART_N_RTT_SAMPLE = 8;
export const HYSTART_CSS_GROWTH_DIVISOR = 4;
export const HYSTART_CSS_ROUNDS = 5;

/** Veno's backlog threshold in packets: below it the path has no standing queue and a loss is taken as random. */
export const VENO_BACKLOG_PACKETS = 3;
/** The base RTT is the smallest smoothed RTT over windows of this length (ms), so it follows route changes. */
export const BASE_RTT_WINDOW_MS = 10_000;

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
  readonly randomLossBeta: number;
  /** Loss events that reduced the window, and those of them taken as random. */
  reductions = 0;
  randomReductions = 0;
  /** Smoothed RTT, and its windowed minimum (base RTT): current window and the one before. */
  private srtt: number | undefined;
  private baseRtt = Infinity;
  private windowMin = Infinity;
  private windowStart = -Infinity;
  /** Veno's halved growth near congestion: count of windows acknowledged. */
  private avoidanceRounds = 0;
  /** HyStart++ (RFC 9406): rounds end when a packet sent after the round began is acknowledged. */
  private roundEnd = -1;
  private currentRoundMinRtt = Infinity;
  private lastRoundMinRtt = Infinity;
  private roundSamples = 0;
  /** In Conservative Slow Start: the RTT that made us leave slow start, and rounds spent in CSS. */
  private cssBaselineMinRtt = Infinity;
  private cssRounds = 0;
  /** Times HyStart++ ended slow start before a loss did. */
  hystartExits = 0;

  constructor(options: NewRenoOptions) {
    this.packetBytes = options.packetBytes;
    this.minimum = (options.minimumPackets ?? 2) * options.packetBytes;
    this.maximum = Math.max(this.minimum, options.maximumBytes ?? 32 * 1024 * 1024);
    this.window = Math.min(this.maximum, Math.max(this.minimum, (options.initialPackets ?? 10) * options.packetBytes));
    this.beta = options.beta ?? 0.5;
    this.randomLossBeta = options.randomLossBeta ?? 0.8;
  }

  onRttUpdate(srttMs: number, now: number): void {
    this.srtt = srttMs;
    if (now - this.windowStart >= BASE_RTT_WINDOW_MS) {
      // A new window: the base is the smaller of the last window's minimum and this sample.
      this.baseRtt = Math.min(this.windowMin, srttMs);
      this.windowMin = srttMs;
      this.windowStart = now;
    } else if (srttMs < this.windowMin) {
      this.windowMin = srttMs;
    }
    if (srttMs < this.baseRtt) this.baseRtt = srttMs;
  }

  /**
   * Veno's estimate of the packets this flow keeps queued in the path:
   * N = cwnd·(RTT − baseRTT)/RTT in packets, with the smoothed RTT (raw samples on a
   * busy host are too noisy) against its windowed minimum.
   */
  backlogPackets(): number {
    const srtt = this.srtt;
    if (srtt === undefined || !(srtt > 0) || this.baseRtt === Infinity) return 0;
    return ((this.window / this.packetBytes) * (srtt - this.baseRtt)) / srtt;
  }

  get slowStart(): boolean {
    return this.window < this.ssthresh;
  }

  get inConservativeSlowStart(): boolean {
    return this.cssBaselineMinRtt !== Infinity;
  }

  /**
   * Round bookkeeping for HyStart++: called with each acknowledgement's largest packet
   * number and the next packet number to be sent.
   */
  onAckRound(largestAcked: number, nextPacketNumber: number): void {
    if (largestAcked < this.roundEnd) return;
    this.roundEnd = nextPacketNumber;
    if (!this.slowStart) return;
    this.lastRoundMinRtt = this.currentRoundMinRtt;
    this.currentRoundMinRtt = Infinity;
    this.roundSamples = 0;
    if (this.inConservativeSlowStart && ++this.cssRounds >= HYSTART_CSS_ROUNDS) {
      // RFC 9406 4.2: after CSS_ROUNDS rounds of conservative growth, congestion avoidance.
      this.ssthresh = this.window;
      this.cssBaselineMinRtt = Infinity;
    }
  }

  /** A raw RTT sample (ms), for HyStart++'s delay-increase test during slow start. */
  onRttSample(rttMs: number): void {
    if (!this.slowStart) return;
    if (rttMs < this.currentRoundMinRtt) this.currentRoundMinRtt = rttMs;
    this.roundSamples++;
    if (this.roundSamples < HYSTART_N_RTT_SAMPLE || this.currentRoundMinRtt === Infinity) return;
    if (this.inConservativeSlowStart) {
      // The delay increase was spurious: back to slow start.
      if (this.currentRoundMinRtt < this.cssBaselineMinRtt) this.cssBaselineMinRtt = Infinity;
      return;
    }
    if (this.lastRoundMinRtt === Infinity) return;
    const threshold = Math.min(HYSTART_MAX_RTT_THRESH_MS, Math.max(HYSTART_MIN_RTT_THRESH_MS, this.lastRoundMinRtt / HYSTART_MIN_RTT_DIVISOR));
    if (this.currentRoundMinRtt >= this.lastRoundMinRtt + threshold) {
      this.cssBaselineMinRtt = this.currentRoundMinRtt;
      this.cssRounds = 0;
      this.hystartExits++;
    }
  }

  inRecovery(sentAt: number): boolean {
    return sentAt <= this.recoveryStart;
  }

  onAcked(bytes: number, sentAt: number, windowLimited: boolean): void {
    if (this.inRecovery(sentAt) || !windowLimited) return;
    if (this.window < this.ssthresh) {
      // Slow start; a quarter of the growth in HyStart++'s conservative slow start.
      const growth = this.inConservativeSlowStart ? bytes / HYSTART_CSS_GROWTH_DIVISOR : bytes;
      this.window = Math.min(this.maximum, this.window + growth);
      return;
    }
    this.bytesAckedInAvoidance += bytes;
    if (this.bytesAckedInAvoidance >= this.window) {
      this.bytesAckedInAvoidance -= this.window;
      // Veno: with a standing queue, grow every other window only.
      if (this.backlogPackets() < VENO_BACKLOG_PACKETS || ++this.avoidanceRounds % 2 === 0) {
        this.window = Math.min(this.maximum, this.window + this.packetBytes);
      }
    }
  }

  onLost(sentAt: number, now: number): void {
    if (this.inRecovery(sentAt)) return;
    this.recoveryStart = now;
    this.reductions++;
    // Veno: without a standing queue the loss was not caused by this flow filling a buffer
    // (noise, a lossy link): cut gently. With one, it is congestion: NewReno's β.
    let beta = this.beta;
    if (this.backlogPackets() < VENO_BACKLOG_PACKETS) {
      beta = this.randomLossBeta;
      this.randomReductions++;
    }
    this.ssthresh = Math.max(this.minimum, Math.floor(this.window * beta));
    this.window = this.ssthresh;
    this.bytesAckedInAvoidance = 0;
    this.cssBaselineMinRtt = Infinity;
  }

  onPersistentCongestion(now: number): void {
    this.recoveryStart = now;
    this.ssthresh = Math.max(this.minimum, Math.floor(this.window * this.beta));
    this.window = this.minimum;
    this.bytesAckedInAvoidance = 0;
    this.cssBaselineMinRtt = Infinity;
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

  /**
   * RFC 9002 7.7: gain·cwnd/SRTT. Infinity (no pacing) when the RTT is unknown or shorter
   * than `minRttMs`: timers fire at millisecond resolution, so on a sub-millisecond path
   * every pause would last several RTTs, and such a path (a LAN, loopback) absorbs a
   * window's burst in its buffers anyway.
   */
  static rate(window: number, srttMs: number | undefined, slowStart: boolean, minRttMs: number): number {
    if (srttMs === undefined || !(srttMs >= minRttMs) || !(srttMs > 0)) return Infinity;
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
