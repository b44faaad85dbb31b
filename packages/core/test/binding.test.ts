import { describe, expect, it } from 'vitest';
import {
  CompositionError,
  createNode,
  defineLayer,
  Identity,
  PROTOCOL,
  type Address,
  type PeerRecord,
  createPeerRecord,
  InvalidArgumentError,
} from '../src/index.js';
import { fakeTransport } from './helpers.js';

const peerAt = (name: string, port: number): PeerRecord => createPeerRecord(Identity.fromString(name).public, { host: '127.0.0.1', port });

/** A discovery stand-in: provides getPeer/findPeer, offers approve + peer events, passes datagrams through. */
function fakeDiscovery(options: { name?: string } = {}) {
  const peers = new Map<string, PeerRecord>();
  return defineLayer({
    type: 'fake-discovery',
    name: options.name,
    needs: ['sendDatagram', 'sendPing'],
    optional: ['heardFrom'],
    takes: ['datagram'],
    provides: ['getPeer', 'findPeer', 'getPeers', 'addPeer'],
    offers: { approve: 'exclusive', 'peer-connect': 'event', 'peer-disconnect': 'event', datagram: 'exclusive' },
    create: (ctx) => ({
      provides: {
        getPeer: (id) => peers.get(id.hex),
        getPeers: () => [...peers.values()],
        findPeer: async (id) => {
          const peer = peers.get(id.hex);
          if (!peer) throw new Error('not found');
          return peer;
        },
        addPeer: (peer) => {
          void (async () => {
            const approve = ctx.slots.approve;
            if (approve && !(await approve(peer))) {
              ctx.counters.add('rejected');
              return;
            }
            peers.set(peer.id.hex, peer);
            ctx.below.heardFrom?.(peer.address, peer);
            ctx.emit('peer-connect', peer);
          })();
        },
      },
      takes: {
        datagram: (data: Uint8Array, from: Address) => ctx.slots.datagram?.(data, from),
      },
    }),
  });
}

