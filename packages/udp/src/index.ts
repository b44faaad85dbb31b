/**
 * `@deccom/udp`: the UDP transport, on `node:dgram`, IPv4 or IPv6.
 *
 * @example
 * ```ts
 * import { createNode } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 *
 * const a = createNode({ layers: [udp({ host: '127.0.0.1' })] });
 * const b = createNode({ layers: [udp({ host: '127.0.0.1' })] });
 * await a.start(); await b.start();
 * b.handle('datagram', (data, from) => console.log(data, from));
 * a.sendDatagram(b.localAddress(), new Uint8Array([1, 2, 3]));
 * console.log('rtt', await a.sendPing(b.localAddress()), 'ms');
 * await a.stop(); await b.stop();
 * ```
 *
 * @packageDocumentation
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import {
  bytesToIp,
  checkTimeoutMs,
  defineLayer,
  FRAME_DATA,
  InvalidArgumentError,
  ipFamily,
  ipToBytes,
  PendingRequests,
  StateError,
  type Address,
} from '@deccom/core';
import { createReceiver, type TrafficCounters } from './receive.js';
import { DATA_OVERHEAD, encodePing, MESSAGE_PING, MESSAGE_PONG, UDP_PROTOCOL } from './wire.js';

export {
  UDP_PROTOCOL,
  DATA_OVERHEAD,
  PING_LENGTH,
  encodePing,
  decodePingBody,
  decodeControlDatagram,
  MESSAGE_PING,
  MESSAGE_PONG,
  type PingMessage,
} from './wire.js';

/**
 * Largest UDP payload the layer sends: 65,535 (IP length field) - 20 (IPv4 header) - 8
 * (UDP header). IPv6 would allow 65,527, but one limit for both families keeps
 * `maxDatagramSize()` independent of where a stack happens to run.
 */
export const UDP_MAX_PAYLOAD = 65_507;
/** Largest payload an upper layer may pass to `sendDatagram`: {@link UDP_MAX_PAYLOAD} minus the DATA frame byte. */
export const UDP_MAX_DATAGRAM = UDP_MAX_PAYLOAD - DATA_OVERHEAD;
/** Addresses whose pong rate is tracked at once (the least recently seen is forgotten first). */
const PONG_BUCKETS = 4096;
/** Default ping timeout. */
export const PING_TIMEOUT_MS = 2_000;
/** Default socket buffer sizes: large buffers avoid drops when bursts arrive faster than the event loop reads. */
export const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;

export interface UdpOptions {
  /**
   * IP literal to bind. Default `'127.0.0.1'`: a node is reachable only from this machine
   * until you opt in with `'0.0.0.0'` (all IPv4 interfaces), `'::'` (all IPv6) or a
   * specific interface address. `'::1'` is IPv6 loopback. An IPv6 socket is IPv6-only.
   */
  host?: string;
  /** Port to bind; 0 (default) picks a free port. */
  port?: number;
  /**
   * Requested kernel receive buffer (SO_RCVBUF) in bytes, applied after bind. Default 4 MiB.
   * The kernel may cap it (`net.core.rmem_max` on Linux); the size obtained is in
   * `describe()` status; a refusal is counted (`buffer-size-errors`), not fatal.
   */
  receiveBufferBytes?: number;
  /** Requested kernel send buffer (SO_SNDBUF) in bytes, applied after bind. Default 4 MiB. */
  sendBufferBytes?: number;
  /** Default ping timeout in ms. Default 2000. */
  pingTimeoutMs?: number;
  /** Most pings waiting for a pong at once; more reject at once. Default 10,000. */
  maxPendingPings?: number;
  /**
   * Most pongs sent per second to one address (a burst of up to this many, then this
   * rate); pings beyond it go unanswered, counted `dropped.pong-rate`. Bounds what a flood
   * of pings with a spoofed source can make this node send to a victim, without letting a
   * flood from some addresses starve the answers to others. Default 100.
   */
  maxPongsPerSecond?: number;
  /** Instance name. Default `udp`. */
  name?: string;
}

/**
 * The UDP transport layer. Provides `sendDatagram`, `localAddress`, `maxDatagramSize`,
 * `sendPing`; offers the exclusive hook `datagram` and the event `traffic`.
 */
