/**
 * `@deccom/faulty`: seeded faults over any datagram transport — loss, duplication,
 * reordering and extra delay with jitter, separately for outgoing and incoming traffic.
 * The same seed replays the same faults, so a failing run can be reproduced exactly.
 *
 * @example
 * ```ts
 * import { createNode } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 * import { faulty } from '@deccom/faulty';
 *
 * const node = createNode({
 *   layers: [udp(), faulty({ seed: 42, outgoing: { loss: 0.05, duplicate: 0.01 }, incoming: { reorder: 0.02 } })],
 * });
 * ```
 *
 * It has no messages of its own, so it adds no bytes to what passes through it, and with
 * no fault configured in a direction its calls go straight through (same function).
 *
 * @packageDocumentation
 */
import { defineLayer, InvalidArgumentError, seededRandom, type Address, type Random, type ScopedClock, type TimerHandle } from '@deccom/core';

export interface FaultOptions {
  /** Probability of dropping a datagram. Default 0. */
  loss?: number;
  /** Probability of delivering a datagram twice (the copy is faulted independently). Default 0. */
  duplicate?: number;
  /**
   * Probability of holding a datagram back until `reorderDistance` later datagrams have
   * overtaken it (or `reorderDelayMs` passed with no later traffic). Default 0.
   */
  reorder?: number;
  /** How many later datagrams overtake a held one. Default 1. */
  reorderDistance?: number;
  /** Longest a held datagram waits for later traffic, in ms. Default 10. */
  reorderDelayMs?: number;
  /** Extra delay added to every datagram, in ms. Default 0. */
  delayMs?: number;
  /** Uniform random extra delay in [0, jitterMs), on top of `delayMs`. Default 0. */
  jitterMs?: number;
}

export interface FaultyOptions extends FaultOptions {
  /**
   * Seed of the fault decisions. With a seed, outgoing and incoming faults each come from
   * their own seeded stream (`seededRandom`), so the same sends see the same faults on
   * every run, however received traffic interleaves. Default: the node's random source.
   */
  seed?: number | string;
  /** Faults on datagrams this node sends. Default: the top-level fault options. */
  outgoing?: FaultOptions;
  /** Faults on datagrams this node receives. Default: none. */
  incoming?: FaultOptions;
  /** Most datagrams held back for reordering per direction; beyond it the oldest is released. Default 1024. */
  maxHeld?: number;
  /** Instance name. Default `faulty`. */
  name?: string;
}

interface Faults {
  readonly loss: number;
  readonly duplicate: number;
  readonly reorder: number;
  readonly reorderDistance: number;
  readonly reorderDelayMs: number;
  readonly delayMs: number;
  readonly jitterMs: number;
  readonly active: boolean;
}

function checkProbability(value: number | undefined, name: string): number {
  const v = value ?? 0;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new InvalidArgumentError(`faulty: ${name} must be a probability in [0, 1], got ${String(value)}`);
  return v;
}

function checkDuration(value: number | undefined, name: string, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new InvalidArgumentError(`faulty: ${name} must be a non-negative number of ms, got ${String(value)}`);
  return v;
}

function faults(options: FaultOptions | undefined, where: string): Faults {
  const distance = options?.reorderDistance ?? 1;
  if (!Number.isInteger(distance) || distance < 1) throw new InvalidArgumentError(`faulty: ${where}.reorderDistance must be an integer >= 1, got ${String(distance)}`);
  const f = {
    loss: checkProbability(options?.loss, `${where}.loss`),
    duplicate: checkProbability(options?.duplicate, `${where}.duplicate`),
    reorder: checkProbability(options?.reorder, `${where}.reorder`),
    reorderDistance: distance,
    reorderDelayMs: checkDuration(options?.reorderDelayMs, `${where}.reorderDelayMs`, 10),
    delayMs: checkDuration(options?.delayMs, `${where}.delayMs`, 0),
    jitterMs: checkDuration(options?.jitterMs, `${where}.jitterMs`, 0),
  };
  return { ...f, active: f.loss > 0 || f.duplicate > 0 || f.reorder > 0 || f.delayMs > 0 || f.jitterMs > 0 };
}

interface Held {
  readonly release: () => void;
  remaining: number;
  timer: TimerHandle | undefined;
}

/**
 * The faults of one direction. `forward` is where a datagram goes when it is let
 * through (down to the transport, or up to the layer above).
 */
class FaultyPath {
  private readonly held: Held[] = [];

  constructor(
    private readonly faults: Faults,
    private readonly random: Random,
    private readonly clock: ScopedClock,
    private readonly count: (name: string, amount?: number) => void,
    private readonly maxHeld: number,
    /** Runs a datagram released later (from a timer or on behalf of another send): must not throw. */
    private readonly later: (send: () => void) => void,
  ) {}

  get heldCount(): number {
    return this.held.length;
  }

