/**
 * `@deccom/tcp`: the TCP transport for whole messages and streams between node ids,
 * with backpressure end to end.
 *
 * It listens on a TCP port that goes into this node's peer record, turns a node id into
 * an address with `getPeer` from the discovery layer below (a stack without discovery
 * does not type-check), keeps one connection per pair of nodes, and multiplexes
 * messages and any number of streams on it.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs';
 * import { createNode } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 * import { kademlia } from '@deccom/kademlia';
 * import { tcp } from '@deccom/tcp';
 *
 * const node = createNode({
 *   layers: [udp({ host: '127.0.0.1' }), kademlia({ bootstrap: [{ host: '127.0.0.1', port: 7000 }] }), tcp({ host: '127.0.0.1' })],
 * });
 * await node.start();
 * node.handle('message', (data, from) => console.log(data.length, 'bytes from', from.short));
 * node.handle('stream', async (source, from) => {
 *   for await (const chunk of source) console.log('chunk of', chunk.length, 'from', from.short);
 * });
 * await node.sendMessage(otherId, new TextEncoder().encode('hello'));
 * await node.sendStream(otherId, createReadStream('big.iso')); // any size, bounded memory
 * await node.stop(); // delivers everything accepted first
 * ```
 *
 * @packageDocumentation
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import {
  checkTimeoutMs,
  coalesceWrites,
  defineLayer,
  InvalidArgumentError,
  ipFamily,
  NodeId,
  NotFoundError,
  StateError,
  throwIfAborted,
  TimeoutError,
  AbortError,
  type ByteSource,
  type CloseOptions,
  type ConnectionState,
  type PeerRecord,
  type SendOptions,
} from '@deccom/core';
import { COPY_LIMIT_BYTES, Connection, EARLY_MESSAGE_BYTES, type ConnectionHost, type ConnectionSettings, type HotCounters, type Waiter } from './connection.js';
import { ConnectionError, messageTooLarge } from './errors.js';
import { encodeHello, FRAME_HEADER_LENGTH, MAX_U32, TCP_PROTOCOL } from './wire.js';

export { ConnectionError, StreamError, type ConnectionErrorCode, type StreamErrorCode } from './errors.js';
/** Core's class, re-exported: the same class noise and other layers throw. */
export { MessageTooLargeError } from '@deccom/core';
export {
  TCP_PROTOCOL,
  MAGIC,
  MAX_CHUNK_BYTES,
  MAX_ANNOUNCED_STREAMS,
  FRAME_HELLO,
  FRAME_MESSAGE,
  FRAME_STREAM_OPEN,
  FRAME_STREAM_CHUNK,
  FRAME_STREAM_END,
  FRAME_STREAM_RESET,
  FRAME_STREAM_CANCEL,
  FRAME_WINDOW,
  FRAME_GOAWAY,
  FRAME_STREAM_DONE,
  FrameDecoder,
  type DecoderLimits,
  decodeHello,
  encodeHello,
  encodeMessage,
  type FrameSink,
  type Hello,
} from './wire.js';
export type { IncomingStream } from './incoming-stream.js';
export { EARLY_MESSAGE_BYTES } from './connection.js';

/** Options of {@link AdoptTcpSocket}. */
export interface AdoptOptions {
  /** The node the socket should lead to; another node introducing itself is refused. */
  expected?: NodeId;
}

declare module '@deccom/core' {
  interface Capabilities {
    /**
     * Hands the TCP layer a socket connected some other way (e.g. a TCP simultaneous
     * open by `@deccom/holepunch`). Both ends introduce themselves; resolves with the
     * peer's node id once the connection is usable, like one the layer dialed itself.
     */
    adoptTcpSocket(socket: import('node:net').Socket, options?: AdoptOptions): Promise<NodeId>;
  }
}

/** The capability's signature, for layers that call it. */
export type AdoptTcpSocket = (socket: Socket, options?: AdoptOptions) => Promise<NodeId>;

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_STREAM_WINDOW_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_INCOMING_STREAMS = 16;
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_MAX_INTRODUCING_PER_HOST = 64;
export const DEFAULT_MAX_PENDING_BYTES_PER_PEER = 8 * 1024 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_SEND_TIMEOUT_MS = 30_000;
export const DEFAULT_DIAL_ATTEMPTS = 3;
export const DEFAULT_RECONNECT_DELAY_MS = 100;
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 10_000;
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
/** Most records remembered from refreshes after failed dials (the oldest go first). */
const MAX_LEARNED_RECORDS = 1024;
export const DEFAULT_KEEP_ALIVE_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/**
 * The idle sweep runs this many times per `idleTimeoutMs`: a connection is closed after
 * between 1 and 1 + 1/IDLE_SWEEPS_PER_TIMEOUT times `idleTimeoutMs` without traffic.
 */
const IDLE_SWEEPS_PER_TIMEOUT = 4;

