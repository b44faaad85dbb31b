/**
 * Hole punching scenarios on the in-memory network (`@deccom/core/testing`), shared by
 * the tests and the `holepunch` benchmark suite: two nodes behind NATs of chosen types,
 * a public introducer that is also willing to relay, and the time from the first
 * datagram sent to its delivery.
 */
import { createNode, Identity, seededRandom, utf8Decode, utf8Encode, type Address } from '@deccom/core';
import { MemoryNetwork, memoryTransport, VirtualClock, type NatType as MemoryNatType } from '@deccom/core/testing';
import { holepunch, type ConnectOutcome, type HolepunchOptions } from './holepunch.js';

/** A side's NAT in a scenario: none, or one of the memory network's NAT types. */
export type NatChoice = 'none' | MemoryNatType;

export const NAT_CHOICES: readonly NatChoice[] = ['none', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric'];

export interface PairScenario {
  a: NatChoice;
  b: NatChoice;
  seed?: number;
  /** One-way latency of every link. Default 20 ms. */
  latencyMs?: number;
  /** Uniform extra latency per datagram in [0, jitterMs). Default 0. */
  jitterMs?: number;
  /** Probability each datagram is lost on the punch (setup traffic and the first datagram are not). Default 0. */
  loss?: number;
  /** Options of every node's hole punching layer. */
  options?: HolepunchOptions;
  /** Give up after this much virtual time. Default 30,000 ms. */
  maxMs?: number;
  /**
   * Public peers each side talks to before the punch, so that it can classify its own NAT
   * from their observations (and pick a strategy). Default 0: only the introducer.
   */
  observers?: number;
}

export interface PairResult {
  readonly scenario: PairScenario;
  /** A's outcome for its first datagram to B. */
  readonly outcome: ConnectOutcome | undefined;
  /** Virtual ms from A's first send to B receiving it (undefined: never arrived). */
  readonly firstByteMs: number | undefined;
  /** B answered and A received the answer. */
  readonly roundTrip: boolean;
  /** Every one of 20 datagrams each way arrived after the path opened. */
  readonly exchanged: boolean;
  readonly counters: Record<string, Record<string, Record<string, number>>>;
  /** Punches still under way on A and B at the end (0 unless something leaked). */
  readonly punchingAtEnd: number;
  /** Each side's own NAT classification when the punch started. */
  readonly natTypes: { readonly a: string; readonly b: string };
}

/** Runs one scenario to its end and stops every node. */
export async function runPair(scenario: PairScenario): Promise<PairResult> {
  const seed = scenario.seed ?? 1;
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: scenario.latencyMs ?? 20, jitterMs: scenario.jitterMs ?? 0 }, random: seededRandom(seed) });
  const natFor = (choice: NatChoice) => (choice === 'none' ? undefined : network.createNat({ type: choice }));
  const make = (name: string, choice: NatChoice | undefined) => {
    const nat = choice === undefined ? undefined : natFor(choice);
    return createNode({
      identity: Identity.fromString(name),
      clock,
      random: `${seed}-${name}`,
      layers: [memoryTransport(network, nat ? { nat } : {}), holepunch(scenario.options)],
    });
  };
  const relay = make('relay', 'none');
  const a = make('a', scenario.a);
  const b = make('b', scenario.b);
  const observers = Array.from({ length: scenario.observers ?? 0 }, (_, i) => make(`observer-${i}`, 'none'));
  const nodes = [relay, a, b, ...observers];
  for (const node of nodes) await node.start();
  try {
    for (const observer of observers) {
      observer.handle('datagram', (data, from) => observer.sendDatagram(from, data));
      a.sendDatagram(observer.localAddress(), utf8Encode('hello'));
      b.sendDatagram(observer.localAddress(), utf8Encode('hello'));
    }
    const seenAtRelay = new Map<string, Address>();
    relay.handle('datagram', (data, from) => seenAtRelay.set(utf8Decode(data), from));
    a.sendDatagram(relay.localAddress(), utf8Encode('a'));
    b.sendDatagram(relay.localAddress(), utf8Encode('b'));
    await clock.advance(200);
    const aSeen = seenAtRelay.get('a');
    const bSeen = seenAtRelay.get('b');
    if (!aSeen || !bSeen) throw new Error('simulation: the introducer did not hear from both nodes');
    // What discovery does: the introducer tells each about the other's address.
    a.heardFrom(bSeen, relay.localPeer());
    b.heardFrom(aSeen, relay.localPeer());

    const natTypes = { a: a.natType(), b: b.natType() };
    if (scenario.loss) network.setDefaultLink({ latencyMs: scenario.latencyMs ?? 20, jitterMs: scenario.jitterMs ?? 0, loss: scenario.loss });
    let outcome: ConnectOutcome | undefined;
    a.on('punch-outcome', (o) => (outcome ??= o));
    let firstAt: number | undefined;
    let bPeer: Address | undefined;
    let bReceived = 0;
    let aReceived = 0;
    b.handle('datagram', (data, from) => {
      if (utf8Decode(data) === 'first') firstAt ??= clock.now();
      bPeer ??= from;
      bReceived++;
      b.sendDatagram(from, utf8Encode('answer'));
    });
    a.handle('datagram', () => void aReceived++);
    const startedAt = clock.now();
    a.sendDatagram(bSeen, utf8Encode('first'));
    if (scenario.loss) {
      // Loss covers the punch (probes, requests); data after the path opens is not the test.
      const opened = () => outcome !== undefined;
      await clock.runUntil(opened, { maxMs: scenario.maxMs ?? 30_000, stepMs: 5 });
      network.setDefaultLink({ latencyMs: scenario.latencyMs ?? 20, jitterMs: scenario.jitterMs ?? 0 });
      if (firstAt === undefined && outcome?.mechanism !== 'failed') a.sendDatagram(bSeen, utf8Encode('first'));
    }
    const maxMs = scenario.maxMs ?? 30_000;
    await clock.runUntil(() => aReceived > 0 || (outcome !== undefined && outcome.mechanism === 'failed'), { maxMs, stepMs: 5 });
    const roundTrip = aReceived > 0;
    let exchanged = false;
    if (roundTrip) {
      const before = { a: aReceived, b: bReceived };
      for (let i = 0; i < 20; i++) a.sendDatagram(bSeen, utf8Encode(`d${i}`));
      await clock.advance(1_000);
      exchanged = bReceived - before.b === 20 && aReceived - before.a === 20;
    }
    await clock.advance(10_000);
    const punching = (node: typeof a): number => Number(node.describe().layers.find((layer) => layer.name === 'holepunch')?.status?.['punching'] ?? 0);
    return {
      scenario,
      punchingAtEnd: punching(a) + punching(b),
      outcome,
      firstByteMs: firstAt === undefined ? undefined : firstAt - startedAt,
      roundTrip,
      exchanged,
      natTypes,
      counters: { relay: relay.counters(), a: a.counters(), b: b.counters() },
    };
  } finally {
    for (const node of nodes) await node.stop();
    await clock.advance(1_000);
  }
}

/** Whether UDP punching can work between two NAT types (neither side symmetric, or the other side filters by host only). */
export function punchable(a: NatChoice, b: NatChoice): boolean {
  const open = (x: NatChoice): boolean => x === 'none' || x === 'full-cone' || x === 'address-restricted';
  if (a === 'symmetric' && b === 'symmetric') return false;
  if (a === 'symmetric') return open(b);
  if (b === 'symmetric') return open(a);
  return true;
}
