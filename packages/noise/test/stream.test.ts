/**
 * noiseStream(): the handshake and sealing logic over an in-process message/stream
 * transport (fast, and lets the tests tamper with traffic), then over real @deccom/tcp
 * sockets on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, Identity, InvalidArgumentError, MessageTooLargeError, NodeId, type PeerRecord } from '@deccom/core';
import { tcp, type TcpOptions } from '@deccom/tcp';
import { nobleNoiseCrypto, nodeNoiseCrypto, NoiseError, noiseStream, STREAM_FRAME_PLAINTEXT, STREAM_MESSAGE, type NoiseCrypto, type NoiseStreamOptions } from '../src/index.js';
import { STREAM_HEADER_LENGTH } from '../src/wire.js';
import { directoryLayer } from '@deccom/core/testing';
import { Pipe } from './stream-harness.js';
import { sleep, waitFor } from './helpers.js';
import { scrypt } from 'node:crypto';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Two started nodes over one in-process pipe. */
async function pipePair() {
  const pipe = new Pipe();
  const a = pipeNode(pipe);
  const b = pipeNode(pipe);
  await a.node.start();
  await b.node.start();
  return { pipe, a, b };
}

function pipeNode(pipe: Pipe, options: NoiseStreamOptions = {}, identity = Identity.generate()) {
  const node = createNode({ identity, layers: [pipe.layer(), noiseStream(options)] });
  const messages: string[] = [];
  const streams: { data: Uint8Array[]; error?: unknown; done: boolean }[] = [];
  node.handle('message', (data) => messages.push(decode(data)));
  node.handle('stream', (source) => {
    const entry: { data: Uint8Array[]; error?: unknown; done: boolean } = { data: [], done: false };
    streams.push(entry);
    void (async () => {
      try {
        for await (const chunk of source) entry.data.push(chunk.slice());
      } catch (error) {
        entry.error = error;
      }
      entry.done = true;
    })();
  });
  stops.push(() => node.stop());
  return { node, messages, streams };
}

const counter = (node: { counters(): Record<string, Record<string, number>> }, name: string): number => node.counters()['noise-stream']?.[name] ?? 0;
const joined = (parts: Uint8Array[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p)));