export interface TcpOptions {
  /** IP literal to listen on. Default `'127.0.0.1'`; `'0.0.0.0'` or `'::'` to be reachable from other machines. */
  host?: string;
  /** Port to listen on; 0 (default) picks a free port. Announced in the peer record. */
  port?: number;
  /** Largest message sent or accepted. Default 16 MiB; at most 2^32 - 1. Larger data goes through `sendStream`. */
  maxMessageBytes?: number;
  /**
   * Stream bytes buffered per incoming stream before the sender must wait (flow-control
   * window). Default 16 MiB (large windows keep a fast link busy). Over all its streams,
   * a connection holds at most two windows: beyond that it stops reading the socket
   * until the application catches up.
   */
  streamWindowBytes?: number;
  /**
   * Incoming streams open at once per connection. Announced in the HELLO (as at most
   * 255): the peer queues its streams beyond it instead of opening them, so
   * `Promise.all` of many `sendStream` calls to one peer just waits its turn. A stream
   * opened beyond it anyway (a peer of an older version) is refused (`STREAM_REFUSED`,
   * counted `streams-refused`). Default 16.
   */
  maxIncomingStreams?: number;
  /** TCP connections at once, both directions, including ones being introduced. Default 1024. */
  maxConnections?: number;
  /**
   * Incoming connections from one IP host that have not finished introducing themselves,
   * at most; more from that host are closed at once (`refused.introducing-per-host`). A
   * slow-loris peer (connects, then dribbles bytes or nothing) otherwise holds a slot for
   * `connectTimeoutMs` each and can fill `maxConnections`. Default 64.
   */
  maxIntroducingPerHost?: number;
  /** Bytes written to a peer's connection and not yet taken by the OS before sends wait. Default 8 MiB. */
  maxPendingBytesPerPeer?: number;
  /** TCP connect plus introduction. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** How long a send waits for a connection or for room (per call: `options.timeoutMs`). Default 30,000 ms. */
  sendTimeoutMs?: number;
  /** Dial attempts (with backoff) before queued sends fail. Default 3. */
  dialAttempts?: number;
  /** First reconnect backoff; doubles per attempt, with jitter. Default 100 ms. */
  reconnectDelayMs?: number;
  /** Backoff cap. Default 10,000 ms. */
  maxReconnectDelayMs?: number;
  /** How long a graceful close waits for the peer's goodbye before it cuts the connection. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Idle time before TCP keep-alive probes (detects a peer that vanished silently). Default 10,000 ms. */
  keepAliveMs?: number;
  /**
   * A connection without traffic in either direction (messages, stream data, flow
   * control) and without open streams for this long is closed gracefully (GOAWAY, then
   * FIN; counted as `connections-idle-closed`); the next send dials again. Checked by one
   * sweep timer every `idleTimeoutMs / 4`, so the close comes after 1 to 1.25 times this
   * value. Connections kept on purpose (`openConnection`, `alwaysConnect`) and adopted
   * ones (`adoptTcpSocket`: hole-punched, which the layer could not dial again) are never
   * closed for idleness. Default 300,000 ms (5 min); 0 disables.
   */
  idleTimeoutMs?: number;
  /** Connect to every peer the discovery layer reports (`peer-connect`) and keep reconnecting. Default false. */
  alwaysConnect?: boolean;
  /** Instance name. Default `tcp`. */
  name?: string;
}

interface PeerState {
  readonly id: NodeId;
  /** The connection new sends use. */
  active: Connection | undefined;
  /** Every connection to this peer (dialing, open, draining). */
  readonly connections: Set<Connection>;
  /** Sends waiting for a connection. */
  queue: Waiter[];
  dialing: boolean;
  /** Reconnect whenever the connection is lost (openConnection, alwaysConnect). */
  keep: boolean;
  /** connection-open was emitted and connection-close not yet. */
  announced: boolean;
  /** A record from `peer-connect`, for when `getPeer` does not know the peer. */
  hint: PeerRecord | undefined;
  /** Our streams to this peer whose END or RESET is not written yet. */
  streamsOpen: number;
  /** Streams waiting for one of those to finish (the peer's stream limit), in order. */
  streamWaiters: StreamSlotWaiter[];
  /** The peer's stream limit from its latest HELLO; undefined before one (then 1 at a time). */
  streamLimit: number | undefined;
}

interface StreamSlotWaiter {
  grant(): void;
  fail(error: unknown): void;
}

function checkInteger(value: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`tcp: ${what} must be an integer in ${min}..${max}, got ${value}`);
  return value;
}

