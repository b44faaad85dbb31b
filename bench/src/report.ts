/**
 * Shared benchmark plumbing: medians, a readable table, and the results file
 * `bench/results/<suite>.json` = { suite, machine, figures, acceptance }.
 *
 * Smoke mode (`BENCH_SMOKE=1`): every suite runs its whole code path once with tiny
 * sizes, durations and node counts (seconds, not minutes), computes its acceptance
 * without asserting it, and writes `"smoke": true` into its results file. The test suite
 * runs every suite this way (bench/test/smoke.test.ts), so a suite broken by a change
 * elsewhere fails CI instead of the next hand-run. `BENCH_RESULTS_DIR` puts the results
 * files elsewhere than bench/results (default in smoke mode: bench/results/smoke; the smoke
 * test uses a temporary directory), so a smoke run never replaces real figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, platform, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True in smoke mode (`BENCH_SMOKE=1`): tiny sizes, acceptance computed but not asserted. */
export const SMOKE = process.env['BENCH_SMOKE'] === '1';

/**
 * A numeric knob: the environment variable `name` when set, else `normal`, or `smoke` in
 * smoke mode. Normal-mode defaults are the suite's own.
 */
export function knob(name: string, normal: number, smoke: number): number {
  const value = process.env[name];
  return value !== undefined && value !== '' ? Number(value) : SMOKE ? smoke : normal;
}

/**
 * Where results files go: `BENCH_RESULTS_DIR` (resolved against the working directory),
 * else bench/results, or bench/results/smoke in smoke mode (so a smoke run never
 * replaces a real results file).
 */
export function resultsDir(): string {
  const configured = process.env['BENCH_RESULTS_DIR'];
  if (configured) return resolve(configured);
  const results = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
  return SMOKE ? join(results, 'smoke') : results;
}

/** The results file of `suite` in {@link resultsDir}. */
export function resultsFile(suite: string): string {
  return join(resultsDir(), `${suite}.json`);
}

/** Says (on stdout) that a part of a suite was skipped in smoke mode, and why. */
export function smokeSkip(part: string, reason: string): string {
  const text = `smoke mode: ${part} SKIPPED (${reason})`;
  console.log(text);
  return text;
}

export interface Acceptance {
  name: string;
  value: number;
  target: number;
  /** `>=` (default): value must reach target; `<=`: value must stay under it. */
  comparison?: '>=' | '<=';
  pass: boolean;
  unit?: string;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function accept(name: string, value: number, target: number, comparison: '>=' | '<=' = '>=', unit?: string): Acceptance {
  const pass = Number.isFinite(value) && (comparison === '>=' ? value >= target : value <= target);
  return { name, value: round(value), target, comparison, pass, ...(unit ? { unit } : {}) };
}

export function round(value: number, digits = 4): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function machine(): Record<string, unknown> {
  const cpuList = cpus();
  return {
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${platform()} ${release()}`,
    date: new Date().toISOString(),
  };
}

export function printTable(title: string, rows: readonly Record<string, unknown>[]): void {
  if (rows.length === 0) return;
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: unknown): string => (typeof value === 'number' ? String(round(value, 3)) : String(value ?? ''));
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]): string => values.map((value, i) => value.padEnd(widths[i]!)).join('  ');
  console.log(`\n${title}`);
  console.log(line(columns));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) console.log(line(columns.map((column) => cell(row[column]))));
}

/** The results object written to a results file (`smoke: true` only in smoke mode). */
export function resultsObject(suite: string, figures: Record<string, unknown>, acceptance: readonly Acceptance[]): Record<string, unknown> {
  return { suite, ...(SMOKE ? { smoke: true } : {}), machine: machine(), figures, acceptance };
}

/** Writes `content` as JSON to `file`, creating its directory. */
export function writeJson(file: string, content: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(content, null, 2)}\n`);
}

/** Prints the acceptance table and writes <results dir>/<suite>.json. */
export function writeResults(suite: string, figures: Record<string, unknown>, acceptance: readonly Acceptance[]): string {
  printTable(
    `${suite}: acceptance${SMOKE ? ' (smoke run: tiny sizes, computed but not asserted)' : ''}`,
    acceptance.map((a) => ({ name: a.name, value: a.value, target: `${a.comparison ?? '>='} ${a.target}`, pass: a.pass ? 'PASS' : 'FAIL' })),
  );
  const file = resultsFile(suite);
  writeJson(file, resultsObject(suite, figures, acceptance));
  console.log(`\nwrote ${file}`);
  return file;
}
