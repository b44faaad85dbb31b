#!/usr/bin/env node
// Runs the whole vitest suite (unit, type, integration) once, then prints the plain
// closing line "Tests: N passed, N failed" that CI reads. Exit code is vitest's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const outDir = join(root, '.test-results');
mkdirSync(outDir, { recursive: true });
const outFile = join(outDir, 'vitest.json');
if (existsSync(outFile)) rmSync(outFile);
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${outFile}`, ...process.argv.slice(2)];
const result = spawnSync('npx', ['--no-install', ...args], { cwd: root, stdio: 'inherit', env: process.env });
let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(outFile)) {
  const report = JSON.parse(readFileSync(outFile, 'utf8'));
  passed = report.numPassedTests ?? 0;
  // A test file that fails before its tests run (an import error) has no failed test to
  // count: it counts as one. vitest's numFailedTestSuites is not used for this, as it also
  // counts every describe block around a failed test.
  const unloaded = (report.testResults ?? []).filter((file) => file.status === 'failed' && !(file.assertionResults ?? []).some((test) => test.status === 'failed')).length;
  failed = (report.numFailedTests ?? 0) + unloaded;
  skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
} else {
  failed = 1;
}
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
const code = result.status ?? 1;
process.exit(code !== 0 ? code : failed > 0 || passed === 0 ? 1 : 0);