export function udp(options: UdpOptions = {}) {
  const host = options.host ?? '127.0.0.1';
  const family = ipFamily(host);
  if (family === 0) throw new InvalidArgumentError(`udp: host must be an IPv4 or IPv6 literal, got '${host}'`);
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`udp: port must be 0..65535, got ${port}`);
  const pingTimeoutMs = options.pingTimeoutMs ?? PING_TIMEOUT_MS;
  if (!(pingTimeoutMs > 0)) throw new InvalidArgumentError(`udp: pingTimeoutMs must be > 0, got ${pingTimeoutMs}`);
  const maxPongsPerSecond = options.maxPongsPerSecond ?? 100;
  if (!Number.isInteger(maxPongsPerSecond) || maxPongsPerSecond < 1) throw new InvalidArgumentError(`udp: maxPongsPerSecond must be a positive integer, got ${maxPongsPerSecond}`);
  const receiveBufferBytes = options.receiveBufferBytes ?? DEFAULT_BUFFER_BYTES;
  const sendBufferBytes = options.sendBufferBytes ?? DEFAULT_BUFFER_BYTES;
  for (const [name, value] of [
    ['receiveBufferBytes', receiveBufferBytes],
    ['sendBufferBytes', sendBufferBytes],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError(`udp: ${name} must be a positive integer, got ${value}`);
  }

  return defineLayer({
    type: 'udp',
    name: options.name,
    protocol: UDP_PROTOCOL,
    provides: ['sendDatagram', 'localAddress', 'maxDatagramSize', 'sendPing'],
    offers: { datagram: 'exclusive', traffic: 'event' },
    create: (ctx) => {
      let socket: Socket | undefined;
      let bound: Address | undefined;
      /** Canonical text of every address a datagram to `bound.port` would reach this socket at. */
      let selfHosts = new Set<string>();
      /** An IPv4 wildcard bind also answers on the whole 127.0.0.0/8 loopback net. */
      const wildcardLoopback = host === '0.0.0.0';
      let buffers = { receive: 0, send: 0 };
      /** Send buffer with the DATA frame byte in place, and its last view (sizes often repeat). */
      const scratch = Buffer.allocUnsafeSlow(UDP_MAX_PAYLOAD);
      scratch[0] = FRAME_DATA;
      let scratchView = scratch.subarray(0, DATA_OVERHEAD);
      const pings = new PendingRequests<string, number>(ctx.clock, options.maxPendingPings ?? 10_000);
      const pongBuckets = new Map<string, { tokens: number; at: number }>();
      const counters = ctx.counters;
      const hot: TrafficCounters = { datagramsIn: 0, bytesIn: 0, datagramsOut: 0, bytesOut: 0 };
      counters.attach(() => ({ 'datagrams-in': hot.datagramsIn, 'bytes-in': hot.bytesIn, 'datagrams-out': hot.datagramsOut, 'bytes-out': hot.bytesOut }));

      /**
       * The socket's address lookup. dgram's default (dns.lookup) answers even for an IP
       * literal on a later tick, so every send would wait a tick and hold the caller's
       * buffer until then. Hosts are IP literals here (core address.ts), so this answers
       * at once and the send reaches the kernel inside `sendDatagram`. A host that is not a
       * literal of the socket's family is never answered: dgram then drops the send, and
       * `sendDatagram` counts it (`dropped.bad-address` / `dropped.address-family`).
       */
      let lastGoodHost = '';
      let lookupFailure: string | undefined;
      const lookup = (address: string, _family: unknown, callback: (error: Error | null, address: string, family: number) => void): void => {
        if (address === lastGoodHost) {
          callback(null, address, family);
          return;
        }
        const found = isIP(address);
        if (found === family) {
          lastGoodHost = address;
          callback(null, address, family);
        } else {
          lookupFailure = found === 0 ? 'bad-address' : 'address-family';
        }
      };

      const isSelf = (to: Address): boolean => {
        if (bound === undefined || to.port !== bound.port) return false;
        if (to.host === bound.host) return true;
        const canonical = canonicalHost(to.host);
        return canonical !== undefined && (selfHosts.has(canonical) || (wildcardLoopback && canonical.startsWith('127.')));
      };

      /**
       * Sends one framed datagram and counts it. Returns false (after counting the drop)
       * when dgram refused the address: a port it rejects, or a host the lookup refused.
       */
      const transmit = (to: Address, bytes: Uint8Array): boolean => {
        lookupFailure = undefined;
        try {
          socket!.send(bytes, to.port, to.host);
        } catch {
          // dgram validates the port synchronously (ERR_SOCKET_BAD_PORT).
          lookupFailure = 'bad-address';
        }
        if (lookupFailure !== undefined) {
          counters.drop(lookupFailure);
          return false;
        }
        hot.datagramsOut++;
        hot.bytesOut += bytes.byteLength;
        return true;
      };

      const badAddress = (what: string, to: Address): InvalidArgumentError =>
        new InvalidArgumentError(
          `udp.${what}: cannot send to ${JSON.stringify(to.host)} port ${String(to.port)} (an IPv${family} literal and a port 1..65535 are needed)`,
        );

      const onMessage = createReceiver({
        counters,
        hot,
        slots: ctx.slots,
        observed: ctx.observed,
        emit: ctx.emit,
        onPing: (from, pingId) => {
          // Port 0 cannot be answered (dgram refuses it); our own address is never sent to.
          if (socket === undefined || from.port === 0 || isSelf(from)) return;
          // A token bucket per address: up to maxPongsPerSecond at once, refilled at that rate.
          // The table is bounded; an address pushed out starts again with a full bucket.
          const key = `${from.host}|${from.port}`;
          const now = ctx.clock.now();
          let bucket = pongBuckets.get(key);
          if (bucket === undefined) {
            if (pongBuckets.size >= PONG_BUCKETS) pongBuckets.delete(pongBuckets.keys().next().value!);
            bucket = { tokens: maxPongsPerSecond, at: now };
          } else {
            pongBuckets.delete(key);
            bucket.tokens = Math.min(maxPongsPerSecond, bucket.tokens + (Math.max(0, now - bucket.at) * maxPongsPerSecond) / 1000);
            bucket.at = now;
          }
          pongBuckets.set(key, bucket);
          if (bucket.tokens < 1) {
            counters.drop('pong-rate');
            return;
          }
          bucket.tokens--;
          transmit(from, encodePing(MESSAGE_PONG, pingId));
        },
        onPong: (from, pingId) => pings.resolve(pingKey(from, pingId), ctx.clock.now()),
      });

      const notStarted = (what: string): StateError => new StateError('NOT_STARTED', `udp.${what}: the layer is not started`);

      return {
        start: () =>
          new Promise<void>((resolve, reject) => {
            const created = createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6, lookup });
            const onError = (error: Error): void => {
              created.removeListener('listening', onListening);
              created.close();
              reject(error);
            };
            const onListening = (): void => {
              created.removeListener('error', onError);
              // Never thrown out of a callback: counted and logged.
              created.on('error', (error) => {
                counters.add('socket-errors');
                ctx.logger.warn('socket error', { error: error.message });
              });
              created.on('message', onMessage);
              for (const [set, size, which] of [
                [(n: number) => created.setRecvBufferSize(n), receiveBufferBytes, 'receive'],
                [(n: number) => created.setSendBufferSize(n), sendBufferBytes, 'send'],
              ] as const) {
                try {
                  set(size);
                } catch (error) {
                  counters.add('buffer-size-errors');
                  ctx.logger.info(`could not set the ${which} buffer size`, { requested: size, error: (error as Error).message });
                }
              }
              buffers = { receive: created.getRecvBufferSize(), send: created.getSendBufferSize() };
              const address = created.address();
              socket = created;
              bound = { host, port: address.port };
              selfHosts = localHosts(host, family);
              resolve();
            };
            created.once('error', onError);
            created.once('listening', onListening);
            created.bind({ address: host, port, exclusive: true });
          }),
        stop: async () => {
          pings.rejectAll(new StateError('STOPPED', 'udp: the node stopped'));
          const closing = socket;
          socket = undefined;
          bound = undefined;
          if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
        },
        status: () => ({ address: bound, receiveBufferBytes: buffers.receive, sendBufferBytes: buffers.send, pendingPings: pings.size }),
        provides: {
          sendDatagram: (to: Address, data: Uint8Array) => {
            if (socket === undefined) throw notStarted('sendDatagram');
            const size = data.byteLength;
            if (size > UDP_MAX_DATAGRAM) {
              throw new InvalidArgumentError(`udp.sendDatagram: ${size} bytes exceed maxDatagramSize() = ${UDP_MAX_DATAGRAM}`);
            }
            if (to.port === bound!.port && isSelf(to)) {
              counters.drop('self');
              return;
            }
            // The payload is copied behind the frame byte: the caller may reuse its buffer
            // as soon as sendDatagram returns. When libuv has no send queued, the send
            // completes inside socket.send (the synchronous lookup plus libuv's try-send
            // hand the bytes to the kernel), so the copy goes to a scratch buffer that stays
            // hot in the cache (a fresh buffer per send cost ~8% at 1200 B). While sends are
            // queued (kernel buffer full), each gets its own exact-size buffer, and the
            // scratch is used again only once the queue is empty, so no queued send can
            // still be reading it. ([header, data] without a copy would let a queued send
            // read the caller's buffer after it was reused.)
            let framed: Buffer;
            if (socket.getSendQueueCount() === 0) {
              if (size !== scratchView.length - DATA_OVERHEAD) scratchView = scratch.subarray(0, size + DATA_OVERHEAD);
              framed = scratchView;
            } else {
              framed = Buffer.allocUnsafe(size + DATA_OVERHEAD);
              framed[0] = FRAME_DATA;
            }
            framed.set(data, DATA_OVERHEAD);
            if (!transmit(to, framed) && lookupFailure === 'bad-address') throw badAddress('sendDatagram', to);
          },
          localAddress: () => {
            if (bound === undefined) throw notStarted('localAddress');
            return bound;
          },
          maxDatagramSize: () => UDP_MAX_DATAGRAM,
          sendPing: async (to: Address, pingOptions = {}) => {
            if (socket === undefined) throw notStarted('sendPing');
            if (isSelf(to)) throw new InvalidArgumentError('udp.sendPing: cannot ping this node itself');
            checkTimeoutMs(pingOptions.timeoutMs, 'udp.sendPing');
            let pingId = 0;
            let key = '';
            do {
              pingId = ctx.random.int(2 ** 32);
              key = pingKey(to, pingId);
            } while (pings.has(key));
            const timeoutMs = pingOptions.timeoutMs ?? pingTimeoutMs;
            const sentAt = ctx.clock.now();
            const answered = pings.add(key, timeoutMs, `udp ping to ${to.host}:${to.port}`, pingOptions.signal);
            if (!transmit(to, encodePing(MESSAGE_PING, pingId))) {
              const error = lookupFailure === 'bad-address' ? badAddress('sendPing', to) : new InvalidArgumentError(`udp.sendPing: ${to.host} is not an IPv${family} address`);
              pings.reject(key, error);
            } else {
              counters.add('pings-out');
            }
            const at = await answered;
            return at - sentAt;
          },
        },
      };
    },
  });
}

