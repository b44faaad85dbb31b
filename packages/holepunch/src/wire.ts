/**
 * Hole punching and relay wire formats. Every message is a CONTROL frame of the layer
 * framing (core `frame.ts`): `0x01, protocol id, version, type, body`. Bodies are
 * big-endian, every length is checked, and trailing bytes are an error.
 *
 * Hole punching, protocol `deccom/holepunch` (id 0x0c), version 1:
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | PUNCH_REQUEST | nonce u32, sender's NAT type u8, target address |
 * | 2 | PUNCH_RELAYED | nonce u32, initiator's NAT type u8, initiator's address as the introducer saw it |
 * | 3 | PROBE | nonce u32 |
 * | 4 | PROBE_ACK | nonce u32, flags u8 (bit 0: the probe came unasked, no punch was under way), the prober's address as the acknowledger saw it |
 * | 5 | OBSERVE_REQUEST | nonce u32 |
 * | 6 | OBSERVED | nonce u32, transport u8 (1 UDP, 2 TCP), the address the reporter saw |
 * | 7 | TCP_OFFER | nonce u32, candidate count u8 (1..8), candidate addresses |
 * | 8 | TCP_ANSWER | nonce u32, candidate count u8 (0..8), candidate addresses (0: declined) |
 *
 * Relay, protocol `deccom/relay` (id 0x0e), version 1:
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | OPEN | nonce u32, target address |
 * | 2 | INCOMING | session u32, the opener's address as the relay saw it |
 * | 3 | ACCEPT | session u32 |
 * | 4 | OPENED | nonce u32, session u32 |
 * | 5 | DATA | session u32, payload (the rest of the datagram, opaque to the relay) |
 * | 6 | CLOSE | session u32, reason u8 |
 * | 7 | REFUSED | id u32 (OPEN nonce or session), id kind u8 (1 nonce, 2 session), reason u8 |
 *
 * An address is `family u8 (4 or 6), IP (4 or 16 bytes), port u16` (port 1..65535).
 */
import {
  ByteReader,
  ByteWriter,
  bytesToIp,
  CONTROL_HEADER_LENGTH,
  encodeControl,
  ipFamily,
  ipToBytes,
  PROTOCOL,
  protocolId,
  WireError,
  type Address,
} from '@deccom/core';

export const HOLEPUNCH_PROTOCOL = protocolId('deccom/holepunch', PROTOCOL.holepunch, 1);
export const RELAY_PROTOCOL = protocolId('deccom/relay', PROTOCOL.relay, 1);

/** Message types of {@link HOLEPUNCH_PROTOCOL}. */
export const PUNCH_MESSAGE = {
  punchRequest: 1,
  punchRelayed: 2,
  probe: 3,
  probeAck: 4,
  observeRequest: 5,
  observed: 6,
  tcpOffer: 7,
  tcpAnswer: 8,
} as const;

/** Message types of {@link RELAY_PROTOCOL}. */
export const RELAY_MESSAGE = {
  open: 1,
  incoming: 2,
  accept: 3,
  opened: 4,
  data: 5,
  close: 6,
  refused: 7,
} as const;

/**
 * A NAT type as carried on the wire (a node's own classification, see `nat.ts`).
 * Numbers are stable; unknown values decode as an error.
 */
export const WIRE_NAT_TYPE = {
  unknown: 0,
  none: 1,
  cone: 2,
  symmetric: 3,
} as const;
export type WireNatType = keyof typeof WIRE_NAT_TYPE;
const NAT_TYPE_BY_NUMBER: readonly WireNatType[] = ['unknown', 'none', 'cone', 'symmetric'];

/** PROBE_ACK flag: the probe arrived unasked (no punch for its nonce was under way), so the path is direct. */
export const PROBE_ACK_UNSOLICITED = 0x01;
const PROBE_ACK_FLAGS = PROBE_ACK_UNSOLICITED;

/** Transport of an OBSERVED report. */
export const OBSERVED_TRANSPORT = { udp: 1, tcp: 2 } as const;
export type ObservedTransport = keyof typeof OBSERVED_TRANSPORT;

