import { describe, expect, it } from 'vitest';
import { createNode, Identity, InvalidArgumentError, type NodeId } from '@deccom/core';
import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
import { kademlia } from '@deccom/kademlia';
import { keepalive } from '../src/index.js';

describe('keepalive', () => {
  it('reports a silent peer after maxFailures pings, and kademlia drops it', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 20 } });
    const make = (name: string, bootstrap: { host: string; port: number }[] = []) =>
      createNode({
        clock,
        identity: Identity.fromString(name),
        layers: [memoryTransport(network), keepalive({ intervalMs: 1000, pingTimeoutMs: 200, maxFailures: 2 }), kademlia({ bootstrap })],
      });
    const a = make('a');
    await a.start();
    const b = make('b', [a.localAddress()]);
    await b.start();
    await clock.advance(2000);
    expect(a.getPeers().map((p) => p.identity.toString())).toEqual(['b']);
    const gone: string[] = [];
    a.on('peer-disconnect', (peer) => void gone.push(peer.identity.toString()));
    // While b lives, pings succeed and nothing is reported.
    await clock.advance(10_000);
    expect(gone).toEqual([]);
    expect(a.counters()['keepalive']!['pings']).toBeGreaterThan(3);
    await b.stop();
    const stoppedAt = clock.now();
    await clock.runUntil(() => gone.length > 0, { maxMs: 10_000, stepMs: 50 });
    expect(gone).toEqual(['b']);
    // About one interval of silence plus two failed pings at quarter-interval checks.
    expect(clock.now() - stoppedAt).toBeLessThanOrEqual(3 * 1000);
    expect(a.getPeers()).toEqual([]);
    expect(a.counters()['kademlia']!['evicted.keepalive']).toBe(1);
    await a.stop();
  });

  it('counts any traffic from a tracked address as life: no pings while traffic flows', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 5 } });
    const watcher = createNode({ clock, identity: Identity.fromString('w'), layers: [memoryTransport(network), keepalive({ intervalMs: 1000 })] });
    const talker = createNode({ clock, identity: Identity.fromString('t'), layers: [memoryTransport(network)] });
    await watcher.start();
    await talker.start();
    watcher.handle('datagram', () => {});
    watcher.trackPeer(talker.id, talker.localAddress());
    for (let i = 0; i < 20; i++) {
      talker.sendDatagram(watcher.localAddress(), Uint8Array.of(i));
      await clock.advance(250);
    }
    expect(watcher.counters()['keepalive']!['pings'] ?? 0).toBe(0);
    // Silence: pings start.
    await clock.advance(3000);
    expect(watcher.counters()['keepalive']!['pings']).toBeGreaterThan(0);
    watcher.untrackPeer(talker.id);
    expect(watcher.describe().layers[1]!.status).toMatchObject({ tracked: 0 });
    await watcher.stop();
    await talker.stop();
  });

  it('bounds what it tracks and rejects nonsense options', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const node = createNode({ clock, layers: [memoryTransport(network), keepalive({ maxTracked: 2 })] });
    await node.start();
    for (const name of ['a', 'b', 'c']) node.trackPeer(Identity.fromString(name).id, { host: '10.9.9.9', port: 1 });
    expect(node.counters()['keepalive']).toMatchObject({ tracked: 2, 'dropped.tracked-full': 1 });
    await node.stop();
    expect(() => keepalive({ intervalMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => keepalive({ maxFailures: 0 })).toThrow(/maxFailures/);
    expect(() => keepalive({ maxTracked: 0 })).toThrow(/maxTracked/);
    expect(() => keepalive({ maxConcurrentPings: 1.5 })).toThrow(/maxConcurrentPings/);
    expect(() => keepalive({ pingTimeoutMs: 0 })).toThrow(/pingTimeoutMs/);
    const idle = createNode({ clock, layers: [memoryTransport(network), keepalive()] });
    expect(() => idle.trackPeer('x' as unknown as NodeId, { host: '10.0.0.1', port: 1 })).toThrow(InvalidArgumentError);
  });

  it('pings at most maxConcurrentPings at once, and keeps tracking across a restart', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 5 } });
    const node = createNode({ clock, layers: [memoryTransport(network), keepalive({ intervalMs: 1000, pingTimeoutMs: 400, maxFailures: 2, maxConcurrentPings: 3 })] });
    await node.start();
    const reported: string[] = [];
    node.on('peer-unresponsive', (id) => void reported.push(id.hex));
    // Ten silent peers (nothing bound at their addresses).
    const ids = Array.from({ length: 10 }, (_, i) => Identity.fromString(`silent-${i}`).id);
    ids.forEach((id, i) => node.trackPeer(id, { host: '10.77.0.1', port: 1000 + i }));
    let most = 0;
    for (let t = 0; t < 40; t++) {
      await clock.advance(50);
      most = Math.max(most, (node.describe().layers[1]!.status as { pingsInFlight: number }).pingsInFlight);
    }
    expect(most).toBe(3);
    // Stopped with some peers still tracked: they are tracked again after the restart, not reported at once.
    const left = (node.describe().layers[1]!.status as { tracked: number }).tracked;
    expect(left).toBeGreaterThan(0);
    await node.stop();
    await clock.advance(10_000);
    await node.start();
    expect((node.describe().layers[1]!.status as { tracked: number }).tracked).toBe(left);
    const reportedBefore = reported.length;
    await clock.advance(900);
    expect(reported.length).toBe(reportedBefore);
    await clock.runUntil(() => reported.length === 10, { maxMs: 30_000, stepMs: 100 });
    expect(new Set(reported)).toEqual(new Set(ids.map((id) => id.hex)));
    await node.stop();
    await clock.advance(1000);
    expect(clock.pendingTimers).toBe(0);
  });
});
