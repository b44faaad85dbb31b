/**
 * Every message `@deccom/noise` puts on the wire: pure encoders and decoders with exact
 * lengths. Decoders read through `ByteReader` and throw only `WireError`.
 *
 * Datagram layer (frame byte CONTROL, protocol `deccom/noise/1` = id 0x07, version 1):
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | INITIATION | sender index u32, cookie length u8 (0 or 16), cookie, Noise message 1 (32 bytes) |
 * | 2 | RESPONSE | sender index u32, receiver index u32, Noise message 2 |
 * | 3 | FINAL | sender index u32, receiver index u32, Noise message 3 |
 * | 4 | TRANSPORT | receiver index u32, counter u64, sealed (inner type u8, payload) + 16-byte tag |
 * | 5 | COOKIE | receiver index u32, cookie 16 bytes |
 * | 6 | UNKNOWN_SESSION | receiver index u32 (the index the peer used and we do not know) |
 *
 * Inner types of TRANSPORT (inside the authenticated part): 0 DATA, 1 CONFIRM, 2 CLOSE.
 *
 * The identity proof, the payload of Noise messages 2 and 3 (encrypted by Noise):
 *
 * | bytes | field |
 * |---|---|
 * | 1 | version = 1 |
 * | 1 | identity kind: 1 = Ed25519 |
 * | 32 | Ed25519 public key |
 * | 64 | Ed25519 signature over `"deccom/noise/static-key/1" ‖ Noise static public key` |
 */
import { ByteReader, ByteWriter, CONTROL_HEADER_LENGTH, FRAME_CONTROL, PROTOCOL, protocolId, utf8Encode, WireError } from '@deccom/core';

export const NOISE_PROTOCOL = protocolId('deccom/noise', PROTOCOL.noise, 1);

export const MESSAGE = {
  initiation: 1,
  response: 2,
  final: 3,
  transport: 4,
  cookie: 5,
  unknownSession: 6,
} as const;

export const INNER = {
  data: 0,
  confirm: 1,
  close: 2,
} as const;

export const INDEX_LENGTH = 4;
export const COUNTER_LENGTH = 8;
export const COOKIE_LENGTH = 16;
export const TAG_LENGTH = 16;
/** X25519 public key: the whole of Noise XX message 1 (its payload is empty). */
export const EPHEMERAL_LENGTH = 32;
/** Bytes a TRANSPORT message adds around a payload: control header, index, counter, inner type, tag. */
export const TRANSPORT_OVERHEAD = CONTROL_HEADER_LENGTH + INDEX_LENGTH + COUNTER_LENGTH + 1 + TAG_LENGTH;
/** Offset of the sealed part in a TRANSPORT message. */
export const TRANSPORT_HEADER_LENGTH = CONTROL_HEADER_LENGTH + INDEX_LENGTH + COUNTER_LENGTH;

function header(writer: ByteWriter, type: number): ByteWriter {
  return writer.u8(FRAME_CONTROL).u8(NOISE_PROTOCOL.id).u8(NOISE_PROTOCOL.version).u8(type);
}

export interface Initiation {
  readonly sender: number;
  readonly cookie: Uint8Array | undefined;
  readonly message: Uint8Array;
}

export function initiationLength(cookie: Uint8Array | undefined, message: Uint8Array): number {
  return CONTROL_HEADER_LENGTH + INDEX_LENGTH + 1 + (cookie?.length ?? 0) + message.length;
}

export function encodeInitiation(sender: number, cookie: Uint8Array | undefined, message: Uint8Array): Uint8Array {
  if (cookie !== undefined && cookie.length !== COOKIE_LENGTH) throw new RangeError(`cookie must be ${COOKIE_LENGTH} bytes`);
  const writer = header(new ByteWriter(initiationLength(cookie, message)), MESSAGE.initiation).u32(sender);
  writer.u8(cookie?.length ?? 0);
  if (cookie) writer.raw(cookie);
  return writer.raw(message).finish();
}