/** Why a relay closed or refused a session. Numbers are stable. */
export const RELAY_REASON = {
  /** The peer closed it (ordinary end). */
  closed: 0,
  /** The relay serves its most sessions already (connection budget). */
  sessions: 1,
  /** The session or the relay as a whole is over its bandwidth budget. */
  bandwidth: 2,
  /** This node does not relay for others. */
  disabled: 3,
  /** The target refused the session. */
  declined: 4,
  /** The relay does not know the target or the session. */
  unknown: 5,
  /** The session was idle too long. */
  idle: 6,
  /** The session carried its most bytes (per-session byte budget). */
  bytes: 7,
  /** The relay or the peer is shutting down. */
  stopping: 8,
} as const;
export type RelayReason = keyof typeof RELAY_REASON;
const RELAY_REASON_BY_NUMBER: readonly RelayReason[] = ['closed', 'sessions', 'bandwidth', 'disabled', 'declined', 'unknown', 'idle', 'bytes', 'stopping'];

export const REFUSED_ID_KIND = { nonce: 1, session: 2 } as const;

/** Most TCP candidates in one offer or answer. */
export const MAX_TCP_CANDIDATES = 8;

/** Header of a relayed DATA message: control header (4) + session (4). */
export const RELAY_DATA_OVERHEAD = CONTROL_HEADER_LENGTH + 4;

export type PunchMessage =
  | { readonly type: typeof PUNCH_MESSAGE.punchRequest; readonly nonce: number; readonly natType: WireNatType; readonly target: Address }
  | { readonly type: typeof PUNCH_MESSAGE.punchRelayed; readonly nonce: number; readonly natType: WireNatType; readonly peer: Address }
  | { readonly type: typeof PUNCH_MESSAGE.probe; readonly nonce: number }
  | { readonly type: typeof PUNCH_MESSAGE.probeAck; readonly nonce: number; readonly flags: number; readonly observed: Address }
  | { readonly type: typeof PUNCH_MESSAGE.observeRequest; readonly nonce: number }
  | { readonly type: typeof PUNCH_MESSAGE.observed; readonly nonce: number; readonly transport: ObservedTransport; readonly observed: Address }
  | { readonly type: typeof PUNCH_MESSAGE.tcpOffer; readonly nonce: number; readonly candidates: readonly Address[] }
  | { readonly type: typeof PUNCH_MESSAGE.tcpAnswer; readonly nonce: number; readonly candidates: readonly Address[] };

export type RelayMessage =
  | { readonly type: typeof RELAY_MESSAGE.open; readonly nonce: number; readonly target: Address }
  | { readonly type: typeof RELAY_MESSAGE.incoming; readonly session: number; readonly peer: Address }
  | { readonly type: typeof RELAY_MESSAGE.accept; readonly session: number }
  | { readonly type: typeof RELAY_MESSAGE.opened; readonly nonce: number; readonly session: number }
  | { readonly type: typeof RELAY_MESSAGE.data; readonly session: number; readonly payload: Uint8Array }
  | { readonly type: typeof RELAY_MESSAGE.close; readonly session: number; readonly reason: RelayReason }
  | { readonly type: typeof RELAY_MESSAGE.refused; readonly id: number; readonly idKind: 'nonce' | 'session'; readonly reason: RelayReason };

// ---------------------------------------------------------------------------
// Addresses

/** Exact encoded length of an address. */
export function addressLength(address: Address): number {
  return ipFamily(address.host) === 6 ? 1 + 16 + 2 : 1 + 4 + 2;
}

function checkEncodable(address: Address, what: string): void {
  if (ipFamily(address.host) === 0) throw new RangeError(`${what}: host must be an IP literal, got '${address.host}'`);
  if (!Number.isInteger(address.port) || address.port < 1 || address.port > 65_535) throw new RangeError(`${what}: port must be 1..65535, got ${address.port}`);
}

export function writeAddress(writer: ByteWriter, address: Address): void {
  checkEncodable(address, 'holepunch address');
  const family = ipFamily(address.host);
  writer.u8(family).raw(ipToBytes(address.host)).u16(address.port);
}

export function readAddress(reader: ByteReader, what = 'address'): Address {
  const family = reader.u8(`${what} family`);
  if (family !== 4 && family !== 6) throw new WireError('WIRE_MALFORMED', `${what}: unknown address family ${family}`);
  const host = bytesToIp(reader.bytesView(family === 4 ? 4 : 16, `${what} IP`));
  const port = reader.u16(`${what} port`);
  if (port === 0) throw new WireError('WIRE_MALFORMED', `${what}: port 0`);
  return { host, port };
}

function natNumber(type: WireNatType): number {
  return WIRE_NAT_TYPE[type];
}

function readNat(reader: ByteReader): WireNatType {
  const value = reader.u8('NAT type');
  const type = NAT_TYPE_BY_NUMBER[value];
  if (type === undefined) throw new WireError('WIRE_MALFORMED', `holepunch: unknown NAT type ${value}`);
  return type;
}

