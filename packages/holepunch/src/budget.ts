/**
 * The relay's budgets: how many sessions it serves at once (its connection budget) and
 * how many bytes per second it forwards, per session and in total (token buckets, so a
 * short burst is allowed and a sustained excess is refused). Pure: time is passed in.
 */

/** A token bucket of `ratePerSecond` tokens per second holding at most `burst`. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(ratePerSecond > 0)) throw new RangeError(`TokenBucket: ratePerSecond must be > 0, got ${ratePerSecond}`);
    if (!(burst > 0)) throw new RangeError(`TokenBucket: burst must be > 0, got ${burst}`);
    this.tokens = burst;
    this.updatedAt = now;
  }

  private refill(now: number): void {
    if (now > this.updatedAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.ratePerSecond);
      this.updatedAt = now;
    }
  }

  /** Takes `amount` tokens if there are that many; otherwise takes none and returns false. */
  take(amount: number, now: number): boolean {
    this.refill(now);
    if (amount > this.tokens) return false;
    this.tokens -= amount;
    return true;
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }
}

export interface RelayBudgetOptions {
  /** Sessions served at once. */
  maxSessions: number;
  /** Bytes per second one session may forward (sustained). */
  sessionBytesPerSecond: number;
  /** Bytes per second the relay forwards over all sessions (sustained). */
  totalBytesPerSecond: number;
  /** Burst allowance, in seconds of the rate. */
  burstSeconds: number;
  /** Bytes one session may forward in its lifetime (Infinity: no limit). */
  maxSessionBytes: number;
}

/** Why traffic or a session was refused. */
export type BudgetRefusal = 'sessions' | 'bandwidth' | 'bytes';

interface SessionBudget {
  readonly bucket: TokenBucket;
  bytes: number;
}

export class RelayBudget {
  private readonly total: TokenBucket;
  private readonly sessions = new Map<number, SessionBudget>();

  constructor(
    readonly options: RelayBudgetOptions,
    now: number,
  ) {
    if (!Number.isInteger(options.maxSessions) || options.maxSessions < 0) throw new RangeError(`RelayBudget: maxSessions must be an integer >= 0, got ${options.maxSessions}`);
    if (!(options.maxSessionBytes > 0)) throw new RangeError(`RelayBudget: maxSessionBytes must be > 0, got ${options.maxSessionBytes}`);
    if (!(options.burstSeconds > 0)) throw new RangeError(`RelayBudget: burstSeconds must be > 0, got ${options.burstSeconds}`);
    this.total = new TokenBucket(options.totalBytesPerSecond, options.totalBytesPerSecond * options.burstSeconds, now);
    // Validated by TokenBucket as well; checked here to fail at construction.
    void new TokenBucket(options.sessionBytesPerSecond, options.sessionBytesPerSecond * options.burstSeconds, now);
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  /** Reserves a session slot, or refuses with `'sessions'` when the budget is used up. */
  open(session: number, now: number): true | 'sessions' {
    if (this.sessions.has(session)) return true;
    if (this.sessions.size >= this.options.maxSessions) return 'sessions';
    const rate = this.options.sessionBytesPerSecond;
    this.sessions.set(session, { bucket: new TokenBucket(rate, rate * this.options.burstSeconds, now), bytes: 0 });
    return true;
  }

  close(session: number): void {
    this.sessions.delete(session);
  }

  /**
   * Admits `bytes` of traffic on `session`, or refuses it: `'bytes'` beyond the
   * session's lifetime budget, `'bandwidth'` beyond its rate or the relay's total rate.
   * A refused datagram costs no budget.
   */
  admit(session: number, bytes: number, now: number): true | BudgetRefusal {
    const budget = this.sessions.get(session);
    if (!budget) return 'sessions';
    if (budget.bytes + bytes > this.options.maxSessionBytes) return 'bytes';
    if (budget.bucket.available(now) < bytes || this.total.available(now) < bytes) return 'bandwidth';
    budget.bucket.take(bytes, now);
    this.total.take(bytes, now);
    budget.bytes += bytes;
    return true;
  }

  /** Bytes forwarded on `session` so far. */
  sessionBytes(session: number): number {
    return this.sessions.get(session)?.bytes ?? 0;
  }
}
