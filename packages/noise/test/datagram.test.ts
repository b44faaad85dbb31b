/**
 * The noise() datagram layer on the in-memory network with a virtual clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, Identity, InvalidArgumentError, NodeId, type Address } from '@deccom/core';
import { memoryTransport } from '@deccom/core/testing';
import { HandshakeState, MESSAGE, NoiseError, decodeHandshakeReply, decodeInitiation, encodeHandshakeReply, encodeInitiation, encodeIdentityProof, noise, staticKeySigningInput, defaultNoiseCrypto, type NoiseOptions } from '../src/index.js';
import { fakeDiscovery, makeNetwork, makeNoiseNode, tapLayer, text } from './harness.js';
import { sleep } from './helpers.js';

type NoiseNode = ReturnType<typeof makeNoiseNode>;
const nodes: NoiseNode['node'][] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.stop();
});

async function pair(options: Parameters<typeof makeNoiseNode>[1] = {}, net = makeNetwork()) {
  const a = makeNoiseNode(net, options);
  const b = makeNoiseNode(net, options);
  nodes.push(a.node, b.node);
  await a.node.start();
  await b.node.start();
  return { ...net, a, b };
}

const isControl = (data: Uint8Array, type: number): boolean => data[0] === 1 && data[1] === 0x07 && data[3] === type;
const dropped = (n: NoiseNode, reason: string): number => n.node.counters()['noise']?.[`dropped.${reason}`] ?? 0;
const counter = (n: NoiseNode, name: string): number => n.node.counters()['noise']?.[name] ?? 0;

describe('noise() over datagrams', () => {
  it('queues messages during the handshake, then delivers them encrypted; both sides agree on identities and hash', async () => {
    const { clock, a, b } = await pair();
    a.tap.record = true;
    const secret = 'attack at dawn';
    a.node.sendDatagram(b.node.localAddress(), text(secret));
    a.node.sendDatagram(b.node.localAddress(), text('second'));
    expect(await clock.runUntil(() => b.delivered.length === 2, { maxMs: 5_000 })).toBe(true);
    expect(b.delivered.map((d) => d.data)).toEqual([secret, 'second']);
    const sa = a.node.secureSession(b.node.localAddress())!;
    const sb = b.node.secureSession(a.node.localAddress())!;
    expect(sa.remoteId.equals(b.node.id)).toBe(true);
    expect(sb.remoteId.equals(a.node.id)).toBe(true);
    expect(Buffer.from(sa.handshakeHash).equals(Buffer.from(sb.handshakeHash))).toBe(true);
    expect(sa.initiator).toBe(true);
    expect(sb.initiator).toBe(false);
    // The secret never appears on the wire.
    const wire = Buffer.concat(a.tap.sent.map((s) => Buffer.from(s.data)));
    expect(wire.includes(Buffer.from(secret))).toBe(false);
    // Replies need no new handshake.
    b.node.sendDatagram(a.node.localAddress(), text('reply'));
    expect(await clock.runUntil(() => a.delivered.length === 1, { maxMs: 1_000 })).toBe(true);
    expect(counter(a, 'handshakes-completed')).toBe(1);
    expect(counter(b, 'handshakes-completed')).toBe(1);
    expect(a.node.maxDatagramSize()).toBe(1400 - 33);
    expect(() => a.node.sendDatagram(b.node.localAddress(), new Uint8Array(1400))).toThrow(/maxDatagramSize/);
  });

  it('sign-only: the payload is readable on the wire but authenticated', async () => {
    const { clock, a, b } = await pair({ mode: 'sign-only' });
    a.tap.record = true;
    const connected = a.node.secureConnect(b.node.localAddress());
    await clock.runUntil(() => a.node.secureSession(b.node.localAddress()) !== undefined, { maxMs: 5_000 });
    await connected;
    a.node.sendDatagram(b.node.localAddress(), text('visible but signed'));
    await clock.runUntil(() => b.delivered.length === 1, { maxMs: 1_000 });
    expect(b.delivered[0]!.data).toBe('visible but signed');
    const transport = a.tap.sent.find((s) => isControl(s.data, MESSAGE.transport) && Buffer.from(s.data).includes(Buffer.from('visible')))!;
    expect(transport).toBeDefined();
    const forged = transport.data.slice();
    forged[15]! ^= 0x40; // a fresh counter, so the replay window does not catch it first
    forged[forged.length - 20]! ^= 0x20; // and a changed payload byte
    b.tap.inject(forged, a.node.localAddress());
    expect(b.delivered.length).toBe(1);
    expect(dropped(b, 'tampered')).toBe(1);
  });

  it('plaintext strict: nothing from an unapproved peer passes; after the handshake plain DATA does', async () => {
    const { clock, a, b } = await pair({ mode: 'plaintext' });
    b.tap.inject(Uint8Array.of(0x00, 0x41), a.node.localAddress());
    expect(b.delivered.length).toBe(0);
    expect(dropped(b, 'unapproved')).toBe(1);
    a.node.sendDatagram(b.node.localAddress(), text('plain'));
    expect(await clock.runUntil(() => b.delivered.length === 1, { maxMs: 5_000 })).toBe(true);
    expect(a.node.maxDatagramSize()).toBe(1399);
  });

  it('plaintext non-strict with string identities needs no handshake', async () => {
    const net = makeNetwork();
    const a = createNode({ identity: Identity.fromString('a'), clock: net.clock, layers: [memoryTransport(net.network), noise({ mode: 'plaintext', strict: false })] });
    const b = createNode({ identity: Identity.fromString('b'), clock: net.clock, layers: [memoryTransport(net.network), noise({ mode: 'plaintext', strict: false })] });
    nodes.push(a, b);
    await a.start();
    await b.start();
    const got: string[] = [];
    b.handle('datagram', (data) => got.push(new TextDecoder().decode(data)));
    a.sendDatagram(b.localAddress(), text('hi'));
    expect(await net.clock.runUntil(() => got.length === 1, { maxMs: 1_000 })).toBe(true);
    expect(() => createNode({ identity: Identity.fromString('c'), layers: [memoryTransport(net.network), noise()] })).toThrow(NoiseError);
  });

  it('different modes never agree (the mode is bound into the handshake)', async () => {
    const net = makeNetwork();
    const a = makeNoiseNode(net, { mode: 'encrypt', handshakeTimeoutMs: 2_000 });
    const b = makeNoiseNode(net, { mode: 'sign-only' });
    nodes.push(a.node, b.node);
    await a.node.start();
    await b.node.start();
    const result = a.node.secureConnect(b.node.localAddress()).catch((e: unknown) => e);
    await net.clock.advance(3_000);
    const error = await result;
    expect(error).toBeInstanceOf(NoiseError);
    expect((error as NoiseError).code).toBe('HANDSHAKE_TIMEOUT');
    expect(dropped(a, 'handshake-decrypt')).toBeGreaterThan(0);
  });

  it('a mismatched id fails the handshake with a typed error, a counter and an event', async () => {
    const { clock, a, b } = await pair();
    const events: NoiseError[] = [];
    a.node.on('noise-handshake-error', (_address, error) => events.push(error));
    const wrong = NodeId.ofString('somebody else');
    const result = a.node.secureConnect(b.node.localAddress(), { expectedId: wrong }).catch((e: unknown) => e);
    await clock.advance(1_000);
    const error = (await result) as NoiseError;
    expect(error).toBeInstanceOf(NoiseError);
    expect(error.code).toBe('IDENTITY_MISMATCH');
    expect(counter(a, 'handshakes-failed.identity-mismatch')).toBe(1);
    expect(events.map((e) => e.code)).toEqual(['IDENTITY_MISMATCH']);
    expect(a.node.secureSession(b.node.localAddress())).toBeUndefined();
    // The right id works.
    const ok = a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id });
    await clock.advance(1_000);
    expect((await ok).remoteId.equals(b.node.id)).toBe(true);
  });

  it('secureConnect refuses a timeoutMs no timer can wait with InvalidArgumentError, before any handshake', async () => {
    const { a, b } = await pair();
    for (const timeoutMs of [Number.NaN, -1, 2 ** 31]) {
      await expect(a.node.secureConnect(b.node.localAddress(), { timeoutMs })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(counter(a, 'handshakes-initiated')).toBe(0);
  });

  it('a forged identity (signature not over the static key it used) fails with BAD_IDENTITY_PROOF', async () => {
    const net = makeNetwork();
    const a = makeNoiseNode(net);
    nodes.push(a.node);
    await a.node.start();
    const victim = Identity.generate();
    const mallory = Identity.generate();
    const malloryAddress: Address = { host: '10.99.0.1', port: 7 };
    const crypto = defaultNoiseCrypto();
    const malloryStatic = crypto.dh('25519').generateKeyPair();
    // Mallory answers A's initiation claiming the victim's identity, with her own signature.
    a.tap.outgoing = (to, data) => {
      if (to.host !== malloryAddress.host || !isControl(data, MESSAGE.initiation)) return true;
      const initiation = decodeInitiation(data.subarray(4));
      const responder = new HandshakeState({
        protocol: 'Noise_XX_25519_ChaChaPoly_SHA256',
        initiator: false,
        prologue: text('deccom/noise/1/datagram/encrypt'),
        staticKeyPair: malloryStatic,
        crypto,
      });
      responder.readMessage(initiation.message);
      const forgedProof = encodeIdentityProof({ publicKey: victim.public.bytes, signature: mallory.sign(staticKeySigningInput(malloryStatic.publicKey)) });
      const reply = encodeHandshakeReply(MESSAGE.response, 12345, initiation.sender, responder.writeMessage(forgedProof));
      queueMicrotask(() => a.tap.inject(reply, malloryAddress));
      return false;
    };
    const result = a.node.secureConnect(malloryAddress).catch((e: unknown) => e);
    await net.clock.advance(100);
    const error = (await result) as NoiseError;
    expect(error.code).toBe('BAD_IDENTITY_PROOF');
    expect(counter(a, 'handshakes-failed.bad-identity')).toBe(1);
    expect(decodeHandshakeReply).toBeTypeOf('function');
  });

  it('rejects and counts tampered, truncated, replayed, too-old and cross-session messages, delivering none of them', async () => {
    const net = makeNetwork();
    const a = makeNoiseNode(net);
    const b = makeNoiseNode(net);
    const c = makeNoiseNode(net);
    nodes.push(a.node, b.node, c.node);
    for (const n of [a, b, c]) await n.node.start();
    const bAddress = b.node.localAddress();
    a.node.sendDatagram(bAddress, text('hello'));
    await net.clock.runUntil(() => b.delivered.length === 1, { maxMs: 5_000 });
    c.node.sendDatagram(bAddress, text('from c'));
    await net.clock.runUntil(() => b.delivered.length === 2, { maxMs: 5_000 });

    // Hold back A's next message (counter 1) so it is never delivered.
    b.tap.record = true;
    let hold = true;
    b.tap.incoming = (_from, data) => !(hold && isControl(data, MESSAGE.transport));
    a.node.sendDatagram(bAddress, text('held'));
    await net.clock.advance(50);
    hold = false;
    const held = b.tap.received.find((r) => isControl(r.data, MESSAGE.transport))!.data;
    const delivered = b.delivered.length;
    const aAddress = a.node.localAddress();

    const tampered = held.slice();
    tampered[tampered.length - 1]! ^= 1;
    b.tap.inject(tampered, aAddress);
    b.tap.inject(held.subarray(0, 20), aAddress);
    b.tap.inject(held.subarray(0, 4 + 4 + 5), aAddress);
    b.tap.inject(held, c.node.localAddress());
    expect(b.delivered.length).toBe(delivered);
    expect(dropped(b, 'tampered')).toBe(1);
    expect(dropped(b, 'truncated')).toBe(2);
    expect(dropped(b, 'cross-session')).toBe(1);

    // Reordered within the window: accepted once, then a replay.
    b.tap.inject(held, aAddress);
    expect(b.delivered.length).toBe(delivered + 1);
    expect(b.delivered.at(-1)!.data).toBe('held');
    b.tap.inject(held, aAddress);
    expect(dropped(b, 'replayed')).toBe(1);

    // One more held back, then 4,100 newer ones: it falls out of the window.
    hold = true;
    b.tap.received.length = 0;
    a.node.sendDatagram(bAddress, text('late'));
    await net.clock.advance(50);
    hold = false;
    const late = b.tap.received.find((r) => isControl(r.data, MESSAGE.transport))!.data;
    b.tap.record = false;
    for (let i = 0; i < 4_100; i++) a.node.sendDatagram(bAddress, text(`n${i}`));
    await net.clock.advance(50);
    const before = b.delivered.length;
    expect(before).toBe(delivered + 1 + 4_100);
    b.tap.inject(late, aAddress);
    expect(b.delivered.length).toBe(before);
    expect(dropped(b, 'too-old')).toBe(1);
    expect(b.delivered.some((d) => d.data === 'late')).toBe(false);
  });

  it('a message of an ended session is refused: after a restart the peer handshakes again', async () => {
    const net = makeNetwork();
    const a = makeNoiseNode(net);
    const b = makeNoiseNode(net);
    nodes.push(a.node, b.node);
    await a.node.start();
    await b.node.start();
    a.tap.record = true;
    a.node.sendDatagram(b.node.localAddress(), text('one'));
    await net.clock.runUntil(() => b.delivered.length === 1, { maxMs: 5_000 });
    const old = a.tap.sent.filter((s) => isControl(s.data, MESSAGE.transport)).at(-1)!.data;
    // B restarts: new static key and no sessions. A does not know yet (the CLOSE is lost).
    b.tap.outgoing = () => false;
    await b.node.stop();
    b.tap.outgoing = undefined;
    await b.node.start();
    expect(counter(b, 'sessions')).toBe(0);
    b.tap.inject(old, a.node.localAddress());
    expect(dropped(b, 'unknown-session')).toBe(1);
    // A keeps sending on its stale session; B's hint makes A handshake again.
    await net.clock.advance(1_500);
    a.node.sendDatagram(b.node.localAddress(), text('lost'));
    await net.clock.advance(500);
    a.node.sendDatagram(b.node.localAddress(), text('two'));
    expect(await net.clock.runUntil(() => b.delivered.some((d) => d.data === 'two'), { maxMs: 5_000 })).toBe(true);
    expect(counter(a, 'rehandshakes')).toBeGreaterThanOrEqual(1);
  });

  it('handshakes survive 20% loss in both directions (20 pairs)', async () => {
    const net = makeNetwork({ loss: 0.2, latencyMs: 20 });
    const pairs: [NoiseNode, NoiseNode][] = [];
    for (let i = 0; i < 20; i++) {
      const a = makeNoiseNode(net);
      const b = makeNoiseNode(net);
      nodes.push(a.node, b.node);
      await a.node.start();
      await b.node.start();
      pairs.push([a, b]);
    }
    const results = pairs.map(([a, b]) => a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id }));
    await net.clock.advance(10_000);
    const settled = await Promise.allSettled(results);
    expect(settled.filter((r) => r.status === 'fulfilled').length).toBe(20);
    // And the responders have the sessions too (the final message was resent until confirmed).
    await net.clock.advance(5_000);
    for (const [a, b] of pairs) expect(b.node.secureSession(a.node.localAddress())?.remoteId.equals(a.node.id)).toBe(true);
    const retransmits = pairs.reduce((sum, [a]) => sum + counter(a, 'retransmits'), 0);
    expect(retransmits).toBeGreaterThan(0);
  });

  it('two strict nodes dialling each other at the same moment both end connected, with one session', async () => {
    for (let round = 0; round < 5; round++) {
      const { clock, a, b } = await pair();
      const ab = a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id });
      const ba = b.node.secureConnect(a.node.localAddress(), { expectedId: a.node.id });
      await clock.advance(1_000);
      const [sa, sb] = await Promise.all([ab, ba]);
      expect(Buffer.from(sa.handshakeHash).equals(Buffer.from(sb.handshakeHash))).toBe(true);
      expect(sa.initiator).not.toBe(sb.initiator);
      expect(counter(a, 'handshakes-completed')).toBe(1);
      expect(counter(b, 'handshakes-completed')).toBe(1);
      await a.node.stop();
      await b.node.stop();
    }
  });

  /**
   * A connected pair on the simulated network. The initiator verifies inline, the
   * responder on the thread pool, so the final message and what follows it reach the
   * responder (in one virtual instant) before its check ends.
   */
  async function connectedVerifyingPair(options: NoiseOptions) {
    const net = makeNetwork();
    const a = makeNoiseNode(net, options);
    const b = makeNoiseNode(net, { ...options, verifyOnThreadPool: true });
    nodes.push(a.node, b.node);
    await a.node.start();
    await b.node.start();
    const connected = a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id });
    expect(await net.clock.runUntil(() => a.node.secureSession(b.node.localAddress()) !== undefined, { maxMs: 1_000 })).toBe(true);
    await connected;
    return { net, a, b };
  }

  for (const mode of ['encrypt', 'plaintext'] as const) {
    it(`${mode}: a burst four times what the responder holds before it verified all arrives, paced by the initiator until confirmed`, async () => {
      const { net, a, b } = await connectedVerifyingPair({ mode });
      const BURST = 1_024;
      for (let i = 0; i < BURST; i++) a.node.sendDatagram(b.node.localAddress(), text(`m${i}`));
      for (let round = 0; round < 500 && b.delivered.length < BURST; round++) {
        await sleep(2);
        await net.clock.advance(5);
      }
      expect(b.delivered.length, JSON.stringify(b.node.counters()['noise'])).toBe(BURST);
      expect(b.delivered.map((d) => d.data)).toEqual(Array.from({ length: BURST }, (_, i) => `m${i}`));
      expect(dropped(b, 'early-overflow')).toBe(0);
      expect(counter(a, 'held-until-confirmed')).toBe(BURST - 128);
      expect(counter(a, 'dropped')).toBe(0);
    });
  }

  it('a burst across rekeys while the responder verifies on the thread pool loses nothing', async () => {
    const { net, a, b } = await connectedVerifyingPair({ rekeyAfterMessages: 50 });
    // Bursts of 100 with a little real and virtual time between them, so that sessions
    // get confirmed, and new handshakes start (every 50 messages), mid-stream.
    const BURST = 1_000;
    for (let i = 0; i < BURST; i++) {
      a.node.sendDatagram(b.node.localAddress(), text(`m${i}`));
      if (i % 100 === 99) {
        await sleep(1);
        await net.clock.advance(7);
      }
    }
    const settled = () => b.delivered.length >= BURST && counter(b, 'handshakes-completed') === counter(a, 'handshakes-completed');
    for (let round = 0; round < 500 && !settled(); round++) {
      await sleep(2);
      await net.clock.advance(5);
    }
    expect(new Set(b.delivered.map((d) => d.data)).size, JSON.stringify({ a: a.node.counters()['noise'], b: b.node.counters()['noise'] })).toBe(BURST);
    expect(counter(a, 'rekeys')).toBeGreaterThanOrEqual(2);
    expect(counter(b, 'handshakes-completed')).toBe(counter(a, 'handshakes-completed'));
    expect(counter(a, 'dropped') + counter(b, 'dropped')).toBe(0);
  });

  it('a new initiation while the responder verifies the final message waits for the check, not let to end the handshake (and the data it holds)', async () => {
    const net = makeNetwork();
    const a = makeNoiseNode(net);
    const b = makeNoiseNode(net, { verifyOnThreadPool: true });
    nodes.push(a.node, b.node);
    await a.node.start();
    await b.node.start();
    // Hold back the initiator's final message at the responder, to release it at a chosen moment.
    let final: Uint8Array | undefined;
    b.tap.incoming = (_from, data) => {
      if (!isControl(data, MESSAGE.final)) return true;
      final ??= data.slice();
      return false;
    };
    const connected = a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id });
    expect(await net.clock.runUntil(() => final !== undefined, { maxMs: 1_000 })).toBe(true);
    await connected;
    a.node.sendDatagram(b.node.localAddress(), text('early'));
    await net.clock.advance(10);
    b.tap.incoming = undefined;
    // The final message, then at once (no thread-pool job can finish in between) another
    // initiation from the same address.
    const crypto = defaultNoiseCrypto();
    const other = new HandshakeState({ protocol: 'Noise_XX_25519_ChaChaPoly_SHA256', initiator: true, prologue: text('deccom/noise/1/datagram/encrypt'), staticKeyPair: crypto.dh('25519').generateKeyPair(), crypto });
    b.tap.inject(final!, a.node.localAddress());
    b.tap.inject(encodeInitiation(4242, undefined, other.writeMessage(new Uint8Array(0))), a.node.localAddress());
    expect(counter(b, 'initiations-deferred')).toBe(1);
    const answered = counter(b, 'handshakes-answered');
    for (let round = 0; round < 500 && b.delivered.length === 0; round++) {
      await sleep(2);
      await net.clock.advance(5);
    }
    expect(b.delivered.map((d) => d.data)).toEqual(['early']);
    expect(counter(b, 'handshakes-completed')).toBe(1);
    expect(dropped(b, 'early-abandoned')).toBe(0);
    // Then the held initiation is answered (no resend needed), as a new handshake.
    expect(counter(b, 'handshakes-answered')).toBe(answered + 1);
  });

  it('early datagrams of a handshake that never completes are counted as abandoned when it expires', async () => {
    const { clock, a, b } = await pair({ handshakeTimeoutMs: 2_000 });
    // The final message never reaches the responder.
    b.tap.incoming = (_from, data) => !isControl(data, MESSAGE.final);
    const connected = a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id });
    expect(await clock.runUntil(() => a.node.secureSession(b.node.localAddress()) !== undefined, { maxMs: 1_000 })).toBe(true);
    await connected;
    for (let i = 0; i < 3; i++) a.node.sendDatagram(b.node.localAddress(), text(`m${i}`));
    await clock.advance(100);
    expect(counter(b, 'buffered-early')).toBe(3);
    await clock.advance(5_000);
    expect(counter(b, 'half-open-expired')).toBe(1);
    expect(dropped(b, 'early-abandoned')).toBe(3);
    expect(b.delivered).toEqual([]);
  });

  it('without a confirmation the initiator holds at most 4,096 datagrams, drops the oldest beyond, and sends the rest at the handshake timeout', async () => {
    const { clock, a, b } = await pair({ handshakeTimeoutMs: 2_000 });
    const connected = a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id });
    expect(await clock.runUntil(() => a.node.secureSession(b.node.localAddress()) !== undefined, { maxMs: 1_000 })).toBe(true);
    await connected;
    // Nothing from the responder reaches the initiator from now on: no confirmation.
    b.tap.outgoing = () => false;
    const COUNT = 128 + 4_096 + 10;
    for (let i = 0; i < COUNT; i++) a.node.sendDatagram(b.node.localAddress(), text(`m${i}`));
    await clock.advance(100);
    expect(b.delivered.length).toBe(128);
    expect(dropped(a, 'unconfirmed-overflow')).toBe(10);
    expect(await clock.runUntil(() => b.delivered.length === 128 + 4_096, { maxMs: 5_000 })).toBe(true);
    // The ten oldest held ones were dropped: m128 .. m137.
    expect(b.delivered[128]!.data).toBe('m138');
    expect(b.delivered.at(-1)!.data).toBe(`m${COUNT - 1}`);
  });

  it('held datagrams of a session that closes unconfirmed are counted as abandoned', async () => {
    const { clock, a, b } = await pair();
    const connected = a.node.secureConnect(b.node.localAddress(), { expectedId: b.node.id });
    expect(await clock.runUntil(() => a.node.secureSession(b.node.localAddress()) !== undefined, { maxMs: 1_000 })).toBe(true);
    await connected;
    b.tap.outgoing = () => false;
    for (let i = 0; i < 200; i++) a.node.sendDatagram(b.node.localAddress(), text(`m${i}`));
    await a.node.secureDisconnect(b.node.localAddress());
    expect(dropped(a, 'unconfirmed-abandoned')).toBe(72);
    await clock.advance(100);
    expect(b.delivered.length).toBe(128);
  });

  it('rekeys after a message count without losing messages', async () => {
    const { clock, a, b } = await pair({ rekeyAfterMessages: 20 });
    a.node.sendDatagram(b.node.localAddress(), text('first'));
    await clock.runUntil(() => b.delivered.length === 1, { maxMs: 5_000 });
    const firstHash = Buffer.from(a.node.secureSession(b.node.localAddress())!.handshakeHash);
    for (let i = 0; i < 100; i++) {
      a.node.sendDatagram(b.node.localAddress(), text(`m${i}`));
      await clock.advance(3);
    }
    await clock.advance(200);
    expect(b.delivered.length).toBe(101);
    expect(counter(a, 'rekeys')).toBeGreaterThanOrEqual(2);
    expect(Buffer.from(a.node.secureSession(b.node.localAddress())!.handshakeHash).equals(firstHash)).toBe(false);
    expect(dropped(b, 'tampered') + dropped(b, 'unknown-session')).toBe(0);
  });

  it('sessions expire after rejectAfterMs and are replaced on the next send', async () => {
    const { clock, a, b } = await pair({ rejectAfterMs: 5_000, rekeyAfterMs: 4_000 });
    const closed: string[] = [];
    a.node.on('noise-session-close', (_session, reason) => closed.push(reason));
    a.node.sendDatagram(b.node.localAddress(), text('x'));
    await clock.runUntil(() => b.delivered.length === 1, { maxMs: 5_000 });
    await clock.advance(6_000);
    expect(a.node.secureSession(b.node.localAddress())).toBeUndefined();
    expect(closed).toContain('expired');
    a.node.sendDatagram(b.node.localAddress(), text('y'));
    expect(await clock.runUntil(() => b.delivered.length === 2, { maxMs: 5_000 })).toBe(true);
  });

  it('takes the discovery approve hook: a peer is approved only after a handshake with the right id', async () => {
    const net = makeNetwork();
    const discovery = fakeDiscovery();
    const identity = Identity.generate();
    const { layer: tap } = tapLayer();
    const a = createNode({ identity, clock: net.clock, layers: [memoryTransport(net.network), tap, discovery.layer, noise({ verifyOnThreadPool: false })] });
    const b = makeNoiseNode(net);
    nodes.push(a, b.node);
    await a.start();
    await b.node.start();
    expect(a.describe().layers.find((l) => l.name === 'noise')).toBeDefined();
    const good = discovery.approve(b.node.localPeer());
    const forged = { ...b.node.localPeer(), id: NodeId.ofString('not b') };
    await net.clock.advance(1_000);
    expect(await good).toBe(true);
    const bad = discovery.approve(forged);
    await net.clock.advance(1_000);
    expect(await bad).toBe(false);
    const silent = discovery.approve({ ...b.node.localPeer(), address: { host: '10.200.0.1', port: 1 } });
    await net.clock.advance(11_000);
    expect(await silent).toBe(false);
    expect(a.counters()['noise']?.['approvals-refused']).toBe(2);
  });

  it('stop closes sessions at the peer, rejects waiters and leaves no timer behind', async () => {
    const { clock, a, b } = await pair();
    const aAddress = a.node.localAddress();
    a.node.sendDatagram(b.node.localAddress(), text('x'));
    await clock.runUntil(() => b.delivered.length === 1, { maxMs: 5_000 });
    const waiting = a.node.secureConnect({ host: '10.250.0.1', port: 9 }).catch((e: unknown) => e);
    await a.node.stop();
    expect(((await waiting) as { code?: string }).code).toBe('STOPPED');
    await clock.advance(100);
    expect(b.node.secureSession(aAddress)).toBeUndefined();
    expect(counter(b, 'sessions-closed-by-peer')).toBe(1);
    await b.node.stop();
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('secureDisconnect', () => {
  it('ends the session on both sides; the next send handshakes again', async () => {
    const { clock, a, b } = await pair();
    a.node.sendDatagram(b.node.localAddress(), text('1'));
    await clock.runUntil(() => b.delivered.length === 1, { maxMs: 5_000 });
    a.node.secureDisconnect(b.node.localAddress());
    expect(a.node.secureSession(b.node.localAddress())).toBeUndefined();
    await clock.advance(50);
    expect(b.node.secureSession(a.node.localAddress())).toBeUndefined();
    a.node.sendDatagram(b.node.localAddress(), text('2'));
    expect(await clock.runUntil(() => b.delivered.length === 2, { maxMs: 5_000 })).toBe(true);
    expect(counter(a, 'handshakes-completed')).toBe(2);
  });
});
