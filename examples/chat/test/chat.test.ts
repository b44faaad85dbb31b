import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The example as a user runs it: the conversation prints, and the process ends by itself.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('examples/chat', () => {
  it('two nodes join through a bootstrap node and chat, encrypted, by topic and by id', () => {
    expect(existsSync(main), 'build the example first (the root `test` command does)').toBe(true);
    const run = spawnSync(process.execPath, [main], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/lobby: alice \([0-9a-f]{8}…\)/);
    expect(run.stdout).toContain('alice <- bob: hi everyone in the lobby!');
    expect(run.stdout).toContain('bob <- alice: hello bob, alice here');
    expect(run.stdout).toContain('bob <- alice: this message is encrypted end to end');
    expect(run.stdout).toContain('alice <- bob: nice, and only you and I can read it');
    expect(run.stdout).toMatch(/Noise XX session \(handshake hash [0-9a-f]{16}…\); counters of alice's noise layer: datagrams-out [1-9]\d*, handshakes-completed [1-9]\d*\./);
    expect(run.stdout).toContain('4 messages delivered.');
    expect(run.stdout).toContain('All nodes stopped.');
    expect(run.status).toBe(0);
  });
});