describe('composition', () => {
  it('wires calls to the nearest provider and exposes lower capabilities at the top', async () => {
    const t = fakeTransport();
    const node = createNode({ identity: Identity.fromString('a'), layers: [t.layer, fakeDiscovery()] });
    await node.start();
    node.sendDatagram({ host: '127.0.0.1', port: 9 }, Uint8Array.of(1, 2));
    expect(t.sent).toHaveLength(1);
    const peer = peerAt('b', 5);
    node.addPeer(peer);
    await Promise.resolve();
    await Promise.resolve();
    expect(node.getPeer(peer.id)).toBe(peer);
    expect(await node.findPeer(peer.id)).toBe(peer);
    await node.stop();
  });

  it('resolves a named binding to that layer instead of the nearest', async () => {
    const lower = fakeTransport({ name: 'lower', port: 1 });
    const upper = fakeTransport({ name: 'upper', port: 2 });
    const seen: number[] = [];
    const probe = defineLayer({
      type: 'probe',
      needs: ['localAddress'],
      bind: { localAddress: 'lower' },
      create: (ctx) => ({ start: () => void seen.push(ctx.below.localAddress().port) }),
    });
    const nearest = defineLayer({
      type: 'nearest',
      needs: ['localAddress'],
      create: (ctx) => ({ start: () => void seen.push(ctx.below.localAddress().port) }),
    });
    const node = createNode({ layers: [lower.layer, upper.layer, probe, nearest] });
    await node.start();
    expect(seen).toEqual([1, 2]);
    expect(node.describe().bindings).toContainEqual(expect.objectContaining({ from: 'probe', to: 'lower', name: 'localAddress', named: true }));
    await node.stop();
  });

  it('names the layer, the capability and what the layers below offer when a capability is missing', () => {
    const needsPeer = defineLayer({ type: 'needs-peer', needs: ['getPeer'], create: () => ({}) });
    const t = fakeTransport();
    let error: unknown;
    try {
      // @ts-expect-error getPeer is provided by no layer below: rejected at compile time too
      createNode({ layers: [t.layer, needsPeer] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CompositionError);
    expect((error as CompositionError).code).toBe('MISSING_CAPABILITY');
    expect((error as Error).message).toMatch(/layer 'needs-peer' needs 'getPeer'/);
    expect((error as Error).message).toMatch(/'fake-transport' provides \[sendDatagram, localAddress, maxDatagramSize, sendPing\]/);
  });

  it('rejects a named binding to a layer that does not exist or does not provide it', () => {
    const t = fakeTransport();
    const bad = defineLayer({ type: 'bad', needs: ['sendPing'], bind: { sendPing: 'nope' }, create: () => ({}) });
    expect(() => createNode({ layers: [t.layer, bad] })).toThrow(/no layer below it has that name/);
  });

  it('refuses an exclusive hook taken twice, naming both takers', () => {
    const t = fakeTransport();
    const taker = (name: string) => defineLayer({ type: 'taker', name, takes: ['datagram'], create: () => ({ takes: { datagram: () => {} } }) });
    let error: unknown;
    try {
      createNode({ layers: [t.layer, taker('first'), taker('second')] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CompositionError);
    expect((error as CompositionError).code).toBe('HOOK_TAKEN');
    expect((error as Error).message).toMatch(/'datagram' of layer 'fake-transport' is exclusive and already taken by 'first'; 'second' cannot take it/);
  });

  it('lets many layers and the application observe an event hook', async () => {
    const t = fakeTransport();
    const seen: string[] = [];
    const observer = (name: string) =>
      defineLayer({
        type: 'observer',
        name,
        takes: ['peer-connect'],
        create: () => ({ takes: { 'peer-connect': (peer: PeerRecord) => void seen.push(`${name}:${peer.identity.toString()}`) } }),
      });
    const node = createNode({ layers: [t.layer, fakeDiscovery(), observer('o1'), observer('o2')] });
    node.on('peer-connect', (peer) => seen.push(`app:${peer.identity.toString()}`));
    await node.start();
    node.addPeer(peerAt('carol', 7));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['o1:carol', 'o2:carol', 'app:carol']);
    await node.stop();
  });

  it('gives the approval slot to one security layer, which decides who joins', async () => {
    const t = fakeTransport();
    const security = defineLayer({
      type: 'security',
      takes: ['approve'],
      create: () => ({ takes: { approve: async (peer: PeerRecord) => peer.identity.toString() !== 'mallory' } }),
    });
    const node = createNode({ layers: [t.layer, fakeDiscovery(), security] });
    await node.start();
    node.addPeer(peerAt('mallory', 1));
    node.addPeer(peerAt('alice', 2));
    await new Promise((r) => setImmediate(r));
    expect(node.getPeers().map((p) => p.identity.toString())).toEqual(['alice']);
    expect(node.counters()['fake-discovery']).toMatchObject({ rejected: 1 });
    expect(() => node.handle('approve', () => true)).toThrow(/already taken by 'security'/);
    await node.stop();
  });

  it('calls an optional capability only when a layer below provides it (heard_from)', async () => {
    const heard: string[] = [];
    const puncher = defineLayer({
      type: 'puncher',
      needs: ['sendDatagram'],
      takes: ['datagram'],
      provides: ['heardFrom', 'sendDatagram'],
      offers: { datagram: 'exclusive' },
      create: (ctx) => ({
        provides: {
          heardFrom: (address: Address, introducer: PeerRecord) => void heard.push(`${introducer.identity.toString()}@${address.port}`),
          sendDatagram: (to: Address, data: Uint8Array) => ctx.below.sendDatagram(to, data),
        },
        takes: { datagram: (data: Uint8Array, from: Address) => ctx.slots.datagram?.(data, from) },
      }),
    });
    const withPuncher = createNode({ layers: [fakeTransport().layer, puncher, fakeDiscovery()] });
    const without = createNode({ layers: [fakeTransport().layer, fakeDiscovery()] });
    await withPuncher.start();
    await without.start();
    withPuncher.addPeer(peerAt('dave', 9));
    without.addPeer(peerAt('dave', 9));
    await new Promise((r) => setImmediate(r));
    expect(heard).toEqual(['dave@9']);
    expect(without.describe().bindings).toContainEqual(expect.objectContaining({ from: 'fake-discovery', name: 'heardFrom', to: undefined, optional: true }));
    await withPuncher.stop();
    await without.stop();
  });

  it('delivers datagrams through a pass-through layer to the application', async () => {
    const t = fakeTransport();
    const node = createNode({ layers: [t.layer, fakeDiscovery()] });
    const got: number[][] = [];
    node.handle('datagram', (data) => void got.push([...data]));
    await node.start();
    t.deliver(Uint8Array.of(7, 8), { host: '127.0.0.1', port: 1 });
    expect(got).toEqual([[7, 8]]);
    await node.stop();
  });

  it('counts and contains an exception thrown by a hook handler', async () => {
    const t = fakeTransport();
    const node = createNode({ layers: [t.layer] });
    node.handle('datagram', () => {
      throw new Error('application bug');
    });
    await node.start();
    expect(() => t.deliver(Uint8Array.of(1), { host: '127.0.0.1', port: 1 })).not.toThrow();
    expect(node.counters()['application']).toMatchObject({ 'handler-errors': 1 });
    await node.stop();
  });

  it('describes itself as data and as a Mermaid diagram', () => {
    const node = createNode({ layers: [fakeTransport().layer, fakeDiscovery()] });
    const description = node.describe();
    expect(description.layers.map((l) => l.name)).toEqual(['fake-transport', 'fake-discovery']);
    expect(description.bindings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ from: 'fake-discovery', to: 'fake-transport', kind: 'call', name: 'sendDatagram' }),
        expect.objectContaining({ from: 'fake-discovery', to: 'fake-transport', kind: 'hook', name: 'datagram' }),
      ]),
    );
    const mermaid = node.mermaid();
    expect(mermaid.split('\n')[0]).toBe('flowchart BT');
    expect(mermaid).toContain('L1 -- "sendDatagram, sendPing" --> L0');
    expect(mermaid).toContain('L0 -. "datagram" .-> L1');
    expect(mermaid).toContain("%% optional 'heardFrom' of fake-discovery is not served");
  });

  it('rejects duplicate layer names, empty stacks and non-layers with typed errors', () => {
    const t = fakeTransport();
    expect(() => createNode({ layers: [t.layer, t.layer] })).toThrow(/two layers are named 'fake-transport'/);
    expect(() => createNode({ layers: [] })).toThrow(CompositionError);
    // @ts-expect-error not a layer
    expect(() => createNode({ layers: [{}] })).toThrow(InvalidArgumentError);
  });

  it('checks that a layer returns what it declares', () => {
    const liar = defineLayer({ type: 'liar', provides: ['sendPing'], create: () => ({ provides: {} as never }) });
    expect(() => createNode({ layers: [liar] })).toThrow(/declares it provides 'sendPing'/);
  });

  it('uses registered protocol ids', () => {
    expect(new Set(Object.values(PROTOCOL)).size).toBe(Object.values(PROTOCOL).length);
  });
});

