/**
 * Composing layers into a node: wiring, lifecycle, the typed top-of-stack API,
 * `describe()` and counters.
 */
import { setMaxListeners } from 'node:events';
import { sameAddress, type Address } from './address.js';
import type { CapabilityName, Capabilities, EventHook, ExclusiveHook, HookHandler, HookKind, HookName } from './capabilities.js';
import { monotonicClock, ScopedClock, systemClock, type Clock } from './clock.js';
import { Counters } from './counters.js';
import { CompositionError, InvalidArgumentError, StateError } from './errors.js';
import { Identity, type NodeId } from './identity.js';
import { defaultLogger, type Logger } from './logger.js';
import { createPeerRecord, signPeerRecord, type PeerRecord } from './peer-record.js';
import { cryptoRandom, seededRandom, type Random } from './random.js';
import type { AnyLayer, LayerContext, StackCapabilities, StackHooks, ValidStack } from './layer.js';
import { describeStack, stackToMermaid, type StackDescription } from './describe.js';

export interface NodeOptions<Layers extends readonly AnyLayer[]> {
  /** The node's identity; a fresh Ed25519 identity when omitted. */
  identity?: Identity;
  /** Layers from the bottom (transport) to the top. */
  layers: Layers;
  /** Injected time (default: the system clock). */
  clock?: Clock;
  /** Injected randomness, or a seed for a replayable run (default: crypto-backed). */
  random?: Random | number | string;
  /** Injected logger (default: silent unless DECCOM_LOG is set). */
  logger?: Logger;
}

export type NodeState = 'idle' | 'starting' | 'started' | 'stopping' | 'stopped';

type Handler = (...args: any[]) => any;

interface HookSlot {
  readonly owner: number;
  readonly kind: HookKind;
  /** Exclusive: the taker's handler. */
  taker?: { name: string; handler: Handler } | undefined;
  /** Events: observers. */
  readonly listeners: Handler[];
}

interface Entry {
  readonly layer: AnyLayer;
  readonly name: string;
  readonly context: MutableContext;
  instance: any;
  readonly slots: Map<string, HookSlot>;
  started: boolean;
}

interface MutableContext extends LayerContext<any, any, any> {
  below: any;
  slots: any;
  signal: AbortSignal;
  clock: ScopedClock;
}

/** Node-level API present on every node. */
export interface NodeBase<Hooks extends HookName> {
  readonly identity: Identity;
  readonly id: NodeId;
  readonly state: NodeState;
  /** Starts every layer bottom-up. Idempotent; concurrent calls share one start. */
  start(): Promise<void>;
  /** Stops every layer top-down, releasing its timers, sockets and pending operations. Idempotent. */
  stop(): Promise<void>;
  /** This node's peer record. */
  localPeer(): PeerRecord;
  /** Observes an event hook of the nearest layer offering it. Returns an unsubscribe function. */
  on<K extends EventHook<Hooks>>(event: K, listener: HookHandler<K>): () => void;
  /** Takes an exclusive hook (e.g. `datagram`) of the nearest layer offering it. */
  handle<K extends ExclusiveHook<Hooks>>(hook: K, handler: HookHandler<K>): () => void;
  /** The stack as data: layers, what each provides, and every binding with who serves it. */
  describe(): StackDescription;
  /** The stack as a Mermaid flowchart. */
  mermaid(): string;
  /** Every layer's counters, by layer name. */
  counters(): Record<string, Record<string, number>>;
}

/** A running stack: the node API plus every capability of every layer, typed. */
export type DecComNode<Layers extends readonly AnyLayer[]> = NodeBase<StackHooks<Layers>> & Pick<Capabilities, StackCapabilities<Layers>>;

const CAPABILITY_ERROR = 'MISSING_CAPABILITY';

function offersOf(layer: AnyLayer): Record<string, HookKind> {
  return (layer.offers ?? {}) as Record<string, HookKind>;
}

function describeBelow(entries: readonly Entry[], upTo: number): string {
  if (upTo === 0) return 'there is no layer below it';
  const parts: string[] = [];
  for (let i = upTo - 1; i >= 0; i--) {
    const layer = entries[i]!.layer;
    const provides = (layer.provides ?? []).join(', ') || 'nothing';
    const offers = Object.keys(offersOf(layer)).join(', ') || 'none';
    parts.push(`'${entries[i]!.name}' provides [${provides}] and offers hooks [${offers}]`);
  }
  return `the layers below offer: ${parts.join('; ')}`;
}

