/**
 * `@deccom/udp`: the UDP transport, on `node:dgram`.
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
import {
  decodeFrame,
  defineLayer,
  dropReason,
  FRAME_DATA,
  InvalidArgumentError,
  ipFamily,
  PendingRequests,
  StateError,
  type Address,
} from '@deccom/core';
import { decodePingBody, encodePing, MESSAGE_PING, MESSAGE_PONG, UDP_PROTOCOL } from './wire.js';

export { UDP_PROTOCOL, encodePing, decodePingBody, MESSAGE_PING, MESSAGE_PONG } from './wire.js';

/** Largest UDP payload over IPv4 (65,535 - 8 UDP header - 20 IP header). */
export const UDP_MAX_PAYLOAD = 65_507;
/** Default ping timeout. */
export const PING_TIMEOUT_MS = 2_000;
/** Default socket buffer sizes: large buffers avoid drops when bursts arrive faster than the event loop reads. */
export const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;

export interface UdpOptions {
  /** IP literal to bind. Default `'127.0.0.1'` (loopback: opt in to `'0.0.0.0'` or `'::'` to be reachable). */
  host?: string;
  /** Port to bind; 0 (default) picks a free port. */
  port?: number;
  /** Requested kernel receive buffer in bytes. Default 4 MiB (the kernel may cap it; see `status()`). */
  receiveBufferBytes?: number;
  /** Requested kernel send buffer in bytes. Default 4 MiB. */
  sendBufferBytes?: number;
  /** Default ping timeout in ms. Default 2000. */
  pingTimeoutMs?: number;
  /** Most pings waiting for a pong at once. Default 10,000. */
  maxPendingPings?: number;
  /** Instance name. Default `udp`. */
  name?: string;
}