  /** Applies the faults to one datagram whose payload `data` may be reused by its owner after return. */
  apply(data: Uint8Array, forward: (data: Uint8Array) => void): void {
    const f = this.faults;
    if (f.loss > 0 && this.random.float() < f.loss) {
      this.count('lost');
      return;
    }
    const copies = f.duplicate > 0 && this.random.float() < f.duplicate ? 2 : 1;
    if (copies === 2) this.count('duplicated');
    for (let i = 0; i < copies; i++) {
      let wait = f.delayMs;
      if (f.jitterMs > 0) wait += this.random.float() * f.jitterMs;
      const reorder = f.reorder > 0 && this.random.float() < f.reorder;
      if (reorder) this.count('reordered');
      if (wait > 0) {
        // Held past this call: keep a copy, the owner may reuse its buffer.
        const copy = data.slice();
        this.count('delayed');
        this.clock.setTimeout(() => (reorder ? this.hold(() => forward(copy)) : this.pass(() => this.later(() => forward(copy)))), wait);
      } else if (reorder) {
        const copy = data.slice();
        this.hold(() => forward(copy));
      } else {
        this.pass(() => forward(data));
      }
    }
  }

  /** Lets a datagram through now; it overtakes every held one. */
  private pass(send: () => void): void {
    send();
    if (this.held.length === 0) return;
    const due: Held[] = [];
    for (let i = 0; i < this.held.length; ) {
      const entry = this.held[i]!;
      if (--entry.remaining <= 0) {
        this.held.splice(i, 1);
        due.push(entry);
      } else {
        i++;
      }
    }
    for (const entry of due) this.releaseEntry(entry);
  }

  private hold(send: () => void): void {
    if (this.held.length >= this.maxHeld) this.releaseEntry(this.held.shift()!);
    const entry: Held = { release: send, remaining: this.faults.reorderDistance, timer: undefined };
    entry.timer = this.clock.setTimeout(() => {
      entry.timer = undefined;
      const index = this.held.indexOf(entry);
      if (index >= 0) {
        this.held.splice(index, 1);
        this.later(entry.release);
      }
    }, this.faults.reorderDelayMs);
    this.held.push(entry);
  }

  private releaseEntry(entry: Held): void {
    if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    this.later(entry.release);
  }

  /** Forgets held datagrams (the node stopped; their timers go with the layer's clock). */
  clear(): void {
    if (this.held.length > 0) this.count('discarded-on-stop', this.held.length);
    this.held.length = 0;
  }
}

/**
 * The faulty layer, over any datagram transport: needs `sendDatagram` and
 * `maxDatagramSize`, takes `datagram`; provides `sendDatagram` and `maxDatagramSize`
 * (unchanged: no framing), offers `datagram`.
 */
export function faulty(options: FaultyOptions = {}) {
  const outgoing = faults(options.outgoing ?? options, 'outgoing');
  const incoming = faults(options.incoming, 'incoming');
  const maxHeld = options.maxHeld ?? 1024;
  if (!Number.isInteger(maxHeld) || maxHeld < 1) throw new InvalidArgumentError(`faulty: maxHeld must be an integer >= 1, got ${String(maxHeld)}`);
  return defineLayer({
    type: 'faulty',
    name: options.name,
    needs: ['sendDatagram', 'maxDatagramSize'],
    takes: ['datagram'],
    provides: ['sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive' },
    create: (ctx) => {
      const seed = options.seed;
      const randomFor = (direction: string): Random => (seed !== undefined ? seededRandom(`${String(seed)}/${direction}`) : ctx.random);
      const counters = ctx.counters;
      const sendBelow = ctx.below.sendDatagram;

      const deliverUp = (data: Uint8Array, from: Address): void => {
        const slot = ctx.slots.datagram;
        if (slot !== undefined) slot(data, from);
        else counters.drop('no-receiver');
      };

      // A datagram sent from a timer, or released by another datagram's send, has no
      // caller to throw to: an error is counted and logged.
      const later = (send: () => void): void => {
        try {
          send();
        } catch (error) {
          counters.add('send-errors');
          ctx.logger.warn('a delayed or reordered datagram could not be sent', { error: (error as Error).message });
        }
      };
      const out = new FaultyPath(outgoing, randomFor('outgoing'), ctx.clock, (name, amount) => counters.add(`outgoing.${name}`, amount), maxHeld, later);
      const inn = new FaultyPath(incoming, randomFor('incoming'), ctx.clock, (name, amount) => counters.add(`incoming.${name}`, amount), maxHeld, later);
      let started = false;

      return {
        start: () => {
          started = true;
        },
        stop: () => {
          started = false;
          out.clear();
          inn.clear();
        },
        status: () => ({ outgoing, incoming, seeded: seed !== undefined, held: out.heldCount + inn.heldCount }),
        provides: {
          // No fault in a direction: the very function below / the plain delivery, so the
          // layer costs one call at most.
          sendDatagram: outgoing.active
            ? (to: Address, data: Uint8Array) => {
                if (!started || data.byteLength > ctx.below.maxDatagramSize()) {
                  // The transport raises its own StateError / InvalidArgumentError, now, not from a timer.
                  sendBelow(to, data);
                  return;
                }
                out.apply(data, (payload) => sendBelow(to, payload));
              }
            : sendBelow,
          maxDatagramSize: ctx.below.maxDatagramSize,
        },
        takes: {
          datagram: incoming.active ? (data: Uint8Array, from: Address) => inn.apply(data, (payload) => deliverUp(payload, from)) : deliverUp,
        },
      };
    },
  });
}
