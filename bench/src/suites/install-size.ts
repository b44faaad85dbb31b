/**
 * Suite `install-size`: what an application pays to install each package. Every published
 * package is packed as `pnpm publish` would (workspace ranges replaced), then for each one
 * a fresh project in the OS temp directory npm-installs its tarball (plus the tarballs of
 * the @deccom packages it depends on, which are not on a registry here; everything else
 * comes from the npm registry). Reported per package: the packed size, the package's own
 * unpacked size, the installed size of the package with its whole runtime dependency
 * closure, and the number of packages in that closure. Acceptance: no runtime dependency
 * beyond @deccom/core and @noble/* (the CLI, an application, is reported but exempt).
 * Sizes are deterministic: one run, no medians needed.
 *
 * Needs the npm registry (for @noble/*; `--prefer-offline` takes them from npm's cache
 * when there), as tests/packaging's pack-install test does. Smoke mode (BENCH_SMOKE=1):
 * @deccom/core alone (unless BENCH_PACKAGES says otherwise), every step still run.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packPackages, type PackedPackage } from '../../../scripts/pack-packages.mjs';
import { accept, printTable, round, SMOKE, writeResults, type Acceptance } from '../report.js';

const INSTALL_TIMEOUT_MS = 240_000;
const EXEMPT = new Set(['@deccom/cli']);
/** BENCH_PACKAGES=@deccom/core,@deccom/udp limits the suite to some packages (default: all; smoke mode: @deccom/core). */
const ONLY = (process.env['BENCH_PACKAGES'] ?? (SMOKE ? '@deccom/core' : undefined))?.split(',').filter(Boolean);

/** Bytes of every file under `dir` (sizes as stored, not disk blocks). */
function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += directoryBytes(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

/** Installed packages in a flat npm node_modules: name -> directory. */
function installedPackages(modules: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const entry of readdirSync(modules)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) {
      for (const scoped of readdirSync(join(modules, entry))) found.set(`${entry}/${scoped}`, join(modules, entry, scoped));
    } else {
      found.set(entry, join(modules, entry));
    }
  }
  // Nested node_modules (version conflicts) count as dependencies too.
  for (const [, dir] of [...found]) {
    const nested = join(dir, 'node_modules');
    try {
      for (const [name, path] of installedPackages(nested)) found.set(`${name} (nested)`, path);
    } catch {
      // no nested node_modules
    }
  }
  return found;
}

/** The @deccom packages `name` needs at run time, itself included (dependencies, transitively). */
function deccomClosure(name: string, byName: Map<string, PackedPackage>): PackedPackage[] {
  const seen = new Map<string, PackedPackage>();
  const visit = (current: string): void => {
    const pkg = byName.get(current);
    if (!pkg || seen.has(current)) return;
    seen.set(current, pkg);
    const manifest = JSON.parse(readFileSync(join(pkg.dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dependency of Object.keys(manifest.dependencies ?? {})) if (dependency.startsWith('@deccom/')) visit(dependency);
  };
  visit(name);
  return [...seen.values()];
}

const workDir = mkdtempSync(join(tmpdir(), 'deccom-install-size-'));
const rows: Record<string, unknown>[] = [];
const figures: Record<string, unknown> = {};
const acceptance: Acceptance[] = [];
try {
  // With BENCH_PACKAGES, pack those and core (published packages depend on nothing else).
  const packed = packPackages(join(workDir, 'tarballs'), ONLY ? [...new Set([...ONLY, '@deccom/core'])] : undefined);
  const byName = new Map(packed.map((pkg) => [pkg.name, pkg]));
  for (const pkg of packed.filter((candidate) => !ONLY || ONLY.includes(candidate.name))) {
    const project = join(workDir, `app-${pkg.name.replace('/', '-')}`);
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'install-size-probe', private: true, type: 'module' }));
    const tarballs = deccomClosure(pkg.name, byName).map((member) => member.tarball);
    const install = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', '--omit=dev', ...tarballs], {
      cwd: project,
      encoding: 'utf8',
      timeout: INSTALL_TIMEOUT_MS,
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    if (install.status !== 0) throw new Error(`npm install of ${pkg.name} failed (${install.status ?? install.signal}):\n${install.stdout}\n${install.stderr}`);
    const modules = join(project, 'node_modules');
    const installed = installedPackages(modules);
    const ownDir = installed.get(pkg.name);
    if (!ownDir) throw new Error(`${pkg.name} missing from node_modules after install`);
    const dependencies = [...installed.keys()].filter((name) => name !== pkg.name).sort();
    const beyond = dependencies.filter((name) => name !== '@deccom/core' && !name.startsWith('@noble/'));
    // Installed size: every package directory directly under node_modules (nested ones are inside them).
    const closureBytes = [...installed.entries()].filter(([name]) => !name.endsWith('(nested)')).reduce((sum, [, dir]) => sum + directoryBytes(dir), 0);
    const packedBytes = statSync(pkg.tarball).size;
    const ownBytes = directoryBytes(ownDir);
    const exempt = EXEMPT.has(pkg.name);
    rows.push({
      package: pkg.name,
      'packed KiB': round(packedBytes / 1024, 1),
      'unpacked KiB': round(ownBytes / 1024, 1),
      'installed KiB (with deps)': round(closureBytes / 1024, 1),
      'runtime deps': dependencies.length,
      'beyond core + @noble/*': beyond.length,
      goal: exempt ? 'n/a' : '0',
    });
    figures[pkg.name] = {
      version: pkg.version,
      packedBytes,
      unpackedBytes: ownBytes,
      installedBytesWithDependencies: closureBytes,
      runtimeDependencyCount: dependencies.length,
      runtimeDependencies: dependencies,
      dependenciesBeyondCoreAndNoble: beyond,
      exempt,
    };
    if (!exempt) acceptance.push(accept(`${pkg.name}: runtime deps beyond @deccom/core and @noble/*`, beyond.length, 0, '<=', 'packages'));
    rmSync(project, { recursive: true, force: true });
  }
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
printTable('install-size: packed tarball, unpacked package, npm install with runtime dependencies', rows);
writeResults('install-size', figures, acceptance);