function readReason(reader: ByteReader): RelayReason {
  const value = reader.u8('relay reason');
  const reason = RELAY_REASON_BY_NUMBER[value];
  if (reason === undefined) throw new WireError('WIRE_MALFORMED', `relay: unknown reason ${value}`);
  return reason;
}

// ---------------------------------------------------------------------------
// Hole punching messages

/** Exact length of the body of `message` (without the 4-byte control header). */
export function punchBodyLength(message: PunchMessage): number {
  switch (message.type) {
    case PUNCH_MESSAGE.punchRequest:
      return 4 + 1 + addressLength(message.target);
    case PUNCH_MESSAGE.punchRelayed:
      return 4 + 1 + addressLength(message.peer);
    case PUNCH_MESSAGE.probe:
    case PUNCH_MESSAGE.observeRequest:
      return 4;
    case PUNCH_MESSAGE.probeAck:
      return 4 + 1 + addressLength(message.observed);
    case PUNCH_MESSAGE.observed:
      return 4 + 1 + addressLength(message.observed);
    case PUNCH_MESSAGE.tcpOffer:
    case PUNCH_MESSAGE.tcpAnswer:
      return 4 + 1 + message.candidates.reduce((sum, candidate) => sum + addressLength(candidate), 0);
  }
}

/** Exact length of the encoded message, control header included. */
export function punchMessageLength(message: PunchMessage): number {
  return CONTROL_HEADER_LENGTH + punchBodyLength(message);
}

function checkNonce(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`${what} must be a u32, got ${value}`);
}

/** Encodes a hole punching message as a CONTROL frame. Throws RangeError on an unencodable message. */
export function encodePunchMessage(message: PunchMessage): Uint8Array {
  checkNonce(message.nonce, 'holepunch nonce');
  const writer = new ByteWriter(punchBodyLength(message)).u32(message.nonce);
  switch (message.type) {
    case PUNCH_MESSAGE.punchRequest:
      writer.u8(natNumber(message.natType));
      writeAddress(writer, message.target);
      break;
    case PUNCH_MESSAGE.punchRelayed:
      writer.u8(natNumber(message.natType));
      writeAddress(writer, message.peer);
      break;
    case PUNCH_MESSAGE.probe:
    case PUNCH_MESSAGE.observeRequest:
      break;
    case PUNCH_MESSAGE.probeAck:
      if ((message.flags & ~PROBE_ACK_FLAGS) !== 0 || !Number.isInteger(message.flags)) throw new RangeError(`holepunch: unknown PROBE_ACK flags ${message.flags}`);
      writer.u8(message.flags);
      writeAddress(writer, message.observed);
      break;
    case PUNCH_MESSAGE.observed:
      writer.u8(OBSERVED_TRANSPORT[message.transport]);
      writeAddress(writer, message.observed);
      break;
    case PUNCH_MESSAGE.tcpOffer:
    case PUNCH_MESSAGE.tcpAnswer: {
      const min = message.type === PUNCH_MESSAGE.tcpOffer ? 1 : 0;
      if (message.candidates.length < min || message.candidates.length > MAX_TCP_CANDIDATES) {
        throw new RangeError(`holepunch: ${message.candidates.length} TCP candidates (${min}..${MAX_TCP_CANDIDATES} allowed)`);
      }
      writer.u8(message.candidates.length);
      for (const candidate of message.candidates) writeAddress(writer, candidate);
      break;
    }
    default:
      throw new RangeError(`holepunch: unknown message type ${(message as { type: number }).type}`);
  }
  return encodeControl(HOLEPUNCH_PROTOCOL, message.type, writer.finish());
}

function readCandidates(reader: ByteReader, min: number): Address[] {
  const count = reader.u8('candidate count');
  if (count < min || count > MAX_TCP_CANDIDATES) throw new WireError('WIRE_MALFORMED', `holepunch: ${count} TCP candidates (${min}..${MAX_TCP_CANDIDATES} allowed)`);
  const candidates: Address[] = [];
  for (let i = 0; i < count; i++) candidates.push(readAddress(reader, 'TCP candidate'));
  return candidates;
}

/**
 * Decodes the body of a hole punching control message of `type` (the frame header
 * already split off by `decodeFrame`). Throws {@link WireError} on anything malformed.
 */
