/**
 * Peer records: who a node is and where to reach it. Discovery layers carry them.
 *
 * Wire layout (version 1), all integers big-endian:
 *
 * | bytes | field |
 * |---|---|
 * | 1 | version = 1 |
 * | 1 | flags: bit0 string identity, bit1 IPv6, bit2 TCP port present, bit3 signed; others 0 |
 * | 1 | identity length L (Ed25519: 32; string: 1..63) |
 * | L | identity |
 * | 4 or 16 | IP address |
 * | 2 | UDP port |
 * | 2 | TCP port (if bit2) |
 * | 64 | Ed25519 signature (if bit3) over `"deccom/peer-record/1" ‖ every byte above` |
 */
import { ByteReader, ByteWriter, utf8Encode } from './bytes.js';
import { WireError, IdentityError } from './errors.js';
import { Identity, NodeId, PublicIdentity } from './identity.js';
import { ipFamily, type Address } from './address.js';
import { bytesToIp, ipToBytes } from './ip.js';

export const PEER_RECORD_VERSION = 1;
const SIGNING_CONTEXT = utf8Encode('deccom/peer-record/1');
const FLAG_STRING = 0x01;
const FLAG_IPV6 = 0x02;
const FLAG_TCP = 0x04;
const FLAG_SIGNED = 0x08;
const KNOWN_FLAGS = FLAG_STRING | FLAG_IPV6 | FLAG_TCP | FLAG_SIGNED;
/** Largest encoded record: header 3 + string 63 + IPv6 16 + ports 4 + signature 64. */
export const PEER_RECORD_MAX_LENGTH = 3 + 63 + 16 + 4 + 64;

export interface PeerRecord {
  readonly identity: PublicIdentity;
  readonly id: NodeId;
  readonly address: Address;
  readonly tcpPort?: number | undefined;
  /** Signature by the identity key over the record (only Ed25519 identities sign). */
  readonly signature?: Uint8Array | undefined;
}

export function createPeerRecord(identity: PublicIdentity, address: Address, tcpPort?: number): PeerRecord {
  return { identity, id: identity.id, address, tcpPort };
}

function unsignedLength(record: PeerRecord): number {
  const ipLength = ipFamily(record.address.host) === 6 ? 16 : 4;
  return 3 + record.identity.bytes.length + ipLength + 2 + (record.tcpPort !== undefined ? 2 : 0);
}

/** Exact encoded length of `record`. */
export function peerRecordLength(record: PeerRecord): number {
  return unsignedLength(record) + (record.signature ? 64 : 0);
}

function writeUnsigned(writer: ByteWriter, record: PeerRecord): void {
  const v6 = ipFamily(record.address.host) === 6;
  let flags = 0;
  if (record.identity.kind === 'string') flags |= FLAG_STRING;
  if (v6) flags |= FLAG_IPV6;
  if (record.tcpPort !== undefined) flags |= FLAG_TCP;
  if (record.signature) flags |= FLAG_SIGNED;
  writer.u8(PEER_RECORD_VERSION).u8(flags).bytes8(record.identity.bytes).raw(ipToBytes(record.address.host)).u16(record.address.port);
  if (record.tcpPort !== undefined) writer.u16(record.tcpPort);
}

// Records are immutable: each one is encoded once (discovery sends the same records
// over and over in responses).
const encodedRecords = new WeakMap<PeerRecord, Uint8Array>();

export function encodePeerRecord(record: PeerRecord): Uint8Array {
  const cached = encodedRecords.get(record);
  if (cached !== undefined) return cached;
  const encoded = encodeUncached(record);
  encodedRecords.set(record, encoded);
  return encoded;
}

function encodeUncached(record: PeerRecord): Uint8Array {
  const writer = new ByteWriter(peerRecordLength(record));
  writeUnsigned(writer, record);
  if (record.signature) writer.raw(record.signature);
  return writer.finish();
}

function signingInput(record: PeerRecord): Uint8Array {
  const writer = new ByteWriter(SIGNING_CONTEXT.length + unsignedLength(record));
  writer.raw(SIGNING_CONTEXT);
  writeUnsigned(writer, { ...record, signature: new Uint8Array(64) });
  return writer.finish();
}

/** A copy of `record` signed by `identity` (which must be the record's identity). */
export function signPeerRecord(record: PeerRecord, identity: Identity): PeerRecord {
  if (!identity.public.equals(record.identity)) throw new IdentityError('INVALID_KEY', 'signPeerRecord: the identity does not own this record');
  return { ...record, signature: identity.sign(signingInput(record)) };
}

