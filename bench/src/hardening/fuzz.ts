/**
 * Fuzzing of every wire decoder of every package: round-trip properties (fast-check) and
 * mutation fuzzing (valid encodings with bits flipped, bytes inserted, deleted, replaced,
 * duplicated, truncated, extended, spliced; plus plain random bytes). A decoder may
 * accept an input or throw `WireError`; anything else (another exception, a hang) is a
 * crash. Shared by the test suites (bench/test/fuzz*.test.ts) and `pnpm bench hardening`.
 */
import fc from 'fast-check';
import {
  toHex,
  bytesToIp,
  createPeerRecord,
  decodeFrame,
  decodePeerRecord,
  encodeControl,
  encodeData,
  encodePeerRecord,
  Identity,
  NodeId,
  protocolId,
  signPeerRecord,
  WireError,
  type Address,
  type PeerRecord,
} from '@deccom/core';
import { decodeControlDatagram, encodePing, MESSAGE_PING, MESSAGE_PONG } from '@deccom/udp';
import { decodeHello, encodeHello, encodeMessage as encodeTcpMessage, FrameDecoder } from '@deccom/tcp';
import { decodePacket, encodeAck, encodeCancel, encodeChunk, encodeRefuse, REFUSE_REASON, type Packet, type RefuseReason } from '@deccom/rudp';
import {
  decodeCookie,
  decodeHandshakeReply,
  decodeIdentityProof,
  decodeInitiation,
  decodeSealedMessage,
  decodeStreamFrame,
  decodeStreamHeader,
  decodeTransport,
  decodeUnknownSession,
  encodeCookie,
  encodeHandshakeReply,
  encodeIdentityProof,
  encodeInitiation,
  encodeUnknownSession,
  MESSAGE as NOISE_MESSAGE,
  NOISE_PROTOCOL,
} from '@deccom/noise';
import { decodeMessage as decodeKademlia, encodeMessage as encodeKademlia, KADEMLIA_PROTOCOL, type KademliaMessage } from '@deccom/kademlia';
import * as gossip from '@deccom/gossip';
import * as biggossip from '@deccom/biggossip';
import * as fixedPeers from '@deccom/fixed-peers';
import { decodeIncoming, encodePunchMessage, encodeRelayMessage, RELAY_REASON, WIRE_NAT_TYPE, type PunchMessage, type RelayMessage, type RelayReason, type WireNatType } from '@deccom/holepunch';

