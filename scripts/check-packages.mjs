#!/usr/bin/env node
// `pnpm check:packages`: packs every published package (as `pnpm publish` would) and checks
// each tarball with publint (package.json against the packed files, strict: warnings fail)
// and Are the Types Wrong (types resolve for every entry point; profile esm-only, since the
// packages are ESM only and do not claim to work under require()). Also checks that each
// tarball carries README.md and LICENSE and no `workspace:` range. Exits non-zero on any
// problem. Prints one line per package, then "packages: N passed, N failed".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { ROOT, packPackages } from './pack-packages.mjs';

const ATTW = join(ROOT, 'node_modules', '.bin', 'attw');
const ATTW_TIMEOUT_MS = 300_000;

/** Files in a gzipped tarball, read with `tar` (present wherever npm is). */
function tarballFiles(tarball) {
  const listed = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8', timeout: 60_000 });
  if (listed.status !== 0) throw new Error(`tar -tzf ${tarball} failed: ${listed.stderr}`);
  return listed.stdout.split('\n').filter(Boolean);
}

function tarballManifest(tarball) {
  const read = spawnSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8', timeout: 60_000 });
  if (read.status !== 0) throw new Error(`reading package.json from ${tarball} failed: ${read.stderr}`);
  return JSON.parse(read.stdout);
}

async function checkPackage(pkg) {
  const problems = [];
  // publint reads the unpacked tarball (the rewritten package.json, exactly the packed files).
  const unpacked = mkdtempSync(join(tmpdir(), 'deccom-publint-'));
  let result;
  try {
    const extract = spawnSync('tar', ['-xzf', pkg.tarball, '-C', unpacked], { encoding: 'utf8', timeout: 60_000 });
    if (extract.status !== 0) throw new Error(`tar -xzf ${pkg.tarball} failed: ${extract.stderr}`);
    result = await publint({ pkgDir: join(unpacked, 'package'), pack: false, level: 'suggestion', strict: true });
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
  }
  const { messages, pkg: manifest } = result;
  for (const message of messages) {
    const text = formatMessage(message, manifest) ?? message.code;
    if (message.type === 'suggestion') console.log(`  ${pkg.name}: publint suggestion: ${text}`);
    else problems.push(`publint ${message.type}: ${text}`);
  }

  // attw's exit code already applies the profile (esm-only ignores node10 and node16-cjs).
  const attw = spawnSync(ATTW, [pkg.tarball, '--profile', 'esm-only', '--format', 'ascii', '--no-color', '--no-emoji'], {
    encoding: 'utf8',
    timeout: ATTW_TIMEOUT_MS,
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  if (attw.error) throw attw.error;
  if (attw.status !== 0) problems.push(`attw (esm-only) exited ${attw.status}:\n${attw.stdout}${attw.stderr}`);

  const files = tarballFiles(pkg.tarball);
  for (const required of ['package/README.md', 'package/LICENSE', 'package/package.json']) {
    if (!files.includes(required)) problems.push(`tarball lacks ${required.slice('package/'.length)}`);
  }
  for (const file of files) {
    if (/\/test\/|\.test\.|tsbuildinfo$/.test(file)) problems.push(`tarball carries ${file}`);
  }
  const packed = tarballManifest(pkg.tarball);
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries(packed[field] ?? {})) {
      if (String(range).startsWith('workspace:')) problems.push(`${field}.${name} still "${range}"`);
    }
  }
  return { problems, fileCount: files.length };
}

const destination = mkdtempSync(join(tmpdir(), 'deccom-check-packages-'));
let passed = 0;
let failed = 0;
try {
  // `node scripts/check-packages.mjs @deccom/udp @deccom/tcp` checks only those.
  const only = process.argv.slice(2);
  const packed = packPackages(destination, only.length > 0 ? only : undefined);
  for (const pkg of packed) {
    const { problems, fileCount } = await checkPackage(pkg);
    if (problems.length === 0) {
      passed += 1;
      console.log(`ok   ${pkg.name}@${pkg.version} (${fileCount} files): publint clean, attw (esm-only) clean`);
    } else {
      failed += 1;
      console.log(`FAIL ${pkg.name}@${pkg.version}`);
      for (const problem of problems) console.log(`  - ${problem}`);
    }
  }
} finally {
  rmSync(destination, { recursive: true, force: true });
}
console.log(`packages: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