/** True when the record carries a valid signature by its own identity. */
export function verifyPeerRecord(record: PeerRecord): boolean {
  return record.signature !== undefined && record.identity.verify(signingInput(record), record.signature);
}

// Decoded identities are immutable, and a node sees the same peers again and again:
// caching them saves the SHA-256 of the id on every record (bounded; cleared when full).
const IDENTITY_CACHE_LIMIT = 65_536;
const identityCache = new Map<string, PublicIdentity>();
function cachedIdentity(isString: boolean, bytes: Uint8Array): PublicIdentity {
  const key = (isString ? 's' : 'e') + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  let identity = identityCache.get(key);
  if (identity === undefined) {
    identity = new PublicIdentity(isString ? 'string' : 'ed25519', bytes);
    if (identityCache.size >= IDENTITY_CACHE_LIMIT) identityCache.clear();
    identityCache.set(key, identity);
  }
  return identity;
}

// Decoded records are immutable and the same records arrive again and again: decode
// each distinct encoding once (bounded; cleared when full).
const RECORD_CACHE_LIMIT = 65_536;
const recordCache = new Map<string, PeerRecord>();

/** Reads one record from `reader` (for lists of records inside a message). */
export function readPeerRecord(reader: ByteReader): PeerRecord {
  const start = reader.position;
  const peek = reader.peek(3);
  if (peek !== undefined && peek[0] === PEER_RECORD_VERSION) {
    const flags = peek[1]!;
    const length = 3 + peek[2]! + ((flags & FLAG_IPV6) !== 0 ? 16 : 4) + 2 + ((flags & FLAG_TCP) !== 0 ? 2 : 0) + ((flags & FLAG_SIGNED) !== 0 ? 64 : 0);
    const whole = reader.peek(length);
    if (whole !== undefined) {
      const key = Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength).toString('latin1');
      const hit = recordCache.get(key);
      if (hit !== undefined) {
        reader.bytesView(length);
        return hit;
      }
      const record = readPeerRecordUncached(reader);
      if (reader.position - start === length) {
        if (recordCache.size >= RECORD_CACHE_LIMIT) recordCache.clear();
        recordCache.set(key, record);
        encodedRecords.set(record, whole.slice());
      }
      return record;
    }
  }
  return readPeerRecordUncached(reader);
}

function readPeerRecordUncached(reader: ByteReader): PeerRecord {
  const version = reader.u8('peer record version');
  if (version !== PEER_RECORD_VERSION) throw new WireError('WIRE_UNSUPPORTED_VERSION', `peer record version ${version} is not supported`);
  const flags = reader.u8('peer record flags');
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new WireError('WIRE_MALFORMED', `peer record: unknown flags 0x${flags.toString(16)}`);
  const identityLength = reader.u8('peer record identity length');
  const isString = (flags & FLAG_STRING) !== 0;
  if (isString ? identityLength < 1 || identityLength > 63 : identityLength !== 32) {
    throw new WireError('WIRE_MALFORMED', `peer record: identity length ${identityLength} is invalid for a ${isString ? 'string' : 'Ed25519'} identity`);
  }
  const identityBytes = reader.bytesCopy(identityLength, 'peer record identity');
  const ipBytes = reader.bytesView((flags & FLAG_IPV6) !== 0 ? 16 : 4, 'peer record address');
  const port = reader.u16('peer record UDP port');
  const tcpPort = (flags & FLAG_TCP) !== 0 ? reader.u16('peer record TCP port') : undefined;
  const signature = (flags & FLAG_SIGNED) !== 0 ? reader.bytesCopy(64, 'peer record signature') : undefined;
  if (isString) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(identityBytes);
    } catch (cause) {
      throw new WireError('WIRE_MALFORMED', 'peer record: string identity is not UTF-8', { cause });
    }
  }
  const identity = cachedIdentity(isString, identityBytes);
  return { identity, id: identity.id, address: { host: bytesToIp(ipBytes), port }, tcpPort, signature };
}

/** Decodes exactly one record; trailing bytes are an error. */
export function decodePeerRecord(bytes: Uint8Array): PeerRecord {
  const reader = new ByteReader(bytes);
  const record = readPeerRecord(reader);
  reader.end('peer record');
  return record;
}

export function writePeerRecord(writer: ByteWriter, record: PeerRecord): void {
  writer.raw(encodePeerRecord(record));
}
