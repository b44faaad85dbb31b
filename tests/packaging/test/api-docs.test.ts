// `pnpm docs:api` works: typedoc (configured in typedoc.json) builds the API reference of
// every published package from its exports map without errors. Written to a temp dir, so
// the checkout's docs/api/ is left alone.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publishedPackages, ROOT } from '../../../scripts/pack-packages.mjs';

const out = mkdtempSync(join(tmpdir(), 'deccom-api-docs-'));

describe('docs:api (typedoc)', () => {
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('builds the reference of every package without errors', () => {
    const result = spawnSync(join(ROOT, 'node_modules', '.bin', 'typedoc'), ['--out', out, '--logLevel', 'Warn'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 240_000,
    });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.error).toBeUndefined();
    expect(output).not.toMatch(/\[error\]/);
    expect(result.status, output).toBe(0);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    for (const pkg of publishedPackages()) {
      const page = join(out, 'modules', `${pkg.name.replace('@', '_').replace('/', '_')}.html`);
      expect(existsSync(page), `${pkg.name}: ${page}`).toBe(true);
      expect(index).toContain(pkg.name);
    }
  }, 300_000);
});