export function decodeInitiation(body: Uint8Array): Initiation {
  const reader = new ByteReader(body);
  const sender = reader.u32('initiation sender');
  const cookieLength = reader.u8('initiation cookie length');
  if (cookieLength !== 0 && cookieLength !== COOKIE_LENGTH) throw new WireError('WIRE_MALFORMED', `initiation: cookie length ${cookieLength}`);
  const cookie = cookieLength === 0 ? undefined : reader.bytesView(COOKIE_LENGTH, 'initiation cookie');
  const message = reader.bytesView(EPHEMERAL_LENGTH, 'initiation ephemeral key');
  reader.end('initiation');
  return { sender, cookie, message };
}

/** RESPONSE and FINAL share a layout. */
export interface HandshakeReply {
  readonly sender: number;
  readonly receiver: number;
  readonly message: Uint8Array;
}

export function encodeHandshakeReply(type: typeof MESSAGE.response | typeof MESSAGE.final, sender: number, receiver: number, message: Uint8Array): Uint8Array {
  return header(new ByteWriter(CONTROL_HEADER_LENGTH + 2 * INDEX_LENGTH + message.length), type).u32(sender).u32(receiver).raw(message).finish();
}

/** Shortest Noise message 2 / 3 of XX with an identity proof: a key and two tags at least. */
const MIN_HANDSHAKE_REPLY = EPHEMERAL_LENGTH + 2 * TAG_LENGTH;

export function decodeHandshakeReply(body: Uint8Array): HandshakeReply {
  const reader = new ByteReader(body);
  const sender = reader.u32('handshake sender');
  const receiver = reader.u32('handshake receiver');
  const message = reader.rest();
  if (message.length < MIN_HANDSHAKE_REPLY) throw new WireError('WIRE_TRUNCATED', `handshake message of ${message.length} bytes is too short`);
  if (message.length > 65_535) throw new WireError('WIRE_OVERSIZED', `handshake message of ${message.length} bytes`);
  return { sender, receiver, message };
}

export interface Transport {
  readonly receiver: number;
  readonly counter: number;
  /** Sealed inner type and payload with the tag (a view into the input). */
  readonly sealed: Uint8Array;
  /** The whole message up to the sealed part (the associated data of sign-only mode). */
  readonly header: Uint8Array;
}

/** Writes a TRANSPORT header into the first {@link TRANSPORT_HEADER_LENGTH} bytes of `out`. */
export function writeTransportHeader(out: Uint8Array, receiver: number, counter: number): void {
  const view = new DataView(out.buffer, out.byteOffset, TRANSPORT_HEADER_LENGTH);
  out[0] = FRAME_CONTROL;
  out[1] = NOISE_PROTOCOL.id;
  out[2] = NOISE_PROTOCOL.version;
  out[3] = MESSAGE.transport;
  view.setUint32(4, receiver);
  view.setUint32(8, Math.floor(counter / 0x1_0000_0000));
  view.setUint32(12, counter >>> 0);
}

/** Decodes a TRANSPORT message from the whole frame (`frame` includes the control header). */
export function decodeTransport(frame: Uint8Array): Transport {
  const reader = new ByteReader(frame);
  reader.bytesView(CONTROL_HEADER_LENGTH, 'transport header');
  const receiver = reader.u32('transport receiver');
  const counter = reader.u53('transport counter');
  const sealed = reader.rest();
  if (sealed.length < 1 + TAG_LENGTH) throw new WireError('WIRE_TRUNCATED', `transport: ${sealed.length} sealed bytes, at least ${1 + TAG_LENGTH} needed`);
  return { receiver, counter, sealed, header: frame.subarray(0, TRANSPORT_HEADER_LENGTH) };
}

export function encodeCookie(receiver: number, cookie: Uint8Array): Uint8Array {
  return header(new ByteWriter(CONTROL_HEADER_LENGTH + INDEX_LENGTH + COOKIE_LENGTH), MESSAGE.cookie).u32(receiver).raw(cookie).finish();
}

