/**
 * `memoryTransport(network)`: a datagram transport on the in-memory network that
 * behaves like `@deccom/udp` (same capabilities, hooks, framing, ping/pong and errors),
 * so every layer can be tested on a virtual clock with thousands of nodes.
 */
import { ipFamily, type Address } from '../address.js';
import { checkTimeoutMs, InvalidArgumentError, StateError } from '../errors.js';
import { ByteReader, ByteWriter } from '../bytes.js';
import { CONTROL_HEADER_LENGTH, decodeFrame, dropReason, FRAME_CONTROL, FRAME_DATA, PROTOCOL, protocolId } from '../frame.js';
import { defineLayer } from '../layer.js';
import { PendingRequests } from '../pending.js';
import { WireError } from '../errors.js';
import type { MemoryNetwork, Nat } from './memory-network.js';

export const MEMORY_PROTOCOL = protocolId('deccom/memory', PROTOCOL.memory, 1);
const MESSAGE_PING = 1;
const MESSAGE_PONG = 2;

export interface MemoryTransportOptions {
  /** Host to bind (an IPv4 literal). Default: a fresh host from the network, or a private host behind `nat`. */
  host?: string;
  /** Port; 0 (default) picks one. */
  port?: number;
  /** Put this node behind a NAT made with `network.createNat()`. */
  nat?: Nat;
  /** Payload limit per datagram, after this layer's framing byte. Default 1400. */
  maxDatagramSize?: number;
  /** Default ping timeout. Default 2000 ms. */
  pingTimeoutMs?: number;
  name?: string;
}

function encodePing(type: number, id: number): Uint8Array {
  return new ByteWriter(CONTROL_HEADER_LENGTH + 4).u8(FRAME_CONTROL).u8(MEMORY_PROTOCOL.id).u8(MEMORY_PROTOCOL.version).u8(type).u32(id).finish();
}

/** True when `to` is something a UDP socket could send to: an IP literal and a port 1..65535. */
const sendable = (to: Address): boolean =>
  typeof to === 'object' && to !== null && typeof to.host === 'string' && ipFamily(to.host) !== 0 && Number.isInteger(to.port) && to.port >= 1 && to.port <= 65_535;

const badAddress = (what: string, to: Address): InvalidArgumentError =>
  new InvalidArgumentError(`memory.${what}: cannot send to ${JSON.stringify(to?.host)} port ${String(to?.port)} (an IP literal and a port 1..65535 are needed)`);

/**
 * A datagram transport on `network`, behaving like `@deccom/udp`: provides
 * `sendDatagram`, `localAddress`, `maxDatagramSize` and `sendPing`; offers the exclusive
 * hook `datagram` and the event `traffic`. Binds on start (a fresh host unless `host`,
 * port 0 picks one), unbinds on stop; a restart rebinds the same address.
 */
