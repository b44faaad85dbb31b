/**
 * Fixed-peers wire format (protocol 0x0b, version 1), CONTROL frames of the layer framing:
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | HELLO | sender's peer record (answered with WELCOME) |
 * | 2 | WELCOME | sender's peer record |
 * | 3 | EXIT | sender's peer record (the sender is leaving) |
 */
import { ByteReader, encodeControl, encodePeerRecord, PROTOCOL, protocolId, readPeerRecord, WireError, type PeerRecord } from '@deccom/core';

export const FIXED_PEERS_PROTOCOL = protocolId('deccom/fixed-peers', PROTOCOL.fixedPeers, 1);
export const MESSAGE = { hello: 1, welcome: 2, exit: 3 } as const;
export type FixedPeersMessage = { type: (typeof MESSAGE)[keyof typeof MESSAGE]; peer: PeerRecord };

export function encodeMessage(type: FixedPeersMessage['type'], peer: PeerRecord): Uint8Array {
  return encodeControl(FIXED_PEERS_PROTOCOL, type, encodePeerRecord(peer));
}

export function decodeMessage(type: number, body: Uint8Array): FixedPeersMessage {
  if (type !== MESSAGE.hello && type !== MESSAGE.welcome && type !== MESSAGE.exit) throw new WireError('WIRE_UNKNOWN_TYPE', `fixed-peers: unknown message type ${type}`);
  const reader = new ByteReader(body);
  const peer = readPeerRecord(reader);
  reader.end('fixed-peers message');
  return { type, peer };
}
