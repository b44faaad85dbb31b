#!/usr/bin/env node
// `pnpm bench <suite>`: runs bench/dist/suites/<suite>.js (built by `turbo run build`).
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const suitesDir = join(here, 'dist', 'suites');
const available = existsSync(suitesDir) ? readdirSync(suitesDir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)) : [];
const suite = process.argv[2];
if (!suite || !available.includes(suite)) {
  console.error(`usage: pnpm bench <suite>\navailable suites: ${available.join(', ') || '(none built: run pnpm build)'}`);
  process.exit(suite ? 2 : 1);
}
const result = spawnSync(process.execPath, ['--expose-gc', join(suitesDir, `${suite}.js`), ...process.argv.slice(3)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
