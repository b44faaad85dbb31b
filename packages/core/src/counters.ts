/**
 * Per-layer counters: messages and bytes in and out, drops by reason, retransmissions.
 * Counters, not logs, are how DecCom is observed; `node.counters()` collects them all.
 */
export class Counters {
  private readonly values = new Map<string, number>();

  /** Adds `amount` (default 1) to the counter `name`. */
  add(name: string, amount = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + amount);
  }

  /** Sets a gauge (a value that goes up and down, such as the number of peers). */
  set(name: string, value: number): void {
    this.values.set(name, value);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  /** Counts a dropped input under `dropped` and `dropped.<reason>`. */
  drop(reason: string): void {
    this.add('dropped');
    this.add(`dropped.${reason}`);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.values.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  reset(): void {
    this.values.clear();
  }
}
