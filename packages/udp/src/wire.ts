/**
 * UDP layer wire format. Every datagram starts with the layer frame byte (core frame.ts):
 * `0x00` DATA carries the upper layers' payload; `0x01` CONTROL carries this layer's
 * ping and pong:
 *
 * | bytes | field |
 * |---|---|
 * | 1 | `0x01` CONTROL |
 * | 1 | protocol id `0x01` (udp) |
 * | 1 | version `1` |
 * | 1 | type: `1` ping, `2` pong |
 * | 4 | ping id (random, echoed by the pong), big-endian |
 */
import { ByteReader, ByteWriter, CONTROL_HEADER_LENGTH, decodeFrame, FRAME_CONTROL, PROTOCOL, protocolId, WireError } from '@deccom/core';

export const UDP_PROTOCOL = protocolId('deccom/udp', PROTOCOL.udp, 1);
export const MESSAGE_PING = 1;
export const MESSAGE_PONG = 2;
/** Exact length of a ping or pong datagram. */
export const PING_LENGTH = CONTROL_HEADER_LENGTH + 4;
/** Bytes the layer adds in front of an upper layer's payload (the DATA frame byte). */
export const DATA_OVERHEAD = 1;

export type PingMessage = { readonly type: typeof MESSAGE_PING | typeof MESSAGE_PONG; readonly pingId: number };

export function encodePing(type: typeof MESSAGE_PING | typeof MESSAGE_PONG, pingId: number): Uint8Array {
  return new ByteWriter(PING_LENGTH).u8(FRAME_CONTROL).u8(UDP_PROTOCOL.id).u8(UDP_PROTOCOL.version).u8(type).u32(pingId).finish();
}

/** Decodes the body of a ping or pong control message (after the 4-byte header). */
export function decodePingBody(type: number, body: Uint8Array): PingMessage {
  if (type !== MESSAGE_PING && type !== MESSAGE_PONG) throw new WireError('WIRE_UNKNOWN_TYPE', `udp: unknown control type ${type}`);
  const reader = new ByteReader(body);
  const pingId = reader.u32('udp ping id');
  reader.end('udp ping');
  return { type, pingId };
}

/**
 * Decodes a whole datagram that is not a DATA frame (the receive path hands DATA frames
 * up without calling this): a ping or a pong, or a {@link WireError} for anything else
 * (empty, unknown frame byte, other protocol or version, unknown type, wrong length).
 */
export function decodeControlDatagram(bytes: Uint8Array): PingMessage {
  const frame = decodeFrame(bytes, UDP_PROTOCOL);
  if (frame.kind !== 'control') throw new WireError('WIRE_MALFORMED', 'udp: a DATA frame is not a control message');
  return decodePingBody(frame.type, frame.body);
}
