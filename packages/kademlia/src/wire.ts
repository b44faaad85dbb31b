/**
 * Kademlia wire format: protocol id 0x08, version 1. Every message is a CONTROL frame of
 * the layer framing (core `frame.ts`: `0x01`, protocol id, version, type), then a body;
 * integers are big-endian, peer records use core's codec (version byte, flags, identity,
 * address, optional signature).
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | INTRODUCE | sender's peer record |
 * | 2 | ASK_ID | sender's peer record (please introduce yourself) |
 * | 3 | FIND_NODE | request id u32, target id (32), sender's peer record |
 * | 4 | FIND_TOPIC | request id u32, topic (32), sender's peer record |
 * | 5 | RESPONSE | request id u32, part u8, parts u8, provider count u8, node count u8, provider records, node records |
 * | 6 | ANNOUNCE | request id u32, topic (32), ttl seconds u32 (>= 1), sender's peer record |
 * | 7 | ANNOUNCE_ACK | request id u32 |
 * | 8 | WITHDRAW | topic (32), sender's peer record (no answer) |
 *
 * A response larger than one datagram is split into parts (`encodeResponse`); each part
 * is a complete message on its own, so a lost part loses only its records. Decoders are
 * strict: unknown types, truncation, trailing bytes, a part number out of range or a
 * zero TTL are {@link WireError}s.
 */
import {
  ByteReader,
  ByteWriter,
  CONTROL_HEADER_LENGTH,
  encodePeerRecord,
  FRAME_CONTROL,
  NODE_ID_LENGTH,
  PEER_RECORD_MAX_LENGTH,
  PROTOCOL,
  protocolId,
  readPeerRecord,
  WireError,
  type PeerRecord,
} from '@deccom/core';

export const KADEMLIA_PROTOCOL = protocolId('deccom/kademlia', PROTOCOL.kademlia, 1);

/** Message types (the byte after the protocol version). */
export const MESSAGE = {
  introduce: 1,
  askId: 2,
  findNode: 3,
  findTopic: 4,
  response: 5,
  announce: 6,
  announceAck: 7,
  withdraw: 8,
} as const;

export type MessageType = (typeof MESSAGE)[keyof typeof MESSAGE];

/** Topic keys are 32 bytes (e.g. SHA-256 of a name), like node ids. */
export const TOPIC_LENGTH = 32;
/** Request id, part, parts, provider count, node count. */
export const RESPONSE_HEADER_LENGTH = 4 + 1 + 1 + 1 + 1;
/** Most records of one kind in one part (the counts are u8). */
export const MAX_RECORDS_PER_PART = 255;
/** Most parts of one response (the part numbers are u8). */
export const MAX_PARTS = 255;

export type KademliaMessage =
  | { readonly type: typeof MESSAGE.introduce | typeof MESSAGE.askId; readonly peer: PeerRecord }
  | { readonly type: typeof MESSAGE.findNode | typeof MESSAGE.findTopic; readonly requestId: number; readonly target: Uint8Array; readonly peer: PeerRecord }
  | {
      readonly type: typeof MESSAGE.response;
      readonly requestId: number;
      readonly part: number;
      readonly parts: number;
      readonly providers: readonly PeerRecord[];
      readonly nodes: readonly PeerRecord[];
    }
  | { readonly type: typeof MESSAGE.announce; readonly requestId: number; readonly topic: Uint8Array; readonly ttlSeconds: number; readonly peer: PeerRecord }
  | { readonly type: typeof MESSAGE.announceAck; readonly requestId: number }
  | { readonly type: typeof MESSAGE.withdraw; readonly topic: Uint8Array; readonly peer: PeerRecord };

function recordsLength(records: readonly PeerRecord[]): number {
  let total = 0;
  // Encodings are cached per record by core: their length is cheaper than recomputing it.
  for (const record of records) total += encodePeerRecord(record).byteLength;
  return total;
}

