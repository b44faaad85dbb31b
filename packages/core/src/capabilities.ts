/**
 * The contracts between layers. A capability is a method a layer provides to the layers
 * above it (calls go down); a hook is a slot a layer offers for layers above it to fill
 * (calls go up). Every binding in PROTOCOLS.md has an entry here, so layers written by
 * different packages agree on names and signatures.
 *
 * Your own layer can add capabilities and hooks by module augmentation:
 *
 * ```ts
 * declare module '@deccom/core' {
 *   interface Capabilities { shout(text: string): void }
 *   interface HookSignatures { 'shout-heard': (text: string) => void }
 *   interface HookKinds { 'shout-heard': 'event' }
 * }
 * ```
 */
import type { Address } from './address.js';
import type { NodeId } from './identity.js';
import type { PeerRecord } from './peer-record.js';

export interface PingOptions {
  /** Give up after this long (default chosen by the transport, 2000 ms for UDP). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface FindOptions {
  signal?: AbortSignal;
  /** Overall deadline for the lookup. */
  timeoutMs?: number;
  /**
   * Do not answer from what this node already knows: confirm the record with the network
   * (the peer itself where possible), e.g. after a connect to the known record failed
   * because the peer restarted on a new port. Discovery layers without a network source
   * may ignore it. Default false.
   */
  fresh?: boolean;
}

export interface SendOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * A hint for connection-based transports: when a new connection has to be made, this
   * message may go out with the connection's introduction, before the peer has
   * introduced itself (one round trip less). Only for messages any node may see, such
   * as the first message of a handshake: the peer's identity is confirmed after the
   * message left. Transports without connections ignore it. Default false.
   */
  early?: boolean;
}

export interface ReliableSendOptions extends SendOptions {
  /** Called as the receiver acknowledges bytes. */
  onProgress?: (acknowledgedBytes: number, totalBytes: number) => void;
}

/** Byte chunks for streaming sends. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Options of `closeConnection`. */
export interface CloseOptions {
  /**
   * Close at once, without the graceful goodbye: sends not yet written fail with a typed
   * error, streams in flight fail on both sides, and bytes already handed to the OS may or
   * may not arrive. For a peer to be dropped now (misbehaving, failed authentication).
   * Default false.
   */
  abort?: boolean;
}

/** What `connectionState` reports: a connection is open, one is being made, or there is none. */
export type ConnectionState = 'open' | 'connecting' | 'none';

/** Methods that layers provide to the layers above them. */
export interface Capabilities {
  // --- datagram transport (udp, memory; re-provided by faulty, delay, noise, holepunch)
  /** Sends one datagram. Fire and forget; never throws for network errors (they are counted). */
  sendDatagram(to: Address, data: Uint8Array): void;
  /** The address this node's transport is bound to. */
  localAddress(): Address;
  /** Largest payload a layer above may pass to `sendDatagram` in one datagram. */
  maxDatagramSize(): number;
  /** Pings an address; resolves to the round-trip time in ms, rejects with TimeoutError. */
  sendPing(to: Address, options?: PingOptions): Promise<number>;

  // --- discovery (kademlia, gossip, biggossip, fixed-peers)
  /** Finds a peer by id anywhere in the network; rejects with NotFoundError. */
  findPeer(id: NodeId, options?: FindOptions): Promise<PeerRecord>;
  /** A peer this node already knows, without network traffic. */
  getPeer(id: NodeId): PeerRecord | undefined;
  /** Every peer this node currently knows. */
  getPeers(): PeerRecord[];
  /** Tells discovery about a peer (e.g. learned out of band). */
  addPeer(peer: PeerRecord): void;
  /** Sends a datagram to a node id (fixed-peers). */
  sendTo(id: NodeId, data: Uint8Array): void;
  /** Sends a datagram to every known peer (fixed-peers). */
  broadcast(data: Uint8Array): void;

  // --- hole punching (holepunch), called by discovery
  /** `introducer` told us about a peer at `address` (A told me about B). */
  heardFrom(address: Address, introducer: PeerRecord): void;

  // --- keep-alive
  trackPeer(id: NodeId, address: Address): void;
  untrackPeer(id: NodeId): void;