export function decodePunchMessage(type: number, body: Uint8Array): PunchMessage {
  const reader = new ByteReader(body);
  const nonce = reader.u32('nonce');
  let message: PunchMessage;
  switch (type) {
    case PUNCH_MESSAGE.punchRequest: {
      const natType = readNat(reader);
      message = { type, nonce, natType, target: readAddress(reader, 'punch target') };
      break;
    }
    case PUNCH_MESSAGE.punchRelayed: {
      const natType = readNat(reader);
      message = { type, nonce, natType, peer: readAddress(reader, 'punch peer') };
      break;
    }
    case PUNCH_MESSAGE.probe:
    case PUNCH_MESSAGE.observeRequest:
      message = { type, nonce };
      break;
    case PUNCH_MESSAGE.probeAck: {
      const flags = reader.u8('probe ack flags');
      if ((flags & ~PROBE_ACK_FLAGS) !== 0) throw new WireError('WIRE_MALFORMED', `holepunch: unknown PROBE_ACK flags 0x${flags.toString(16)}`);
      message = { type, nonce, flags, observed: readAddress(reader, 'observed address') };
      break;
    }
    case PUNCH_MESSAGE.observed: {
      const kind = reader.u8('observed transport');
      const transport: ObservedTransport | undefined = kind === OBSERVED_TRANSPORT.udp ? 'udp' : kind === OBSERVED_TRANSPORT.tcp ? 'tcp' : undefined;
      if (transport === undefined) throw new WireError('WIRE_MALFORMED', `holepunch: unknown observed transport ${kind}`);
      message = { type, nonce, transport, observed: readAddress(reader, 'observed address') };
      break;
    }
    case PUNCH_MESSAGE.tcpOffer:
      message = { type, nonce, candidates: readCandidates(reader, 1) };
      break;
    case PUNCH_MESSAGE.tcpAnswer:
      message = { type, nonce, candidates: readCandidates(reader, 0) };
      break;
    default:
      throw new WireError('WIRE_UNKNOWN_TYPE', `holepunch: unknown message type ${type}`);
  }
  reader.end('holepunch message');
  return message;
}

// ---------------------------------------------------------------------------
// Relay messages

export function relayBodyLength(message: RelayMessage): number {
  switch (message.type) {
    case RELAY_MESSAGE.open:
      return 4 + addressLength(message.target);
    case RELAY_MESSAGE.incoming:
      return 4 + addressLength(message.peer);
    case RELAY_MESSAGE.accept:
      return 4;
    case RELAY_MESSAGE.opened:
      return 8;
    case RELAY_MESSAGE.data:
      return 4 + message.payload.byteLength;
    case RELAY_MESSAGE.close:
      return 5;
    case RELAY_MESSAGE.refused:
      return 6;
  }
}

export function relayMessageLength(message: RelayMessage): number {
  return CONTROL_HEADER_LENGTH + relayBodyLength(message);
}

/** Encodes a relay message as a CONTROL frame. Throws RangeError on an unencodable message. */
export function encodeRelayMessage(message: RelayMessage): Uint8Array {
  const writer = new ByteWriter(relayBodyLength(message));
  switch (message.type) {
    case RELAY_MESSAGE.open:
      checkNonce(message.nonce, 'relay nonce');
      writer.u32(message.nonce);
      writeAddress(writer, message.target);
      break;
    case RELAY_MESSAGE.incoming:
      checkNonce(message.session, 'relay session');
      writer.u32(message.session);
      writeAddress(writer, message.peer);
      break;
    case RELAY_MESSAGE.accept:
      checkNonce(message.session, 'relay session');
      writer.u32(message.session);
      break;
    case RELAY_MESSAGE.opened:
      checkNonce(message.nonce, 'relay nonce');
      checkNonce(message.session, 'relay session');
      writer.u32(message.nonce).u32(message.session);
      break;
    case RELAY_MESSAGE.data:
      return encodeRelayData(message.session, message.payload);
    case RELAY_MESSAGE.close:
      checkNonce(message.session, 'relay session');
      writer.u32(message.session).u8(RELAY_REASON[message.reason]);
      break;
    case RELAY_MESSAGE.refused:
      checkNonce(message.id, 'relay id');
      writer.u32(message.id).u8(REFUSED_ID_KIND[message.idKind]).u8(RELAY_REASON[message.reason]);
      break;
    default:
      throw new RangeError(`relay: unknown message type ${(message as { type: number }).type}`);
  }
  return encodeControl(RELAY_PROTOCOL, message.type, writer.finish());
}

