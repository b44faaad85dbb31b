/**
 * A set of non-negative integers kept as sorted, disjoint, non-adjacent ranges, with a
 * cap on the number of ranges (the lowest are forgotten beyond it). Used for the packet
 * numbers a receiver has seen (what it acknowledges) and for finished message counters.
 * Additions are almost always at or near the top, which is the fast path.
 */
export class RangeSet {
  /** lows[i]..highs[i], ascending. */
  private readonly lows: number[] = [];
  private readonly highs: number[] = [];

  constructor(readonly maxRanges: number) {}

  get rangeCount(): number {
    return this.lows.length;
  }

  /** The highest member, or -1 when empty. */
  get highest(): number {
    const n = this.highs.length;
    return n === 0 ? -1 : this.highs[n - 1]!;
  }

  /** The lowest member still remembered, or -1 when empty. */
  get lowest(): number {
    return this.lows.length === 0 ? -1 : this.lows[0]!;
  }

  has(value: number): boolean {
    const i = this.find(value);
    return i >= 0 && this.lows[i]! <= value;
  }

  /** Index of the first range whose high >= value, or -1 when none. */
  private find(value: number): number {
    const highs = this.highs;
    const n = highs.length;
    if (n === 0 || highs[n - 1]! < value) return -1;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (highs[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds `value`; returns false when it was already present. */
  add(value: number): boolean {
    const lows = this.lows;
    const highs = this.highs;
    const n = highs.length;
    // Fast paths: extends the top range, or starts a new one above it.
    if (n > 0) {
      const top = highs[n - 1]!;
      if (value === top + 1) {
        highs[n - 1] = value;
        return true;
      }
      if (value > top + 1) {
        lows.push(value);
        highs.push(value);
        this.trim();
        return true;
      }
    } else {
      lows.push(value);
      highs.push(value);
      return true;
    }
    const i = this.find(value);
    // i >= 0 here since value <= top.
    if (lows[i]! <= value) return false;
    // value < lows[i]: joins range i from below, the range below from above, both, or neither.
    const joinsAbove = lows[i]! === value + 1;
    const joinsBelow = i > 0 && highs[i - 1]! === value - 1;
    if (joinsAbove && joinsBelow) {
      highs[i - 1] = highs[i]!;
      lows.splice(i, 1);
      highs.splice(i, 1);
    } else if (joinsAbove) {
      lows[i] = value;
    } else if (joinsBelow) {
      highs[i - 1] = value;
    } else {
      if (i === 0 && n >= this.maxRanges) return true; // below everything remembered, and no room: forgotten at once
      lows.splice(i, 0, value);
      highs.splice(i, 0, value);
      this.trim();
    }
    return true;
  }

  /** Adds every integer in low..high. */
  addRange(low: number, high: number): void {
    // Ranges added here are small (a finished message) or contiguous with the top.
    for (let v = low; v <= high; v++) this.add(v);
  }

  /** Forgets every member below `floor`. */
  dropBelow(floor: number): void {
    const lows = this.lows;
    const highs = this.highs;
    let remove = 0;
    while (remove < highs.length && highs[remove]! < floor) remove++;
    if (remove > 0) {
      lows.splice(0, remove);
      highs.splice(0, remove);
    }
    if (lows.length > 0 && lows[0]! < floor) lows[0] = floor;
  }

  /** Up to `limit` ranges, highest first. */
  topRanges(limit: number): { high: number; low: number }[] {
    const out: { high: number; low: number }[] = [];
    for (let i = this.highs.length - 1; i >= 0 && out.length < limit; i--) out.push({ high: this.highs[i]!, low: this.lows[i]! });
    return out;
  }

  clear(): void {
    this.lows.length = 0;
    this.highs.length = 0;
  }

  private trim(): void {
    const excess = this.lows.length - this.maxRanges;
    if (excess > 0) {
      this.lows.splice(0, excess);
      this.highs.splice(0, excess);
    }
  }
}
