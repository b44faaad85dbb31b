// Packs every published workspace package (packages/*, not private) into one directory with
// `pnpm pack`, which turns `workspace:` ranges into the real versions, exactly as publishing
// would. Used by scripts/check-packages.mjs, tests/packaging and the install-size benchmark.
// The packages must be built first (`pnpm build`): the tarballs carry dist/.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('..', import.meta.url).pathname;
const PNPM_VERSION = '10.34.9';
const PACK_TIMEOUT_MS = 600_000;

/** The command that runs pnpm: the running pnpm when started by one, else npx. */
export function pnpmCommand() {
  const execPath = process.env['npm_execpath'] ?? '';
  if (/pnpm(\.c?js)?$/.test(execPath) && existsSync(execPath)) return { command: process.execPath, prefix: [execPath] };
  return { command: 'npx', prefix: ['-y', `pnpm@${PNPM_VERSION}`] };
}

/** Published packages under packages/: { name, version, dir }. */
export function publishedPackages() {
  const packagesDir = join(ROOT, 'packages');
  return readdirSync(packagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(packagesDir, entry.name, 'package.json')))
    .map((entry) => {
      const dir = join(packagesDir, entry.name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      return { name: manifest.name, version: manifest.version, dir, private: manifest.private === true };
    })
    .filter((pkg) => !pkg.private)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Packs the published packages into `destination`; returns [{ name, version, dir, tarball }].
 * `names` limits it to some packages.
 */
export function packPackages(destination, names) {
  mkdirSync(destination, { recursive: true });
  const wanted = publishedPackages().filter((pkg) => !names || names.includes(pkg.name));
  if (wanted.length === 0) throw new Error('no package to pack');
  const { command, prefix } = pnpmCommand();
  const filters = wanted.flatMap((pkg) => ['--filter', pkg.name]);
  const result = spawnSync(command, [...prefix, '-r', ...filters, 'pack', '--pack-destination', destination, '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: PACK_TIMEOUT_MS,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  if (result.status !== 0) {
    throw new Error(`pnpm pack failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
  }
  // One package: a JSON object; several: an array. Skip anything printed before it.
  const start = result.stdout.search(/^[[{]/m);
  const parsed = JSON.parse(start >= 0 ? result.stdout.slice(start) : result.stdout);
  const entries = Array.isArray(parsed) ? parsed : [parsed];
  return wanted.map((pkg) => {
    const entry = entries.find((candidate) => candidate.name === pkg.name);
    if (!entry) throw new Error(`pnpm pack produced no tarball for ${pkg.name}`);
    return { ...pkg, tarball: entry.filename };
  });
}
