import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess, built, killAll, runCli } from './spawn-cli.js';

// A bootstrap node and two chat nodes as a user runs them (the built bin, piped stdin),
// on 127.0.0.1: messages by topic and by id prefix, over Noise-encrypted datagrams.
describe('deccom bootstrap + chat', () => {
  let bootstrap: CliProcess;
  let bootstrapAddress: string;
  let alice: CliProcess;
  let bob: CliProcess;
  let aliceId: string;
  let bobId: string;

  beforeAll(async () => {
    if (!built()) throw new Error('build @deccom/cli first (the root `test` command does)');
    bootstrap = new CliProcess(['bootstrap', '--port', '0', '--host', '127.0.0.1']);
    bootstrapAddress = (await bootstrap.waitFor(/^address +(127\.0\.0\.1:\d+)$/m))[1]!;
    await bootstrap.waitFor(/^running/m);
    alice = new CliProcess(['chat', '--bootstrap', bootstrapAddress, '--name', 'alice', '--topic', 'room-1']);
    aliceId = (await alice.waitFor(/^id +([0-9a-f]{64})$/m))[1]!;
    await alice.waitFor(/^joined through .* topic 'room-1' announced/m);
    bob = new CliProcess(['chat', '--bootstrap', bootstrapAddress, '--name', 'bob', '--topic', 'room-1']);
    bobId = (await bob.waitFor(/^id +([0-9a-f]{64})$/m))[1]!;
    await bob.waitFor(/^joined through .* topic 'room-1' announced/m);
  }, 60_000);

  afterAll(killAll);

  it('prints the bootstrap node id and address, and logs peers joining', async () => {
    expect(bootstrap.stdout).toMatch(/^id +[0-9a-f]{64}$/m);
    expect(bootstrap.stdout).toContain('stack    udp > keepalive > kademlia > noise (noise: encrypt)');
    await bootstrap.waitFor(new RegExp(`peer joined  ${aliceId.slice(0, 8)}`));
    await bootstrap.waitFor(new RegExp(`peer joined  ${bobId.slice(0, 8)}`));
  });

  it('delivers a line to everyone in the topic, naming the sender by its proven id', async () => {
    alice.write('hello room, alice here');
    await alice.waitFor(/^you -> \[room-1\] \(1 of 1 peers\): hello room, alice here$/m);
    await bob.waitFor(new RegExp(`^\\[room-1\\] alice \\(${aliceId.slice(0, 8)}\\): hello room, alice here$`, 'm'));
    bob.write('hi alice');
    await alice.waitFor(new RegExp(`^\\[room-1\\] bob \\(${bobId.slice(0, 8)}\\): hi alice$`, 'm'));
  });

  it('delivers a direct message by id prefix, to that peer only', async () => {
    bob.write(`/msg ${aliceId.slice(0, 10)} just for you`);
    await alice.waitFor(new RegExp(`^\\[direct\\] bob \\(${bobId.slice(0, 8)}\\): just for you$`, 'm'));
    await bob.waitFor(/^you -> [0-9a-f]{8}…: just for you$/m);
    alice.write(`/msg ${bobId} and back, by full id`);
    await bob.waitFor(/^\[direct\] alice \([0-9a-f]{8}\): and back, by full id$/m);
    // Messages go through Noise sessions: both nodes count encrypted datagrams.
    alice.write('/status');
    await alice.waitFor(/^ {2}noise: .*datagrams-out=\d+/m);
    expect(alice.stdout).toMatch(/^peers known [1-9]\d*; chat messages sent [1-9]\d*, received [1-9]\d*, dropped 0$/m);
    expect(bootstrap.stdout).not.toContain('just for you');
  });

  it('reports unknown id prefixes and commands without leaving', async () => {
    alice.write('/msg ffffffffffffffffffff hello?');
    await alice.waitFor(/no known peer has an id starting with ffffffffffffffffffff/, 20_000, 'stderr');
    alice.write('/nonsense');
    await alice.waitFor(/unknown command \/nonsense/, 20_000, 'stderr');
    alice.write('/peers');
    await alice.waitFor(/^in topic 'room-1' \(1\): [0-9a-f]{8}$/m);
    expect(alice.hasExited).toBe(false);
  });

  it('status joins, lists peers and the topic providers, and exits 0', async () => {
    const result = await runCli(['status', '--bootstrap', bootstrapAddress, '--topic', 'room-1']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^bootstrap ${bootstrapAddress.replace(/\./g, '\\.')}: ping [\\d.]+ ms$`, 'm'));
    expect(result.stdout).toMatch(/^topic 'room-1': 2 provider\(s\)$/m);
    expect(result.stdout).toContain(aliceId);
    expect(result.stdout).toContain(bobId);
  }, 30_000);

  it('handles lines piped in before it joined, then leaves at the end of input', async () => {
    const carol = new CliProcess(['chat', '--bootstrap', bootstrapAddress, '--name', 'carol', '--topic', 'room-1']);
    carol.write('early words from carol');
    carol.endInput();
    expect(await carol.exit(), carol.stderr).toBe(0);
    expect(carol.stdout).toMatch(/^you -> \[room-1\] \(2 of 2 peers\): early words from carol$/m);
    await alice.waitFor(/^\[room-1\] carol \([0-9a-f]{8}\): early words from carol$/m);
    await bob.waitFor(/^\[room-1\] carol \([0-9a-f]{8}\): early words from carol$/m);
  }, 30_000);

  it('a chat leaves at end of input; the others stop cleanly on SIGTERM / SIGINT with exit code 0', async () => {
    alice.endInput();
    expect(await alice.exit()).toBe(0);
    expect(alice.stdout).toMatch(/left the chat\n$/);
    bob.signal('SIGTERM');
    expect(await bob.exit()).toBe(0);
    bootstrap.signal('SIGINT');
    expect(await bootstrap.exit()).toBe(0);
    expect(bootstrap.stdout).toMatch(/stopped\n$/);
  });
});