const pingKey = (address: Address, pingId: number): string => `${address.host}|${address.port}|${pingId}`;

/** RFC 5952 text of an IP literal (so `0:0::1` and `::1` compare equal), undefined if not one. */
function canonicalHost(host: string): string | undefined {
  if (ipFamily(host) === 0) return undefined;
  return bytesToIp(ipToBytes(host));
}

/**
 * Hosts (canonical text) at which a datagram to the bound port reaches this socket: the
 * bound address; for loopback also the wildcard (Linux delivers a send to 0.0.0.0 or ::
 * to loopback); for a wildcard bind the loopback and every interface address of the family.
 */
function localHosts(host: string, family: 4 | 6): Set<string> {
  const own = canonicalHost(host)!;
  const wildcardHost = family === 4 ? '0.0.0.0' : '::';
  const loopbackHost = family === 4 ? '127.0.0.1' : '::1';
  const hosts = new Set<string>([own]);
  if (own === loopbackHost) hosts.add(wildcardHost);
  if (own === wildcardHost) {
    hosts.add(loopbackHost);
    for (const list of Object.values(networkInterfaces())) {
      for (const entry of list ?? []) {
        if ((entry.family === 'IPv4' ? 4 : 6) !== family) continue;
        const canonical = canonicalHost(entry.address);
        if (canonical !== undefined) hosts.add(canonical);
      }
    }
  }
  return hosts;
}
