import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliProcess, built, closedUdpPort, killAll, runCli } from './spawn-cli.js';

describe('deccom command line', () => {
  afterAll(killAll);

  it('is built', () => expect(built(), 'build @deccom/cli first (the root `test` command does)').toBe(true));

  it.concurrent.each([
    [['chat', '--bootstrap', '127.0.0.1:7000', '--bogus'], /^deccom chat: Unknown option '--bogus'$/m],
    [['bootstrap', '--port', '99999'], /^deccom bootstrap: --port must be a port number 0\.\.65535, got '99999'$/m],
    [['bootstrap', '--port'], /^deccom bootstrap: Option '--port <value>' argument missing$/m],
    [['chat'], /^deccom chat: --bootstrap is required/m],
    [['chat', '--bootstrap', 'nowhere'], /^deccom chat: --bootstrap expects host:port \(or \[ipv6\]:port\), got 'nowhere'$/m],
    [['chat', '--bootstrap', '127.0.0.1:7000', '--timeout', '0'], /^deccom chat: --timeout must be a number of seconds/m],
    [['chat', '--bootstrap', '127.0.0.1:7000', '--timeout', '-1'], /^deccom chat: Option '--timeout' argument is ambiguous$/m],
    [['chat', '--bootstrap', '127.0.0.1:7000', '--noise', 'none'], /^deccom chat: --noise must be 'encrypt' or 'sign-only', got 'none'$/m],
    [['send-file', '--to', '127.0.0.1:7000'], /^deccom send-file: which file\?/m],
    [['send-file', 'a.bin'], /^deccom send-file: --to is required/m],
    [['send-file', 'a.bin', '--to', '127.0.0.1:7000', '--transport', 'carrier-pigeon'], /^deccom send-file: --transport must be rudp or tcp, got 'carrier-pigeon'$/m],
    [['send-file', 'a.bin', '--to', 'abcd'], /^deccom send-file: --to <id> needs --bootstrap/m],
    [['send-file', 'a.bin', 'b.bin', '--to', '127.0.0.1:7000'], /^deccom send-file: unexpected argument 'b\.bin'$/m],
    [['receive-file'], /^deccom receive-file: --out <dir> is required/m],
    [['describe', '--stack', 'nope'], /^deccom describe: --stack must be one of bootstrap, chat, status, send-rudp, send-tcp, receive; got 'nope'$/m],
    [['frobnicate'], /^deccom: unknown command 'frobnicate'/m],
  ])('deccom %j exits 2 with a message', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });

  it('prints help for every command with exit code 0', async () => {
    for (const command of ['bootstrap', 'chat', 'send-file', 'receive-file', 'status', 'describe']) {
      const result = await runCli([command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: deccom ${command}`));
    }
    const main = await runCli(['--help']);
    expect(main.code).toBe(0);
    expect(main.stdout).toContain('Exit codes: 0 ok, 1 unexpected error, 2 bad command line, 3 network');
  }, 60_000);

  it('an unreachable bootstrap node ends chat and status with exit code 3 and a clear message', async () => {
    const port = await closedUdpPort();
    for (const command of ['chat', 'status']) {
      const startedAt = Date.now();
      const result = await runCli([command, '--bootstrap', `127.0.0.1:${port}`, '--timeout', '1']);
      expect(result.code).toBe(3);
      expect(result.stderr).toContain(`deccom ${command}: no bootstrap node answered within 1 s (tried 127.0.0.1:${port})`);
      expect(Date.now() - startedAt).toBeLessThan(20_000); // bounded: it gives up, it does not hang
    }
  }, 60_000);

  it('a bootstrap node of another --noise mode admits nobody: exit code 3 naming the cause', async () => {
    const bootstrap = new CliProcess(['bootstrap', '--port', '0']);
    const address = (await bootstrap.waitFor(/^address +(127\.0\.0\.1:\d+)$/m))[1]!;
    await bootstrap.waitFor(/^running/m);
    const result = await runCli(['status', '--bootstrap', address, '--noise', 'sign-only', '--timeout', '2']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('the bootstrap node answered pings but admitted no peer within 2 s: it must run a DecCom node with the same --noise mode');
    bootstrap.signal('SIGTERM');
    expect(await bootstrap.exit()).toBe(0);
  }, 30_000);

  it('describe prints the Mermaid diagram of a stack', async () => {
    const result = await runCli(['describe', '--stack', 'receive']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^flowchart BT$/m);
    for (const layer of ['udp', 'keepalive', 'kademlia', 'noise', 'rudp', 'tcp', 'noise-stream']) expect(result.stdout).toContain(`["${layer}<br/>`);
  });

  it('--identity-file keeps a bootstrap node id across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deccom-cli-identity-'));
    try {
      const file = join(dir, 'node.key');
      const ids: string[] = [];
      for (let run = 0; run < 2; run++) {
        const node = new CliProcess(['bootstrap', '--port', '0', '--identity-file', file]);
        ids.push((await node.waitFor(/^id +([0-9a-f]{64})$/m))[1]!);
        await node.waitFor(/^running/m);
        if (run === 0) expect(node.stderr).toContain(`created identity file ${file}`);
        node.signal('SIGTERM');
        expect(await node.exit()).toBe(0);
      }
      expect(ids[0]).toBe(ids[1]);
      expect(readFileSync(join(dir, 'node.key'), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a bad identity file is exit code 4', async () => {
    const result = await runCli(['bootstrap', '--port', '0', '--identity-file', '/dev/null']);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('identity file /dev/null must hold a 32-byte seed as 64 hex digits');
  });
});
