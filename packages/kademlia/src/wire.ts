/**
 * Kademlia wire format (protocol id 0x08, version 1). Every message is a CONTROL frame
 * of the layer framing (core frame.ts), body big-endian:
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | INTRODUCE | sender's peer record |
 * | 2 | ASK_ID | sender's peer record (please introduce yourself) |
 * | 3 | FIND_NODE | request id u32, target id (32), sender's peer record |
 * | 4 | FIND_TOPIC | request id u32, topic (32), sender's peer record |
 * | 5 | RESPONSE | request id u32, part u8, parts u8, providers u8, nodes u8, provider records, node records |
 * | 6 | ANNOUNCE | request id u32, topic (32), ttl seconds u32, sender's peer record |
 * | 7 | ANNOUNCE_ACK | request id u32 |
 *
 * A response larger than one datagram is split into parts; each part stands alone.
 */
import {
  ByteReader,
  ByteWriter,
  CONTROL_HEADER_LENGTH,
  encodeControl,
  encodePeerRecord,
  NODE_ID_LENGTH,
  PEER_RECORD_MAX_LENGTH,
  PROTOCOL,
  protocolId,
  readPeerRecord,
  WireError,
  type PeerRecord,
} from '@deccom/core';

export const KADEMLIA_PROTOCOL = protocolId('deccom/kademlia', PROTOCOL.kademlia, 1);

export const MESSAGE = {
  introduce: 1,
  askId: 2,
  findNode: 3,
  findTopic: 4,
  response: 5,
  announce: 6,
  announceAck: 7,
} as const;

export const TOPIC_LENGTH = 32;
export const RESPONSE_HEADER_LENGTH = 4 + 4;
/** Most records of one kind in one part (u8 counts). */
export const MAX_RECORDS_PER_PART = 255;

export type KademliaMessage =
  | { type: typeof MESSAGE.introduce; peer: PeerRecord }
  | { type: typeof MESSAGE.askId; peer: PeerRecord }
  | { type: typeof MESSAGE.findNode; requestId: number; target: Uint8Array; peer: PeerRecord }
  | { type: typeof MESSAGE.findTopic; requestId: number; target: Uint8Array; peer: PeerRecord }
  | { type: typeof MESSAGE.response; requestId: number; part: number; parts: number; providers: PeerRecord[]; nodes: PeerRecord[] }
  | { type: typeof MESSAGE.announce; requestId: number; topic: Uint8Array; ttlSeconds: number; peer: PeerRecord }
  | { type: typeof MESSAGE.announceAck; requestId: number };

export function encodeIntroduce(type: typeof MESSAGE.introduce | typeof MESSAGE.askId, peer: PeerRecord): Uint8Array {
  return encodeControl(KADEMLIA_PROTOCOL, type, encodePeerRecord(peer));
}

export function encodeFind(type: typeof MESSAGE.findNode | typeof MESSAGE.findTopic, requestId: number, target: Uint8Array, peer: PeerRecord): Uint8Array {
  const record = encodePeerRecord(peer);
  return encodeControl(KADEMLIA_PROTOCOL, type, new ByteWriter(4 + NODE_ID_LENGTH + record.length).u32(requestId).raw(target).raw(record).finish());
}

export function encodeAnnounce(requestId: number, topic: Uint8Array, ttlSeconds: number, peer: PeerRecord): Uint8Array {
  const record = encodePeerRecord(peer);
  return encodeControl(
    KADEMLIA_PROTOCOL,
    MESSAGE.announce,
    new ByteWriter(4 + TOPIC_LENGTH + 4 + record.length).u32(requestId).raw(topic).u32(ttlSeconds).raw(record).finish(),
  );
}

export function encodeAnnounceAck(requestId: number): Uint8Array {
  return encodeControl(KADEMLIA_PROTOCOL, MESSAGE.announceAck, new ByteWriter(4).u32(requestId).finish());
}