export function memoryTransport(network: MemoryNetwork, options: MemoryTransportOptions = {}) {
  const maxPayload = options.maxDatagramSize ?? 1400;
  if (!Number.isInteger(maxPayload) || maxPayload < 0) throw new InvalidArgumentError(`memoryTransport: maxDatagramSize must be an integer >= 0, got ${maxPayload}`);
  const pingTimeoutMs = options.pingTimeoutMs ?? 2000;
  if (!(pingTimeoutMs > 0)) throw new InvalidArgumentError(`memoryTransport: pingTimeoutMs must be > 0, got ${pingTimeoutMs}`);
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InvalidArgumentError(`memoryTransport: port must be 0..65535, got ${port}`);
  if (options.host !== undefined && ipFamily(options.host) !== 4) throw new InvalidArgumentError(`memoryTransport: host must be an IPv4 literal, got '${options.host}'`);
  let host = options.host;
  return defineLayer({
    type: 'memory',
    name: options.name,
    protocol: MEMORY_PROTOCOL,
    provides: ['sendDatagram', 'localAddress', 'maxDatagramSize', 'sendPing'],
    offers: { datagram: 'exclusive', traffic: 'event' },
    create: (ctx) => {
      let bound: Address | undefined;
      // A restarted node rebinds the port it had, like a process with a configured port.
      let lastPort: number | undefined;
      const pings = new PendingRequests<string, number>(ctx.clock, 10_000);
      const counters = ctx.counters;
      const deliver = (data: Uint8Array, from: Address): void => {
        counters.add('datagrams-in');
        counters.add('bytes-in', data.byteLength);
        if (ctx.observed('traffic')) ctx.emit('traffic', from, data.byteLength);
        if (data.byteLength > 0 && data[0] === FRAME_DATA) {
          const slot = ctx.slots.datagram;
          if (slot) slot(data.subarray(1), from);
          else counters.drop('no-receiver');
          return;
        }
        try {
          const frame = decodeFrame(data, MEMORY_PROTOCOL);
          if (frame.kind !== 'control') return;
          if (frame.type !== MESSAGE_PING && frame.type !== MESSAGE_PONG) throw new WireError('WIRE_UNKNOWN_TYPE', `memory: control type ${frame.type}`);
          const reader = new ByteReader(frame.body);
          const id = reader.u32('ping id');
          reader.end('ping');
          if (frame.type === MESSAGE_PING) {
            counters.add('pings-in');
            if (bound) network.send(bound, from, encodePing(MESSAGE_PONG, id));
          } else if (!pings.resolve(`${from.host}|${from.port}|${id}`, ctx.clock.now())) {
            counters.drop('unsolicited-pong');
          }
        } catch (error) {
          counters.drop(dropReason(error));
        }
      };
      const endpoint = { deliver };
      const requireBound = (what: string): Address => {
        if (!bound) throw new StateError('NOT_STARTED', `memory.${what}: the layer is not started`);
        return bound;
      };
      return {
        start: () => {
          host ??= options.nat ? options.nat.allocatePrivateHost() : network.allocateHost();
          bound = network.bind(host, lastPort ?? port, endpoint, options.nat);
          lastPort = bound.port;
        },
        stop: () => {
          pings.rejectAll(new StateError('STOPPED', 'memory: the node stopped'));
          if (bound) network.unbind(bound);
          bound = undefined;
        },
        status: () => ({ address: bound, pendingPings: pings.size }),
        provides: {
          sendDatagram: (to: Address, data: Uint8Array) => {
            const from = requireBound('sendDatagram');
            if (data.byteLength > maxPayload) {
              throw new InvalidArgumentError(`memory.sendDatagram: ${data.byteLength} bytes exceed maxDatagramSize() = ${maxPayload}`);
            }
            if (to.host === from.host && to.port === from.port) {
              counters.drop('self');
              return;
            }
            if (!sendable(to)) throw badAddress('sendDatagram', to);
            if (ipFamily(to.host) !== 4) {
              counters.drop('address-family');
              return;
            }
            counters.add('datagrams-out');
            counters.add('bytes-out', data.byteLength + 1);
            const framed = new Uint8Array(data.byteLength + 1);
            framed.set(data, 1);
            network.send(from, to, framed);
          },
          localAddress: () => requireBound('localAddress'),
          maxDatagramSize: () => maxPayload,
          sendPing: async (to: Address, pingOptions = {}) => {
            const from = requireBound('sendPing');
            if (to.host === from.host && to.port === from.port) throw new InvalidArgumentError('memory.sendPing: cannot ping this node itself');
            if (!sendable(to)) throw badAddress('sendPing', to);
            if (ipFamily(to.host) !== 4) throw new InvalidArgumentError(`memory.sendPing: ${to.host} is not an IPv4 address`);
            checkTimeoutMs(pingOptions.timeoutMs, 'memory.sendPing');
            let id = 0;
            let key = '';
            do {
              id = ctx.random.int(2 ** 32);
              key = `${to.host}|${to.port}|${id}`;
            } while (pings.has(key));
            const sentAt = ctx.clock.now();
            const answered = pings.add(key, pingOptions.timeoutMs ?? pingTimeoutMs, `memory ping to ${to.host}:${to.port}`, pingOptions.signal);
            counters.add('pings-out');
            network.send(from, to, encodePing(MESSAGE_PING, id));
            return (await answered) - sentAt;
          },
        },
      };
    },
  });
}