describe('noiseStream() over an in-process transport', () => {
  it('handshakes on first use, seals messages and streams, binds the claimed id', async () => {
    const { pipe, a, b } = await pipePair();
    let seen = '';
    pipe.onMessage = (data) => {
      seen += Buffer.from(data).toString('latin1');
      return data;
    };
    await a.node.sendMessage(b.node.id, text('secret message'));
    await waitFor(() => b.messages.length === 1);
    expect(b.messages).toEqual(['secret message']);
    expect(seen.includes('secret message')).toBe(false);
    const session = await a.node.secureStreamSession(b.node.id);
    expect(session.remoteId.equals(b.node.id)).toBe(true);
    const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    await a.node.sendStream(b.node.id, [big.subarray(0, 100_000), big.subarray(100_000)]);
    await waitFor(() => b.streams[0]?.done === true);
    expect(b.streams[0]!.error).toBeUndefined();
    expect(joined(b.streams[0]!.data).equals(Buffer.from(big))).toBe(true);
    await b.node.sendMessage(a.node.id, text('reply'));
    await waitFor(() => a.messages.length === 1);
    expect(counter(a.node, 'handshakes-completed')).toBe(1);
  });

  it('large frames (ciphertext and tag handed down apart) open however the transport cuts the bytes, on both crypto paths', async () => {
    // 3 whole frames, one frame and a bit, a small frame: parts, parts with the tag of the
    // previous frame carried in front of the next header, and the copied path.
    const sizes = [3 * STREAM_FRAME_PLAINTEXT, STREAM_FRAME_PLAINTEXT + 5, 100];
    const chunks = sizes.map((size, k) => new Uint8Array(size).map((_, i) => (i * 31 + k) & 0xff));
    const expected = joined(chunks);
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    /** The stream's bytes cut again at random points (1 byte to 40 KiB), so headers and tags straddle chunks. */
    const recut = (parts: Uint8Array[]): Uint8Array[] => {
      const all = joined(parts);
      const out: Uint8Array[] = [];
      for (let offset = 0; offset < all.length; ) {
        const n = Math.min(all.length - offset, random(4) === 0 ? 1 + random(20) : 1 + random(40_000));
        out.push(new Uint8Array(all.subarray(offset, offset + n)));
        offset += n;
      }
      return out;
    };
    for (const crypto of [nodeNoiseCrypto()!, nobleNoiseCrypto]) {
      const pipe = new Pipe();
      const a = pipeNode(pipe, { crypto });
      const b = pipeNode(pipe, { crypto });
      await a.node.start();
      await b.node.start();
      let sent: Uint8Array[] = [];
      pipe.onStream = (parts) => {
        sent = parts;
        return recut(parts);
      };
      for (let round = 0; round < 3; round++) {
        await a.node.sendStream(b.node.id, chunks);
        expect(await waitFor(() => b.streams[round]?.done === true)).toBe(true);
        expect(b.streams[round]!.error).toBeUndefined();
        expect(joined(b.streams[round]!.data).equals(expected)).toBe(true);
      }
      // Large frames travel as header, ciphertext (never copied) and tag.
      expect(sent.some((part) => part.length === STREAM_FRAME_PLAINTEXT)).toBe(true);
      expect(sent.some((part) => part.length === 16 + 13)).toBe(true);

      // A flipped byte in the second frame's ciphertext: the first frame is delivered, nothing of the second.
      const secondFrame = 9 + (13 + STREAM_FRAME_PLAINTEXT + 16) + 13 + 1_000;
      pipe.onStream = (parts) => {
        const all = joined(parts);
        all[secondFrame]! ^= 0x40;
        return recut([all]);
      };
      await a.node.sendStream(b.node.id, chunks);
      expect(await waitFor(() => b.streams[3]?.done === true)).toBe(true);
      expect((b.streams[3]!.error as NoiseError).code).toBe('DECRYPT_FAILED');
      expect(joined(b.streams[3]!.data).equals(expected.subarray(0, STREAM_FRAME_PLAINTEXT))).toBe(true);
      // A flipped byte in the first frame's tag, the tag cut in two.
      const firstTag = 9 + 13 + STREAM_FRAME_PLAINTEXT + 3;
      pipe.onStream = (parts) => {
        const all = joined(parts);
        all[firstTag]! ^= 1;
        return [all.subarray(0, firstTag), all.subarray(firstTag)];
      };
      await a.node.sendStream(b.node.id, chunks);
      expect(await waitFor(() => b.streams[4]?.done === true)).toBe(true);
      expect((b.streams[4]!.error as NoiseError).code).toBe('DECRYPT_FAILED');
      expect(b.streams[4]!.data).toEqual([]);
      // A byte after the authenticated end frame.
      pipe.onStream = (parts) => [...recut(parts), Uint8Array.of(0)];
      await a.node.sendStream(b.node.id, chunks);
      expect(await waitFor(() => b.streams[5]?.done === true)).toBe(true);
      expect((b.streams[5]!.error as NoiseError).code).toBe('DECRYPT_FAILED');
      expect(counter(b.node, 'dropped.tampered')).toBe(2);
      expect(counter(b.node, 'dropped.trailing-bytes')).toBe(1);
      await a.node.stop();
      await b.node.stop();
    }
  });

  it('small writes are gathered into frames, and any mix of write sizes arrives byte for byte in order', async () => {
    const { pipe, a, b } = await pipePair();
    let parts = 0;
    pipe.onStream = (chunks) => {
      parts = chunks.length;
      return chunks;
    };
    // 5,000 writes of 1 to 2,000 bytes, then a mix with large ones, each write distinct.
    let seed = 1;
    const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    const write = (length: number): Uint8Array => Uint8Array.from({ length }, () => next() & 0xff);
    const small = Array.from({ length: 5_000 }, () => write(1 + (next() % 2_000)));
    await a.node.sendStream(b.node.id, small);
    await waitFor(() => b.streams[0]?.done === true);
    expect(b.streams[0]!.error).toBeUndefined();
    expect(joined(b.streams[0]!.data).equals(joined(small))).toBe(true);
    // ~5 MB in frames of up to 64 KiB: about 80 frames handed down, not 5,000.
    expect(parts).toBeLessThan(200);
    const sizes = [1, 300, 20_000, 5, 70_000, 16_383, 16_384, 1_000, 300_000, 2, STREAM_FRAME_PLAINTEXT + 7, 40];
    const mixed = Array.from({ length: 60 }, (_, i) => write(sizes[i % sizes.length]!));
    // An asynchronous source too, whose chunks are all there at once.
    await a.node.sendStream(
      b.node.id,
      (async function* () {
        yield* mixed;
      })(),
    );
    await waitFor(() => b.streams[1]?.done === true);
    expect(b.streams[1]!.error).toBeUndefined();
    expect(joined(b.streams[1]!.data).equals(joined(mixed))).toBe(true);
    // A source of something else than bytes is refused with a typed error.
    await expect(a.node.sendStream(b.node.id, ['not bytes'] as unknown as Uint8Array[])).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('simultaneous first sends from both sides give one session', async () => {
    for (let i = 0; i < 5; i++) {
      const { a, b } = await pipePair();
      await Promise.all([a.node.sendMessage(b.node.id, text('a')), b.node.sendMessage(a.node.id, text('b'))]);
      await waitFor(() => a.messages.length === 1 && b.messages.length === 1);
      const [sa, sb] = await Promise.all([a.node.secureStreamSession(b.node.id), b.node.secureStreamSession(a.node.id)]);
      expect(Buffer.from(sa.handshakeHash).equals(Buffer.from(sb.handshakeHash))).toBe(true);
      await a.node.stop();
      await b.node.stop();
    }
  });

  it('a forged introduction (claimed id != proven identity) fails with IDENTITY_MISMATCH', async () => {
    const { pipe, a, b } = await pipePair();
    const victim = NodeId.ofString('victim');
    // B's transport claims to be the victim; A routes replies to the victim too, so we
    // point the victim's endpoint at B.
    pipe.claim = (from) => (from.equals(b.node.id) ? victim : from);
    pipe.endpoints.set(victim.hex, pipe.endpoints.get(b.node.id.hex)!);
    const events: string[] = [];
    a.node.on('noise-handshake-error', (_address, error) => events.push(error.code));
    await b.node.sendMessage(a.node.id, text('hi')).catch(() => undefined);
    expect(await waitFor(() => counter(a.node, 'handshakes-failed.identity-mismatch') === 1)).toBe(true);
    expect(events).toEqual(['IDENTITY_MISMATCH']);
    await sleep(20);
    expect(a.messages).toEqual([]);
  });

  it('tampered, replayed and truncated messages and streams are refused and counted', async () => {
    const { pipe, a, b } = await pipePair();
    await a.node.sendMessage(b.node.id, text('first'));
    await waitFor(() => b.messages.length === 1);
    let captured: Uint8Array | undefined;
    pipe.onMessage = (data) => {
      if (data[0] === STREAM_MESSAGE.sealed) captured = data.slice();
      const out = data.slice();
      out[out.length - 1]! ^= 1;
      return out;
    };
    await a.node.sendMessage(b.node.id, text('tampered'));
    await waitFor(() => counter(b.node, 'dropped.tampered') === 1);
    pipe.onMessage = undefined;
    // Replay the genuine bytes twice: accepted once (it was never delivered), then refused.
    const deliver = (bytes: Uint8Array): void => pipe.endpoints.get(b.node.id.hex)!.message(bytes, a.node.id, { host: '127.0.0.1', port: 1 });
    deliver(captured!);
    deliver(captured!);
    expect(b.messages).toEqual(['first', 'tampered']);
    expect(counter(b.node, 'dropped.replayed')).toBe(1);
    deliver(captured!.subarray(0, 12));
    expect(counter(b.node, 'dropped.truncated')).toBe(1);

    // Streams: cut before the end frame, a flipped byte, two chunks swapped.
    const chunks = [text('one'), text('two'), text('three')];
    pipe.onStream = (parts) => parts.slice(0, -1);
    await a.node.sendStream(b.node.id, chunks);
    pipe.onStream = (parts) => parts.map((p, i) => (i === 2 ? p.map((x, j) => (j === p.length - 1 ? x ^ 1 : x)) : p));
    await a.node.sendStream(b.node.id, chunks);
    pipe.onStream = (parts) => [parts[0]!, parts[2]!, parts[1]!, ...parts.slice(3)];
    await a.node.sendStream(b.node.id, chunks);
    pipe.onStream = undefined;
    await a.node.sendStream(b.node.id, chunks);
    await waitFor(() => b.streams.length === 4 && b.streams.every((s) => s.done));
    expect(b.streams.map((s) => (s.error as NoiseError | undefined)?.code)).toEqual(['DECRYPT_FAILED', 'DECRYPT_FAILED', 'DECRYPT_FAILED', undefined]);
    expect(decode(joined(b.streams[3]!.data))).toBe('onetwothree');
    expect(counter(b.node, 'dropped.truncated')).toBe(2);
    expect(counter(b.node, 'dropped.tampered')).toBe(2);
    expect(counter(b.node, 'dropped.replayed')).toBe(2);
  });

  it('a replayed stream, and a stream without its start frame, are refused and counted', async () => {
    const { pipe, a, b } = await pipePair();
    let captured: Uint8Array[] = [];
    pipe.onStream = (parts) => {
      captured = parts.map((part) => part.slice());
      return parts;
    };
    await a.node.sendStream(b.node.id, [text('one'), text('two')]);
    pipe.onStream = undefined;
    await waitFor(() => b.streams[0]?.done === true);
    expect(decode(joined(b.streams[0]!.data))).toBe('onetwo');
    const inject = (parts: Uint8Array[]): void =>
      pipe.endpoints.get(b.node.id.hex)!.stream(
        (async function* () {
          yield* parts;
        })(),
        a.node.id,
        { host: '127.0.0.1', port: 1 },
      );
    // The whole stream again: its start frame's session counter was seen.
    inject(captured);
    // Its header, then its frames without the start frame (a suffix passed off as a stream).
    inject([captured[0]!.subarray(0, STREAM_HEADER_LENGTH), ...captured.slice(1)]);
    await waitFor(() => b.streams.length === 3 && b.streams.every((entry) => entry.done));
    expect(b.streams.map((entry) => (entry.error as NoiseError | undefined)?.code)).toEqual([undefined, 'DECRYPT_FAILED', 'DECRYPT_FAILED']);
    expect(b.streams[1]!.data).toEqual([]);
    expect(b.streams[2]!.data).toEqual([]);
    expect(counter(b.node, 'dropped.replayed')).toBe(1);
    expect(counter(b.node, 'dropped.bad-start')).toBe(1);
  });

  it('sign-only: messages and streams readable on the wire, authenticated, and no key ever in the clear', async () => {
    // Every 32-byte key a's AEAD is called with (session and stream keys alike).
    const keys: Uint8Array[] = [];
    const base = nodeNoiseCrypto()!;
    const recording: NoiseCrypto = {
      name: base.name,
      dh: (name) => base.dh(name),
      hash: (name) => base.hash(name),
      cipher: (name) =>
        new Proxy(base.cipher(name), {
          get: (target, property, receiver) => {
            const value: unknown = Reflect.get(target, property, receiver);
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => {
              if (args[0] instanceof Uint8Array && args[0].length === 32) keys.push(args[0].slice());
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          },
        }),
    };
    const pipe = new Pipe();
    const a = pipeNode(pipe, { mode: 'sign-only', crypto: recording });
    const b = pipeNode(pipe, { mode: 'sign-only' });
    await a.node.start();
    await b.node.start();
    const wire: Uint8Array[] = [];
    pipe.onMessage = (data) => (wire.push(data.slice()), data);
    pipe.onStream = (parts) => (wire.push(...parts.map((part) => part.slice())), parts);
    await a.node.sendMessage(b.node.id, text('readable message'));
    await a.node.sendStream(b.node.id, [text('readable '), text('stream')]);
    await waitFor(() => b.messages.length === 1 && b.streams[0]?.done === true);
    expect(b.messages).toEqual(['readable message']);
    expect(b.streams[0]!.error).toBeUndefined();
    expect(decode(joined(b.streams[0]!.data))).toBe('readable stream');
    const all = Buffer.concat(wire.map((part) => Buffer.from(part)));
    expect(all.includes(Buffer.from('readable message'))).toBe(true);
    expect(all.includes(Buffer.from('readable '))).toBe(true);
    expect(keys.length).toBeGreaterThan(2);
    for (const key of keys) expect(all.includes(Buffer.from(key))).toBe(false);
    // A changed byte of the readable stream text is refused.
    pipe.onMessage = undefined;
    pipe.onStream = (parts) => parts.map((part) => {
      const at = Buffer.from(part).indexOf('stream');
      if (at < 0) return part;
      const out = part.slice();
      out[at] = 'S'.charCodeAt(0);
      return out;
    });
    await a.node.sendStream(b.node.id, [text('readable '), text('stream')]);
    await waitFor(() => b.streams[1]?.done === true);
    expect((b.streams[1]!.error as NoiseError | undefined)?.code).toBe('DECRYPT_FAILED');
    expect(counter(b.node, 'dropped.tampered')).toBe(1);
  });

  it('rekeys (Noise Rekey) every rekeyAfterMessages frames without losing data', async () => {
    const pipe = new Pipe();
    const a = pipeNode(pipe, { rekeyAfterMessages: 8_128 });
    const b = pipeNode(pipe, { rekeyAfterMessages: 8_128 });
    await a.node.start();
    await b.node.start();
    const chunks = Array.from({ length: 20_000 }, (_, i) => text(`${i},`));
    await a.node.sendStream(b.node.id, chunks);
    await waitFor(() => b.streams[0]?.done === true, 30_000);
    expect(b.streams[0]!.error).toBeUndefined();
    expect(decode(joined(b.streams[0]!.data))).toBe(chunks.map(decode).join(''));
    // The stream rekeyed its own key twice; the session's keys move on with its own
    // counters (messages and stream starts): 8,200 messages cross one session epoch.
    const MESSAGES = 8_200;
    for (let i = 0; i < MESSAGES; i++) await a.node.sendMessage(b.node.id, text(`m${i}`));
    await waitFor(() => b.messages.length === MESSAGES, 30_000);
    expect(b.messages.length).toBe(MESSAGES);
    expect(b.messages[MESSAGES - 1]).toBe(`m${MESSAGES - 1}`);
    await a.node.sendStream(b.node.id, [text('a stream after the session rekeyed')]);
    await waitFor(() => b.streams[1]?.done === true);
    expect(b.streams[1]!.error).toBeUndefined();
    expect(decode(joined(b.streams[1]!.data))).toBe('a stream after the session rekeyed');
    expect(() => noiseStream({ rekeyAfterMessages: 100 })).toThrow(/rekeyAfterMessages/);
  });

  it('a forged counter far ahead neither hangs nor moves the keys on', async () => {
    const { pipe, a, b } = await pipePair();
    await a.node.sendMessage(b.node.id, text('1'));
    await waitFor(() => b.messages.length === 1);
    const forged = new Uint8Array(1 + 8 + 20);
    forged[0] = STREAM_MESSAGE.sealed;
    new DataView(forged.buffer).setUint32(1, 0x1fffff); // counter near 2^53: billions of epochs ahead
    const started = Date.now();
    pipe.endpoints.get(b.node.id.hex)!.message(forged, a.node.id, { host: '127.0.0.1', port: 1 });
    forged[1] = 0;
    new DataView(forged.buffer).setUint32(5, 65_536 + 5); // the next epoch, not authenticated
    pipe.endpoints.get(b.node.id.hex)!.message(forged, a.node.id, { host: '127.0.0.1', port: 1 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(counter(b.node, 'dropped.tampered')).toBe(2);
    await a.node.sendMessage(b.node.id, text('2'));
    await waitFor(() => b.messages.length === 2);
    expect(b.messages).toEqual(['1', '2']);
  });

  it('a closed connection ends the session; the next send handshakes again', async () => {
    const { a, b } = await pipePair();
    await a.node.sendMessage(b.node.id, text('1'));
    await waitFor(() => b.messages.length === 1);
    await a.node.closeConnection(b.node.id);
    await sleep(10);
    await a.node.sendMessage(b.node.id, text('2'));
    await waitFor(() => b.messages.length === 2);
    expect(counter(a.node, 'handshakes-completed')).toBe(2);
  });

  it('a connection that closes while the last handshake message is verified leaves no session on it', async () => {
    // The initiator completes on sending message 3 and closes at once; the responder gets
    // message 3 and then the close, while its identity check is still on the thread pool.
    // A session stored after that close would belong to no connection: the responder's
    // next message would be sealed with keys the initiator has already dropped.
    const { a, b } = await pipePair();
    await a.node.secureStreamSession(b.node.id);
    await a.node.closeConnection(b.node.id);
    await waitFor(() => counter(b.node, 'handshakes-failed.connection-closed') === 1, 2_000);
    expect(counter(b.node, 'handshakes-failed.connection-closed')).toBe(1);
    expect(b.node.describe().layers.find((layer) => layer.type === 'noise-stream')?.status).toMatchObject({ sessions: 0, pending: 0 });
    await b.node.sendMessage(a.node.id, text('after the close'));
    expect(await waitFor(() => a.messages.length === 1, 5_000)).toBe(true);
    expect(a.messages).toEqual(['after the close']);
    expect(counter(a.node, 'dropped.no-session')).toBe(0);
  });

  it('a handshake whose connection closed fails its waiters with CONNECTION_CLOSED; the next call handshakes again', async () => {
    const { pipe, a, b } = await pipePair();
    // The initiator's connection closes while it verifies message 2.
    pipe.onMessage = (data, from, to) => {
      // Queued behind the delivery of message 2 (which the pipe queues after this returns).
      if (data[0] === STREAM_MESSAGE.handshake2) queueMicrotask(() => setImmediate(() => pipe.endpoints.get(to.hex)?.close(from)));
      return data;
    };
    const first = a.node.secureStreamSession(b.node.id);
    await expect(first).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(counter(a.node, 'handshakes-failed.connection-closed')).toBe(1);
    pipe.onMessage = undefined;
    const session = await a.node.secureStreamSession(b.node.id);
    expect(session.remoteId.equals(b.node.id)).toBe(true);
  });
});

/** The smallest discovery for tcp: a shared address book. */
function book() {
  const records = new Map<string, PeerRecord>();
  return { records, layer: () => directoryLayer(records, '127.0.0.1') };
}

/** Two started nodes over tcp with `noiseStream(options)` (`optionsB` for b when given), each in the other's address book. */
async function tcpPair(options: NoiseStreamOptions = {}, optionsB: NoiseStreamOptions = options, tcpOptions: TcpOptions = {}) {
  const directory = book();
  const make = (layerOptions: NoiseStreamOptions) => {
    const node = createNode({ layers: [directory.layer(), tcp({ host: '127.0.0.1', ...tcpOptions }), noiseStream(layerOptions)] });
    stops.push(() => node.stop());
    return node;
  };
  const a = make(options);
  const b = make(optionsB);
  await a.start();
  await b.start();
  directory.records.set(a.id.hex, a.localPeer());
  directory.records.set(b.id.hex, b.localPeer());
  return { a, b };
}

describe('noiseStream() over @deccom/tcp on 127.0.0.1', () => {
  it('messages and a 32 MiB stream, encrypted end to end', { timeout: 120_000 }, async () => {
    const { a, b } = await tcpPair();
    const messages: string[] = [];
    let received = 0;
    let streamDone = false;
    let streamError: unknown;
    b.handle('message', (data, from) => messages.push(`${from.short}:${decode(data)}`));
    b.handle('stream', (source) => {
      void (async () => {
        try {
          for await (const chunk of source) received += chunk.length;
        } catch (error) {
          streamError = error;
        }
        streamDone = true;
      })();
    });
    await a.sendMessage(b.id, text('over tcp'));
    expect(await waitFor(() => messages.length === 1)).toBe(true);
    expect(messages).toEqual([`${a.id.short}:over tcp`]);
    const chunk = new Uint8Array(1 << 20);
    const total = 32;
    await a.sendStream(
      b.id,
      (function* () {
        for (let i = 0; i < total; i++) yield chunk;
      })(),
    );
    expect(await waitFor(() => streamDone, 60_000)).toBe(true);
    expect(streamError).toBeUndefined();
    expect(received).toBe(total * chunk.length);
    const session = await a.secureStreamSession(b.id);
    expect(session.remoteId.equals(b.id)).toBe(true);
  });

  it('a stream held up by its reader (flow control) while 5,000 messages pass still completes', { timeout: 60_000 }, async () => {
    // With one counter space for messages and stream frames (before 2026-12-06), the frame
    // waiting for credit fell behind the replay window and the stream failed as replayed.
    const { a, b } = await tcpPair();
    let got = 0;
    b.handle('message', () => got++);
    let source: AsyncIterable<Uint8Array> | undefined;
    b.handle('stream', (incoming) => {
      source = incoming;
    });
    // 24 MiB against tcp's 16 MiB stream window: the stream stalls until b reads.
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const CHUNKS = 384;
    const sent = a.sendStream(
      b.id,
      (function* () {
        for (let i = 0; i < CHUNKS; i++) yield chunk;
      })(),
    );
    expect(await waitFor(() => source !== undefined)).toBe(true);
    const MESSAGES = 5_000;
    for (let i = 0; i < MESSAGES; i++) await a.sendMessage(b.id, text(`m${i}`));
    expect(await waitFor(() => got === MESSAGES)).toBe(true);
    let received = 0;
    for await (const piece of source!) received += piece.length;
    await sent;
    expect(received).toBe(CHUNKS * chunk.length);
    expect(b.counters()['noise-stream']?.['dropped'] ?? 0).toBe(0);
  });

  it("a message too large once sealed is refused in the caller's terms: its own size against what a sealed message carries", async () => {
    const { a, b } = await tcpPair({}, {}, { maxMessageBytes: 1000 });
    const got: number[] = [];
    b.handle('message', (data) => void got.push(data.length));
    // Sealing adds 25 bytes (kind, counter, tag): 975 is the most that fits in 1000.
    await a.sendMessage(b.id, new Uint8Array(975));
    const error = await a.sendMessage(b.id, new Uint8Array(976)).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Core's class, the one tcp throws too: a caller catches it the same way with or without noise.
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect(error).toMatchObject({ code: 'MESSAGE_TOO_LARGE', size: 976, limit: 975 });
    expect((error as MessageTooLargeError).message).toContain('a message of 976 bytes exceeds the 975 bytes');
    expect((error as MessageTooLargeError).cause).toMatchObject({ code: 'MESSAGE_TOO_LARGE', size: 1001, limit: 1000 });
    expect(await waitFor(() => got.length === 1)).toBe(true);
    expect(got).toEqual([975]);
  });

  it('a small write from an asynchronous source goes out without waiting for more (an interactive stream does not stall)', { timeout: 30_000 }, async () => {
    const { a, b } = await tcpPair();
    // Each write waits for the receiver to have read the one before: a write held back to
    // be batched with the next would never arrive.
    const seen: string[] = [];
    let wake: (() => void) | undefined;
    b.handle('stream', (source) => {
      void (async () => {
        for await (const chunk of source) {
          seen.push(decode(chunk));
          wake?.();
        }
      })();
    });
    const ROUNDS = 20;
    const sending = a.sendStream(
      b.id,
      (async function* () {
        for (let i = 0; i < ROUNDS; i++) {
          const read = new Promise<void>((resolve) => (wake = resolve));
          yield text(`ping ${i};`);
          await read;
        }
      })(),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([sending.then(() => 'sent'), new Promise((resolve) => (timer = setTimeout(resolve, 10_000, 'stalled')))]);
    clearTimeout(timer);
    expect(outcome, `the receiver saw ${seen.length} of ${ROUNDS} writes`).toBe('sent');
    expect(seen.join('')).toBe(Array.from({ length: ROUNDS }, (_, i) => `ping ${i};`).join(''));
  });

  it('a burst of 500 messages sent the moment the session opens all arrive, while the responder still verifies the final message', { timeout: 30_000 }, async () => {
    const { a, b } = await tcpPair();
    const got = new Set<string>();
    b.handle('message', (data) => got.add(decode(data)));
    await a.secureStreamSession(b.id);
    const BURST = 500;
    await Promise.all(Array.from({ length: BURST }, (_, i) => a.sendMessage(b.id, text(`m${i}-${'x'.repeat(200)}`))));
    const arrived = await waitFor(() => got.size === BURST);
    const counters = b.counters()['noise-stream']!;
    expect(arrived, `${got.size} of ${BURST} arrived; responder counters ${JSON.stringify(counters)}`).toBe(true);
    expect(counters['dropped'] ?? 0).toBe(0);
  });

  // Early messages "m0".."m7" are 27 bytes each once sealed (kind, counter, tag): 8 fit either bound, a 9th does not.
  for (const [bound, options] of [
    ['maxEarlyMessages', { maxEarlyMessages: 8 }],
    ['maxEarlyBytes', { maxEarlyBytes: 8 * 30 }],
  ] as const) {
    it(`more early data than the responder holds (${bound}) aborts the connection (never a silent gap), and the pair recovers`, { timeout: 30_000 }, async () => {
      const { a, b } = await tcpPair({}, options);
      const got: string[] = [];
      b.handle('message', (data) => got.push(decode(data)));
      await a.secureStreamSession(b.id);
      await Promise.allSettled(Array.from({ length: 300 }, (_, i) => a.sendMessage(b.id, text(`m${i}`))));
      expect(await waitFor(() => counter(b, 'dropped.early-overflow') >= 1)).toBe(true);
      expect(counter(b, 'buffered-early')).toBe(8);
      // The overflow cut the connection while the handshake was pending: the handshake fails
      // with it and nothing of that connection is delivered (no message skipped in between).
      expect(await waitFor(() => counter(b, 'handshakes-failed.connection-closed') === 1)).toBe(true);
      expect(got).toEqual([]);
      // The connection is gone; the next message makes a new one and a new session.
      expect(await waitFor(() => a.connectionState(b.id) === 'none')).toBe(true);
      await a.sendMessage(b.id, text('again'));
      expect(await waitFor(() => got.at(-1) === 'again')).toBe(true);
      expect(() => noiseStream({ maxEarlyBytes: -1 })).toThrow(/maxEarlyBytes/);
    });
  }

  it('a handshake whose peer drops the connection fails at once with CONNECTION_CLOSED, not at its timeout', { timeout: 30_000 }, async () => {
    const directory = book();
    // The timeout is far beyond the test's: only the prompt failure can pass.
    const a = createNode({ layers: [directory.layer(), tcp({ host: '127.0.0.1' }), noiseStream({ handshakeTimeoutMs: 600_000 })] });
    // b speaks tcp but no Noise: it hangs up on whatever it gets.
    const b = createNode({ layers: [directory.layer(), tcp({ host: '127.0.0.1' })] });
    stops.push(() => a.stop(), () => b.stop());
    await a.start();
    await b.start();
    directory.records.set(a.id.hex, a.localPeer());
    directory.records.set(b.id.hex, b.localPeer());
    b.handle('message', (_data, from) => void b.closeConnection(from));
    await expect(a.secureStreamSession(b.id)).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(counter(a, 'handshakes-failed.connection-closed')).toBe(1);
    expect(a.describe().layers.find((layer) => layer.type === 'noise-stream')?.status).toMatchObject({ pending: 0 });
  });

  it('closing and at once handshaking again, 20 rounds, never fails a handshake', { timeout: 60_000 }, async () => {
    const { a, b } = await tcpPair({ handshakeTimeoutMs: 600_000 });
    const keys = new Set<string>();
    for (let round = 0; round < 20; round++) {
      const session = await a.secureStreamSession(b.id);
      keys.add(Buffer.from(session.handshakeHash).toString('hex'));
      // The next handshake starts as soon as our side has closed: b may still be closing
      // its end (its close comes while a's new dial is being made).
      await a.closeConnection(b.id);
    }
    expect(keys.size).toBe(20);
    expect(counter(a, 'handshakes-failed.connection-closed') + counter(a, 'handshakes-failed.timeout')).toBe(0);
  });
});

describe('noiseStream() openConnection and per-call options', () => {
  it('openConnection returns once the session is up: the first message after it needs no handshake', async () => {
    const { pipe, a, b } = await pipePair();
    await a.node.openConnection(b.node.id);
    expect(counter(a.node, 'handshakes-completed')).toBe(1);
    const session = await a.node.secureStreamSession(b.node.id);
    expect(session.remoteId.equals(b.node.id)).toBe(true);
    let handshakeMessages = 0;
    pipe.onMessage = (data) => {
      if (data[0] !== STREAM_MESSAGE.sealed) handshakeMessages++;
      return data;
    };
    await a.node.sendMessage(b.node.id, text('after open'));
    expect(await waitFor(() => b.messages.length === 1)).toBe(true);
    expect(handshakeMessages).toBe(0);
  });

  it("a call's timeoutMs and signal bound its wait for a handshake that gets no answer; the handshake's own timeout is longer", async () => {
    const pipe = new Pipe();
    const a = pipeNode(pipe, { handshakeTimeoutMs: 30_000 });
    const b = pipeNode(pipe);
    await a.node.start();
    await b.node.start();
    pipe.onMessage = () => undefined; // nothing arrives
    await expect(a.node.sendMessage(b.node.id, text('x'), { timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    const started = Date.now();
    await expect(a.node.secureStreamSession(b.node.id, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'HANDSHAKE_TIMEOUT' });
    await expect(a.node.sendMessage(b.node.id, text('x'), { timeoutMs: 50 })).rejects.toMatchObject({ code: 'HANDSHAKE_TIMEOUT' });
    await expect(a.node.openConnection(b.node.id, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'HANDSHAKE_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(10_000);
    const controller = new AbortController();
    const sending = a.node.sendStream(b.node.id, [text('y')], { signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(sending).rejects.toMatchObject({ code: 'ABORTED' });
    const aborted = new AbortController();
    aborted.abort();
    await expect(a.node.sendMessage(b.node.id, text('z'), { signal: aborted.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    // Every bounded call waited on the one handshake, which goes on (to its own timeout).
    expect(counter(a.node, 'handshakes-initiated')).toBe(1);
  });
});

/** Keeps libuv's four pool threads busy for a while (a loaded machine): identity-proof checks queue behind it. */
const busyThreadPool = (): Promise<unknown> =>
  Promise.all(Array.from({ length: 4 }, () => new Promise((resolve) => scrypt('x', 'y', 64, { N: 2 ** 15, r: 8, p: 1, maxmem: 2 ** 28 }, resolve))));
const outcome = (promise: Promise<unknown>): Promise<string> => promise.then(
  () => 'ok',
  (error: { name?: string; code?: string }) => `${error?.name}:${error?.code}`,
);

describe('noiseStream(): sessions across closes and restarts', () => {
  for (const bothSaw of [false, true]) {
    it(`messages sealed before a close and carried on the next connection are opened with the closed session (${bothSaw ? 'both sides saw the close' : 'only the receiver saw it'})`, async () => {
      const { pipe, a, b } = await pipePair();
      await a.node.sendMessage(b.node.id, text('first'));
      expect(await waitFor(() => b.messages.length === 1)).toBe(true);
      // Sealed under the session, then held in flight (as tcp holds what it has not written
      // when the connection closes, and sends it on the next one).
      const held: Uint8Array[] = [];
      pipe.onMessage = (data) => void held.push(data);
      for (let i = 0; i < 5; i++) await a.node.sendMessage(b.node.id, text(`m${i}`));
      pipe.onMessage = undefined;
      pipe.endpoints.get(b.node.id.hex)!.close(a.node.id);
      if (bothSaw) pipe.endpoints.get(a.node.id.hex)!.close(b.node.id);
      const deliver = pipe.endpoints.get(b.node.id.hex)!;
      for (const data of held) deliver.message(data, a.node.id, a.node.localAddress());
      expect(b.messages).toEqual(['first', 'm0', 'm1', 'm2', 'm3', 'm4']);
      const counters = b.node.counters()['noise-stream']!;
      // The first opens with the closed session; the receiver, with no handshake under way,
      // takes the session back, and the rest open as usual.
      expect(counters['opened-by-closed-session']).toBe(1);
      expect(counters['sessions-resumed']).toBe(1);
      expect(counters['dropped'] ?? 0).toBe(0);
      // The sender goes on: on the same session if it saw no close (the receiver takes the
      // session back), on a new handshake if it did.
      await a.node.sendMessage(b.node.id, text('after'));
      expect(await waitFor(() => b.messages.length === 7)).toBe(true);
      expect(b.messages[6]).toBe('after');
      expect(a.node.counters()['noise-stream']!['handshakes-completed']).toBe(bothSaw ? 2 : 1);
      expect(b.node.counters()['noise-stream']!['dropped'] ?? 0).toBe(0);
    });
  }

  it('the receiver closing the connection while messages flow loses none of the sends that resolved', { timeout: 30_000 }, async () => {
    const { a, b } = await tcpPair();
    const got: number[] = [];
    b.handle('message', (data) => {
      got.push(Number(decode(data)));
      if (got.length === 50) void b.closeConnection(a.id);
    });
    await a.secureStreamSession(b.id);
    const sends: Promise<string>[] = [];
    for (let i = 0; i < 300; i++) {
      sends.push(outcome(a.sendMessage(b.id, text(String(i)), { timeoutMs: 5_000 })));
      if (i % 10 === 0) await sleep(1);
    }
    const results = await Promise.all(sends);
    const delivered = results.filter((result) => result === 'ok').length;
    expect(await waitFor(() => got.length >= delivered, 5_000), JSON.stringify({ delivered, got: got.length, b: b.counters()['noise-stream'], a: a.counters()['noise-stream'], results: results.map((r) => r[0]).join('') })).toBe(true);
    expect(new Set(got).size).toBe(got.length);
    expect(got.length, JSON.stringify(b.counters()['noise-stream'])).toBe(delivered);
    expect(counter(b, 'dropped.replayed') + counter(b, 'dropped.tampered')).toBe(0);
  });

  it('a message sent and then a graceful close, while the responder still checks the proof, is delivered', { timeout: 30_000 }, async () => {
    const { a, b } = await tcpPair();
    const got: string[] = [];
    b.handle('message', (data) => void got.push(decode(data)));
    let busy: Promise<unknown> | undefined;
    a.on('noise-session-open', () => void (busy ??= busyThreadPool()));
    await a.sendMessage(b.id, text('first'));
    await a.closeConnection(b.id);
    await busy;
    expect(await waitFor(() => got.length === 1, 5_000)).toBe(true);
    expect(got).toEqual(['first']);
    expect(counter(b, 'dropped')).toBe(0);
  });

  it('what the responder sends while it answers a restarted peer\'s handshake waits for the new keys (the peer has none of the old ones)', async () => {
    const identity = Identity.generate();
    const pipe = new Pipe();
    const a1 = pipeNode(pipe, {}, identity);
    const b = pipeNode(pipe);
    await a1.node.start();
    await b.node.start();
    await a1.node.sendMessage(b.node.id, text('first'));
    expect(await waitFor(() => b.messages.length === 1)).toBe(true);
    // The peer restarts with the same identity; b still holds the old session.
    await a1.node.stop();
    const a2 = pipeNode(pipe, {}, identity);
    await a2.node.start();
    // Hold what the new node sends after its first handshake message, so b stays answering.
    const held: Uint8Array[] = [];
    pipe.onMessage = (data, from) => (from.equals(a2.node.id) && data[0] !== STREAM_MESSAGE.handshake1 ? void held.push(data) : data);
    const sent = a2.node.sendMessage(b.node.id, text('again'));
    expect(await waitFor(() => held.length >= 2)).toBe(true);
    await sent;
    const reply = b.node.sendMessage(a2.node.id, text('from b'));
    await sleep(20);
    pipe.onMessage = undefined;
    for (const data of held) pipe.endpoints.get(b.node.id.hex)!.message(data, a2.node.id, a2.node.localAddress());
    await reply;
    expect(await waitFor(() => a2.messages.length === 1)).toBe(true);
    expect(a2.messages).toEqual(['from b']);
    expect(b.messages).toEqual(['first', 'again']);
    expect(a2.node.counters()['noise-stream']!['dropped'] ?? 0).toBe(0);
  });

  it('a peer that restarts (same identity, new port) while the responder checks its proof gets a working session', { timeout: 30_000 }, async () => {
    const directory = book();
    const identity = Identity.generate();
    const make = (id?: Identity) => {
      const node = createNode({ identity: id, layers: [directory.layer(), tcp({ host: '127.0.0.1' }), noiseStream()] });
      stops.push(() => node.stop());
      return node;
    };
    const b = make();
    const a1 = make(identity);
    await b.start();
    await a1.start();
    directory.records.set(b.id.hex, b.localPeer());
    directory.records.set(a1.id.hex, a1.localPeer());
    const gotB: string[] = [];
    const gotA: string[] = [];
    b.handle('message', (data) => void gotB.push(decode(data)));
    let busy: Promise<unknown> | undefined;
    a1.on('noise-session-open', () => void (busy ??= busyThreadPool()));
    await a1.sendMessage(b.id, text('first'));
    const stopping = a1.stop();
    const a2 = make(identity);
    a2.handle('message', (data) => void gotA.push(decode(data)));
    await a2.start();
    directory.records.set(a2.id.hex, a2.localPeer());
    const results = [await outcome(a2.sendMessage(b.id, text('again'), { timeoutMs: 5_000 }))];
    await stopping;
    await busy;
    for (let i = 0; i < 5; i++) results.push(await outcome(a2.sendMessage(b.id, text(`a${i}`), { timeoutMs: 5_000 })));
    results.push(await outcome(b.sendMessage(a2.id, text('from b'), { timeoutMs: 5_000 })));
    expect(results.every((result) => result === 'ok'), results.join()).toBe(true);
    expect(await waitFor(() => gotB.length === 7 && gotA.length === 1, 5_000), JSON.stringify({ gotB, gotA, b: b.counters()['noise-stream'] })).toBe(true);
    expect(gotB).toEqual(['first', 'again', 'a0', 'a1', 'a2', 'a3', 'a4']);
    expect(gotA).toEqual(['from b']);
  });

  it('a receiver that stops while messages arrive delivers every message whose send resolved, as bare tcp does', { timeout: 30_000 }, async () => {
    for (let round = 0; round < 3; round++) {
      const { a, b } = await tcpPair();
      const got = new Set<number>();
      b.handle('message', (data) => void got.add(Number(decode(data))));
      await a.secureStreamSession(b.id);
      const results: string[] = [];
      const sends: Promise<void>[] = [];
      const stopping = sleep(20).then(() => b.stop());
      for (let i = 0; i < 100; i++) {
        sends.push(outcome(a.sendMessage(b.id, text(String(i)), { timeoutMs: 2_000 })).then((result) => void (results[i] = result)));
        await sleep(1);
      }
      await stopping;
      await Promise.all(sends);
      const lost = results.flatMap((result, i) => (result === 'ok' && !got.has(i) ? [i] : []));
      expect(lost, JSON.stringify(b.counters()['noise-stream'])).toEqual([]);
      expect(results.filter((result) => result === 'ok').length).toBeGreaterThan(0);
      await a.stop();
    }
  });

  it('messages sent before the first handshake arrive in the order they were sent, with options or without', async () => {
    const { a, b } = await tcpPair();
    const got: string[] = [];
    b.handle('message', (data) => void got.push(decode(data)));
    await Promise.all([
      a.sendMessage(b.id, text('1'), { timeoutMs: 5_000 }),
      a.sendMessage(b.id, text('2')),
      a.sendMessage(b.id, text('3'), { signal: new AbortController().signal }),
      a.sendMessage(b.id, text('4')),
    ]);
    expect(await waitFor(() => got.length === 4)).toBe(true);
    expect(got).toEqual(['1', '2', '3', '4']);
  });

  it('refuses data that is not bytes, a target that is not a NodeId and a source that is not iterable, with InvalidArgumentError, sending nothing', async () => {
    const { a, b } = await tcpPair();
    await expect(a.sendMessage(b.id, 'hello' as unknown as Uint8Array)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(a.sendMessage(b.id, null as unknown as Uint8Array)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(a.sendMessage(undefined as unknown as NodeId, text('x'))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(a.sendStream(b.id, null as unknown as Iterable<Uint8Array>)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(a.sendStream(b.id, 42 as unknown as Iterable<Uint8Array>)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(counter(a, 'handshakes-initiated')).toBe(0);
    // A message refused for its size is not counted as sent.
    await expect(a.sendMessage(b.id, new Uint8Array(17 * 1024 * 1024))).rejects.toBeInstanceOf(MessageTooLargeError);
    expect(counter(a, 'messages-out')).toBe(0);
  });
});
