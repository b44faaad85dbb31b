/**
 * Datagram framing shared by every layer that both has messages of its own and passes
 * other layers' traffic through (ARCHITECTURE.md requirement 6).
 *
 * Each such layer puts one frame byte in front of what it sends, so its own control
 * messages can never be confused with application data passing through it, whatever
 * that data contains:
 *
 * | byte 0 | rest |
 * |---|---|
 * | `0x00` DATA | payload for the layer above, untouched |
 * | `0x01` CONTROL | protocol id (u8), protocol version (u8), message type (u8), body |
 *
 * Anything else is unknown and dropped. Protocol ids are the registered constants in
 * {@link PROTOCOL}; a control message for another protocol or version is dropped and
 * counted, never guessed at.
 */
import { WireError } from './errors.js';

export const FRAME_DATA = 0x00;
export const FRAME_CONTROL = 0x01;
export const CONTROL_HEADER_LENGTH = 4;

/**
 * Registered protocol ids. Never derived from names; never reused. Ids 0x80..0xff are
 * for users' own layers.
 */
export const PROTOCOL = {
  udp: 0x01,
  memory: 0x02,
  faulty: 0x03,
  delay: 0x04,
  keepalive: 0x05,
  rudp: 0x06,
  noise: 0x07,
  kademlia: 0x08,
  gossip: 0x09,
  biggossip: 0x0a,
  fixedPeers: 0x0b,
  holepunch: 0x0c,
  tcp: 0x0d,
  relay: 0x0e,
} as const;

export const FIRST_USER_PROTOCOL = 0x80;

/** A protocol a layer speaks on the wire: registered id and version. */
export interface ProtocolId {
  readonly id: number;
  readonly version: number;
  /** Human name with version, e.g. `deccom/kademlia/1`. */
  readonly name: string;
}

export function protocolId(name: string, id: number, version: number): ProtocolId {
  if (!Number.isInteger(id) || id < 1 || id > 255) throw new RangeError(`protocol id must be 1..255, got ${id}`);
  if (!Number.isInteger(version) || version < 1 || version > 255) throw new RangeError(`protocol version must be 1..255, got ${version}`);
  return { id, version, name: `${name}/${version}` };
}

const DATA_HEADER = Uint8Array.of(FRAME_DATA);

/** The one-byte DATA header, for transports that can send a list of buffers. */
export function dataHeader(): Uint8Array {
  return DATA_HEADER;
}

/** `payload` framed as DATA (one copy). */
export function encodeData(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.byteLength + 1);
  out[0] = FRAME_DATA;
  out.set(payload, 1);
  return out;
}

/** A control message of `protocol`: header then `body`. */
export function encodeControl(protocol: ProtocolId, type: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(CONTROL_HEADER_LENGTH + body.byteLength);
  out[0] = FRAME_CONTROL;
  out[1] = protocol.id;
  out[2] = protocol.version;
  out[3] = type;
  out.set(body, CONTROL_HEADER_LENGTH);
  return out;
}

/** What {@link decodeFrame} found. `payload` / `body` are views into the input. */
export type Frame =
  | { readonly kind: 'data'; readonly payload: Uint8Array }
  | { readonly kind: 'control'; readonly type: number; readonly body: Uint8Array };

/**
 * Splits a frame for `protocol`. Throws {@link WireError} on empty input, an unknown
 * frame byte, a truncated header, or a control message of another protocol or version.
 */
export function decodeFrame(bytes: Uint8Array, protocol: ProtocolId): Frame {
  if (bytes.byteLength === 0) throw new WireError('WIRE_TRUNCATED', `${protocol.name}: empty frame`);
  const first = bytes[0];
  if (first === FRAME_DATA) return { kind: 'data', payload: bytes.subarray(1) };
  if (first !== FRAME_CONTROL) throw new WireError('WIRE_UNKNOWN_TYPE', `${protocol.name}: unknown frame byte 0x${first!.toString(16)}`);
  if (bytes.byteLength < CONTROL_HEADER_LENGTH) throw new WireError('WIRE_TRUNCATED', `${protocol.name}: control header truncated`);
  if (bytes[1] !== protocol.id) throw new WireError('WIRE_MALFORMED', `${protocol.name}: control message of protocol 0x${bytes[1]!.toString(16)}`);
  if (bytes[2] !== protocol.version) throw new WireError('WIRE_UNSUPPORTED_VERSION', `${protocol.name}: control version ${bytes[2]} is not supported`);
  return { kind: 'control', type: bytes[3]!, body: bytes.subarray(CONTROL_HEADER_LENGTH) };
}

/** Maps a decoder error to a short drop reason for counters. */
export function dropReason(error: unknown): string {
  if (error instanceof WireError) {
    switch (error.code) {
      case 'WIRE_TRUNCATED':
        return 'truncated';
      case 'WIRE_OVERSIZED':
        return 'oversized';
      case 'WIRE_UNSUPPORTED_VERSION':
        return 'version';
      case 'WIRE_UNKNOWN_TYPE':
        return 'unknown-type';
      case 'WIRE_TRAILING_BYTES':
        return 'trailing-bytes';
      default:
        return 'malformed';
    }
  }
  return 'error';
}
