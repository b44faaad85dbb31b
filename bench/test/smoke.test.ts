/**
 * Every benchmark suite (bench/src/suites/*.ts) runs in smoke mode (`BENCH_SMOKE=1`: tiny
 * sizes, every code path once, acceptance computed but not asserted) as `pnpm bench`
 * runs it, `node --expose-gc bench/dist/suites/<suite>.js`, with its results written to
 * a temporary directory. A suite broken by a change elsewhere (a new wire message with no
 * fuzz sample, a renamed option, a crash at teardown) fails here instead of at the next
 * hand-run. The suites run from bench/dist, which `pnpm test` builds first
 * (`turbo run build`); run `pnpm build` before running this file alone.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const bench = fileURLToPath(new URL('..', import.meta.url));
const sourceDir = join(bench, 'src', 'suites');
const distDir = join(bench, 'dist', 'suites');
const SUITES = readdirSync(sourceDir)
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -3))
  .sort();
/** A suite takes 1 to 11 s alone on the 2-core machine; the bound leaves room for a loaded machine. */
const SUITE_TIMEOUT_MS = 90_000;
/** The parts each suite is expected to skip in smoke mode (printed as `<part> SKIPPED (reason)`). */
const EXPECTED_SKIPS: Record<string, string[]> = { holepunch: ['real-NAT scenarios'] };

/** The environment of a smoke run: the caller's, less every knob a suite reads (a BENCH_RUNS=7 left in a shell must not slow the smoke). */
function smokeEnvironment(resultsDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('BENCH_') || key === 'DECCOM_FUZZ_INPUTS' || key.startsWith('DECCOM_SOAK_')) continue;
    env[key] = value;
  }
  return { ...env, BENCH_SMOKE: '1', BENCH_RESULTS_DIR: resultsDir };
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
}

function runSuite(suite: string, resultsDir: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--expose-gc', join(distDir, `${suite}.js`)], { cwd: bench, env: smokeEnvironment(resultsDir), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n[smoke test: killed after ${SUITE_TIMEOUT_MS} ms]`;
      child.kill('SIGKILL');
    }, SUITE_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: performance.now() - started });
    });
  });
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('benchmark suites in smoke mode', () => {
  it('every suite is built, and its build is not older than its source', () => {
    expect(SUITES.length).toBeGreaterThanOrEqual(10);
    for (const suite of SUITES) {
      const built = join(distDir, `${suite}.js`);
      expect(existsSync(built), `${built} missing: run pnpm build`).toBe(true);
      expect(statSync(built).mtimeMs, `${built} is older than its source: run pnpm build`).toBeGreaterThanOrEqual(statSync(join(sourceDir, `${suite}.ts`)).mtimeMs);
    }
  });

  for (const suite of SUITES) {
    it(`${suite}: runs to the end and writes its results file`, { timeout: SUITE_TIMEOUT_MS + 10_000 }, async () => {
      const resultsDir = mkdtempSync(join(tmpdir(), `deccom-bench-smoke-${suite}-`));
      tempDirs.push(resultsDir);
      const run = await runSuite(suite, resultsDir);
      const tail = run.output.slice(-4000);
      expect(run.code, `${suite} exited with ${run.code ?? run.signal} after ${Math.round(run.ms)} ms:\n${tail}`).toBe(0);
      const file = join(resultsDir, `${suite}.json`);
      expect(existsSync(file), `${suite} wrote no ${file}:\n${tail}`).toBe(true);
      const results = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      expect(results['suite']).toBe(suite);
      expect(results['smoke']).toBe(true);
      expect(results['machine']).toMatchObject({ cpus: expect.any(Number), node: process.version });
      expect(typeof results['figures']).toBe('object');
      expect(Object.keys(results['figures'] as object).length).toBeGreaterThan(0);
      const acceptance = results['acceptance'] as Record<string, unknown>[];
      expect(Array.isArray(acceptance)).toBe(true);
      expect(acceptance.length).toBeGreaterThan(0);
      for (const entry of acceptance) {
        expect(entry, JSON.stringify(entry)).toMatchObject({ name: expect.any(String), target: expect.any(Number), pass: expect.any(Boolean) });
        // JSON writes a non-finite value (a figure that never converged) as null.
        expect(entry['value'] === null || typeof entry['value'] === 'number', JSON.stringify(entry)).toBe(true);
      }
      for (const part of EXPECTED_SKIPS[suite] ?? []) expect(run.output).toContain(`smoke mode: ${part} SKIPPED (`);
      console.log(`bench smoke: ${suite} ${(run.ms / 1000).toFixed(1)} s, ${acceptance.length} acceptance entries (${acceptance.filter((a) => a['pass'] === true).length} pass at smoke sizes)`);
    });
  }
});
