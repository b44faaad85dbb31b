/**
 * Per-layer counters: messages and bytes in and out, drops by reason, retransmissions.
 * Counters, not logs, are how DecCom is observed; `node.counters()` collects them all.
 */
export class Counters {
  private readonly values = new Map<string, number>();
  private readonly sources: (() => Record<string, number>)[] = [];

  /**
   * Adds counters a layer keeps in its own variables (for hot paths where a map update
   * per packet costs too much); they are read when a snapshot is taken.
   */
  attach(source: () => Record<string, number>): void {
    this.sources.push(source);
  }

  /** Adds `amount` (default 1) to the counter `name`. */
  add(name: string, amount = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + amount);
  }

  /** Sets a gauge (a value that goes up and down, such as the number of peers). */
  set(name: string, value: number): void {
    this.values.set(name, value);
  }

  get(name: string): number {
    for (const source of this.sources) {
      const value = source()[name];
      if (value !== undefined) return value + (this.values.get(name) ?? 0);
    }
    return this.values.get(name) ?? 0;
  }

  /** Counts a dropped input under `dropped` and `dropped.<reason>`. */
  drop(reason: string): void {
    this.add('dropped');
    this.add(`dropped.${reason}`);
  }

  snapshot(): Record<string, number> {
    const merged = new Map(this.values);
    for (const source of this.sources) {
      for (const [name, value] of Object.entries(source())) if (value !== 0) merged.set(name, (merged.get(name) ?? 0) + value);
    }
    return Object.fromEntries([...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  reset(): void {
    this.values.clear();
  }
}
