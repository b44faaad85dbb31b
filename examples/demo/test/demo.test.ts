import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The demo as a user runs it (`pnpm demo` builds, then runs dist/main.js): every section
// must complete, its checks must hold, and the process must end by itself.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function runDemo(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', reject);
    // 'close', not 'exit': the last output may still be in the pipes at 'exit'.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('the demo', () => {
  it('runs every section to the end and exits by itself', async () => {
    expect(existsSync(main), 'build the demo first (the root `test` command does)').toBe(true);
    const { code, output } = await runDemo();
    expect(output).toContain('node 7 received: "hello node 7, I found you by id"');
    expect(output).toMatch(/sent encrypted: Noise XX session with [0-9a-f]{8}…, handshake hash [0-9a-f]{16}…/);
    expect(output).toMatch(/256 MiB streamed over TCP, Noise-encrypted, in [\d.]+ s .*SHA-256 matches/);
    expect(output).toMatch(/\[#{30}\] 100%/);
    expect(output).toMatch(/32 MiB delivered reliably in [\d.]+ s .*lost [1-9]\d* datagrams .*SHA-256 matches/);
    expect(output).toMatch(/port-restricted +<-> port-restricted +punched-udp .*20 datagrams each way arrived/);
    expect(output).toMatch(/symmetric +<-> symmetric +relayed .*20 datagrams each way arrived/);
    expect(output).not.toContain('DIFFERS');
    expect(output).toContain('All nodes stopped; nothing is left running.');
    expect(code).toBe(0);
  }, 160_000);
});
