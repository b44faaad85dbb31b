/**
 * Fault injection on real sockets (127.0.0.1): a peer process killed with SIGKILL and
 * restarted with the same identity (new port), a partition cut and healed under a
 * reliable transfer, and the wall clock stepped while nodes run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNode, DecComError, Identity, toHex, type NodeId } from '@deccom/core';
import { udp } from '@deccom/udp';
import { keepalive } from '@deccom/keepalive';
import { kademlia } from '@deccom/kademlia';
import { tcp } from '@deccom/tcp';
import { noise } from '@deccom/noise';
import { PeerUnresponsiveError, rudp } from '@deccom/rudp';
import { gate, type Gate } from '../src/gate.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const digest = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

interface Child {
  process: ChildProcess;
  lines: string[];
  port: number;
}

const children: Child[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const child of children.splice(0)) await kill(child);
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function kill(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  const exited = new Promise((resolve) => child.process.once('exit', resolve));
  child.process.kill('SIGKILL');
  await exited;
}

async function spawnChild(mode: 'kademlia' | 'noise', port: number, seed: Uint8Array, bootstrapPort = 0): Promise<Child> {
  const process_ = spawn(process.execPath, ['--conditions=@deccom/source', '--import', './register-ts.mjs', './child-node.ts', mode, String(port), toHex(seed), String(bootstrapPort)], {
    cwd: fixtures,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const child: Child = { process: process_, lines: [], port: 0 };
  children.push(child);
  let buffered = '';
  process_.stdout!.on('data', (data: Buffer) => {
    buffered += data.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    child.lines.push(...parts);
  });
  expect(await waitFor(() => child.lines.some((line) => line.startsWith('ready')), 30_000)).toBe(true);
  child.port = Number(child.lines.find((line) => line.startsWith('ready'))!.split(' ')[1]);
  return child;
}

describe('a peer process killed without a goodbye (SIGKILL), then restarted with the same identity', () => {
  it('keep-alive reports it, a reliable send to it fails typed, and lookups find it again at its new port', async () => {
    const seed = randomBytes(32);
    const childId: NodeId = Identity.fromSeed(seed).id;
    const node = createNode({
      identity: Identity.generate(),
      layers: [udp({ host: '127.0.0.1' }), keepalive({ intervalMs: 1000, pingTimeoutMs: 500, maxFailures: 3 }), rudp({ peerTimeoutMs: 3000 }), kademlia({ requestTimeoutMs: 500 })],
    });
    await node.start();
    cleanups.push(() => node.stop());
    const unresponsive: string[] = [];
    const disconnected: string[] = [];
    node.on('peer-unresponsive', (id) => void unresponsive.push(id.hex));
    node.on('peer-disconnect', (peer) => void disconnected.push(peer.id.hex));

    const first = await spawnChild('kademlia', 0, seed, node.localAddress().port);
    expect(await waitFor(() => node.getPeer(childId) !== undefined, 10_000)).toBe(true);
    expect(node.getPeer(childId)!.address.port).toBe(first.port);

    // A large reliable message in flight when the process dies.
    const data = new Uint8Array(64 * 1024 * 1024);
    let outcome: { error?: unknown; at: number } | undefined;
    const sentAt = Date.now();
    node.sendReliable({ host: '127.0.0.1', port: first.port }, data).then(
      () => (outcome = { at: Date.now() }),
      (error: unknown) => (outcome = { error, at: Date.now() }),
    );
    await sleep(100);
    const killedAt = Date.now();
    await kill(first);

    // No hang: the send fails with the typed error within the peer timeout (plus slack).
    expect(await waitFor(() => outcome !== undefined, 15_000)).toBe(true);
    if (outcome!.error !== undefined) {
      expect(outcome!.error).toBeInstanceOf(PeerUnresponsiveError);
      expect(outcome!.at - killedAt).toBeLessThan(3000 + 3000);
    } else {
      // Only possible if all 64 MiB made it before the kill.
      expect(first.lines).toContain(`reliable ${data.byteLength}`);
    }
    // Keep-alive noticed (interval 1 s, 3 failed pings) and kademlia dropped the peer.
    expect(await waitFor(() => unresponsive.includes(childId.hex), 10_000)).toBe(true);
    expect(disconnected).toContain(childId.hex);
    expect(node.getPeer(childId)).toBeUndefined();
    void sentAt;

    // Back with the same identity on a new port: found there.
    const second = await spawnChild('kademlia', 0, seed, node.localAddress().port);
    expect(second.port).not.toBe(first.port);
    const peer = await node.findPeer(childId, { timeoutMs: 5000 });
    expect(peer.address.port).toBe(second.port);
    // And it answers: a datagram round trip and a reliable message.
    const echoed = new Promise<string>((resolve) => node.handle('datagram', (reply) => resolve(new TextDecoder().decode(reply))));
    node.sendDatagram(peer.address, new TextEncoder().encode('hello again'));
    expect(await Promise.race([echoed, sleep(5000).then(() => 'timeout')])).toBe('echo:hello again');
    await node.sendReliable(peer.address, new Uint8Array(100_000));
    expect(await waitFor(() => second.lines.includes('reliable 100000'), 5000)).toBe(true);
  });

  it('noise: a session with a killed peer is replaced by a new handshake once it is back (same identity, same port)', async () => {
    const seed = randomBytes(32);
    const childId = Identity.fromSeed(seed).id;
    const node = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), noise()] });
    await node.start();
    cleanups.push(() => node.stop());
    const replies: string[] = [];
    node.handle('datagram', (data) => void replies.push(new TextDecoder().decode(data)));

    const first = await spawnChild('noise', 0, seed);
    const address = { host: '127.0.0.1', port: first.port };
    const session = await node.secureConnect(address, { expectedId: childId, timeoutMs: 5000 });
    node.sendDatagram(address, new TextEncoder().encode('one'));
    expect(await waitFor(() => replies.includes('echo:one'), 5000)).toBe(true);
    const before = toHex(session.handshakeHash);

    await kill(first);
    const second = await spawnChild('noise', first.port, seed);
    expect(second.port).toBe(first.port);
    // Keep sending as an application would: the restarted peer answers the stale session
    // with an UNKNOWN_SESSION hint, we handshake again, and traffic flows.
    let n = 0;
    const ok = await waitFor(() => {
      if (replies.some((reply) => reply.startsWith('echo:two-'))) return true;
      node.sendDatagram(address, new TextEncoder().encode(`two-${n++}`));
      return false;
    }, 10_000);
    expect(ok).toBe(true);
    const now = node.secureSession(address);
    expect(now?.remoteId.equals(childId)).toBe(true);
    expect(toHex(now!.handshakeHash)).not.toBe(before);
    expect(replies.filter((reply) => reply === 'echo:one')).toHaveLength(1);
  });
});

describe('a partition on real sockets (gate layer) under a reliable transfer', () => {
  async function pair(peerTimeoutMs: number) {
    const control: { current?: Gate } = {};
    const a = createNode({ layers: [udp({ host: '127.0.0.1' }), gate(control), rudp({ peerTimeoutMs })] });
    const b = createNode({ layers: [udp({ host: '127.0.0.1' }), rudp()] });
    await a.start();
    await b.start();
    cleanups.push(async () => {
      await a.stop();
      await b.stop();
    });
    const received: string[] = [];
    b.handle('reliable-message', (data) => void received.push(digest(data)));
    return { a, b, gate: control.current!, received };
  }

  it('completes after a heal shorter than the peer timeout, delivered exactly once', async () => {
    const { a, b, gate: g, received } = await pair(5000);
    const data = randomBytes(16 * 1024 * 1024);
    const send = a.sendReliable(b.localAddress(), data);
    await sleep(30);
    g.close();
    await sleep(1500);
    g.open();
    await send;
    await sleep(500);
    expect(received).toEqual([digest(data)]);
  });

  it('fails with PeerUnresponsiveError when the partition outlasts the peer timeout, then works again, never delivering twice', async () => {
    const { a, b, gate: g, received } = await pair(1500);
    const data = randomBytes(16 * 1024 * 1024);
    const send = a.sendReliable(b.localAddress(), data);
    await sleep(30);
    g.close();
    const error = await send.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    g.open();
    expect(error).toBeInstanceOf(PeerUnresponsiveError);
    expect((error as DecComError).code).toBe('RUDP_PEER_UNRESPONSIVE');
    const fresh = randomBytes(1024 * 1024);
    await a.sendReliable(b.localAddress(), fresh);
    await sleep(1000);
    expect(received.filter((hash) => hash === digest(data)).length).toBeLessThanOrEqual(1);
    expect(received.filter((hash) => hash === digest(fresh))).toHaveLength(1);
  });
});

describe('wall-clock steps on real sockets', () => {
  it('a wall clock stepped an hour forward and back does not disturb lookups, keep-alive or transfers (DecCom runs on a monotonic clock)', async () => {
    const seedNode = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), keepalive({ intervalMs: 1000, pingTimeoutMs: 500 }), rudp(), kademlia({ requestTimeoutMs: 500 })] });
    await seedNode.start();
    const nodes = [seedNode];
    cleanups.push(async () => {
      for (const n of nodes) await n.stop();
    });
    for (let i = 0; i < 7; i++) {
      const n = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), keepalive({ intervalMs: 1000, pingTimeoutMs: 500 }), rudp(), kademlia({ requestTimeoutMs: 500, bootstrap: [seedNode.localAddress()] })] });
      await n.start();
      nodes.push(n);
    }
    await sleep(1000);
    const unresponsive: string[] = [];
    for (const n of nodes) n.on('peer-unresponsive', (id) => void unresponsive.push(id.hex));
    const received: string[] = [];
    nodes[7]!.handle('reliable-message', (data) => void received.push(digest(data)));

    const check = async (label: string): Promise<void> => {
      for (let i = 0; i < nodes.length; i++) {
        const target = nodes[(i + 3) % nodes.length]!;
        const peer = await nodes[i]!.findPeer(target.id, { timeoutMs: 3000 });
        expect(peer.address.port, label).toBe(target.localAddress().port);
      }
      const data = randomBytes(2 * 1024 * 1024);
      await nodes[0]!.sendReliable(nodes[7]!.localAddress(), data, { timeoutMs: 10_000 });
      expect(received.at(-1), label).toBe(digest(data));
    };
    await check('before');
    // Mock Date only (no fake timers): the process's wall clock jumps.
    vi.setSystemTime(Date.now() + 3_600_000);
    await sleep(1500);
    await check('an hour ahead');
    vi.setSystemTime(Date.now() - 7_200_000);
    await sleep(1500);
    await check('an hour behind');
    vi.useRealTimers();
    expect(unresponsive).toEqual([]);
  });
});

describe('a peer restarted on its UDP port with a new TCP port, telling no one', () => {
  it('is reached over TCP again: the refused dial asks kademlia for a fresh record, and kademlia asks the peer itself', async () => {
    const host = '127.0.0.1';
    const bobIdentity = Identity.fromSeed(randomBytes(32));
    const stack = (identity: Identity, udpPort: number, bootstrap: { host: string; port: number }[]) =>
      createNode({ identity, layers: [udp({ host, port: udpPort }), kademlia({ bootstrap }), tcp({ host })] });
    const bob = stack(bobIdentity, 0, []);
    await bob.start();
    const bobUdp = bob.localAddress();
    const alice = stack(Identity.generate(), 0, [bobUdp]);
    cleanups.push(() => alice.stop());
    await alice.start();
    expect(await waitFor(() => alice.getPeer(bob.id) !== undefined, 5_000)).toBe(true);
    const oldTcpPort = alice.getPeer(bob.id)!.tcpPort;
    expect(oldTcpPort).toBe(bob.localTcpPort());
    await bob.stop();

    // Same identity and UDP port, a new TCP port, no bootstrap: nobody hears from it.
    const bobAgain = stack(bobIdentity, bobUdp.port, []);
    cleanups.push(() => bobAgain.stop());
    await bobAgain.start();
    expect(bobAgain.localTcpPort()).not.toBe(oldTcpPort);
    expect(alice.getPeer(bob.id)!.tcpPort).toBe(oldTcpPort);
    const got: string[] = [];
    bobAgain.handle('message', (data) => void got.push(Buffer.from(data).toString()));

    await alice.sendMessage(bob.id, Buffer.from('still there?'));
    expect(await waitFor(() => got.length === 1, 5_000)).toBe(true);
    expect(got).toEqual(['still there?']);
    expect(alice.counters()['tcp']!['redial-fresh-record']).toBe(1);
    expect(alice.counters()['kademlia']!['fresh-confirmations']).toBe(1);
    expect(alice.getPeer(bob.id)!.tcpPort).toBe(bobAgain.localTcpPort());
  });
});