/** Exact encoded length of `message`, control header included. */
export function messageLength(message: KademliaMessage): number {
  switch (message.type) {
    case MESSAGE.introduce:
    case MESSAGE.askId:
      return CONTROL_HEADER_LENGTH + encodePeerRecord(message.peer).byteLength;
    case MESSAGE.findNode:
    case MESSAGE.findTopic:
      return CONTROL_HEADER_LENGTH + 4 + NODE_ID_LENGTH + encodePeerRecord(message.peer).byteLength;
    case MESSAGE.response:
      return CONTROL_HEADER_LENGTH + RESPONSE_HEADER_LENGTH + recordsLength(message.providers) + recordsLength(message.nodes);
    case MESSAGE.announce:
      return CONTROL_HEADER_LENGTH + 4 + TOPIC_LENGTH + 4 + encodePeerRecord(message.peer).byteLength;
    case MESSAGE.announceAck:
      return CONTROL_HEADER_LENGTH + 4;
    case MESSAGE.withdraw:
      return CONTROL_HEADER_LENGTH + TOPIC_LENGTH + encodePeerRecord(message.peer).byteLength;
  }
}

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`kademlia: ${what} must be a u32, got ${value}`);
}

function check32(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) throw new RangeError(`kademlia: ${what} must be 32 bytes`);
}

/** Encodes one message as a complete CONTROL frame (one allocation). Throws RangeError on values out of range. */
export function encodeMessage(message: KademliaMessage): Uint8Array {
  const writer = new ByteWriter(messageLength(message));
  writer.u8(FRAME_CONTROL).u8(KADEMLIA_PROTOCOL.id).u8(KADEMLIA_PROTOCOL.version).u8(message.type);
  switch (message.type) {
    case MESSAGE.introduce:
    case MESSAGE.askId:
      writer.raw(encodePeerRecord(message.peer));
      break;
    case MESSAGE.findNode:
    case MESSAGE.findTopic:
      checkU32(message.requestId, 'request id');
      check32(message.target, 'target');
      writer.u32(message.requestId).raw(message.target).raw(encodePeerRecord(message.peer));
      break;
    case MESSAGE.response: {
      checkU32(message.requestId, 'request id');
      const { part, parts, providers, nodes } = message;
      if (!Number.isInteger(parts) || parts < 1 || parts > MAX_PARTS || !Number.isInteger(part) || part < 0 || part >= parts) {
        throw new RangeError(`kademlia: response part ${part} of ${parts}`);
      }
      if (providers.length > MAX_RECORDS_PER_PART || nodes.length > MAX_RECORDS_PER_PART) throw new RangeError('kademlia: more than 255 records of one kind in a part');
      writer.u32(message.requestId).u8(part).u8(parts).u8(providers.length).u8(nodes.length);
      for (const record of providers) writer.raw(encodePeerRecord(record));
      for (const record of nodes) writer.raw(encodePeerRecord(record));
      break;
    }
    case MESSAGE.announce:
      checkU32(message.requestId, 'request id');
      check32(message.topic, 'topic');
      if (!Number.isInteger(message.ttlSeconds) || message.ttlSeconds < 1 || message.ttlSeconds > 0xffff_ffff) {
        throw new RangeError(`kademlia: ttlSeconds must be 1..2^32-1, got ${message.ttlSeconds}`);
      }
      writer.u32(message.requestId).raw(message.topic).u32(message.ttlSeconds).raw(encodePeerRecord(message.peer));
      break;
    case MESSAGE.announceAck:
      checkU32(message.requestId, 'request id');
      writer.u32(message.requestId);
      break;
    case MESSAGE.withdraw:
      check32(message.topic, 'topic');
      writer.raw(message.topic).raw(encodePeerRecord(message.peer));
      break;
  }
  return writer.finish();
}

/**
 * A response split into as few parts as fit datagrams of `maxDatagramSize` bytes (what
 * the layer below accepts). Providers come first; every part stands alone. Throws
 * RangeError when a datagram cannot hold the largest possible peer record, or when more
 * than 255 parts would be needed.
 */
export function encodeResponse(requestId: number, providers: readonly PeerRecord[], nodes: readonly PeerRecord[], maxDatagramSize: number): Uint8Array[] {
  const budget = maxDatagramSize - CONTROL_HEADER_LENGTH - RESPONSE_HEADER_LENGTH;
  if (budget < PEER_RECORD_MAX_LENGTH) throw new RangeError(`kademlia: datagrams of ${maxDatagramSize} bytes cannot carry a peer record`);
  const total = recordsLength(providers) + recordsLength(nodes);
  if (total <= budget && providers.length <= MAX_RECORDS_PER_PART && nodes.length <= MAX_RECORDS_PER_PART) {
    return [encodeMessage({ type: MESSAGE.response, requestId, part: 0, parts: 1, providers, nodes })];
  }
  const groups: { providers: PeerRecord[]; nodes: PeerRecord[] }[] = [];
  let current = { providers: [] as PeerRecord[], nodes: [] as PeerRecord[] };
  let used = 0;
  const place = (record: PeerRecord, list: 'providers' | 'nodes'): void => {
    const length = encodePeerRecord(record).byteLength;
    if (used + length > budget || current[list].length === MAX_RECORDS_PER_PART) {
      groups.push(current);
      current = { providers: [], nodes: [] };
      used = 0;
    }
    current[list].push(record);
    used += length;
  };
  for (const record of providers) place(record, 'providers');
  for (const record of nodes) place(record, 'nodes');
  groups.push(current);
  if (groups.length > MAX_PARTS) throw new RangeError(`kademlia: a response of ${groups.length} parts exceeds ${MAX_PARTS}`);
  return groups.map((group, part) => encodeMessage({ type: MESSAGE.response, requestId, part, parts: groups.length, ...group }));
}

