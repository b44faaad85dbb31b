import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The example as a user runs it (smaller file): progress, rates, hashes, and a clean exit.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('examples/file-transfer', () => {
  it('sends a generated file over reliable UDP and over TCP with progress, rate and matching SHA-256', () => {
    expect(existsSync(main), 'build the example first (the root `test` command does)').toBe(true);
    const run = spawnSync(process.execPath, [main, '--mib', '8'], { encoding: 'utf8', timeout: 120_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^generated .*generated\.bin: 8 MiB, SHA-256 [0-9a-f]{16}…$/m);
    // stdout is a pipe: a plain progress line at every quarter, for each transfer.
    expect(run.stdout.match(/^ {2}sending \[#{8}\.{22}\] {2}25% 2\.0 MiB \/ 8\.0 MiB/gm)).toHaveLength(2);
    expect(run.stdout.match(/^ {2}sending \[#{30}\] 100% 8\.0 MiB \/ 8\.0 MiB/gm)).toHaveLength(2);
    expect(run.stdout.match(/^ {2}8 MiB in [\d.]+ s: [\d.]+ MB\/s; SHA-256 of the received file matches$/gm)).toHaveLength(2);
    expect(run.stdout).not.toContain('DIFFERS');
    expect(run.stdout).toContain('temporary files removed.');
    expect(run.status).toBe(0);
  }, 130_000);
});
