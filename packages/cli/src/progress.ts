/**
 * A hand-written progress bar for transfers. On a terminal it redraws one line
 * (`\r`, at most ten times a second); otherwise (a pipe, a log file, a test) it prints a
 * plain line at every quarter, so progress shows without control characters.
 */

export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

const MiB = 1024 * 1024;
const REDRAW_INTERVAL_MS = 100;

/** `[##########..........]  50%`. */
export function progressBar(done: number, total: number, width = 30): string {
  const fraction = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%`;
}

/** Megabytes (10^6 bytes) per second, as transfer rates are usually quoted. */
export function megabytesPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / 1e6 / seconds : 0;
}

export function formatSize(bytes: number): string {
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export class Progress {
  private readonly startedAt = performance.now();
  private lastDrawAt = -Infinity;
  private lastDrawn = -1;
  private nextQuarter = 0.25;
  private done = 0;
  private finished = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly label: string,
    private readonly total: number,
    private readonly interactive = stream.isTTY === true,
  ) {}

  update(done: number): void {
    if (this.finished) return;
    this.done = Math.min(done, this.total);
    if (this.interactive) {
      const now = performance.now();
      if (now - this.lastDrawAt < REDRAW_INTERVAL_MS && this.done < this.total) return;
      this.lastDrawAt = now;
      this.lastDrawn = this.done;
      this.stream.write(`\r${this.line()}`);
      return;
    }
    const fraction = this.total <= 0 ? 1 : this.done / this.total;
    if (fraction >= this.nextQuarter) {
      while (fraction >= this.nextQuarter) this.nextQuarter += 0.25;
      this.stream.write(`${this.line()}\n`);
    }
  }

  /** Ends the bar: draws it at its last state and moves to a new line. */
  finish(): void {
    if (this.finished) return;
    if (this.interactive) this.stream.write(this.lastDrawn === this.done ? '\n' : `\r${this.line()}\n`);
    this.finished = true;
  }

  private line(): string {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const rate = megabytesPerSecond(this.done, seconds);
    return `${this.label} ${progressBar(this.done, this.total)} ${formatSize(this.done)} / ${formatSize(this.total)}  ${rate.toFixed(1)} MB/s`;
  }
}