/** A codec under test: values, how to encode one, how to decode bytes. */
export interface Codec<T = unknown> {
  readonly name: string;
  readonly arbitrary: fc.Arbitrary<T>;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

export interface FuzzResult {
  readonly name: string;
  readonly inputs: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly crashes: number;
  /** First few crashes: input (hex) and the error. */
  readonly examples: { input: string; error: string }[];
  readonly ms: number;
}

// ---------------------------------------------------------------------------
// Values

const IDENTITIES = Array.from({ length: 6 }, (_, i) => Identity.fromSeed(new Uint8Array(32).fill(0x40 + i)));

const ipv4 = fc.tuple(fc.integer({ min: 1, max: 254 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => p.join('.'));
const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((groups) => {
  groups[0] = 0x2001;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
});
const host = fc.oneof(ipv4, ipv6.map((bytes) => canonicalV6(bytes)));
const address: fc.Arbitrary<Address> = fc.record({ host, port: fc.integer({ min: 1, max: 65_535 }) });

/** RFC 5952 text, the form the codecs decode to. */
function canonicalV6(bytes: Uint8Array): string {
  return bytesToIp(bytes);
}

const peerRecord: fc.Arbitrary<PeerRecord> = fc
  .record({ who: fc.nat(IDENTITIES.length - 1), address, tcpPort: fc.option(fc.integer({ min: 1, max: 65_535 }), { nil: undefined }), signed: fc.boolean() })
  .map(({ who, address: at, tcpPort, signed }) => {
    const identity = IDENTITIES[who]!;
    const record = createPeerRecord(identity.public, at, tcpPort);
    return signed ? signPeerRecord(record, identity) : record;
  });
const u32 = fc.nat(0xffff_ffff);
const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const payload = fc.uint8Array({ maxLength: 64 });

/** A comparable form: records by their encoding, bytes and ids as hex. */
export function canonical(value: unknown): string {
  const seen = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return `hex:${toHex(v)}`;
    if (v instanceof NodeId) return `id:${v.hex}`;
    if (v && typeof v === 'object' && 'identity' in v && 'id' in v && 'address' in v) return `record:${toHex(encodePeerRecord(v as PeerRecord))}`;
    if (Array.isArray(v)) return v.map(seen);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) {
        const field = (v as Record<string, unknown>)[key];
        if (field !== undefined) out[key] = seen(field);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(seen(value));
}

// ---------------------------------------------------------------------------
// Codecs

const TEST_PROTOCOL = protocolId('deccom/fuzz', 0x90, 1);

function controlBody(bytes: Uint8Array, protocol: { id: number; version: number; name: string }): { type: number; body: Uint8Array } {
  const frame = decodeFrame(bytes, protocol as never);
  if (frame.kind !== 'control') throw new WireError('WIRE_MALFORMED', 'not a control frame');
  return frame;
}

type GossipLike = typeof gossip | typeof biggossip;
type GossipValue = Parameters<typeof gossip.encodeRecordMessage>[1] extends never ? never : ReturnType<typeof gossip.decodeMessage>;
function gossipCodec(name: string, module: GossipLike, protocol: { id: number; version: number; name: string }): Codec<GossipValue> {
  const M = module.MESSAGE;
  const arbitrary = fc.oneof(
    fc.record({ type: fc.constantFrom(M.introduce, M.push), peer: peerRecord }),
    fc.record({ type: fc.constant(M.pull), requestId: u32, peer: peerRecord }),
    fc.record({ type: fc.constant(M.pullResponse), requestId: u32, peers: fc.array(peerRecord, { maxLength: 4 }) }),
    fc.record({ type: fc.constant(M.find), findId: bytes(8), target: bytes(32), hops: fc.nat(255), origin: peerRecord }),
    fc.record({ type: fc.constant(M.found), findId: bytes(8), peer: peerRecord }),
    fc.record({ type: fc.constantFrom(M.leave, M.suspect), noticeId: bytes(8), hops: fc.nat(255), subject: bytes(32) }),
  ) as fc.Arbitrary<GossipValue>;
  const encode = (m: GossipValue): Uint8Array => {
    switch (m.type) {
      case M.introduce:
      case M.push:
        return module.encodeRecordMessage(m.type, m.peer);
      case M.pull:
        return module.encodePull(m.requestId, m.peer);
      case M.pullResponse:
        return module.encodePullResponse(m.requestId, m.peers, 65_000)[0]!;
      case M.find:
        return module.encodeFind(m.findId, m.target, m.hops, m.origin);
      case M.found:
        return module.encodeFound(m.findId, m.peer);
      default:
        return module.encodeNotice(m.type as typeof M.leave, (m as { noticeId: Uint8Array }).noticeId, (m as { hops: number }).hops, (m as { subject: Uint8Array }).subject);
    }
  };
  return {
    name,
    arbitrary,
    encode,
    decode: (input: Uint8Array) => {
      const { type, body } = controlBody(input, protocol);
      return module.decodeMessage(type, body);
    },
  };
}

type RudpValue = Packet;
const instance = fc.record({ hi: fc.integer({ min: 1, max: 0xffff_ffff }), lo: u32 });
const rudpPacket: fc.Arbitrary<RudpValue> = fc.oneof(
  fc
    .record({ source: instance, destination: instance, packetNumber: fc.nat(2 ** 40), counter: u32, floor: u32, chunkSize: fc.integer({ min: 256, max: 1200 }), payloadLength: fc.integer({ min: 1, max: 300 }), seed: fc.nat(255) })
    .chain((r) => {
      const chunks = Math.max(1, Math.ceil(r.payloadLength / r.chunkSize));
      return fc.nat(chunks - 1).map((chunkIndex) => {
        const messageLength = r.payloadLength;
        const length = Math.min(r.chunkSize, messageLength - chunkIndex * r.chunkSize);
        const data = Uint8Array.from({ length }, (_, i) => (i * 7 + r.seed) & 0xff);
        return { type: 1, packet: { source: r.source, destination: r.destination, packetNumber: r.packetNumber, counter: r.counter, floor: Math.min(r.floor, r.counter), messageLength, chunkSize: r.chunkSize, chunkIndex, payload: data } } as RudpValue;
      });
    }),
  fc
    .record({ source: instance, destination: instance, windowBytes: u32, ackDelayMicros: u32, starts: fc.uniqueArray(fc.nat(1_000_000), { minLength: 1, maxLength: 8 }) })
    .map((r) => {
      // Disjoint, non-adjacent ranges, highest first.
      const sorted = [...r.starts].sort((a, b) => b - a).map((n) => n * 4);
      const ranges = sorted.map((low) => ({ high: low + 1, low }));
      return { type: 2, packet: { source: r.source, destination: r.destination, windowBytes: r.windowBytes, ackDelayMicros: r.ackDelayMicros, ranges } } as RudpValue;
    }),
  fc
    .record({ source: instance, destination: instance, counter: u32, reason: fc.constantFrom(...(Object.keys(REFUSE_REASON) as RefuseReason[])) })
    .map((packet) => ({ type: 3, packet }) as RudpValue),
  fc.record({ source: instance, destination: instance, counter: u32 }).map((packet) => ({ type: 4, packet }) as RudpValue),
);

const natType = fc.constantFrom(...(Object.keys(WIRE_NAT_TYPE) as WireNatType[]));
const relayReason = fc.constantFrom(...(Object.keys(RELAY_REASON) as RelayReason[]));
const holepunchMessage: fc.Arbitrary<{ punch?: PunchMessage; relay?: RelayMessage }> = fc.oneof(
  fc.record({ type: fc.constant(1 as const), nonce: u32, natType, target: address }).map((punch) => ({ punch })),
  fc.record({ type: fc.constant(2 as const), nonce: u32, natType, peer: address }).map((punch) => ({ punch })),
  fc.record({ type: fc.constantFrom(3 as const, 5 as const), nonce: u32 }).map((punch) => ({ punch: punch as PunchMessage })),
  fc.record({ type: fc.constant(4 as const), nonce: u32, flags: fc.constantFrom(0, 1), observed: address }).map((punch) => ({ punch })),
  fc.record({ type: fc.constant(6 as const), nonce: u32, transport: fc.constantFrom('udp' as const, 'tcp' as const), observed: address }).map((punch) => ({ punch })),
  fc.record({ type: fc.constant(7 as const), nonce: u32, candidates: fc.array(address, { minLength: 1, maxLength: 8 }) }).map((punch) => ({ punch })),
  fc.record({ type: fc.constant(8 as const), nonce: u32, candidates: fc.array(address, { maxLength: 8 }) }).map((punch) => ({ punch })),
  fc.record({ type: fc.constant(1 as const), nonce: u32, target: address }).map((relay) => ({ relay })),
  fc.record({ type: fc.constant(2 as const), session: u32, peer: address }).map((relay) => ({ relay })),
  fc.record({ type: fc.constant(3 as const), session: u32 }).map((relay) => ({ relay })),
  fc.record({ type: fc.constant(4 as const), nonce: u32, session: u32 }).map((relay) => ({ relay })),
  fc.record({ type: fc.constant(5 as const), session: u32, payload }).map((relay) => ({ relay })),
  fc.record({ type: fc.constant(6 as const), session: u32, reason: relayReason }).map((relay) => ({ relay })),
  fc.record({ type: fc.constant(7 as const), id: u32, idKind: fc.constantFrom('nonce' as const, 'session' as const), reason: relayReason }).map((relay) => ({ relay })),
);

const kademliaMessage: fc.Arbitrary<KademliaMessage> = fc.oneof(
  fc.record({ type: fc.constantFrom(1 as const, 2 as const), peer: peerRecord }),
  fc.record({ type: fc.constantFrom(3 as const, 4 as const), requestId: u32, target: bytes(32), peer: peerRecord }),
  fc
    .record({ requestId: u32, parts: fc.integer({ min: 1, max: 255 }), partSeed: fc.nat(254), providers: fc.array(peerRecord, { maxLength: 3 }), nodes: fc.array(peerRecord, { maxLength: 5 }) })
    .map((r) => ({ type: 5 as const, requestId: r.requestId, part: r.partSeed % r.parts, parts: r.parts, providers: r.providers, nodes: r.nodes })),
  fc.record({ type: fc.constant(6 as const), requestId: u32, topic: bytes(32), ttlSeconds: fc.integer({ min: 1, max: 0xffff_ffff }), peer: peerRecord }),
  fc.record({ type: fc.constant(7 as const), requestId: u32 }),
  fc.record({ type: fc.constant(8 as const), topic: bytes(32), peer: peerRecord }),
) as fc.Arbitrary<KademliaMessage>;

/** TCP: a run of frames fed to the incremental decoder in random pieces. */
interface TcpRun {
  readonly messages: Uint8Array[];
  readonly cuts: number[];
}
function decodeTcpRun(input: Uint8Array, cuts: readonly number[] = [7, 1, 300]): { frames: { type: number; length: number }[]; messages: Uint8Array[] } {
  const frames: { type: number; length: number }[] = [];
  const messages: Uint8Array[] = [];
  const decoder = new FrameDecoder(
    { maxMessageBytes: 4096 },
    {
      frame: (type, body) => {
        frames.push({ type, length: body.length });
        if (type === 2) messages.push(body.slice());
      },
      chunk: () => undefined,
    },
  );
  let at = 0;
  for (let i = 0; at < input.length; i++) {
    const size = Math.max(1, cuts[i % cuts.length]!);
    decoder.push(input.subarray(at, at + size));
    at += size;
  }
  return { frames, messages };
}

/** A sealed stream message (kind 4, counter u53, sealed bytes with room for the tag). */
function encodeSealed(counter: number, sealed: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + sealed.length);
  out[0] = 4;
  new DataView(out.buffer).setUint32(1, Math.floor(counter / 2 ** 32));
  new DataView(out.buffer).setUint32(5, counter >>> 0);
  out.set(sealed, 9);
  return out;
}

function encodeStreamFrame(flags: number, counter: number, sealed: Uint8Array): Uint8Array {
  const inner = encodeSealed(counter, sealed);
  const out = new Uint8Array(4 + inner.length);
  new DataView(out.buffer).setUint32(0, inner.length);
  out.set(inner, 4);
  out[4] = flags;
  return out;
}

const counter53 = fc.nat(Number.MAX_SAFE_INTEGER);

export const CODECS: readonly Codec<never>[] = [
  {
    name: 'core/frame',
    arbitrary: fc.oneof(payload.map((p) => ({ kind: 'data', payload: p })), fc.record({ kind: fc.constant('control'), type: fc.nat(255), body: payload })),
    encode: (f: { kind: string; payload?: Uint8Array; type?: number; body?: Uint8Array }) => (f.kind === 'data' ? encodeData(f.payload!) : encodeControl(TEST_PROTOCOL, f.type!, f.body)),
    decode: (b: Uint8Array) => decodeFrame(b, TEST_PROTOCOL),
  },
  { name: 'core/peer-record', arbitrary: peerRecord, encode: encodePeerRecord, decode: decodePeerRecord },
  {
    name: 'udp/control',
    arbitrary: fc.record({ type: fc.constantFrom(MESSAGE_PING, MESSAGE_PONG), pingId: u32 }),
    encode: (m: { type: 1 | 2; pingId: number }) => encodePing(m.type, m.pingId),
    decode: decodeControlDatagram,
  },
  {
    name: 'tcp/hello',
    arbitrary: fc.record({ streamWindow: fc.integer({ min: 1, max: 0xffff_ffff }), maxMessageBytes: u32, peer: peerRecord }),
    encode: (h: Parameters<typeof encodeHello>[0]) => encodeHello(h).subarray(5),
    decode: decodeHello,
  },
  {
    name: 'tcp/frame-decoder',
    arbitrary: fc.record({ messages: fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 6 }), cuts: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 4 }) }),
    encode: (run: TcpRun) => {
      const parts = run.messages.map((m) => encodeTcpMessage(m));
      const total = parts.reduce((n, p) => n + p.length, 0);
      const out = new Uint8Array(total);
      let at = 0;
      for (const part of parts) {
        out.set(part, at);
        at += part.length;
      }
      return out;
    },
    decode: (b: Uint8Array) => decodeTcpRun(b),
  },
  { name: 'rudp/packet', arbitrary: rudpPacket, encode: encodeRudp, decode: decodePacket },
  {
    name: 'noise/initiation',
    arbitrary: fc.record({ sender: u32, cookie: fc.option(bytes(16), { nil: undefined }), message: bytes(32) }),
    encode: (m: { sender: number; cookie: Uint8Array | undefined; message: Uint8Array }) => encodeInitiation(m.sender, m.cookie, m.message).subarray(4),
    decode: decodeInitiation,
  },
  {
    name: 'noise/handshake-reply',
    arbitrary: fc.record({ type: fc.constantFrom(NOISE_MESSAGE.response, NOISE_MESSAGE.final), sender: u32, receiver: u32, message: fc.uint8Array({ minLength: 64, maxLength: 200 }) }),
    encode: (m: { type: 2 | 3; sender: number; receiver: number; message: Uint8Array }) => encodeHandshakeReply(m.type as never, m.sender, m.receiver, m.message),
    decode: (b: Uint8Array) => {
      const { type, body } = controlBody(b, NOISE_PROTOCOL);
      if (type !== NOISE_MESSAGE.response && type !== NOISE_MESSAGE.final) throw new WireError('WIRE_UNKNOWN_TYPE', `noise: type ${type}`);
      return { type, ...decodeHandshakeReply(body) };
    },
  },
  {
    name: 'noise/transport',
    arbitrary: fc.record({ receiver: u32, counter: counter53, sealed: fc.uint8Array({ minLength: 17, maxLength: 120 }) }),
    encode: (m: { receiver: number; counter: number; sealed: Uint8Array }) => {
      const out = new Uint8Array(16 + m.sealed.length);
      out.set([1, NOISE_PROTOCOL.id, NOISE_PROTOCOL.version, NOISE_MESSAGE.transport]);
      const view = new DataView(out.buffer);
      view.setUint32(4, m.receiver);
      view.setUint32(8, Math.floor(m.counter / 2 ** 32));
      view.setUint32(12, m.counter >>> 0);
      out.set(m.sealed, 16);
      return out;
    },
    decode: (b: Uint8Array) => {
      const t = decodeTransport(b);
      return { receiver: t.receiver, counter: t.counter, sealed: t.sealed };
    },
  },
  {
    name: 'noise/cookie',
    arbitrary: fc.record({ receiver: u32, cookie: bytes(16) }),
    encode: (m: { receiver: number; cookie: Uint8Array }) => encodeCookie(m.receiver, m.cookie).subarray(4),
    decode: decodeCookie,
  },
  { name: 'noise/unknown-session', arbitrary: u32, encode: (r: number) => encodeUnknownSession(r).subarray(4), decode: decodeUnknownSession },
  { name: 'noise/identity-proof', arbitrary: fc.record({ publicKey: bytes(32), signature: bytes(64) }), encode: encodeIdentityProof, decode: decodeIdentityProof },
  {
    name: 'noise/sealed-message',
    arbitrary: fc.record({ counter: counter53, sealed: fc.uint8Array({ minLength: 16, maxLength: 100 }) }),
    encode: (m: { counter: number; sealed: Uint8Array }) => encodeSealed(m.counter, m.sealed),
    decode: decodeSealedMessage,
  },
  { name: 'noise/stream-header', arbitrary: bytes(8), encode: (id: Uint8Array) => Uint8Array.of(5, ...id), decode: decodeStreamHeader },
  {
    name: 'noise/stream-frame',
    arbitrary: fc.record({ flags: fc.constantFrom(0, 1, 2), counter: counter53, sealed: fc.uint8Array({ minLength: 16, maxLength: 100 }) }),
    encode: (m: { flags: number; counter: number; sealed: Uint8Array }) => encodeStreamFrame(m.flags, m.counter, m.sealed),
    decode: decodeStreamFrame,
  },
  {
    name: 'kademlia/message',
    arbitrary: kademliaMessage,
    encode: encodeKademlia,
    decode: (b: Uint8Array) => {
      const { type, body } = controlBody(b, KADEMLIA_PROTOCOL);
      return decodeKademlia(type, body);
    },
  },
  gossipCodec('gossip/message', gossip, gossip.GOSSIP_PROTOCOL),
  gossipCodec('biggossip/message', biggossip, biggossip.BIGGOSSIP_PROTOCOL),
  {
    name: 'fixed-peers/message',
    arbitrary: fc.record({ type: fc.constantFrom(1 as const, 2 as const, 3 as const), peer: peerRecord }),
    encode: (m: { type: 1 | 2 | 3; peer: PeerRecord }) => fixedPeers.encodeMessage(m.type, m.peer),
    decode: (b: Uint8Array) => {
      const { type, body } = controlBody(b, fixedPeers.FIXED_PEERS_PROTOCOL);
      return fixedPeers.decodeMessage(type, body);
    },
  },
  {
    name: 'holepunch/incoming',
    arbitrary: holepunchMessage,
    encode: (m: { punch?: PunchMessage; relay?: RelayMessage }) => (m.punch ? encodePunchMessage(m.punch) : encodeRelayMessage(m.relay!)),
    decode: (b: Uint8Array) => {
      const incoming = decodeIncoming(b);
      return incoming.kind === 'punch' ? { punch: incoming.message } : incoming.kind === 'relay' ? { relay: incoming.message } : incoming;
    },
  },
] as unknown as readonly Codec<never>[];