function compareIds(a: NodeId, b: NodeId): number {
  for (let i = 0; i < a.bytes.length; i++) {
    const d = a.bytes[i]! - b.bytes[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The TCP transport layer. Needs `getPeer` (discovery) and `localAddress`; provides
 * `openConnection`, `closeConnection`, `sendMessage`, `sendStream`, `localTcpPort`,
 * `adoptTcpSocket`; offers the `message` and `stream` hooks and the `connection-open` /
 * `connection-close` events.
 */
export function tcp(options: TcpOptions = {}) {
  const host = options.host ?? '127.0.0.1';
  const family = ipFamily(host);
  if (family === 0) throw new InvalidArgumentError(`tcp: host must be an IPv4 or IPv6 literal, got '${host}'`);
  const port = checkInteger(options.port ?? 0, 0, 65535, 'port');
  const settings: ConnectionSettings = {
    maxMessageBytes: checkInteger(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 0, MAX_U32, 'maxMessageBytes'),
    streamWindowBytes: checkInteger(options.streamWindowBytes ?? DEFAULT_STREAM_WINDOW_BYTES, 1024, MAX_U32, 'streamWindowBytes'),
    maxIncomingStreams: checkInteger(options.maxIncomingStreams ?? DEFAULT_MAX_INCOMING_STREAMS, 1, 1_000_000, 'maxIncomingStreams'),
    maxPendingBytes: checkInteger(options.maxPendingBytesPerPeer ?? DEFAULT_MAX_PENDING_BYTES_PER_PEER, 1, Number.MAX_SAFE_INTEGER, 'maxPendingBytesPerPeer'),
    handshakeTimeoutMs: checkInteger(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 1, 2 ** 31 - 1, 'connectTimeoutMs'),
    closeTimeoutMs: checkInteger(options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS, 1, 2 ** 31 - 1, 'closeTimeoutMs'),
  };
  const maxConnections = checkInteger(options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 1, 1_000_000, 'maxConnections');
  const maxIntroducingPerHost = checkInteger(options.maxIntroducingPerHost ?? DEFAULT_MAX_INTRODUCING_PER_HOST, 1, 1_000_000, 'maxIntroducingPerHost');
  const sendTimeoutMs = checkInteger(options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS, 1, 2 ** 31 - 1, 'sendTimeoutMs');
  const dialAttempts = checkInteger(options.dialAttempts ?? DEFAULT_DIAL_ATTEMPTS, 1, 1_000_000, 'dialAttempts');
  const reconnectDelayMs = checkInteger(options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS, 1, 2 ** 31 - 1, 'reconnectDelayMs');
  const maxReconnectDelayMs = checkInteger(options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS, reconnectDelayMs, 2 ** 31 - 1, 'maxReconnectDelayMs');
  const keepAliveMs = checkInteger(options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS, 0, 2 ** 31 - 1, 'keepAliveMs');
  const idleTimeoutMs = checkInteger(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31 - 1, 'idleTimeoutMs');
  const alwaysConnect = options.alwaysConnect ?? false;

  return defineLayer({
    type: 'tcp',
    name: options.name,
    protocol: TCP_PROTOCOL,
    needs: ['getPeer', 'localAddress'],
    optional: ['findPeer'],
    takesOptional: ['peer-connect'],
    provides: ['openConnection', 'closeConnection', 'connectionState', 'sendMessage', 'sendStream', 'localTcpPort', 'adoptTcpSocket'],
    offers: { message: 'exclusive', stream: 'exclusive', 'connection-open': 'event', 'connection-close': 'event' },
    create: (ctx) => {
      const self = ctx.identity.id;
      let server: Server | undefined;
      let boundPort: number | undefined;
      let running = false;
      let stopping = false;
      const peers = new Map<string, PeerState>();
      const connections = new Set<Connection>();
      /** Connections closed by closeConnection({ abort: true }), until their close is handled. */
      const aborted = new Set<Connection>();
      const owners = new Map<Connection, PeerState>();
      const hot: HotCounters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, streamBytesIn: 0, streamBytesOut: 0 };
      let streamsIn = 0;
      let streamsOut = 0;
      ctx.counters.attach(() => ({
        'messages-in': hot.messagesIn,
        'messages-out': hot.messagesOut,
        'bytes-in': hot.bytesIn,
        'bytes-out': hot.bytesOut,
        'stream-bytes-in': hot.streamBytesIn,
        'stream-bytes-out': hot.streamBytesOut,
        'streams-in': streamsIn,
        'streams-out': streamsOut,
      }));
      let helloCache: { key: PeerRecord; bytes: Uint8Array } | undefined;
      let stopIdleSweep: (() => void) | undefined;

      /**
       * Records `findPeer` gave after discovery's failed, that a dial then reached, by node:
       * dialled first next time (discovery's table may still hold the stale one) until one
       * fails. Outlives the peer's state (forgotten when idle); the oldest go beyond
       * {@link MAX_LEARNED_RECORDS}.
       */
      const learned = new Map<string, PeerRecord>();

      const peerState = (id: NodeId): PeerState => {
        let peer = peers.get(id.hex);
        if (!peer) {
          peer = { id, active: undefined, connections: new Set(), queue: [], dialing: false, keep: false, announced: false, hint: undefined, streamsOpen: 0, streamWaiters: [], streamLimit: undefined };
          peers.set(id.hex, peer);
        }
        return peer;
      };

      const liveQueue = (peer: PeerState): boolean => {
        peer.queue = peer.queue.filter((w) => !w.done);
        return peer.queue.length > 0;
      };

      const forgetIfIdle = (peer: PeerState): void => {
        if (!peer.active && peer.connections.size === 0 && !peer.dialing && !peer.keep && !liveQueue(peer) && peer.streamsOpen === 0 && peer.streamWaiters.length === 0) {
          peers.delete(peer.id.hex);
        }
      };

      /**
       * Stream slots: at most the peer's announced limit of our streams open to it at once,
       * the rest wait here in order (HTTP/2 clients queue the same way) instead of being
       * refused. Before the peer's HELLO the limit is unknown: one stream at a time.
       */
      const pumpStreamSlots = (peer: PeerState): void => {
        const limit = peer.streamLimit ?? 1;
        while (peer.streamWaiters.length > 0 && peer.streamsOpen < limit) {
          peer.streamsOpen++;
          peer.streamWaiters.shift()!.grant();
        }
      };

      const acquireStreamSlot = (peer: PeerState, signal: AbortSignal | undefined): Promise<void> | undefined => {
        if (peer.streamWaiters.length === 0 && peer.streamsOpen < (peer.streamLimit ?? 1)) {
          peer.streamsOpen++;
          return undefined;
        }
        ctx.counters.add('streams-queued');
        return new Promise<void>((resolve, reject) => {
          const waiter: StreamSlotWaiter = {
            grant: () => {
              signal?.removeEventListener('abort', onAbort);
              resolve();
            },
            fail: (error) => {
              signal?.removeEventListener('abort', onAbort);
              reject(error);
            },
          };
          const onAbort = (): void => {
            const at = peer.streamWaiters.indexOf(waiter);
            if (at >= 0) peer.streamWaiters.splice(at, 1);
            reject(new AbortError('tcp.sendStream: aborted while waiting for a stream slot', { cause: signal?.reason }));
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          peer.streamWaiters.push(waiter);
        });
      };

      /** Fails every stream waiting for a slot to `peer` (the node stops, or no connection could be made). */
      const failStreamWaiters = (peer: PeerState, error: unknown): void => {
        const waiters = peer.streamWaiters;
        peer.streamWaiters = [];
        for (const waiter of waiters) waiter.fail(error);
      };

      const releaseStreamSlot = (peer: PeerState): void => {
        peer.streamsOpen--;
        pumpStreamSlots(peer);
        forgetIfIdle(peer);
      };

      const failQueue = (peer: PeerState, error: Error): void => {
        const queue = peer.queue;
        peer.queue = [];
        for (const waiter of queue) if (!waiter.done) waiter.fail(error);
      };

      const usable = (connection: Connection | undefined): connection is Connection =>
        connection !== undefined && connection.state === 'open' && !connection.draining;

      /** Hands a waiter to the peer's connection, or queues it and dials. */
      const route = (peer: PeerState, waiter: Waiter): void => {
        if (usable(peer.active) && peer.queue.length === 0) {
          peer.active.enqueue(waiter);
          return;
        }
        if (waiter.early && peer.queue.length === 0 && !usable(peer.active)) {
          // A dial of ours already introduced itself: an early message can follow its HELLO.
          for (const connection of peer.connections) if (connection.acceptsEarly && waiter.early(connection)) return;
        }
        peer.queue.push(waiter);
        if (usable(peer.active)) flushQueue(peer, peer.active);
        else ensureDial(peer);
      };

      /**
       * Our dial is up and introduced itself: the early messages at the head of the queue
       * go out right behind the HELLO, in order (the first that cannot stops it).
       */
      const writeEarly = (peer: PeerState, connection: Connection): void => {
        const queue = peer.queue;
        let taken = 0;
        while (taken < queue.length) {
          const waiter = queue[taken]!;
          if (!waiter.done && !(waiter.early && waiter.early(connection))) break;
          taken++;
        }
        if (taken > 0) peer.queue = queue.slice(taken);
      };

      const flushQueue = (peer: PeerState, connection: Connection): void => {
        const queue = peer.queue;
        peer.queue = [];
        for (const waiter of queue) if (!waiter.done) connection.enqueue(waiter);
      };

      /** Of two open connections to one peer, the one both ends keep. */
      const preferred = (a: Connection, b: Connection): Connection => {
        const dialer = (c: Connection): NodeId => {
          const remote = c.remoteId!;
          if (c.adopted) return compareIds(self, remote) < 0 ? self : remote;
          return c.outbound ? self : remote;
        };
        const order = compareIds(dialer(a), dialer(b));
        // Different dialers (a simultaneous dial): the lower id's dial wins. The same dialer
        // dialed again because it gave the older one up: the newer wins.
        if (order !== 0) return order < 0 ? a : b;
        return a.sequence > b.sequence ? a : b;
      };

      const otherUsable = (peer: PeerState, except: Connection): Connection | undefined => {
        for (const c of peer.connections) if (c !== except && usable(c)) return c;
        return undefined;
      };

      const backoff = (attempt: number): number => {
        const base = Math.min(maxReconnectDelayMs, reconnectDelayMs * 2 ** Math.min(attempt - 1, 30));
        return base * (0.5 + ctx.random.float() / 2);
      };

      const connectionHost: ConnectionHost = {
        clock: ctx.clock,
        hot,
        settings,
        hello: () => {
          const record = ctx.localPeer();
          if (helloCache?.key !== record) {
            helloCache = { key: record, bytes: encodeHello({ streamWindow: settings.streamWindowBytes, maxMessageBytes: settings.maxMessageBytes, maxIncomingStreams: settings.maxIncomingStreams, peer: record }) };
          }
          return helloCache.bytes;
        },
        count: (name) => ctx.counters.add(name),
        established: (connection) => {
          const id = connection.remoteId!;
          if (id.equals(self)) {
            ctx.counters.add('refused.self');
            return new ConnectionError('IDENTITY_MISMATCH', 'tcp: connected to this node itself');
          }
          if (connection.expected && !connection.expected.equals(id)) {
            ctx.counters.add('identity-mismatches');
            return new ConnectionError('IDENTITY_MISMATCH', `tcp: expected node ${connection.expected.short}, the peer introduced itself as ${id.short}`);
          }
          if (stopping) return new StateError('STOPPED', 'tcp: the node is stopping');
          const peer = owners.get(connection) ?? peerState(id);
          owners.set(connection, peer);
          peer.connections.add(connection);
          // A peer that announces no limit (an older version) gets no limit from us.
          peer.streamLimit = connection.remote?.maxIncomingStreams ?? Number.POSITIVE_INFINITY;
          pumpStreamSlots(peer);
          const current = peer.active;
          if (!usable(current)) {
            peer.active = connection;
            flushQueue(peer, connection);
            if (!peer.announced) {
              peer.announced = true;
              ctx.emit('connection-open', id, connection.remoteAddress);
            }
            return undefined;
          }
          // Two connections to one peer (both dialed at once): keep one, drain the other
          // after moving everything it has not written yet to the one we keep.
          ctx.counters.add('duplicate-connections');
          const winner = preferred(current, connection);
          const loser = winner === current ? connection : current;
          peer.active = winner;
          for (const waiter of loser.takeWaiters()) winner.enqueue(waiter);
          flushQueue(peer, winner);
          loser.drain();
          return undefined;
        },
        message: (connection, data) => {
          const slot = ctx.slots.message;
          if (slot) slot(data, connection.remoteId!, connection.remoteAddress);
          else ctx.counters.drop('no-receiver');
        },
        stream: (connection, stream) => {
          const slot = ctx.slots.stream;
          if (!slot) {
            ctx.counters.drop('no-receiver');
            return false;
          }
          // A layer above that re-offers the hook may find nobody above it either.
          if (slot(stream, connection.remoteId!, connection.remoteAddress) === false) return false;
          streamsIn++;
          return true;
        },
        goaway: (connection) => {
          // The peer closes this connection; what we already admitted still goes out on it.
          connection.drain();
          const peer = owners.get(connection);
          if (peer && peer.active === connection) {
            peer.active = otherUsable(peer, connection);
            if (!peer.active && peer.keep) ensureDial(peer);
          }
        },
        closed: (connection, reason, unsent) => {
          connections.delete(connection);
          const wasAborted = aborted.delete(connection);
          const peer = owners.get(connection);
          owners.delete(connection);
          if (reason && connection.remote === undefined) ctx.counters.add('handshake-failures');
          if (!peer) return;
          peer.connections.delete(connection);
          if (peer.active === connection) peer.active = otherUsable(peer, connection);
          if (wasAborted) {
            // closeConnection({ abort: true }): what was not written fails (with the abort's
            // error, the connection's reason), nothing redials.
            for (const waiter of unsent) if (!waiter.done) waiter.fail(reason ?? new ConnectionError('CONNECTION_CLOSED', 'tcp: closeConnection aborted the connection'));
          } else if (unsent.length > 0) {
            // Never written: safe to send again on the next connection.
            peer.queue = [...unsent, ...peer.queue];
            if (usable(peer.active)) flushQueue(peer, peer.active);
          }
          const anyOpen = [...peer.connections].some((c) => c.state === 'open');
          if (!anyOpen && peer.announced) {
            peer.announced = false;
            if (wasAborted) ctx.counters.add('connections-aborted');
            else if (reason) ctx.counters.add('connections-lost');
            ctx.emit('connection-close', peer.id, reason);
          }
          if (!usable(peer.active) && running && !stopping && (peer.keep || liveQueue(peer))) ensureDial(peer);
          forgetIfIdle(peer);
        },
      };

      /**
       * The idle sweep (one timer for all connections): a connection that saw traffic since
       * the last sweep gets a fresh timestamp; one silent for `idleTimeoutMs`, with no open
       * stream and nothing being written, is closed gracefully. Kept peers (`openConnection`,
       * `alwaysConnect`) would be dialed again at once, and adopted (hole-punched)
       * connections could not be: neither is closed for idleness.
       */
      const sweepIdle = (): void => {
        if (!running || stopping) return;
        const now = ctx.clock.now();
        for (const connection of connections) {
          if (connection.state !== 'open' || connection.draining) continue;
          if (connection.activity) {
            connection.activity = false;
            connection.lastActivityAt = now;
            continue;
          }
          if (now - connection.lastActivityAt < idleTimeoutMs || connection.adopted || connection.busy) continue;
          const peer = owners.get(connection);
          if (peer?.keep) continue;
          ctx.counters.add('connections-idle-closed');
          if (peer && peer.active === connection) peer.active = otherUsable(peer, connection);
          connection.drain();
        }
      };

      const register = (socket: Socket, outbound: boolean, expected: NodeId | undefined, adopted = false): Connection => {
        const connection = new Connection(socket, outbound, connectionHost, expected, adopted);
        connections.add(connection);
        return connection;
      };

      /** The record to dial: one learned by a refresh, discovery's table, the `peer-connect` hint, else a `findPeer` lookup. */
      const recordOf = async (peer: PeerState): Promise<PeerRecord> => {
        let record = learned.get(peer.id.hex) ?? ctx.below.getPeer(peer.id) ?? peer.hint;
        if (!record && ctx.below.findPeer) record = await ctx.below.findPeer(peer.id, { signal: ctx.signal, timeoutMs: settings.handshakeTimeoutMs });
        if (!record) throw new NotFoundError(`tcp: no peer record for node ${peer.id.short} (discovery does not know it)`);
        return record;
      };

      /**
       * After a failed connect to `failed`: asks discovery's `findPeer` once for the peer's
       * record and returns it when it names another TCP address (the peer restarted on a
       * new TCP port, or moved), else undefined. It asks with `fresh: true`: kademlia then
       * asks the peer itself, at its UDP address, to introduce itself (and looks it up if it
       * does not answer); a discovery layer with no network source answers from its table.
       */
      const freshRecord = async (peer: PeerState, failed: PeerRecord): Promise<PeerRecord | undefined> => {
        const findPeer = ctx.below.findPeer;
        if (!findPeer) return undefined;
        let found: PeerRecord;
        try {
          found = await findPeer(peer.id, { signal: ctx.signal, timeoutMs: settings.handshakeTimeoutMs, fresh: true });
        } catch {
          return undefined; // not found, timed out, stopped: the old record's attempts go on
        }
        if (found.tcpPort === undefined || !found.id.equals(peer.id)) return undefined;
        if (found.tcpPort === failed.tcpPort && found.address.host === failed.address.host) return undefined;
        return found;
      };

      const dialOnce = async (peer: PeerState, record: PeerRecord): Promise<void> => {
        if (record.tcpPort === undefined) throw new ConnectionError('NO_TCP_PORT', `tcp: the peer record of node ${peer.id.short} has no TCP port`);
        if (connections.size >= maxConnections) {
          ctx.counters.add('refused.connection-limit');
          throw new ConnectionError('CONNECTION_LIMIT', `tcp: ${maxConnections} connections are open (maxConnections)`);
        }
        if (!running || stopping) throw new StateError('STOPPED', 'tcp: the node stopped');
        const socket = connect({
          host: record.address.host,
          port: record.tcpPort,
          noDelay: true,
          keepAlive: keepAliveMs > 0,
          keepAliveInitialDelay: keepAliveMs,
        });
        const connection = register(socket, true, peer.id);
        owners.set(connection, peer);
        peer.connections.add(connection);
        ctx.counters.add('connections-out');
        socket.once('connect', () => {
          connection.introduce();
          if (peer.queue.length > 0 && !usable(peer.active)) writeEarly(peer, connection);
        });
        await connection.ready;
      };

      const ensureDial = (peer: PeerState): void => {
        if (peer.dialing || !running || stopping) return;
        peer.dialing = true;
        const loop = async (): Promise<void> => {
          let attempt = 0;
          /** A record `findPeer` gave after a failed connect: used for the remaining attempts. */
          let fresh: PeerRecord | undefined;
          let refreshed = false;
          /** Something still needs the connection (a close empties the queue and clears keep). */
          const wanted = (): boolean => peer.keep || liveQueue(peer);
          while (running && !stopping && !usable(peer.active)) {
            if (!wanted()) return;
            let record: PeerRecord | undefined;
            try {
              record = fresh ?? (await recordOf(peer));
              // A close while the record was looked up leaves nothing to dial for.
              if (!running || stopping || !wanted()) return;
              await dialOnce(peer, record);
              // Reached at the address a refresh found: the next dial loop starts there.
              if (record === fresh) {
                learned.delete(peer.id.hex);
                learned.set(peer.id.hex, fresh);
                if (learned.size > MAX_LEARNED_RECORDS) learned.delete(learned.keys().next().value!);
              }
              return;
            } catch (error) {
              attempt++;
              ctx.counters.add('dial-failures');
              // A learned record that fails is forgotten: discovery's may be newer by now.
              if (record !== undefined && learned.get(peer.id.hex) === record) learned.delete(peer.id.hex);
              if (!running || stopping) return;
              // The connect itself failed (refused, timed out, or another node answers
              // there): the record may be stale, e.g. the peer restarted on a new TCP port.
              // Ask discovery once per dial loop for a fresh one.
              const connectFailed = error instanceof ConnectionError && (error.code === 'CONNECT_FAILED' || error.code === 'IDENTITY_MISMATCH');
              if (connectFailed && record && !refreshed && (peer.keep || attempt < dialAttempts)) {
                refreshed = true;
                const found = await freshRecord(peer, record);
                if (!running || stopping) return;
                if (found) {
                  fresh = found;
                  ctx.counters.add('redial-fresh-record');
                  // The failure says nothing about the new address: try it at once, no backoff.
                  continue;
                }
              }
              const permanent =
                error instanceof NotFoundError ||
                (error instanceof ConnectionError && (error.code === 'NO_TCP_PORT' || error.code === 'CONNECTION_LIMIT' || error.code === 'IDENTITY_MISMATCH'));
              if (!peer.keep && (permanent || attempt >= dialAttempts)) {
                failQueue(
                  peer,
                  permanent ? (error as Error) : new ConnectionError('CONNECT_FAILED', `tcp: could not connect to node ${peer.id.short} in ${attempt} attempts`, { cause: error }),
                );
                return;
              }
              if (attempt > 1) ctx.counters.add('reconnect-backoffs');
              try {
                await ctx.clock.sleep(backoff(attempt), ctx.signal);
              } catch {
                return;
              }
            }
          }
        };
        void loop()
          .catch((error: unknown) => ctx.logger.error('dial loop failed', { error }))
          .finally(() => {
            peer.dialing = false;
            // An inbound connection may have arrived while we slept: hand it what waits.
            if (usable(peer.active) && peer.queue.length > 0) flushQueue(peer, peer.active);
            forgetIfIdle(peer);
          });
      };

      /**
       * A waiter with a deadline (timeoutMs / sendTimeoutMs) and an abort signal. `write`
       * may return a promise (a large message the socket still reads from the caller's
       * buffer): the deadline then still runs, and if it passes, the connection is closed,
       * since half a frame cannot be taken back.
       */
      const waiterFor = (
        bytes: number,
        sendOptions: SendOptions | undefined,
        what: string,
        write: (connection: Connection) => Promise<void> | void,
        resolve: () => void,
        reject: (error: unknown) => void,
        writeEarly?: (connection: Connection) => boolean,
      ): Waiter => {
        const signal = sendOptions?.signal;
        const timeoutMs = sendOptions?.timeoutMs ?? sendTimeoutMs;
        let writing: Connection | undefined;
        let settled = false;
        const settle = (error?: unknown): void => {
          if (settled) return;
          settled = true;
          ctx.clock.clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (error === undefined) resolve();
          else reject(error);
        };
        const waiter: Waiter = {
          bytes,
          movable: true,
          done: false,
          write: (connection) => {
            let written: Promise<void> | void;
            try {
              written = write(connection);
            } catch (error) {
              settle(error);
              return;
            }
            if (!written) {
              settle();
              return;
            }
            writing = connection;
            written.then(
              () => settle(),
              (error: unknown) => settle(error),
            );
          },
          fail: (error) => {
            waiter.done = true;
            settle(error);
          },
        };
        if (writeEarly) {
          // Written ahead of the peer's HELLO: settled by the introduction (a refused or
          // failed one rejects it; it is not sent again, since it may have arrived).
          waiter.early = (connection) => {
            if (waiter.done || !writeEarly(connection)) return false;
            waiter.done = true;
            writing = connection;
            connection.ready.then(
              () => settle(),
              (error: unknown) => settle(error),
            );
            return true;
          };
        }
        const expire = (error: Error): void => {
          if (settled) return;
          if (!waiter.done) {
            waiter.fail(error);
            return;
          }
          ctx.counters.add('send-timeouts');
          writing?.destroy(error);
          settle(error);
        };
        const onAbort = (): void => expire(new AbortError(`tcp.${what}: aborted`, { cause: signal?.reason }));
        const timer = ctx.clock.setTimeout(() => expire(new TimeoutError(`tcp.${what}: not sent within ${timeoutMs} ms`)), timeoutMs);
        signal?.addEventListener('abort', onAbort, { once: true });
        return waiter;
      };

      const requireRunning = (what: string): void => {
        if (stopping) throw new StateError('STOPPED', `tcp.${what}: the node is stopping`);
        if (!running) throw new StateError('NOT_STARTED', `tcp.${what}: the layer is not started`);
      };

      const checkPeerId = (to: NodeId, what: string): void => {
        if (!(to instanceof NodeId)) throw new InvalidArgumentError(`tcp.${what}: 'to' must be a NodeId`);
        if (to.equals(self)) throw new InvalidArgumentError(`tcp.${what}: cannot connect to this node itself`);
      };

      /** A call's `timeoutMs`, when given, is a number of ms a timer can wait (NaN or -1 would fire at once). */
      const checkTimeout = (sendOptions: SendOptions | undefined, what: string): void => checkTimeoutMs(sendOptions?.timeoutMs, `tcp.${what}`);

      const onInbound = (socket: Socket): void => {
        if (!running || stopping) {
          socket.destroy();
          return;
        }
        if (connections.size >= maxConnections) {
          ctx.counters.add('refused.connection-limit');
          socket.destroy();
          return;
        }
        const remoteHost = socket.remoteAddress ?? '';
        const introducing = introducingByHost.get(remoteHost) ?? 0;
        if (introducing >= maxIntroducingPerHost) {
          ctx.counters.add('refused.introducing-per-host');
          socket.destroy();
          return;
        }
        introducingByHost.set(remoteHost, introducing + 1);
        ctx.counters.add('connections-in');
        const connection = register(socket, false, undefined);
        const introduced = (): void => {
          const left = (introducingByHost.get(remoteHost) ?? 1) - 1;
          if (left <= 0) introducingByHost.delete(remoteHost);
          else introducingByHost.set(remoteHost, left);
        };
        connection.ready.then(introduced, introduced);
      };
      /** Incoming connections per remote host still introducing themselves (see maxIntroducingPerHost). */
      const introducingByHost = new Map<string, number>();

      return {
        start: () =>
          new Promise<void>((resolve, reject) => {
            stopping = false;
            const created = createServer({ noDelay: true, keepAlive: keepAliveMs > 0, keepAliveInitialDelay: keepAliveMs });
            const onError = (error: Error): void => {
              created.close();
              reject(error);
            };
            created.once('error', onError);
            created.listen({ host, port, exclusive: true, ipv6Only: false }, () => {
              created.removeListener('error', onError);
              created.on('error', (error) => {
                ctx.counters.add('server-errors');
                ctx.logger.warn('server error', { error: error.message });
              });
              created.on('connection', onInbound);
              const address = created.address();
              boundPort = typeof address === 'object' && address ? address.port : undefined;
              server = created;
              running = true;
              if (idleTimeoutMs > 0) stopIdleSweep = ctx.clock.setInterval(sweepIdle, Math.ceil(idleTimeoutMs / IDLE_SWEEPS_PER_TIMEOUT));
              resolve();
            });
          }),
        stop: async () => {
          stopping = true;
          stopIdleSweep?.();
          stopIdleSweep = undefined;
          learned.clear();
          const stopped = new StateError('STOPPED', 'tcp: the node stopped');
          for (const peer of peers.values()) {
            failQueue(peer, stopped);
            failStreamWaiters(peer, stopped);
          }
          // Graceful close of everything: what was accepted is delivered, bounded by closeTimeoutMs.
          const closing = [...connections].map((connection) => {
            connection.drain();
            return connection.closedPromise;
          });
          await Promise.all(closing);
          const closingServer = server;
          server = undefined;
          if (closingServer) await new Promise<void>((resolve) => closingServer.close(() => resolve()));
          running = false;
          boundPort = undefined;
          peers.clear();
          owners.clear();
          helloCache = undefined;
        },
        status: () => ({
          host,
          port: boundPort,
          connections: connections.size,
          outbound: [...connections].filter((c) => c.outbound && c.state === 'open').length,
          peers: [...peers.values()].filter((p) => usable(p.active)).length,
          pendingBytes: [...connections].reduce((sum, c) => sum + c.pendingBytes, 0),
        }),
        takes: {
          'peer-connect': (record: PeerRecord) => {
            if (!alwaysConnect || !running || stopping || record.tcpPort === undefined || record.id.equals(self)) return;
            const peer = peerState(record.id);
            peer.hint = record;
            peer.keep = true;
            ensureDial(peer);
          },
        },
        provides: {
          localTcpPort: () => boundPort,
          openConnection: async (to: NodeId, sendOptions?: SendOptions) => {
            requireRunning('openConnection');
            checkPeerId(to, 'openConnection');
            checkTimeout(sendOptions, 'openConnection');
            throwIfAborted(sendOptions?.signal);
            const peer = peerState(to);
            if (usable(peer.active)) {
              peer.keep = true;
              return;
            }
            await new Promise<void>((resolve, reject) => {
              route(peer, waiterFor(0, sendOptions, 'openConnection', () => undefined, resolve, reject));
            });
            peer.keep = true;
          },
          closeConnection: async (to: NodeId, closeOptions?: CloseOptions) => {
            if (!(to instanceof NodeId)) throw new InvalidArgumentError(`tcp.closeConnection: 'to' must be a NodeId`);
            if (closeOptions !== undefined && (typeof closeOptions !== 'object' || closeOptions === null)) {
              throw new InvalidArgumentError('tcp.closeConnection: options must be an object');
            }
            const abort = closeOptions?.abort === true;
            const peer = peers.get(to.hex);
            if (!peer) return;
            peer.keep = false;
            // Errors are built only when something will carry them (a stack trace costs).
            // Its stack (the caller's) is kept only for the sends it fails.
            const abortError =
              abort && (peer.queue.length > 0 || peer.connections.size > 0)
                ? new ConnectionError('CONNECTION_CLOSED', 'tcp: closeConnection aborted the connection', { captureStack: peer.queue.length > 0 })
                : undefined;
            if (abortError && peer.queue.length > 0) failQueue(peer, abortError);
            else if (!abort && !usable(peer.active) && peer.queue.length > 0) failQueue(peer, new ConnectionError('CONNECTION_CLOSED', 'tcp: closeConnection was called before the connection was made'));
            peer.active = undefined;
            const closing = [...peer.connections].map((connection) => {
              if (abortError) {
                aborted.add(connection);
                connection.destroy(abortError);
              } else {
                connection.drain();
              }
              return connection.closedPromise;
            });
            await Promise.all(closing);
          },
          connectionState: (to: NodeId): ConnectionState => {
            if (!(to instanceof NodeId)) throw new InvalidArgumentError(`tcp.connectionState: 'to' must be a NodeId`);
            const peer = peers.get(to.hex);
            if (!peer) return 'none';
            let connecting = peer.dialing;
            for (const connection of peer.connections) {
              if (connection.state === 'open') return 'open';
              if (connection.state === 'handshake') connecting = true;
            }
            return connecting ? 'connecting' : 'none';
          },
          sendMessage: async (to: NodeId, data: Uint8Array, sendOptions?: SendOptions) => {
            requireRunning('sendMessage');
            checkPeerId(to, 'sendMessage');
            if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('tcp.sendMessage: data must be a Uint8Array');
            if (data.byteLength > settings.maxMessageBytes) throw messageTooLarge(data.byteLength, settings.maxMessageBytes, 'local');
            checkTimeout(sendOptions, 'sendMessage');
            throwIfAborted(sendOptions?.signal);
            const peer = peerState(to);
            const active = peer.active;
            // Fast path: a small message (copied, so done once written), connected, nothing
            // queued, room to write. No timer, no promise of our own.
            if (data.byteLength <= COPY_LIMIT_BYTES && usable(active) && peer.queue.length === 0 && active.canAdmitNow(FRAME_HEADER_LENGTH + data.byteLength)) {
              active.writeMessage(data);
              return;
            }
            const early = sendOptions?.early === true && data.byteLength <= EARLY_MESSAGE_BYTES ? (connection: Connection) => connection.writeEarlyMessage(data) : undefined;
            await new Promise<void>((resolve, reject) => {
              route(peer, waiterFor(FRAME_HEADER_LENGTH + data.byteLength, sendOptions, 'sendMessage', (connection) => connection.writeMessage(data), resolve, reject, early));
            });
          },
          sendStream: async (to: NodeId, source: ByteSource, sendOptions?: SendOptions) => {
            requireRunning('sendStream');
            checkPeerId(to, 'sendStream');
            if (source === null || typeof source !== 'object' || (!(Symbol.asyncIterator in source) && !(Symbol.iterator in source))) {
              throw new InvalidArgumentError('tcp.sendStream: source must be an iterable or async iterable of Uint8Array');
            }
            checkTimeout(sendOptions, 'sendStream');
            throwIfAborted(sendOptions?.signal);
            const peer = peerState(to);
            const signal = sendOptions?.signal;
            const slot = acquireStreamSlot(peer, signal);
            if (slot) await slot;
            let released = false;
            const release = (): void => {
              if (released) return;
              released = true;
              releaseStreamSlot(peer);
            };
            try {
              requireRunning('sendStream');
              let opened: { connection: Connection; id: number } | undefined;
              try {
                await new Promise<void>((resolve, reject) => {
                  const open = (connection: Connection): void => {
                    opened = { connection, id: connection.openStream() };
                  };
                  route(peer, waiterFor(FRAME_HEADER_LENGTH + 4, sendOptions, 'sendStream', open, resolve, reject));
                });
              } catch (error) {
                // No connection came up before the peer's limit was known: the streams
                // waiting behind this one were waiting on the same connection, as they
                // would have in the queue (an abort of this one only passes the slot on).
                if (peer.streamLimit === undefined && !(error instanceof AbortError)) failStreamWaiters(peer, error);
                throw error;
              }
              streamsOut++;
              // Small writes are gathered (copied) into chunks of up to 64 KiB: each chunk costs a
              // frame and a socket write. A stream that must stop gives up its wait on the source.
              const giveUp = new AbortController();
              await opened!.connection.sendStream(opened!.id, coalesceWrites(source, { signal: giveUp.signal }), signal, release, (reason) => giveUp.abort(reason));
            } finally {
              release();
            }
          },
          adoptTcpSocket: async (socket: Socket, adoptOptions?: AdoptOptions) => {
            requireRunning('adoptTcpSocket');
            if (connections.size >= maxConnections) {
              socket.destroy();
              throw new ConnectionError('CONNECTION_LIMIT', `tcp: ${maxConnections} connections are open (maxConnections)`);
            }
            socket.setNoDelay(true);
            if (keepAliveMs > 0) socket.setKeepAlive(true, keepAliveMs);
            const connection = register(socket, true, adoptOptions?.expected, true);
            ctx.counters.add('connections-adopted');
            connection.introduce();
            await connection.ready;
            return connection.remoteId!;
          },
        },
      };
    },
  });
}
