/**
 * Layers and how they declare their bindings.
 *
 * A layer says, as data, what it needs from below (`needs`, `optional`), what it
 * provides upward (`provides`), which hook slots of lower layers it fills (`takes`,
 * `takesOptional`) and which slots it offers to layers above (`offers`). The stack
 * wires each call to the nearest lower provider, or to a named layer (`bind`). The same
 * declarations drive the compile-time check of a stack (see {@link ValidStack}).
 */
import type { Address } from './address.js';
import type {
  CapabilityName,
  Capabilities,
  EventHook,
  ExclusiveHook,
  HookArgs,
  HookHandler,
  HookKinds,
  HookName,
} from './capabilities.js';
import type { ScopedClock } from './clock.js';
import type { Counters } from './counters.js';
import type { ProtocolId } from './frame.js';
import type { Identity } from './identity.js';
import type { Logger } from './logger.js';
import type { PeerRecord } from './peer-record.js';
import type { Random } from './random.js';

/** What a running layer hands back from `create`. */
export type LayerInstance<Prov extends CapabilityName, Takes extends HookName> = ([Prov] extends [never]
  ? { readonly provides?: Record<never, never> }
  : { readonly provides: Pick<Capabilities, Prov> }) &
  ([Takes] extends [never] ? { readonly takes?: Record<never, never> } : { readonly takes: { readonly [K in Takes]: HookHandler<K> } }) & {
    /** Called bottom-up when the node starts (after every layer below has started). */
    start?(): void | Promise<void>;
    /**
     * Called bottom-up once every layer of the node has started: the whole stack is up,
     * so the local peer record is complete (a TCP port that a layer above bound is in it).
     * Discovery announces itself here rather than in `start`.
     */
    started?(): void;
    /** Called top-down when the node stops. Timers from `context.clock` are cleared after it. */
    stop?(): void | Promise<void>;
    /** Live state for `node.describe()` (peer counts, bound ports...). */
    status?(): Record<string, unknown>;
  };

/** Everything a layer gets from the stack it is composed into. */
export interface LayerContext<Req extends CapabilityName = never, Opt extends CapabilityName = never, Off extends HookName = never> {
  /** This layer's instance name (unique in the stack). */
  readonly name: string;
  /** The node's identity. */
  readonly identity: Identity;
  /** Calls wired to the layers below: required ones always present, optional ones maybe. */
  readonly below: Pick<Capabilities, Req> & Partial<Pick<Capabilities, Opt>>;
  /** The exclusive hook slots this layer offers, as filled by a layer above (or undefined). */
  readonly slots: { readonly [K in ExclusiveHook<Off>]?: HookHandler<K> };
  /** Notifies every observer of one of this layer's event hooks. */
  emit<K extends EventHook<Off>>(event: K, ...args: HookArgs<K>): void;
  /** Whether anyone observes `event` (lets hot paths skip work). */
  observed(event: EventHook<Off>): boolean;
  /** This layer's clock: every timer it starts is cleared when the layer stops. */
  readonly clock: ScopedClock;
  readonly random: Random;
  readonly logger: Logger;
  readonly counters: Counters;
  /** Aborted when the node stops; pass it to anything that can wait. */
  readonly signal: AbortSignal;
  /** This node's peer record (address from the transport, signed when the identity can sign). */
  localPeer(): PeerRecord;
}

/** The declaration of a layer: data plus a factory. */
export interface LayerSpec<
  Type extends string,
  Req extends CapabilityName,
  Opt extends CapabilityName,
  Prov extends CapabilityName,
  TReq extends HookName,
  TOpt extends HookName,
  Off extends HookName,
> {
  /** The layer's kind, e.g. `kademlia`. */
  readonly type: Type;
  /** Instance name, unique in a stack; defaults to `type`. Named bindings refer to it. */
  readonly name?: string;
  /** The wire protocol this layer speaks, if it has messages of its own. */
  readonly protocol?: ProtocolId;
  /** Capabilities it cannot run without. Composing without them fails to type-check. */
  readonly needs?: readonly Req[];
  /** Capabilities it uses when some layer below provides them. */
  readonly optional?: readonly Opt[];
  /** Capabilities it provides to the layers above. */
  readonly provides?: readonly Prov[];
  /** Hook slots of lower layers it must fill. */
  readonly takes?: readonly TReq[];
  /** Hook slots of lower layers it fills when they exist. */
  readonly takesOptional?: readonly TOpt[];
  /** Hook slots it offers to the layers above, with their kind. */
  readonly offers?: { readonly [K in Off]: HookKinds[K] };
  /** Named resolution: wire a capability or hook to the layer of that name instead of the nearest. */
  readonly bind?: { readonly [K in NoInfer<Req | Opt | TReq | TOpt>]?: string };
  /** Builds the running layer. Called once per node, when the stack is composed. */
  create(context: LayerContext<NoInfer<Req>, NoInfer<Opt>, NoInfer<Off>>): LayerInstance<NoInfer<Prov>, NoInfer<TReq | TOpt>>;
}

