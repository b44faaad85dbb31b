import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess, built, closedUdpPort, killAll, runCli } from './spawn-cli.js';

const MiB = 1024 * 1024;
const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

// `deccom receive-file` and `deccom send-file` as a user runs them: 8 MiB over reliable
// UDP and over TCP, hash-checked on both sides, with progress on stderr.
describe('deccom send-file / receive-file', () => {
  let dir: string;
  let receiver: CliProcess;
  let receiverAddress: string;
  let receiverId: string;
  let file: string;
  let digest: string;

  beforeAll(async () => {
    if (!built()) throw new Error('build @deccom/cli first (the root `test` command does)');
    dir = mkdtempSync(join(tmpdir(), 'deccom-cli-transfer-'));
    const content = randomFillSync(new Uint8Array(8 * MiB));
    digest = sha256Hex(content);
    file = join(dir, 'payload.bin');
    writeFileSync(file, content);
    receiver = new CliProcess(['receive-file', '--out', join(dir, 'in'), '--host', '127.0.0.1']);
    receiverAddress = (await receiver.waitFor(/^address +(127\.0\.0\.1:\d+) \(udp; tcp port \d+\)$/m))[1]!;
    receiverId = (await receiver.waitFor(/^id +([0-9a-f]{64})$/m))[1]!;
    await receiver.waitFor(/^send with:/m);
  }, 30_000);

  afterAll(async () => {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const transport of ['rudp', 'tcp'] as const) {
    it(`sends 8 MiB over ${transport}: progress on stderr, rate and a confirmed SHA-256`, async () => {
      const before = readdirSync(join(dir, 'in')).length;
      const result = await runCli(['send-file', file, '--to', receiverAddress, '--transport', transport], { timeoutMs: 120_000 });
      expect(result.code, result.stderr).toBe(0);
      // stderr is a pipe here: plain progress lines at each quarter, the last at 100%.
      expect(result.stderr).toMatch(/^sending \[#{8}\.{22}\] {2}25% 2\.0 MiB \/ 8\.0 MiB {2}[\d.]+ MB\/s$/m);
      expect(result.stderr).toMatch(/^sending \[#{30}\] 100% 8\.0 MiB \/ 8\.0 MiB {2}[\d.]+ MB\/s$/m);
      expect(result.stderr).not.toContain('\r');
      expect(result.stdout).toContain(`to ${receiverId.slice(0, 8)}… at ${receiverAddress} over ${transport}`);
      expect(result.stdout).toMatch(new RegExp(`^sent payload\\.bin: 8388608 bytes in [\\d.]+ s, [\\d.]+ MB/s over ${transport}; SHA-256 ${digest} verified by the receiver$`, 'm'));
      const line = await receiver.waitFor(new RegExp(`^received (payload\\.bin(?:\\.\\d+)?): 8388608 bytes from [0-9a-f]{8}… over ${transport}${transport === 'tcp' ? ' in [\\d.]+ s, [\\d.]+ MB/s' : ''}; SHA-256 ${digest} ok -> (.+)$`, 'm'));
      expect(sha256Hex(readFileSync(line[2]!))).toBe(digest);
      expect(readdirSync(join(dir, 'in'))).toHaveLength(before + 1); // a new file, nothing overwritten
    }, 150_000);
  }

  it('shows the receiver progress of a TCP stream, and finds the receiver by id through a bootstrap node', async () => {
    expect(receiver.stderr).toMatch(/^receiving payload\.bin \[#{30}\] 100% 8\.0 MiB \/ 8\.0 MiB/m);
    const small = join(dir, 'small.txt');
    writeFileSync(small, 'a small file\n');
    const result = await runCli(['send-file', small, '--to', receiverId.slice(0, 12), '--bootstrap', receiverAddress]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^sent small\.txt: 13 bytes in .* verified by the receiver$/m);
    expect(readFileSync(join(dir, 'in', 'small.txt'), 'utf8')).toBe('a small file\n');
  }, 60_000);

  it('fails with exit code 4 for a file that does not exist and 3 for a receiver that is not there', async () => {
    const missing = await runCli(['send-file', join(dir, 'nope.bin'), '--to', receiverAddress]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/^deccom send-file: cannot read .*nope\.bin/m);
    const port = await closedUdpPort();
    const nobody = await runCli(['send-file', file, '--to', `127.0.0.1:${port}`, '--timeout', '1']);
    expect(nobody.code).toBe(3);
    expect(nobody.stderr).toContain(`no bootstrap node answered within 1 s (tried 127.0.0.1:${port})`);
  }, 30_000);

  it('receive-file --once leaves after one file with exit code 0', async () => {
    const once = new CliProcess(['receive-file', '--out', join(dir, 'once'), '--once']);
    const address = (await once.waitFor(/^address +(127\.0\.0\.1:\d+)/m))[1]!;
    const small = join(dir, 'once.txt');
    writeFileSync(small, 'once\n');
    const sent = await runCli(['send-file', small, '--to', address, '--transport', 'tcp']);
    expect(sent.code, sent.stderr).toBe(0);
    expect(await once.exit()).toBe(0);
    expect(readFileSync(join(dir, 'once', 'once.txt'), 'utf8')).toBe('once\n');
  }, 60_000);
});