/** Decodes the body of a Kademlia control message of `type`. Throws {@link WireError}. */
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
      const requestId = reader.u32('kademlia request id');
      const target = reader.bytesCopy(NODE_ID_LENGTH, 'kademlia target');
      message = { type, requestId, target, peer: readPeerRecord(reader) };
      break;
    }
    case MESSAGE.response: {
      const requestId = reader.u32('kademlia request id');
      const part = reader.u8('kademlia response part');
      const parts = reader.u8('kademlia response parts');
      if (parts === 0 || part >= parts) throw new WireError('WIRE_MALFORMED', `kademlia response: part ${part} of ${parts}`);
      const providerCount = reader.u8('kademlia provider count');
      const nodeCount = reader.u8('kademlia node count');
      // Each record takes at least 3 + 1 + 4 + 2 bytes: refuse impossible counts before reading.
      if ((providerCount + nodeCount) * 10 > reader.remaining) throw new WireError('WIRE_TRUNCATED', `kademlia response: ${providerCount + nodeCount} records cannot fit ${reader.remaining} bytes`);
      const providers: PeerRecord[] = new Array<PeerRecord>(providerCount);
      for (let i = 0; i < providerCount; i++) providers[i] = readPeerRecord(reader);
      const nodes: PeerRecord[] = new Array<PeerRecord>(nodeCount);
      for (let i = 0; i < nodeCount; i++) nodes[i] = readPeerRecord(reader);
      message = { type, requestId, part, parts, providers, nodes };
      break;
    }
    case MESSAGE.announce: {
      const requestId = reader.u32('kademlia request id');
      const topic = reader.bytesCopy(TOPIC_LENGTH, 'kademlia topic');
      const ttlSeconds = reader.u32('kademlia ttl');
      if (ttlSeconds === 0) throw new WireError('WIRE_MALFORMED', 'kademlia announce: a TTL of 0 seconds');
      message = { type, requestId, topic, ttlSeconds, peer: readPeerRecord(reader) };
      break;
    }
    case MESSAGE.announceAck:
      message = { type, requestId: reader.u32('kademlia request id') };
      break;
    case MESSAGE.withdraw: {
      const topic = reader.bytesCopy(TOPIC_LENGTH, 'kademlia topic');
      message = { type, topic, peer: readPeerRecord(reader) };
      break;
    }
    default:
      throw new WireError('WIRE_UNKNOWN_TYPE', `kademlia: unknown message type ${type}`);
  }
  reader.end(`kademlia message ${type}`);
  return message;
}

// Thin helpers for the common messages.

export function encodeIntroduce(type: typeof MESSAGE.introduce | typeof MESSAGE.askId, peer: PeerRecord): Uint8Array {
  return encodeMessage({ type, peer });
}

export function encodeFind(type: typeof MESSAGE.findNode | typeof MESSAGE.findTopic, requestId: number, target: Uint8Array, peer: PeerRecord): Uint8Array {
  return encodeMessage({ type, requestId, target, peer });
}

export function encodeAnnounce(requestId: number, topic: Uint8Array, ttlSeconds: number, peer: PeerRecord): Uint8Array {
  return encodeMessage({ type: MESSAGE.announce, requestId, topic, ttlSeconds, peer });
}

export function encodeAnnounceAck(requestId: number): Uint8Array {
  return encodeMessage({ type: MESSAGE.announceAck, requestId });
}

export function encodeWithdraw(topic: Uint8Array, peer: PeerRecord): Uint8Array {
  return encodeMessage({ type: MESSAGE.withdraw, topic, peer });
}
