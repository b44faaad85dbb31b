// Versions are independent: `changeset version`, run on a copy of the repository's
// .changeset/ and package.json files in a temporary directory (never in the checkout),
// gives each package the version its own changesets ask for (plus a patch when a runtime
// dependency moved), not one shared version. A changeset added here makes one leaf
// package major so that a fixed or linked group would show.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../../scripts/pack-packages.mjs';

type Bump = 'major' | 'minor' | 'patch';
const RANK: Record<Bump, number> = { patch: 1, minor: 2, major: 3 };
const LEAF = '@deccom/delay';

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function readManifest(path: string): Manifest {
  return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
}

/** Bumps named in the front matter of every changeset in `dir`. */
function changesetBumps(dir: string): Map<string, Bump> {
  const bumps = new Map<string, Bump>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.md') || file === 'README.md') continue;
    const text = readFileSync(join(dir, file), 'utf8');
    const frontMatter = /^---\n([\s\S]*?)\n---/.exec(text)?.[1] ?? '';
    for (const line of frontMatter.split('\n')) {
      const match = /^\s*["']?([^"':]+)["']?\s*:\s*(major|minor|patch)\s*$/.exec(line);
      if (!match) continue;
      const [, name, bump] = match as unknown as [string, string, Bump];
      const previous = bumps.get(name);
      if (!previous || RANK[bump] > RANK[previous]) bumps.set(name, bump);
    }
  }
  return bumps;
}

function increment(version: string, bump: Bump): string {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  if (bump === 'major') return `${major + 1}.0.0`;
  if (bump === 'minor') return `${major}.${minor + 1}.0`;
  return `${major}.${minor}.${patch + 1}`;
}

describe('changeset version on a copy of the repository', () => {
  let workDir: string;
  const before = new Map<string, Manifest>();
  const after = new Map<string, Manifest>();
  let bumps: Map<string, Bump>;
  let output = '';

  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'deccom-changeset-version-'));
    cpSync(join(ROOT, '.changeset'), join(workDir, '.changeset'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(workDir, 'package.json'));
    writeFileSync(join(workDir, 'pnpm-workspace.yaml'), 'packages:\n  - "packages/*"\n');
    for (const entry of readdirSync(join(ROOT, 'packages'))) {
      const source = join(ROOT, 'packages', entry, 'package.json');
      if (!existsSync(source)) continue;
      mkdirSync(join(workDir, 'packages', entry), { recursive: true });
      cpSync(source, join(workDir, 'packages', entry, 'package.json'));
      before.set(entry, readManifest(source));
    }
    writeFileSync(join(workDir, '.changeset', 'zz-packaging-test-major.md'), `---\n"${LEAF}": major\n---\n\nA major change of one leaf package (test only).\n`);
    bumps = changesetBumps(join(workDir, '.changeset'));
    const result = spawnSync(process.execPath, [join(ROOT, 'node_modules', '@changesets', 'cli', 'bin.js'), 'version'], {
      cwd: workDir,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, CI: 'true' },
    });
    output = `${result.stdout}${result.stderr}`;
    if (result.status !== 0) throw new Error(`changeset version failed (${result.status}):\n${output}`);
    for (const entry of before.keys()) after.set(entry, readManifest(join(workDir, 'packages', entry, 'package.json')));
  }, 150_000);

  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('has no fixed or linked groups', () => {
    const config = JSON.parse(readFileSync(join(ROOT, '.changeset', 'config.json'), 'utf8'));
    expect(config.fixed).toEqual([]);
    expect(config.linked).toEqual([]);
  });

  it('gives every package the version of its own changesets', () => {
    const bumpedNames = new Set([...bumps.keys()]);
    const expected = new Map<string, string>();
    for (const [entry, manifest] of before) {
      if (manifest.private) continue;
      let bump = bumps.get(manifest.name);
      // updateInternalDependencies: a package whose runtime dependency moved gets a patch.
      const dependsOnBumped = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }).some((name) => bumpedNames.has(name));
      if (!bump && dependsOnBumped) bump = 'patch';
      expected.set(entry, bump ? increment(manifest.version, bump) : manifest.version);
    }
    const actual = new Map([...after].filter(([entry]) => expected.has(entry)).map(([entry, manifest]) => [entry, manifest.version]));
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));

    const leafEntry = LEAF.slice('@deccom/'.length);
    expect(after.get(leafEntry)?.version).toBe(increment(before.get(leafEntry)?.version ?? '', 'major'));
    // A fixed or linked group would have moved the others with the major.
    expect(new Set([...actual.values()]).size).toBeGreaterThan(1);
  });

  it('consumes the changesets and writes a changelog per versioned package', () => {
    const left = readdirSync(join(workDir, '.changeset')).filter((file) => file.endsWith('.md') && file !== 'README.md');
    expect(left).toEqual([]);
    for (const [entry, manifest] of after) {
      if (manifest.private || manifest.version === before.get(entry)?.version) continue;
      const changelog = readFileSync(join(workDir, 'packages', entry, 'CHANGELOG.md'), 'utf8');
      expect(changelog).toContain(`## ${manifest.version}`);
    }
  });

  it('leaves the checkout untouched', () => {
    for (const [entry, manifest] of before) {
      expect(readManifest(join(ROOT, 'packages', entry, 'package.json')).version).toBe(manifest.version);
    }
    expect(existsSync(join(ROOT, '.changeset', 'zz-packaging-test-major.md'))).toBe(false);
  });
});
