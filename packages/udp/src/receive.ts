/**
 * The UDP layer's receive path, kept apart from the socket so tests can drive it
 * directly with millions of inputs (the fuzz test) while the layer uses the very same
 * function as its socket's `message` listener. Not part of the public surface.
 */
import { dropReason, FRAME_DATA, type Address, type Counters, type HookHandler } from '@deccom/core';
import { DATA_OVERHEAD, decodeControlDatagram, MESSAGE_PING } from './wire.js';

/** Per-datagram counters, kept in plain fields (a map update per packet costs too much). */
export interface TrafficCounters {
  datagramsIn: number;
  bytesIn: number;
  datagramsOut: number;
  bytesOut: number;
}

/** What the receive path needs from its layer. */
export interface ReceiveContext {
  readonly counters: Counters;
  readonly hot: TrafficCounters;
  /** The upper layer's `datagram` handler, read on every datagram (it may be set late). */
  readonly slots: { readonly datagram?: HookHandler<'datagram'> };
  observed(event: 'traffic'): boolean;
  emit(event: 'traffic', from: Address, bytes: number): void;
  /** A valid ping arrived: answer it. */
  onPing(from: Address, pingId: number): void;
  /** A valid pong arrived: false when no ping of ours waits for it. */
  onPong(from: Address, pingId: number): boolean;
}

/**
 * Builds the `message` listener. It never throws: DATA frames go up (or are counted as
 * `dropped.no-receiver`), pings and pongs go to the layer, everything else is counted
 * under `dropped.<reason>`.
 */
export function createReceiver(ctx: ReceiveContext): (message: Uint8Array, rinfo: { address: string; port: number }) => void {
  const { counters, hot } = ctx;
  return (message, rinfo) => {
    const length = message.byteLength;
    hot.datagramsIn++;
    hot.bytesIn += length;
    const from: Address = { host: rinfo.address, port: rinfo.port };
    if (ctx.observed('traffic')) ctx.emit('traffic', from, length);
    // Fast path: DATA frames go straight up, as a view without the frame byte.
    if (length > 0 && message[0] === FRAME_DATA) {
      const deliver = ctx.slots.datagram;
      if (deliver !== undefined) deliver(new Uint8Array(message.buffer, message.byteOffset + DATA_OVERHEAD, length - DATA_OVERHEAD), from);
      else counters.drop('no-receiver');
      return;
    }
    let ping;
    try {
      ping = decodeControlDatagram(message);
    } catch (error) {
      counters.drop(dropReason(error));
      return;
    }
    if (ping.type === MESSAGE_PING) {
      counters.add('pings-in');
      ctx.onPing(from, ping.pingId);
    } else if (ctx.onPong(from, ping.pingId)) {
      counters.add('pongs-in');
    } else {
      counters.drop('unsolicited-pong');
    }
  };
}
