/**
 * `@deccom/faulty`: seeded faults over any datagram transport — loss, duplication,
 * reordering and extra delay, separately for outgoing and incoming traffic. The same
 * seed replays the same faults, so a failing run can be reproduced exactly.
 *
 * @example
 * ```ts
 * const node = createNode({ layers: [udp(), faulty({ seed: 42, outgoing: { loss: 0.05, duplicate: 0.01 } })] });
 * ```
 *
 * It has no messages of its own, so it adds no bytes to what passes through it.
 *
 * @packageDocumentation
 */
import { defineLayer, InvalidArgumentError, seededRandom, type Address, type Random } from '@deccom/core';

export interface FaultOptions {
  /** Probability of dropping a datagram. Default 0. */
  loss?: number;
  /** Probability of delivering a datagram twice. Default 0. */
  duplicate?: number;
  /** Probability of holding a datagram back so later ones overtake it. Default 0. */
  reorder?: number;
  /** How long a reordered datagram is held back, in ms. Default 10. */
  reorderDelayMs?: number;
  /** Extra delay added to every datagram, in ms. Default 0. */
  delayMs?: number;
  /** Uniform random extra delay in [0, jitterMs). Default 0. */
  jitterMs?: number;
}

export interface FaultyOptions extends FaultOptions {
  /**
   * Seed of the fault decisions (default: the node's random source). With a seed, the
   * sequence of faults is the same on every run.
   */
  seed?: number | string;
  /** Faults on datagrams this node sends. Default: the top-level options. */
  outgoing?: FaultOptions;
  /** Faults on datagrams this node receives. Default: none. */
  incoming?: FaultOptions;
  /** Instance name. Default `faulty`. */
  name?: string;
}

interface Faults {
  loss: number;
  duplicate: number;
  reorder: number;
  reorderDelayMs: number;
  delayMs: number;
  jitterMs: number;
  active: boolean;
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
  const f = {
    loss: checkProbability(options?.loss, `${where}.loss`),
    duplicate: checkProbability(options?.duplicate, `${where}.duplicate`),
    reorder: checkProbability(options?.reorder, `${where}.reorder`),
    reorderDelayMs: checkDuration(options?.reorderDelayMs, `${where}.reorderDelayMs`, 10),
    delayMs: checkDuration(options?.delayMs, `${where}.delayMs`, 0),
    jitterMs: checkDuration(options?.jitterMs, `${where}.jitterMs`, 0),
  };
  return { ...f, active: f.loss > 0 || f.duplicate > 0 || f.reorder > 0 || f.delayMs > 0 || f.jitterMs > 0 };
}

/** The faulty layer: provides sendDatagram / maxDatagramSize and offers `datagram`, over any transport. */
export function faulty(options: FaultyOptions = {}) {
  const outgoing = faults(options.outgoing ?? options, 'outgoing');
  const incoming = faults(options.incoming, 'incoming');
  return defineLayer({
    type: 'faulty',
    name: options.name,
    needs: ['sendDatagram', 'maxDatagramSize'],
    takes: ['datagram'],
    provides: ['sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive' },
    create: (ctx) => {
      const random: Random = options.seed !== undefined ? seededRandom(options.seed) : ctx.random;
      const counters = ctx.counters;
      const sendBelow = ctx.below.sendDatagram;

      const deliverUp = (data: Uint8Array, from: Address): void => {
        const slot = ctx.slots.datagram;
        if (slot) slot(data, from);
        else counters.drop('no-receiver');
      };

      /** Applies `f` to one datagram, calling `emit` zero, one or two times, now or later. */
      const apply = (f: Faults, direction: string, emit: () => void, copyForLater: () => () => void): void => {
        if (f.loss > 0 && random.float() < f.loss) {
          counters.add(`${direction}.lost`);
          return;
        }
        const copies = f.duplicate > 0 && random.float() < f.duplicate ? 2 : 1;
        if (copies === 2) counters.add(`${direction}.duplicated`);
        for (let i = 0; i < copies; i++) {
          let wait = f.delayMs;
          if (f.jitterMs > 0) wait += random.float() * f.jitterMs;
          if (f.reorder > 0 && random.float() < f.reorder) {
            wait += f.reorderDelayMs;
            counters.add(`${direction}.reordered`);
          }
          if (wait > 0) {
            const later = copyForLater();
            ctx.clock.setTimeout(later, wait);
          } else {
            emit();
          }
        }
      };

      return {
        status: () => ({ outgoing, incoming, seeded: options.seed !== undefined }),
        provides: {
          sendDatagram: outgoing.active
            ? (to: Address, data: Uint8Array) => {
                apply(
                  outgoing,
                  'outgoing',
                  () => sendBelow(to, data),
                  () => {
                    const copy = data.slice();
                    return () => sendBelow(to, copy);
                  },
                );
              }
            : sendBelow,
          maxDatagramSize: () => ctx.below.maxDatagramSize(),
        },
        takes: {
          datagram: incoming.active
            ? (data: Uint8Array, from: Address) => {
                apply(
                  incoming,
                  'incoming',
                  () => deliverUp(data, from),
                  () => {
                    const copy = data.slice();
                    return () => deliverUp(copy, from);
                  },
                );
              }
            : deliverUp,
        },
      };
    },
  });
}