describe('lifecycle', () => {
  function recorder(log: string[], name: string, options: { failStart?: boolean } = {}) {
    return defineLayer({
      type: 'recorder',
      name,
      create: (ctx) => ({
        start: async () => {
          log.push(`start ${name}`);
          ctx.clock.setTimeout(() => log.push(`timer ${name}`), 60_000);
          ctx.clock.setInterval(() => log.push(`tick ${name}`), 10);
          if (options.failStart) throw new Error(`${name} failed`);
        },
        stop: async () => void log.push(`stop ${name}`),
        status: () => ({ timers: ctx.clock.pending, aborted: ctx.signal.aborted }),
      }),
    });
  }

  it('calls started() bottom-up only once every layer has started, and not on a failed start', async () => {
    const log: string[] = [];
    const announcing = (name: string) =>
      defineLayer({
        type: 'announcing',
        name,
        create: () => ({ start: () => void log.push(`start ${name}`), started: () => void log.push(`started ${name}`) }),
      });
    const node = createNode({ layers: [announcing('a'), announcing('b'), announcing('c')] });
    await node.start();
    await node.start();
    expect(log).toEqual(['start a', 'start b', 'start c', 'started a', 'started b', 'started c']);
    await node.stop();

    const failing: string[] = [];
    const broken = createNode({
      layers: [
        defineLayer({ type: 'x', name: 'x', create: () => ({ started: () => void failing.push('started x') }) }),
        recorder(failing, 'y', { failStart: true }),
      ],
    });
    await expect(broken.start()).rejects.toThrow('y failed');
    expect(failing).not.toContain('started x');
  });

  it('starts bottom-up and stops top-down, idempotently, clearing timers', async () => {
    const log: string[] = [];
    const node = createNode({ layers: [recorder(log, 'a'), recorder(log, 'b'), recorder(log, 'c')] });
    await Promise.all([node.start(), node.start()]);
    await node.start();
    expect(node.state).toBe('started');
    expect(node.describe().layers[0]!.status).toEqual({ timers: 2, aborted: false });
    await Promise.all([node.stop(), node.stop()]);
    await node.stop();
    expect(log).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
    expect(node.describe().layers.map((l) => l.status)).toEqual([
      { timers: 0, aborted: true },
      { timers: 0, aborted: true },
      { timers: 0, aborted: true },
    ]);
  });

  it('rolls back the layers already started, and the failing one, when a layer fails to start', async () => {
    const log: string[] = [];
    const node = createNode({ layers: [recorder(log, 'a'), recorder(log, 'b', { failStart: true }), recorder(log, 'c')] });
    await expect(node.start()).rejects.toThrow('b failed');
    expect(log).toEqual(['start a', 'start b', 'stop b', 'stop a']);
    expect(node.state).toBe('stopped');
    expect(node.describe().layers[1]!.status).toEqual({ timers: 0, aborted: true });
  });

  it('restarts after a stop', async () => {
    const log: string[] = [];
    const node = createNode({ layers: [recorder(log, 'a')] });
    await node.start();
    await node.stop();
    await node.start();
    expect(node.state).toBe('started');
    expect(node.describe().layers[0]!.status).toEqual({ timers: 2, aborted: false });
    await node.stop();
    expect(log).toEqual(['start a', 'stop a', 'start a', 'stop a']);
  });
});