/** The UDP transport layer. Provides sendDatagram, localAddress, maxDatagramSize, sendPing; offers `datagram` and `traffic`. */
export function udp(options: UdpOptions = {}) {
  const host = options.host ?? '127.0.0.1';
  const family = ipFamily(host);
  if (family === 0) throw new InvalidArgumentError(`udp: host must be an IPv4 or IPv6 literal, got '${host}'`);
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`udp: port must be 0..65535, got ${port}`);
  const pingTimeoutMs = options.pingTimeoutMs ?? PING_TIMEOUT_MS;

  return defineLayer({
    type: 'udp',
    name: options.name,
    protocol: UDP_PROTOCOL,
    provides: ['sendDatagram', 'localAddress', 'maxDatagramSize', 'sendPing'],
    offers: { datagram: 'exclusive', traffic: 'event' },
    create: (ctx) => {
      let socket: Socket | undefined;
      let bound: Address | undefined;
      let buffers = { receive: 0, send: 0 };
      const pings = new PendingRequests<string, number>(ctx.clock, options.maxPendingPings ?? 10_000);
      const counters = ctx.counters;
      // Per-packet counters live in plain variables: a map update per datagram would cost
      // more than the rest of the hot path.
      const hot = { datagramsIn: 0, bytesIn: 0, datagramsOut: 0, bytesOut: 0 };
      counters.attach(() => ({ 'datagrams-in': hot.datagramsIn, 'bytes-in': hot.bytesIn, 'datagrams-out': hot.datagramsOut, 'bytes-out': hot.bytesOut }));

      const isSelf = (to: Address): boolean => bound !== undefined && to.port === bound.port && (to.host === bound.host || isLoopbackOf(to.host, bound.host));

      // No per-send callback: a failed send surfaces as the socket's 'error' event, counted there.
      const sendRaw = (to: Address, data: Uint8Array): void => {
        socket!.send(data, to.port, to.host);
      };

      const onMessage = (message: Buffer, rinfo: { address: string; port: number }): void => {
        const from: Address = { host: rinfo.address, port: rinfo.port };
        hot.datagramsIn++;
        hot.bytesIn += message.length;
        if (ctx.observed('traffic')) ctx.emit('traffic', from, message.length);
        // Fast path: DATA frames go straight up.
        if (message.length > 0 && message[0] === FRAME_DATA) {
          const deliver = ctx.slots.datagram;
          if (deliver) deliver(message.subarray(1), from);
          else counters.drop('no-receiver');
          return;
        }
        try {
          const frame = decodeFrame(message, UDP_PROTOCOL);
          if (frame.kind !== 'control') return;
          const ping = decodePingBody(frame.type, frame.body);
          if (ping.type === MESSAGE_PING) {
            counters.add('pings-in');
            if (socket) sendRaw(from, encodePing(MESSAGE_PONG, ping.pingId));
          } else if (!pings.resolve(`${from.host}|${from.port}|${ping.pingId}`, ctx.clock.now())) {
            counters.drop('unsolicited-pong');
          }
        } catch (error) {
          counters.drop(dropReason(error));
        }
      };

      const requireSocket = (what: string): Socket => {
        if (socket === undefined || bound === undefined) throw new StateError('NOT_STARTED', `udp.${what}: the layer is not started`);
        return socket;
      };

      return {
        start: () =>
          new Promise<void>((resolve, reject) => {
            const created = createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 });
            const onError = (error: Error): void => {
              created.removeListener('listening', onListening);
              created.close();
              reject(error);
            };
            const onListening = (): void => {
              created.removeListener('error', onError);
              created.on('error', (error) => {
                counters.add('socket-errors');
                ctx.logger.warn('socket error', { error: error.message });
              });
              created.on('message', onMessage);
              try {
                created.setRecvBufferSize(options.receiveBufferBytes ?? DEFAULT_BUFFER_BYTES);
                created.setSendBufferSize(options.sendBufferBytes ?? DEFAULT_BUFFER_BYTES);
              } catch (error) {
                counters.add('buffer-size-errors');
                ctx.logger.info('could not set socket buffer sizes', { error: (error as Error).message });
              }
              buffers = { receive: created.getRecvBufferSize(), send: created.getSendBufferSize() };
              const address = created.address();
              socket = created;
              bound = { host, port: address.port };
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
            requireSocket('sendDatagram');
            if (data.byteLength > UDP_MAX_PAYLOAD - 1) {
              throw new InvalidArgumentError(`udp.sendDatagram: ${data.byteLength} bytes exceed maxDatagramSize() = ${UDP_MAX_PAYLOAD - 1}`);
            }
            if (isSelf(to)) {
              counters.drop('self');
              return;
            }
            hot.datagramsOut++;
            hot.bytesOut += data.byteLength + 1;
            // dgram reads the buffer on a later tick (after its address lookup), so the
            // payload is copied behind the frame byte: the caller may reuse its buffer.
            const framed = Buffer.allocUnsafe(data.byteLength + 1);
            framed[0] = FRAME_DATA;
            framed.set(data, 1);
            sendRaw(to, framed);
          },
          localAddress: () => {
            if (!bound) throw new StateError('NOT_STARTED', 'udp.localAddress: the layer is not started');
            return bound;
          },
          maxDatagramSize: () => UDP_MAX_PAYLOAD - 1,
          sendPing: async (to: Address, pingOptions = {}) => {
            requireSocket('sendPing');
            if (isSelf(to)) throw new InvalidArgumentError('udp.sendPing: cannot ping this node itself');
            let pingId = 0;
            let key = '';
            do {
              pingId = ctx.random.int(2 ** 32);
              key = `${to.host}|${to.port}|${pingId}`;
            } while (pings.has(key));
            const sentAt = ctx.clock.now();
            const answered = pings.add(key, pingOptions.timeoutMs ?? pingTimeoutMs, `udp ping to ${to.host}:${to.port}`, pingOptions.signal);
            counters.add('pings-out');
            sendRaw(to, encodePing(MESSAGE_PING, pingId));
            const at = await answered;
            return at - sentAt;
          },
        },
      };
    },
  });
}

function isLoopbackOf(a: string, b: string): boolean {
  const loop = (h: string): boolean => h === '127.0.0.1' || h === '::1' || h === '0.0.0.0' || h === '::';
  return loop(a) && loop(b);
}