declare const LAYER_BRAND: unique symbol;

/** A declared layer, ready to be listed in a stack. */
export interface Layer<
  Type extends string = string,
  Req extends CapabilityName = never,
  Opt extends CapabilityName = never,
  Prov extends CapabilityName = never,
  TReq extends HookName = never,
  TOpt extends HookName = never,
  Off extends HookName = never,
> extends LayerSpec<Type, Req, Opt, Prov, TReq, TOpt, Off> {
  readonly name: string;
  readonly [LAYER_BRAND]?: { req: Req; prov: Prov; treq: TReq; off: Off };
}

/** Any layer, for constraints. */
export interface AnyLayer {
  readonly type: string;
  readonly name: string;
  readonly protocol?: ProtocolId;
  readonly needs?: readonly CapabilityName[];
  readonly optional?: readonly CapabilityName[];
  readonly provides?: readonly CapabilityName[];
  readonly takes?: readonly HookName[];
  readonly takesOptional?: readonly HookName[];
  readonly offers?: { readonly [K in HookName]?: HookKinds[K] };
  readonly bind?: { readonly [K in CapabilityName | HookName]?: string };
  create(context: any): any;
}

/**
 * Declares a layer. The generic parameters are inferred from the literal arrays, so the
 * declarations are both the runtime wiring and the compile-time contract.
 */
export function defineLayer<
  const Type extends string,
  const Req extends CapabilityName = never,
  const Opt extends CapabilityName = never,
  const Prov extends CapabilityName = never,
  const TReq extends HookName = never,
  const TOpt extends HookName = never,
  const Off extends HookName = never,
>(spec: LayerSpec<Type, Req, Opt, Prov, TReq, TOpt, Off>): Layer<Type, Req, Opt, Prov, TReq, TOpt, Off> {
  return { ...spec, name: spec.name ?? spec.type } as Layer<Type, Req, Opt, Prov, TReq, TOpt, Off>;
}

// ---------------------------------------------------------------------------
// Type-level composition

export type TypeOf<L> = L extends { readonly type: infer T extends string } ? T : never;
export type NeedsOf<L> = L extends { readonly needs?: readonly (infer R extends string)[] | undefined } ? R : never;
export type ProvidesOf<L> = L extends { readonly provides?: readonly (infer P extends string)[] | undefined } ? P : never;
export type TakesOf<L> = L extends { readonly takes?: readonly (infer T extends string)[] | undefined } ? T : never;
export type OffersOf<L> = L extends { readonly offers?: infer O } ? keyof NonNullable<O> & string : never;

/** Shown in the compiler's message when a stack is wrong. */
export interface StackError<Message extends string> {
  readonly 'DecCom stack error': Message;
}

type MissingCapability<L, Missing extends string> = StackError<`layer '${TypeOf<L>}' needs '${Missing}', which no layer below it provides: add a layer that provides '${Missing}' below '${TypeOf<L>}'`>;
type MissingHook<L, Missing extends string> = StackError<`layer '${TypeOf<L>}' takes the hook '${Missing}', which no layer below it offers: add a layer that offers '${Missing}' below '${TypeOf<L>}'`>;

/**
 * `Layers` unchanged when every layer's needs and required hooks are met by the layers
 * before it; otherwise the offending entries are replaced by a {@link StackError}
 * naming the layer and what is missing, so `tsc` reports it where the stack is written.
 */
export type ValidStack<Layers extends readonly unknown[], Caps extends string = never, Hooks extends string = never> = Layers extends readonly [
  infer First,
  ...infer Rest,
]
  ? readonly [
      [Exclude<NeedsOf<First>, Caps>] extends [never]
        ? [Exclude<TakesOf<First>, Hooks>] extends [never]
          ? First
          : MissingHook<First, Exclude<TakesOf<First>, Hooks> & string>
        : MissingCapability<First, Exclude<NeedsOf<First>, Caps> & string>,
      ...ValidStack<Rest, Caps | ProvidesOf<First>, Hooks | OffersOf<First>>,
    ]
  : readonly [];

/** Every capability some layer of the stack provides. */
export type StackCapabilities<Layers extends readonly unknown[]> = ProvidesOf<Layers[number]>;
/** Every hook some layer of the stack offers. */
export type StackHooks<Layers extends readonly unknown[]> = OffersOf<Layers[number]>;

/** Address type re-export for layer authors' convenience. */
export type { Address };