function encodeRudp(p: RudpValue): Uint8Array {
  switch (p.type) {
    case 1: {
      const { payload: data, ...header } = p.packet;
      return encodeChunk(header, data);
    }
    case 2:
      return encodeAck(p.packet);
    case 3:
      return encodeRefuse(p.packet);
    default:
      return encodeCancel(p.packet);
  }
}

// ---------------------------------------------------------------------------
// Running

/** Round-trip property: decode(encode(v)) is v, for `runs` generated values. Throws on a counterexample. */
export function checkRoundTrip(codec: Codec<never>, runs: number, seed = 1): void {
  fc.assert(
    fc.property(codec.arbitrary, (value) => {
      const decoded = codec.decode(codec.encode(value));
      const expected = canonical(codec.name === 'tcp/frame-decoder' ? { messages: (value as unknown as TcpRun).messages } : value);
      const got = canonical(codec.name === 'tcp/frame-decoder' ? { messages: (decoded as { messages: Uint8Array[] }).messages } : decoded);
      if (got !== expected) throw new Error(`${codec.name}: round trip changed the value\n  sent ${expected}\n  got  ${got}`);
    }),
    { numRuns: runs, seed, endOnFailure: true },
  );
}

/** xorshift32: cheap enough for millions of mutations. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xfe, 0xff];

/** One mutated input: a valid encoding changed in 1..4 ways, or random bytes (1 in 8). */
export function mutate(next: () => number, corpus: readonly Uint8Array[]): Uint8Array {
  const int = (n: number): number => (n <= 0 ? 0 : next() % n);
  if (int(8) === 0 || corpus.length === 0) {
    const out = new Uint8Array(int(160));
    for (let i = 0; i < out.length; i++) out[i] = next() & 0xff;
    return out;
  }
  let data = corpus[int(corpus.length)]!.slice();
  const steps = 1 + int(4);
  for (let s = 0; s < steps; s++) {
    const at = int(data.length + 1);
    switch (int(9)) {
      case 0: // bit flip
        if (data.length) data[int(data.length)]! ^= 1 << int(8);
        break;
      case 1: // interesting byte
        if (data.length) data[int(data.length)] = INTERESTING[int(INTERESTING.length)]!;
        break;
      case 2: {
        // insert bytes
        const extra = 1 + int(8);
        const out = new Uint8Array(data.length + extra);
        out.set(data.subarray(0, at));
        for (let i = 0; i < extra; i++) out[at + i] = next() & 0xff;
        out.set(data.subarray(at), at + extra);
        data = out;
        break;
      }
      case 3: {
        // delete bytes
        const count = 1 + int(8);
        const out = new Uint8Array(Math.max(0, data.length - count));
        out.set(data.subarray(0, Math.min(at, out.length)));
        if (at + count < data.length) out.set(data.subarray(at + count), at);
        data = out;
        break;
      }
      case 4: // truncate
        data = data.subarray(0, int(data.length));
        break;
      case 5: {
        // duplicate a slice in place (repeated fields, lying counts)
        const from = int(data.length);
        const slice = data.slice(from, from + 1 + int(16));
        const out = new Uint8Array(data.length + slice.length);
        out.set(data.subarray(0, at));
        out.set(slice, at);
        out.set(data.subarray(at), at + slice.length);
        data = out;
        break;
      }
      case 6: {
        // splice with another valid encoding
        const other = corpus[int(corpus.length)]!;
        const cut = int(other.length);
        const out = new Uint8Array(at + other.length - cut);
        out.set(data.subarray(0, at));
        out.set(other.subarray(cut), at);
        data = out;
        break;
      }
      case 7: {
        // a 16- or 32-bit field set to an extreme (lengths, counts)
        if (data.length >= 4) {
          const where = int(data.length - 3);
          const value = [0, 0xff, 0x7f, 0x80][int(4)]!;
          for (let i = 0; i < 1 + int(4); i++) data[where + i] = value;
        }
        break;
      }
      default: {
        // extend with random bytes
        const extra = 1 + int(32);
        const out = new Uint8Array(data.length + extra);
        out.set(data);
        for (let i = data.length; i < out.length; i++) out[i] = next() & 0xff;
        data = out;
      }
    }
  }
  return data;
}

