import { describe, expect, it } from 'vitest';
import { createNode, Identity, InvalidArgumentError } from '@deccom/core';
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
  });
});