export function decodeCookie(body: Uint8Array): { receiver: number; cookie: Uint8Array } {
  const reader = new ByteReader(body);
  const receiver = reader.u32('cookie receiver');
  const cookie = reader.bytesCopy(COOKIE_LENGTH, 'cookie');
  reader.end('cookie');
  return { receiver, cookie };
}

export function encodeUnknownSession(receiver: number): Uint8Array {
  return header(new ByteWriter(CONTROL_HEADER_LENGTH + INDEX_LENGTH), MESSAGE.unknownSession).u32(receiver).finish();
}

export function decodeUnknownSession(body: Uint8Array): number {
  const reader = new ByteReader(body);
  const receiver = reader.u32('unknown-session receiver');
  reader.end('unknown-session');
  return receiver;
}

// ---------------------------------------------------------------------------
// Identity proof

export const IDENTITY_PROOF_VERSION = 1;
export const IDENTITY_KIND_ED25519 = 1;
export const IDENTITY_PROOF_LENGTH = 2 + 32 + 64;
const STATIC_KEY_CONTEXT = utf8Encode('deccom/noise/static-key/1');

/** What the identity key signs: a context string then the Noise static public key. */
export function staticKeySigningInput(staticPublicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(STATIC_KEY_CONTEXT.length + staticPublicKey.length);
  out.set(STATIC_KEY_CONTEXT);
  out.set(staticPublicKey, STATIC_KEY_CONTEXT.length);
  return out;
}