/**
 * Composes `layers` (bottom to top) into a node. Throws {@link CompositionError} when a
 * layer needs a capability or hook nobody below it provides, when a named binding names
 * no suitable layer, or when an exclusive hook is taken twice.
 */
export function createNode<const Layers extends readonly AnyLayer[]>(
  options: NodeOptions<Layers> & { layers: Layers & ValidStack<Layers> },
): DecComNode<Layers> {
  if (!options || !Array.isArray(options.layers)) throw new InvalidArgumentError('createNode: options.layers must be an array of layers');
  const layers = options.layers as readonly AnyLayer[];
  if (layers.length === 0) throw new CompositionError('EMPTY_STACK', 'createNode: a stack needs at least one layer (a transport)');
  const identity = options.identity ?? Identity.generate();
  // Layers never see time go backward, whatever clock was injected (see monotonicClock).
  const clock = monotonicClock(options.clock ?? systemClock);
  const random =
    options.random === undefined ? cryptoRandom() : typeof options.random === 'object' ? options.random : seededRandom(options.random);
  const logger = (options.logger ?? defaultLogger()).child(identity.id.short);

  const entries: Entry[] = [];
  const names = new Set<string>();
  let state: NodeState = 'idle';
  // Every pending operation of every layer may listen to the stop signal: no listener cap
  // (Node would otherwise print a leak warning, and library code never prints).
  const newAbortController = (): AbortController => {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    return controller;
  };
  let abort = newAbortController();
  let localPeerCache: { key: string; record: PeerRecord } | undefined;

  // Capabilities the stack-level localPeer() needs, resolved after composition.
  const top: { localAddress?: (() => Address) | undefined; localTcpPort?: (() => number | undefined) | undefined } = {};

  const localPeer = (): PeerRecord => {
    if (!top.localAddress) throw new CompositionError(CAPABILITY_ERROR, 'localPeer: no layer provides localAddress (a transport)');
    const address = top.localAddress();
    const tcpPort = top.localTcpPort?.();
    const key = `${address.host}|${address.port}|${tcpPort ?? ''}`;
    if (localPeerCache?.key !== key) {
      const record = createPeerRecord(identity.public, address, tcpPort);
      localPeerCache = { key, record: identity.canSign ? signPeerRecord(record, identity) : record };
    }
    return localPeerCache.record;
  };

  const findProvider = (capability: string, from: number, named: string | undefined, forLayer: string, optional: boolean): Entry | undefined => {
    if (named !== undefined) {
      const index = entries.findIndex((entry, i) => i < from && entry.name === named);
      if (index < 0) {
        throw new CompositionError(
          'UNKNOWN_LAYER',
          `layer '${forLayer}' binds '${capability}' to a layer named '${named}', but no layer below it has that name; ${describeBelow(entries, from)}`,
        );
      }
      const entry = entries[index]!;
      if (!(entry.layer.provides ?? []).includes(capability as CapabilityName)) {
        throw new CompositionError(
          CAPABILITY_ERROR,
          `layer '${forLayer}' binds '${capability}' to layer '${named}', which does not provide it; ${describeBelow(entries, from)}`,
        );
      }
      return entry;
    }
    for (let i = from - 1; i >= 0; i--) {
      if ((entries[i]!.layer.provides ?? []).includes(capability as CapabilityName)) return entries[i];
    }
    if (optional) return undefined;
    throw new CompositionError(
      CAPABILITY_ERROR,
      `layer '${forLayer}' needs '${capability}', but no layer below it provides it; ${describeBelow(entries, from)}`,
    );
  };

  const findHookOwner = (hook: string, from: number, named: string | undefined, forLayer: string, optional: boolean): Entry | undefined => {
    for (let i = from - 1; i >= 0; i--) {
      const entry = entries[i]!;
      if (named !== undefined && entry.name !== named) continue;
      if (entry.slots.has(hook)) return entry;
    }
    if (optional) return undefined;
    throw new CompositionError(
      'MISSING_HOOK',
      named !== undefined
        ? `layer '${forLayer}' takes hook '${hook}' of a layer named '${named}', but no such layer below it offers it; ${describeBelow(entries, from)}`
        : `layer '${forLayer}' takes the hook '${hook}', but no layer below it offers it; ${describeBelow(entries, from)}`,
    );
  };

  const guard = (takerName: string, counters: Counters, handler: Handler): Handler => {
    return (...args: unknown[]) => {
      try {
        const result = handler(...args);
        if (result instanceof Promise) {
          return result.catch((error: unknown) => {
            counters.add('handler-errors');
            logger.child(takerName).error('hook handler rejected', { error });
            throw error;
          });
        }
        return result;
      } catch (error) {
        counters.add('handler-errors');
        logger.child(takerName).error('hook handler threw', { error });
        return undefined;
      }
    };
  };

  const attach = (owner: Entry, hook: string, takerName: string, takerCounters: Counters, handler: Handler): (() => void) => {
    const slot = owner.slots.get(hook)!;
    const guarded = guard(takerName, takerCounters, handler);
    if (slot.kind === 'exclusive') {
      if (slot.taker) {
        throw new CompositionError(
          'HOOK_TAKEN',
          `the hook '${hook}' of layer '${owner.name}' is exclusive and already taken by '${slot.taker.name}'; '${takerName}' cannot take it too`,
        );
      }
      slot.taker = { name: takerName, handler: guarded };
      owner.context.slots[hook] = guarded;
      return () => {
        if (slot.taker?.handler === guarded) {
          slot.taker = undefined;
          delete owner.context.slots[hook];
        }
      };
    }
    slot.listeners.push(guarded);
    return () => {
      const index = slot.listeners.indexOf(guarded);
      if (index >= 0) slot.listeners.splice(index, 1);
    };
  };

  layers.forEach((layer, index) => {
    if (!layer || typeof layer.create !== 'function' || typeof layer.type !== 'string') {
      throw new InvalidArgumentError(`createNode: layers[${index}] is not a layer (use defineLayer)`);
    }
    const name = layer.name ?? layer.type;
    if (names.has(name)) {
      throw new CompositionError('DUPLICATE_LAYER_NAME', `two layers are named '${name}'; give one a different 'name' option`);
    }
    names.add(name);
    const bind = (layer.bind ?? {}) as Record<string, string | undefined>;
    const below: Record<string, Handler> = {};
    for (const capability of layer.needs ?? []) {
      const provider = findProvider(capability, index, bind[capability], name, false)!;
      below[capability] = (provider.instance.provides[capability] as Handler).bind(provider.instance.provides);
    }
    for (const capability of layer.optional ?? []) {
      const provider = findProvider(capability, index, bind[capability], name, true);
      if (provider) below[capability] = (provider.instance.provides[capability] as Handler).bind(provider.instance.provides);
    }
    const slots = new Map<string, HookSlot>();
    for (const [hook, kind] of Object.entries(offersOf(layer))) {
      slots.set(hook, { owner: index, kind, listeners: [] });
    }
    const counters = new Counters();
    const context: MutableContext = {
      name,
      identity,
      below,
      slots: {},
      emit: (event: string, ...args: unknown[]) => {
        const listeners = slots.get(event)?.listeners;
        if (!listeners) return;
        for (const listener of listeners.slice()) listener(...args);
      },
      observed: (event: string) => (slots.get(event)?.listeners.length ?? 0) > 0,
      clock: new ScopedClock(clock),
      random,
      logger: logger.child(name),
      counters,
      signal: abort.signal,
      localPeer,
    };
    const entry: Entry = { layer, name, context, instance: undefined, slots, started: false };
    entries.push(entry);
    // Hooks are resolved before create() so a missing one fails fast; handlers attach after.
    const takes = [
      ...(layer.takes ?? []).map((hook: string) => ({ hook, owner: findHookOwner(hook, index, bind[hook], name, false) })),
      ...(layer.takesOptional ?? []).map((hook: string) => ({ hook, owner: findHookOwner(hook, index, bind[hook], name, true) })),
    ];
    const instance = layer.create(context);
    if (!instance || typeof instance !== 'object') throw new InvalidArgumentError(`layer '${name}': create() must return an object`);
    for (const capability of layer.provides ?? []) {
      if (typeof instance.provides?.[capability] !== 'function') {
        throw new InvalidArgumentError(`layer '${name}' declares it provides '${capability}' but create() returned no such function`);
      }
    }
    entry.instance = instance;
    for (const { hook, owner } of takes) {
      if (!owner) continue;
      const handler = instance.takes?.[hook] as Handler | undefined;
      if (typeof handler !== 'function') {
        throw new InvalidArgumentError(`layer '${name}' declares it takes '${hook}' but create() returned no handler for it`);
      }
      attach(owner, hook, name, counters, handler.bind(instance.takes));
    }
  });

  const height = entries.length;
  const nearestProvider = (capability: string): Entry | undefined => findProvider(capability, height, undefined, 'node', true);
  const addressProvider = nearestProvider('localAddress');
  top.localAddress = addressProvider?.instance.provides.localAddress.bind(addressProvider.instance.provides);
  const tcpProvider = nearestProvider('localTcpPort');
  top.localTcpPort = tcpProvider?.instance.provides.localTcpPort.bind(tcpProvider.instance.provides);

  const appCounters = new Counters();
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;

  const stopEntries = async (): Promise<void> => {
    abort.abort(new StateError('STOPPED', 'the node stopped'));
    const errors: unknown[] = [];
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i]!;
      if (!entry.started) continue;
      try {
        await entry.instance.stop?.();
      } catch (error) {
        errors.push(error);
        entry.context.logger.error('stop failed', { error });
      } finally {
        entry.context.clock.clearAll();
        entry.started = false;
      }
    }
    if (errors.length > 0) throw new StateError('STOPPED', `${errors.length} layer(s) failed to stop cleanly`, { cause: errors[0] });
  };

  const node: NodeBase<HookName> & Record<string, unknown> = {
    identity,
    id: identity.id,
    get state() {
      return state;
    },
    start: () => {
      if (state === 'started') return Promise.resolve();
      if (starting) return starting;
      if (stopping) return stopping.then(() => node.start());
      state = 'starting';
      abort = newAbortController();
      for (const entry of entries) entry.context.signal = abort.signal;
      starting = (async () => {
        try {
          for (const entry of entries) {
            // Marked started first: a layer that fails half-way through start() is still
            // stopped, so whatever it acquired (sockets, timers) is released.
            entry.started = true;
            await entry.instance.start?.();
          }
          for (const entry of entries) entry.instance.started?.();
          state = 'started';
        } catch (error) {
          state = 'stopping';
          await stopEntries().catch(() => undefined);
          state = 'stopped';
          throw error;
        } finally {
          starting = undefined;
        }
      })();
      return starting;
    },
    stop: () => {
      if (stopping) return stopping;
      if (state === 'idle' || state === 'stopped') return Promise.resolve();
      const run = async (): Promise<void> => {
        if (starting) await starting.catch(() => undefined);
        if ((state as NodeState) === 'stopped') return;
        state = 'stopping';
        try {
          await stopEntries();
        } finally {
          state = 'stopped';
        }
      };
      stopping = run().finally(() => {
        stopping = undefined;
      });
      return stopping;
    },
    localPeer,
    on: (event, listener) => {
      const owner = findHookOwner(event, height, undefined, 'node', true);
      if (!owner) throw new CompositionError('MISSING_HOOK', `node.on('${event}'): no layer of this stack offers that event; ${describeBelow(entries, height)}`);
      if (owner.slots.get(event)!.kind !== 'event') throw new InvalidArgumentError(`node.on('${event}'): '${event}' is an exclusive hook; use node.handle()`);
      return attach(owner, event, 'application', appCounters, listener as Handler);
    },
    handle: (hook, handler) => {
      const owner = findHookOwner(hook, height, undefined, 'node', true);
      if (!owner) throw new CompositionError('MISSING_HOOK', `node.handle('${hook}'): no layer of this stack offers that hook; ${describeBelow(entries, height)}`);
      if (owner.slots.get(hook)!.kind !== 'exclusive') throw new InvalidArgumentError(`node.handle('${hook}'): '${hook}' is an event; use node.on()`);
      return attach(owner, hook, 'application', appCounters, handler as Handler);
    },
    describe: () => describeStack(entries.map((entry) => ({ layer: entry.layer, name: entry.name, status: entry.instance.status?.() }))),
    mermaid: () => stackToMermaid(node.describe()),
    counters: () => {
      const out: Record<string, Record<string, number>> = {};
      for (const entry of entries) out[entry.name] = entry.context.counters.snapshot();
      const app = appCounters.snapshot();
      if (Object.keys(app).length > 0) out['application'] = app;
      return out;
    },
  };

  // Expose every capability at the top, wired to its nearest provider (ARCHITECTURE.md 3).
  const exposed = new Set<string>();
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]!;
    for (const capability of entry.layer.provides ?? []) {
      if (exposed.has(capability)) continue;
      if (capability in node) continue;
      exposed.add(capability);
      node[capability] = (entry.instance.provides[capability] as Handler).bind(entry.instance.provides);
    }
  }
  return node as unknown as DecComNode<Layers>;
}

/** True when the address is this node's own (transports use it to never send to themselves). */
export function isOwnAddress(own: Address, to: Address): boolean {
  return sameAddress(own, to);
}