/** Valid encodings of `count` generated values (deterministic). */
export function corpusOf(codec: Codec<never>, count = 48, seed = 7): Uint8Array[] {
  return fc.sample(codec.arbitrary, { numRuns: count, seed }).map((value) => codec.encode(value));
}

/**
 * Mutation fuzzing: `inputs` mutated encodings through the decoder. Anything thrown but a
 * `WireError` is a crash (reported, never rethrown, so every input runs).
 */
export function fuzzDecoder(codec: Codec<never>, inputs: number, seed = 1, corpus = corpusOf(codec)): FuzzResult {
  const next = rng(seed * 0x9e37 + codec.name.length);
  let accepted = 0;
  let rejected = 0;
  let crashes = 0;
  const examples: { input: string; error: string }[] = [];
  const started = performance.now();
  // Refusals are the common case: without stack capture a thrown WireError costs a
  // microsecond, not tens, so a million inputs take seconds. Restored below.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
  for (let i = 0; i < inputs; i++) {
    const input = mutate(next, corpus);
    try {
      codec.decode(input);
      accepted++;
    } catch (error) {
      if (error instanceof WireError) rejected++;
      else {
        crashes++;
        if (examples.length < 5) examples.push({ input: toHex(input), error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      }
    }
  }
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  return { name: codec.name, inputs, accepted, rejected, crashes, examples, ms: performance.now() - started };
}