export interface IdentityProof {
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

export function encodeIdentityProof(proof: IdentityProof): Uint8Array {
  return new ByteWriter(IDENTITY_PROOF_LENGTH).u8(IDENTITY_PROOF_VERSION).u8(IDENTITY_KIND_ED25519).raw(proof.publicKey).raw(proof.signature).finish();
}

export function decodeIdentityProof(bytes: Uint8Array): IdentityProof {
  const reader = new ByteReader(bytes);
  const version = reader.u8('identity proof version');
  if (version !== IDENTITY_PROOF_VERSION) throw new WireError('WIRE_UNSUPPORTED_VERSION', `identity proof version ${version}`);
  const kind = reader.u8('identity kind');
  if (kind !== IDENTITY_KIND_ED25519) throw new WireError('WIRE_MALFORMED', `identity kind ${kind} is not supported`);
  const publicKey = reader.bytesCopy(32, 'identity key');
  const signature = reader.bytesCopy(64, 'identity signature');
  reader.end('identity proof');
  return { publicKey, signature };
}

// ---------------------------------------------------------------------------
// noiseStream(): what travels over the message/stream transport below

/** Message kinds on the transport below (first byte of each message). */
export const STREAM_MESSAGE = {
  handshake1: 1,
  handshake2: 2,
  handshake3: 3,
  sealed: 4,
} as const;
/** First byte of every stream, then an 8-byte stream id. */
export const STREAM_MAGIC = 0x05;
export const STREAM_HEADER_LENGTH = 1 + 8;
/**
 * A stream frame: length u32 (of what follows), flags u8, counter u64, sealed bytes. The
 * first frame of a stream is its start frame (flag {@link STREAM_FLAG_START}): the counter
 * is the session's, and the sealed bytes are the stream's own 32-byte key. Every later
 * frame is sealed with that key, its counter the frame's index in the stream (0, 1, ...).
 */
export const STREAM_FRAME_HEADER_LENGTH = 4 + 1 + 8;
/**
 * Plaintext bytes per stream frame at most. Larger than the 65,535-byte Noise message limit
 * (section 3) on purpose: a frame carries its own 32-bit length and 64-bit nonce, and the
 * per-frame costs (a cipher object each way, three writes down the transport) made 64 KiB
 * frames cost ~15% more CPU per byte than 256 KiB frames on the benchmark machine.
 */
export const STREAM_FRAME_PLAINTEXT = 256 * 1024;
/** The last frame of a stream (after its last data). */
export const STREAM_FLAG_END = 1;
/** The first frame of a stream, carrying the stream's key. */
export const STREAM_FLAG_START = 2;
/** Bytes a start frame seals: the stream's key. */
export const STREAM_KEY_LENGTH = 32;
/** Kind byte and counter in front of a sealed message. */
export const SEALED_HEADER_LENGTH = 1 + 8;

/** A sealed message: kind 4, counter u64, ciphertext and tag. */
export function decodeSealedMessage(message: Uint8Array): { counter: number; sealed: Uint8Array } {
  const reader = new ByteReader(message);
  const kind = reader.u8('sealed kind');
  if (kind !== STREAM_MESSAGE.sealed) throw new WireError('WIRE_UNKNOWN_TYPE', `sealed message kind ${kind}`);
  const counter = reader.u53('sealed counter');
  const sealed = reader.rest();
  if (sealed.length < TAG_LENGTH) throw new WireError('WIRE_TRUNCATED', `sealed message of ${sealed.length} bytes has no room for its tag`);
  return { counter, sealed };
}

/** The first bytes of a stream: magic and stream id. */
export function decodeStreamHeader(header: Uint8Array): Uint8Array {
  const reader = new ByteReader(header);
  const magic = reader.u8('stream magic');
  if (magic !== STREAM_MAGIC) throw new WireError('WIRE_MALFORMED', `not a noise stream (0x${magic.toString(16)})`);
  const id = reader.bytesView(8, 'stream id');
  reader.end('stream header');
  return id;
}

/** Checks a frame's length prefix; throws WireError when it is out of range. */
export function checkStreamFrameLength(length: number): void {
  if (length < 1 + 8 + TAG_LENGTH) throw new WireError('WIRE_TRUNCATED', `stream frame of ${length} bytes`);
  if (length > 1 + 8 + STREAM_FRAME_PLAINTEXT + TAG_LENGTH) throw new WireError('WIRE_OVERSIZED', `stream frame of ${length} bytes`);
}

/** A stream frame's header: what follows the length prefix, the flags and the counter. */
export interface StreamFrameHeader {
  /** Bytes after the length prefix: flags, counter, ciphertext and tag. */
  readonly length: number;
  readonly flags: number;
  readonly counter: number;
}

/** The first {@link STREAM_FRAME_HEADER_LENGTH} bytes of a frame (the sealed bytes follow). */
export function decodeStreamFrameHeader(header: Uint8Array): StreamFrameHeader {
  const reader = new ByteReader(header);
  const length = reader.u32('frame length');
  checkStreamFrameLength(length);
  const flags = reader.u8('frame flags');
  if (flags !== 0 && flags !== STREAM_FLAG_END && flags !== STREAM_FLAG_START) throw new WireError('WIRE_MALFORMED', `stream frame flags 0x${flags.toString(16)}`);
  const counter = reader.u53('frame counter');
  reader.end('stream frame header');
  return { length, flags, counter };
}

/** One whole stream frame (length prefix included). */
export function decodeStreamFrame(frame: Uint8Array): { flags: number; counter: number; sealed: Uint8Array } {
  if (frame.length < STREAM_FRAME_HEADER_LENGTH) throw new WireError('WIRE_TRUNCATED', `stream frame of ${frame.length} bytes`);
  const { length, flags, counter } = decodeStreamFrameHeader(frame.subarray(0, STREAM_FRAME_HEADER_LENGTH));
  const remaining = frame.length - 4;
  if (length !== remaining) throw new WireError(length > remaining ? 'WIRE_TRUNCATED' : 'WIRE_TRAILING_BYTES', `stream frame length ${length}, ${remaining} bytes`);
  return { flags, counter, sealed: frame.subarray(STREAM_FRAME_HEADER_LENGTH) };
}

/** Writes a frame header (length prefix, flags, counter) at the start of `out`. */
export function writeStreamFrameHeader(out: Uint8Array, payloadLength: number, flags: number, counter: number): void {
  const view = new DataView(out.buffer, out.byteOffset, STREAM_FRAME_HEADER_LENGTH);
  view.setUint32(0, 1 + 8 + payloadLength + TAG_LENGTH);
  out[4] = flags;
  view.setUint32(5, Math.floor(counter / 0x1_0000_0000));
  view.setUint32(9, counter >>> 0);
}