/** A relayed DATA message, built in one allocation (the hot path of a relay). */
export function encodeRelayData(session: number, payload: Uint8Array): Uint8Array {
  checkNonce(session, 'relay session');
  const out = new Uint8Array(RELAY_DATA_OVERHEAD + payload.byteLength);
  out[0] = 0x01;
  out[1] = RELAY_PROTOCOL.id;
  out[2] = RELAY_PROTOCOL.version;
  out[3] = RELAY_MESSAGE.data;
  new DataView(out.buffer).setUint32(CONTROL_HEADER_LENGTH, session);
  out.set(payload, RELAY_DATA_OVERHEAD);
  return out;
}

/** Decodes the body of a relay control message of `type`. Throws {@link WireError}. */
export function decodeRelayMessage(type: number, body: Uint8Array): RelayMessage {
  const reader = new ByteReader(body);
  let message: RelayMessage;
  switch (type) {
    case RELAY_MESSAGE.open: {
      const nonce = reader.u32('nonce');
      message = { type, nonce, target: readAddress(reader, 'relay target') };
      break;
    }
    case RELAY_MESSAGE.incoming: {
      const session = reader.u32('session');
      message = { type, session, peer: readAddress(reader, 'relay peer') };
      break;
    }
    case RELAY_MESSAGE.accept:
      message = { type, session: reader.u32('session') };
      break;
    case RELAY_MESSAGE.opened: {
      const nonce = reader.u32('nonce');
      message = { type, nonce, session: reader.u32('session') };
      break;
    }
    case RELAY_MESSAGE.data: {
      const session = reader.u32('session');
      message = { type, session, payload: reader.rest() };
      break;
    }
    case RELAY_MESSAGE.close: {
      const session = reader.u32('session');
      message = { type, session, reason: readReason(reader) };
      break;
    }
    case RELAY_MESSAGE.refused: {
      const id = reader.u32('id');
      const kind = reader.u8('id kind');
      const idKind = kind === REFUSED_ID_KIND.nonce ? 'nonce' : kind === REFUSED_ID_KIND.session ? 'session' : undefined;
      if (idKind === undefined) throw new WireError('WIRE_MALFORMED', `relay: unknown id kind ${kind}`);
      message = { type, id, idKind, reason: readReason(reader) };
      break;
    }
    default:
      throw new WireError('WIRE_UNKNOWN_TYPE', `relay: unknown message type ${type}`);
  }
  reader.end('relay message');
  return message;
}

/** What a datagram arriving at the hole punching layer is. */
export type Incoming =
  | { readonly kind: 'data'; readonly payload: Uint8Array }
  | { readonly kind: 'punch'; readonly message: PunchMessage }
  | { readonly kind: 'relay'; readonly message: RelayMessage };

/**
 * Splits an incoming datagram: DATA for the layer above, or a hole punching or relay
 * control message. Throws {@link WireError} on anything else (empty, unknown frame byte,
 * another protocol, an unsupported version, a malformed body).
 */
export function decodeIncoming(bytes: Uint8Array): Incoming {
  if (bytes.byteLength === 0) throw new WireError('WIRE_TRUNCATED', 'holepunch: empty datagram');
  const first = bytes[0];
  if (first === 0x00) return { kind: 'data', payload: bytes.subarray(1) };
  if (first !== 0x01) throw new WireError('WIRE_UNKNOWN_TYPE', `holepunch: unknown frame byte 0x${first!.toString(16)}`);
  if (bytes.byteLength < CONTROL_HEADER_LENGTH) throw new WireError('WIRE_TRUNCATED', 'holepunch: control header truncated');
  const id = bytes[1];
  const version = bytes[2]!;
  const type = bytes[3]!;
  const body = bytes.subarray(CONTROL_HEADER_LENGTH);
  if (id === HOLEPUNCH_PROTOCOL.id) {
    if (version !== HOLEPUNCH_PROTOCOL.version) throw new WireError('WIRE_UNSUPPORTED_VERSION', `holepunch: version ${version} is not supported`);
    return { kind: 'punch', message: decodePunchMessage(type, body) };
  }
  if (id === RELAY_PROTOCOL.id) {
    if (version !== RELAY_PROTOCOL.version) throw new WireError('WIRE_UNSUPPORTED_VERSION', `relay: version ${version} is not supported`);
    return { kind: 'relay', message: decodeRelayMessage(type, body) };
  }
  throw new WireError('WIRE_MALFORMED', `holepunch: control message of protocol 0x${id!.toString(16)}`);
}
