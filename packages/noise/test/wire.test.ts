import { describe, expect, it } from 'vitest';
import { WireError } from '@deccom/core';
import {
  decodeCookie,
  decodeHandshakeReply,
  decodeIdentityProof,
  decodeInitiation,
  decodeTransport,
  decodeUnknownSession,
  encodeCookie,
  encodeHandshakeReply,
  encodeIdentityProof,
  encodeInitiation,
  encodeUnknownSession,
  MESSAGE,
  NOISE_PROTOCOL,
  REPLAY_WINDOW,
  ReplayWindow,
  TRANSPORT_OVERHEAD,
} from '../src/index.js';
import { decodeStreamFrame, STREAM_FLAG_END, STREAM_FLAG_START, STREAM_FRAME_HEADER_LENGTH, writeStreamFrameHeader } from '../src/wire.js';
import { hex } from './helpers.js';

const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

describe('wire', () => {
  it('golden bytes and exact lengths', () => {
    expect(NOISE_PROTOCOL).toMatchObject({ id: 0x07, version: 1, name: 'deccom/noise/1' });
    const initiation = encodeInitiation(0x01020304, undefined, fill(32, 0xee));
    expect(hex(initiation)).toBe('01070101' + '01020304' + '00' + 'ee'.repeat(32));
    expect(initiation.length).toBe(4 + 4 + 1 + 32);
    const withCookie = encodeInitiation(1, fill(16, 0xcc), fill(32, 0xee));
    expect(hex(withCookie.subarray(8, 9 + 16))).toBe('10' + 'cc'.repeat(16));
    expect(hex(encodeHandshakeReply(MESSAGE.response, 5, 6, fill(64, 0xaa)).subarray(0, 12))).toBe('010701020000000500000006');
    expect(hex(encodeCookie(9, fill(16, 0x11)))).toBe('01070105' + '00000009' + '11'.repeat(16));
    expect(hex(encodeUnknownSession(0xffffffff))).toBe('01070106ffffffff');
    expect(TRANSPORT_OVERHEAD).toBe(33);
  });

  it('round trips', () => {
    const i = decodeInitiation(encodeInitiation(42, fill(16, 3), fill(32, 4)).subarray(4));
    expect(i.sender).toBe(42);
    expect(hex(i.cookie!)).toBe('03'.repeat(16));
    const r = decodeHandshakeReply(encodeHandshakeReply(MESSAGE.final, 7, 8, fill(100, 1)).subarray(4));
    expect([r.sender, r.receiver, r.message.length]).toEqual([7, 8, 100]);
    expect(decodeCookie(encodeCookie(3, fill(16, 9)).subarray(4)).receiver).toBe(3);
    expect(decodeUnknownSession(encodeUnknownSession(77).subarray(4))).toBe(77);
    const proof = decodeIdentityProof(encodeIdentityProof({ publicKey: fill(32, 1), signature: fill(64, 2) }));
    expect(hex(proof.signature)).toBe('02'.repeat(64));
    const transport = Uint8Array.of(1, 7, 1, 4, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, ...fill(17, 5));
    const t = decodeTransport(transport);
    expect([t.receiver, t.counter, t.sealed.length, t.header.length]).toEqual([9, 2 ** 32 + 2, 17, 16]);
  });

  it('malformed input is a WireError', () => {
    expect(() => decodeInitiation(new Uint8Array(4))).toThrow(WireError);
    expect(() => decodeInitiation(Uint8Array.of(0, 0, 0, 1, 5, ...fill(37, 0)))).toThrow(/cookie length/);
    expect(() => decodeInitiation(encodeInitiation(1, undefined, fill(33, 0)).subarray(4))).toThrow(/trailing/);
    expect(() => decodeHandshakeReply(new Uint8Array(8 + 10))).toThrow(/too short/);
    expect(() => decodeTransport(new Uint8Array(16 + 16))).toThrow(/sealed bytes/);
    expect(() => decodeTransport(Uint8Array.of(1, 7, 1, 4, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, ...fill(17, 0)))).toThrow(/2\^53/);
    expect(() => decodeIdentityProof(Uint8Array.of(2, ...fill(97, 0)))).toThrow(/version/);
    expect(() => decodeIdentityProof(Uint8Array.of(1, 9, ...fill(96, 0)))).toThrow(/kind/);
  });
});

describe('replay window', () => {
  it('stream frames: flags none, end or start; any other value is a WireError', () => {
    const frame = (flags: number): Uint8Array => {
      const out = new Uint8Array(STREAM_FRAME_HEADER_LENGTH + 16);
      writeStreamFrameHeader(out, 0, flags, 9);
      return out;
    };
    for (const flags of [0, STREAM_FLAG_END, STREAM_FLAG_START]) expect(decodeStreamFrame(frame(flags))).toMatchObject({ flags, counter: 9 });
    for (const flags of [STREAM_FLAG_END | STREAM_FLAG_START, 4, 0x80]) expect(() => decodeStreamFrame(frame(flags))).toThrow(WireError);
  });

  it('accepts each counter once, in any order within the window', () => {
    const w = new ReplayWindow();
    const order = [5, 1, 0, 3, 2, 4, 100, 50, 99];
    for (const n of order) {
      expect(w.check(n)).toBe('ok');
      w.accept(n);
      expect(w.check(n)).toBe('replayed');
    }
    for (const n of order) expect(w.check(n)).toBe('replayed');
    expect(w.check(6)).toBe('ok');
  });

  it('refuses counters that fell behind the window, and slides by whole words', () => {
    const w = new ReplayWindow();
    w.accept(0);
    w.accept(REPLAY_WINDOW);
    expect(w.check(0)).toBe('too-old');
    expect(w.check(1)).toBe('ok');
    w.accept(10 * REPLAY_WINDOW);
    expect(w.check(10 * REPLAY_WINDOW - REPLAY_WINDOW + 1)).toBe('ok');
    expect(w.check(10 * REPLAY_WINDOW - REPLAY_WINDOW)).toBe('too-old');
    expect(REPLAY_WINDOW).toBeGreaterThanOrEqual(2048);
    // A long random walk against a reference set.
    const seen = new Set<number>();
    const x = new ReplayWindow();
    let highest = -1;
    let state = 1;
    for (let i = 0; i < 50_000; i++) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      const n = Math.max(0, highest + 64 - (state % 4200));
      const expected = n > highest ? 'ok' : highest - n >= REPLAY_WINDOW ? 'too-old' : seen.has(n) ? 'replayed' : 'ok';
      expect(x.check(n)).toBe(expected);
      if (expected === 'ok') {
        x.accept(n);
        seen.add(n);
        highest = Math.max(highest, n);
      }
    }
  });
});
