/**
 * BigGossip wire format (protocol 0x0a, version 1). Every message is a CONTROL frame of the
 * layer framing, body big-endian:
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | INTRODUCE | sender's peer record |
 * | 2 | PULL | request id u32, sender's peer record |
 * | 3 | PULL_RESPONSE | request id u32, count u8, peer records |
 * | 4 | PUSH | a third peer's record ("meet this peer") |
 * | 5 | FIND | find id (8 bytes), target id (32), hops left u8, origin's peer record |
 * | 6 | FOUND | find id (8 bytes), the target's peer record |
 * | 7 | LEAVE | notice id (8 bytes), hops left u8, leaving node's id (32) |
 * | 8 | SUSPECT | notice id (8 bytes), hops left u8, suspected node's id (32) |
 */
import {
  ByteReader,
  ByteWriter,
  CONTROL_HEADER_LENGTH,
  encodeControl,
  encodePeerRecord,
  NODE_ID_LENGTH,
  PROTOCOL,
  protocolId,
  readPeerRecord,
  WireError,
  type PeerRecord,
} from '@deccom/core';

export const BIGGOSSIP_PROTOCOL = protocolId('deccom/biggossip', PROTOCOL.biggossip, 1);
export const MESSAGE = { introduce: 1, pull: 2, pullResponse: 3, push: 4, find: 5, found: 6, leave: 7, suspect: 8 } as const;
export const NOTICE_ID_LENGTH = 8;

export type BigGossipMessage =
  | { type: typeof MESSAGE.introduce | typeof MESSAGE.push; peer: PeerRecord }
  | { type: typeof MESSAGE.pull; requestId: number; peer: PeerRecord }
  | { type: typeof MESSAGE.pullResponse; requestId: number; peers: PeerRecord[] }
  | { type: typeof MESSAGE.find; findId: Uint8Array; target: Uint8Array; hops: number; origin: PeerRecord }
  | { type: typeof MESSAGE.found; findId: Uint8Array; peer: PeerRecord }
  | { type: typeof MESSAGE.leave | typeof MESSAGE.suspect; noticeId: Uint8Array; hops: number; subject: Uint8Array };

export function encodeRecordMessage(type: typeof MESSAGE.introduce | typeof MESSAGE.push, peer: PeerRecord): Uint8Array {
  return encodeControl(BIGGOSSIP_PROTOCOL, type, encodePeerRecord(peer));
}

export function encodePull(requestId: number, peer: PeerRecord): Uint8Array {
  const record = encodePeerRecord(peer);
  return encodeControl(BIGGOSSIP_PROTOCOL, MESSAGE.pull, new ByteWriter(4 + record.length).u32(requestId).raw(record).finish());
}

/** Pull responses split to fit `maxDatagramSize`; each part stands alone. */
export function encodePullResponse(requestId: number, peers: readonly PeerRecord[], maxDatagramSize: number): Uint8Array[] {
  const budget = maxDatagramSize - CONTROL_HEADER_LENGTH - 5;
  const parts: Uint8Array[][] = [[]];
  let used = 0;
  for (const peer of peers) {
    const record = encodePeerRecord(peer);
    let current = parts[parts.length - 1]!;
    if (current.length > 0 && (used + record.length > budget || current.length === 255)) {
      current = [];
      parts.push(current);
      used = 0;
    }
    current.push(record);
    used += record.length;
  }
  return parts.map((records) => {
    const size = records.reduce((sum, r) => sum + r.length, 0);
    const writer = new ByteWriter(5 + size).u32(requestId).u8(records.length);
    for (const r of records) writer.raw(r);
    return encodeControl(BIGGOSSIP_PROTOCOL, MESSAGE.pullResponse, writer.finish());
  });
}

export function encodeFind(findId: Uint8Array, target: Uint8Array, hops: number, origin: PeerRecord): Uint8Array {
  const record = encodePeerRecord(origin);
  return encodeControl(
    BIGGOSSIP_PROTOCOL,
    MESSAGE.find,
    new ByteWriter(NOTICE_ID_LENGTH + NODE_ID_LENGTH + 1 + record.length).raw(findId).raw(target).u8(hops).raw(record).finish(),
  );
}

export function encodeFound(findId: Uint8Array, peer: PeerRecord): Uint8Array {
  const record = encodePeerRecord(peer);
  return encodeControl(BIGGOSSIP_PROTOCOL, MESSAGE.found, new ByteWriter(NOTICE_ID_LENGTH + record.length).raw(findId).raw(record).finish());
}

export function encodeNotice(type: typeof MESSAGE.leave | typeof MESSAGE.suspect, noticeId: Uint8Array, hops: number, subject: Uint8Array): Uint8Array {
  return encodeControl(BIGGOSSIP_PROTOCOL, type, new ByteWriter(NOTICE_ID_LENGTH + 1 + NODE_ID_LENGTH).raw(noticeId).u8(hops).raw(subject).finish());
}

export function decodeMessage(type: number, body: Uint8Array): BigGossipMessage {
  const reader = new ByteReader(body);
  let message: BigGossipMessage;
  switch (type) {
    case MESSAGE.introduce:
    case MESSAGE.push:
      message = { type, peer: readPeerRecord(reader) };
      break;
    case MESSAGE.pull:
      message = { type, requestId: reader.u32('request id'), peer: readPeerRecord(reader) };
      break;
    case MESSAGE.pullResponse: {
      const requestId = reader.u32('request id');
      const count = reader.u8('count');
      const peers: PeerRecord[] = [];
      for (let i = 0; i < count; i++) peers.push(readPeerRecord(reader));
      message = { type, requestId, peers };
      break;
    }
    case MESSAGE.find: {
      const findId = reader.bytesCopy(NOTICE_ID_LENGTH, 'find id');
      const target = reader.bytesCopy(NODE_ID_LENGTH, 'target');
      const hops = reader.u8('hops');
      message = { type, findId, target, hops, origin: readPeerRecord(reader) };
      break;
    }
    case MESSAGE.found:
      message = { type, findId: reader.bytesCopy(NOTICE_ID_LENGTH, 'find id'), peer: readPeerRecord(reader) };
      break;
    case MESSAGE.leave:
    case MESSAGE.suspect:
      message = { type, noticeId: reader.bytesCopy(NOTICE_ID_LENGTH, 'notice id'), hops: reader.u8('hops'), subject: reader.bytesCopy(NODE_ID_LENGTH, 'subject') };
      break;
    default:
      throw new WireError('WIRE_UNKNOWN_TYPE', `biggossip: unknown message type ${type}`);
  }
  reader.end(`biggossip message ${type}`);
  return message;
}
