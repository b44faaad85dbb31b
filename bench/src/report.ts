/**
 * Shared benchmark plumbing: medians, a readable table, and the results file
 * `bench/results/<suite>.json` = { suite, machine, figures, acceptance }.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, platform, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Prints the acceptance table and writes bench/results/<suite>.json. */
export function writeResults(suite: string, figures: Record<string, unknown>, acceptance: readonly Acceptance[]): string {
  printTable(
    `${suite}: acceptance`,
    acceptance.map((a) => ({ name: a.name, value: a.value, target: `${a.comparison ?? '>='} ${a.target}`, pass: a.pass ? 'PASS' : 'FAIL' })),
  );
  const here = dirname(fileURLToPath(import.meta.url));
  const file = join(here, '..', 'results', `${suite}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ suite, machine: machine(), figures, acceptance }, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
  return file;
}