  // --- message / stream transport (tcp; re-provided by noise and delay)
  /** Opens (or reuses) a connection to a node id. */
  openConnection(to: NodeId, options?: SendOptions): Promise<void>;
  /**
   * Closes the connection to a node id after everything already accepted was sent; with
   * `abort`, at once (see {@link CloseOptions}).
   */
  closeConnection(to: NodeId, options?: CloseOptions): Promise<void>;
  /**
   * Whether a connection to a node id is open, being made (dialling or introducing), or
   * neither. Lets a layer above tell a lost connection from one about to replace it, e.g.
   * to fail a handshake at once when nothing can carry the peer's reply.
   */
  connectionState(to: NodeId): ConnectionState;
  /** Sends one whole message to a node id. Resolves once it is handed to the OS. */
  sendMessage(to: NodeId, data: Uint8Array, options?: SendOptions): Promise<void>;
  /** Streams a message of any size to a node id, with backpressure. */
  sendStream(to: NodeId, source: ByteSource, options?: SendOptions): Promise<void>;
  /** The TCP port announced in this node's peer record, if any. */
  localTcpPort(): number | undefined;

  // --- reliable large messages over UDP (rudp)
  /** Delivers `data` whole and exactly once, or rejects with a typed error. */
  sendReliable(to: Address, data: Uint8Array, options?: ReliableSendOptions): Promise<void>;
}

/** Handler signatures of every hook. */
export interface HookSignatures {
  /** A datagram for the layer above (exclusive: one layer owns the delivery slot). */
  datagram: (data: Uint8Array, from: Address) => void;
  /** Any datagram arrived from `from` (event: observers such as keep-alive). */
  traffic: (from: Address, bytes: number) => void;
  /** May `peer` join? (exclusive: the security layer's approval slot). */
  approve: (peer: PeerRecord) => boolean | Promise<boolean>;
  'peer-connect': (peer: PeerRecord) => void;
  'peer-disconnect': (peer: PeerRecord) => void;
  /** A tracked peer stopped answering pings (keep-alive). */
  'peer-unresponsive': (id: NodeId, address: Address) => void;
  /** A whole message from a node id (tcp). */
  message: (data: Uint8Array, from: NodeId, address: Address) => void;
  /**
   * A streamed message from a node id: consume `source` to receive it (tcp). Returning
   * exactly `false` refuses the stream: the transport does not read it and the sender's
   * `sendStream` rejects with `STREAM_REFUSED`, as when nobody takes the hook. A layer
   * that re-offers the hook (noise, delay) returns `false` when nobody above it takes
   * streams, and passes on what the handler above returned. Any other value is ignored.
   */
  stream: (source: AsyncIterable<Uint8Array>, from: NodeId, address: Address) => unknown;
  'connection-open': (id: NodeId, address: Address) => void;
  'connection-close': (id: NodeId, reason?: Error) => void;
  /** A whole reliable message (rudp). */
  'reliable-message': (data: Uint8Array, from: Address) => void;
}

/** Whether each hook is exclusive (one taker) or an event (many observers). */
export interface HookKinds {
  datagram: 'exclusive';
  traffic: 'event';
  approve: 'exclusive';
  'peer-connect': 'event';
  'peer-disconnect': 'event';
  'peer-unresponsive': 'event';
  message: 'exclusive';
  stream: 'exclusive';
  'connection-open': 'event';
  'connection-close': 'event';
  'reliable-message': 'exclusive';
}

export type CapabilityName = keyof Capabilities;
export type HookName = keyof HookSignatures & keyof HookKinds;
export type HookKind = 'exclusive' | 'event';
export type ExclusiveHook<H extends HookName = HookName> = { [K in H]: HookKinds[K] extends 'exclusive' ? K : never }[H];
export type EventHook<H extends HookName = HookName> = { [K in H]: HookKinds[K] extends 'event' ? K : never }[H];
export type HookHandler<K extends HookName> = HookSignatures[K] extends (...args: infer A) => infer R ? (...args: A) => R : never;
export type HookArgs<K extends HookName> = Parameters<HookHandler<K>>;