/**
 * Splits a response into as few datagrams as fit `maxDatagramSize` (the size the layer
 * below accepts). Providers come first; every part is a complete message.
 */
export function encodeResponse(requestId: number, providers: readonly PeerRecord[], nodes: readonly PeerRecord[], maxDatagramSize: number): Uint8Array[] {
  const budget = maxDatagramSize - CONTROL_HEADER_LENGTH - RESPONSE_HEADER_LENGTH;
  if (budget < PEER_RECORD_MAX_LENGTH) throw new RangeError(`kademlia: datagrams of ${maxDatagramSize} bytes cannot carry a peer record`);
  const items = [...providers.map((p) => ({ kind: 0, bytes: encodePeerRecord(p) })), ...nodes.map((n) => ({ kind: 1, bytes: encodePeerRecord(n) }))];
  const groups: { kind: number; bytes: Uint8Array }[][] = [];
  let current: { kind: number; bytes: Uint8Array }[] = [];
  let used = 0;
  let counts = [0, 0];
  for (const item of items) {
    if (current.length > 0 && (used + item.bytes.length > budget || counts[item.kind] === MAX_RECORDS_PER_PART)) {
      groups.push(current);
      current = [];
      used = 0;
      counts = [0, 0];
    }
    current.push(item);
    used += item.bytes.length;
    counts[item.kind]!++;
  }
  groups.push(current);
  if (groups.length > 255) throw new RangeError('kademlia: response needs more than 255 parts');
  return groups.map((group, part) => {
    const size = group.reduce((sum, item) => sum + item.bytes.length, 0);
    const writer = new ByteWriter(RESPONSE_HEADER_LENGTH + size)
      .u32(requestId)
      .u8(part)
      .u8(groups.length)
      .u8(group.filter((i) => i.kind === 0).length)
      .u8(group.filter((i) => i.kind === 1).length);
    for (const item of group) writer.raw(item.bytes);
    return encodeControl(KADEMLIA_PROTOCOL, MESSAGE.response, writer.finish());
  });
}

/** Decodes the body of a Kademlia control message of `type`. Throws WireError. */
export function decodeMessage(type: number, body: Uint8Array): KademliaMessage {
  const reader = new ByteReader(body);
  let message: KademliaMessage;
  switch (type) {
    case MESSAGE.introduce:
    case MESSAGE.askId:
      message = { type, peer: readPeerRecord(reader) };
      break;
    case MESSAGE.findNode:
    case MESSAGE.findTopic: {
      const requestId = reader.u32('request id');
      const target = reader.bytesCopy(NODE_ID_LENGTH, 'target');
      message = { type, requestId, target, peer: readPeerRecord(reader) };
      break;
    }
    case MESSAGE.response: {
      const requestId = reader.u32('request id');
      const part = reader.u8('part');
      const parts = reader.u8('parts');
      if (parts === 0 || part >= parts) throw new WireError('WIRE_MALFORMED', `kademlia response: part ${part} of ${parts}`);
      const providerCount = reader.u8('provider count');
      const nodeCount = reader.u8('node count');
      const providers: PeerRecord[] = [];
      const nodes: PeerRecord[] = [];
      for (let i = 0; i < providerCount; i++) providers.push(readPeerRecord(reader));
      for (let i = 0; i < nodeCount; i++) nodes.push(readPeerRecord(reader));
      message = { type, requestId, part, parts, providers, nodes };
      break;
    }
    case MESSAGE.announce: {
      const requestId = reader.u32('request id');
      const topic = reader.bytesCopy(TOPIC_LENGTH, 'topic');
      const ttlSeconds = reader.u32('ttl');
      message = { type, requestId, topic, ttlSeconds, peer: readPeerRecord(reader) };
      break;
    }
    case MESSAGE.announceAck:
      message = { type, requestId: reader.u32('request id') };
      break;
    default:
      throw new WireError('WIRE_UNKNOWN_TYPE', `kademlia: unknown message type ${type}`);
  }
  reader.end(`kademlia message ${type}`);
  return message;
}
