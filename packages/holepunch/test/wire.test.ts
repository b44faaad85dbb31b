import { describe, expect, it } from 'vitest';
import { seededRandom, toHex, WireError } from '@deccom/core';
import {
  decodeIncoming,
  decodePunchMessage,
  decodeRelayMessage,
  encodePunchMessage,
  encodeRelayData,
  encodeRelayMessage,
  HOLEPUNCH_PROTOCOL,
  punchMessageLength,
  PUNCH_MESSAGE,
  RELAY_DATA_OVERHEAD,
  RELAY_MESSAGE,
  RELAY_PROTOCOL,
  relayMessageLength,
} from '../src/index.js';

import { punchMessages, relayMessages } from './fixtures.js';

const v4 = { host: '203.0.113.7', port: 4000 };

const decodeAny = (bytes: Uint8Array) => decodeIncoming(bytes);

describe('holepunch wire', () => {
  it('has golden bytes', () => {
    expect(toHex(encodePunchMessage({ type: PUNCH_MESSAGE.probe, nonce: 0x01020304 }))).toBe('010c010301020304');
    expect(toHex(encodePunchMessage({ type: PUNCH_MESSAGE.punchRequest, nonce: 1, natType: 'cone', target: { host: '10.0.0.1', port: 258 } }))).toBe(
      '010c0101' + '00000001' + '02' + '04' + '0a000001' + '0102',
    );
    expect(toHex(encodePunchMessage({ type: PUNCH_MESSAGE.probeAck, nonce: 2, flags: 1, observed: { host: '1.2.3.4', port: 5 } }))).toBe('010c0104' + '00000002' + '01' + '04' + '01020304' + '0005');
    expect(toHex(encodeRelayMessage({ type: RELAY_MESSAGE.data, session: 0xaabbccdd, payload: new Uint8Array([0, 9]) }))).toBe('010e0105aabbccdd0009');
    expect(toHex(encodeRelayMessage({ type: RELAY_MESSAGE.refused, id: 3, idKind: 'session', reason: 'bandwidth' }))).toBe('010e01070000000302' + '02');
    expect(HOLEPUNCH_PROTOCOL.name).toBe('deccom/holepunch/1');
    expect(RELAY_PROTOCOL.name).toBe('deccom/relay/1');
    expect(RELAY_DATA_OVERHEAD).toBe(8);
  });

  it('round-trips every message with its exact length', () => {
    for (const message of punchMessages) {
      const bytes = encodePunchMessage(message);
      expect(bytes.length).toBe(punchMessageLength(message));
      const decoded = decodeAny(bytes);
      expect(decoded).toEqual({ kind: 'punch', message });
    }
    for (const message of relayMessages) {
      const bytes = encodeRelayMessage(message);
      expect(bytes.length).toBe(relayMessageLength(message));
      const decoded = decodeAny(bytes);
      expect(decoded.kind).toBe('relay');
      if (decoded.kind !== 'relay') return;
      if (message.type === RELAY_MESSAGE.data) expect({ ...decoded.message, payload: [...(decoded.message as typeof message).payload] }).toEqual({ ...message, payload: [...message.payload] });
      else expect(decoded.message).toEqual(message);
    }
    expect(decodeAny(new Uint8Array([0, 7, 8]))).toEqual({ kind: 'data', payload: new Uint8Array([7, 8]) });
    expect(encodeRelayData(1, new Uint8Array([5]))).toEqual(encodeRelayMessage({ type: RELAY_MESSAGE.data, session: 1, payload: new Uint8Array([5]) }));
  });

  it('refuses to encode what it could not decode', () => {
    expect(() => encodePunchMessage({ type: PUNCH_MESSAGE.probe, nonce: -1 })).toThrow(RangeError);
    expect(() => encodePunchMessage({ type: PUNCH_MESSAGE.probe, nonce: 2 ** 32 })).toThrow(RangeError);
    expect(() => encodePunchMessage({ type: PUNCH_MESSAGE.tcpOffer, nonce: 1, candidates: [] })).toThrow(RangeError);
    expect(() => encodePunchMessage({ type: PUNCH_MESSAGE.tcpOffer, nonce: 1, candidates: Array(9).fill(v4) })).toThrow(RangeError);
    expect(() => encodePunchMessage({ type: PUNCH_MESSAGE.punchRequest, nonce: 1, natType: 'cone', target: { host: 'example.com', port: 1 } })).toThrow(RangeError);
    expect(() => encodePunchMessage({ type: PUNCH_MESSAGE.punchRequest, nonce: 1, natType: 'cone', target: { host: '1.2.3.4', port: 0 } })).toThrow(RangeError);
    expect(() => encodePunchMessage({ type: PUNCH_MESSAGE.probeAck, nonce: 1, flags: 2, observed: v4 })).toThrow(RangeError);
  });

  it('rejects malformed input with typed errors', () => {
    const cases: [string, number[]][] = [
      ['empty', []],
      ['unknown frame byte', [7]],
      ['truncated header', [1, 0x0c]],
      ['other protocol', [1, 0x08, 1, 1]],
      ['unsupported version', [1, 0x0c, 2, 3, 0, 0, 0, 1]],
      ['relay unsupported version', [1, 0x0e, 9, 3, 0, 0, 0, 1]],
      ['unknown punch type', [1, 0x0c, 1, 99, 0, 0, 0, 1]],
      ['unknown relay type', [1, 0x0e, 1, 99, 0, 0, 0, 1]],
      ['truncated nonce', [1, 0x0c, 1, 3, 0, 0]],
      ['trailing bytes', [1, 0x0c, 1, 3, 0, 0, 0, 1, 9]],
      ['bad family', [1, 0x0c, 1, 1, 0, 0, 0, 1, 2, 5, 1, 2, 3, 4, 0, 1]],
      ['bad nat type', [1, 0x0c, 1, 1, 0, 0, 0, 1, 9, 4, 1, 2, 3, 4, 0, 1]],
      ['port zero', [1, 0x0c, 1, 1, 0, 0, 0, 1, 2, 4, 1, 2, 3, 4, 0, 0]],
      ['bad probe-ack flags', [1, 0x0c, 1, 4, 0, 0, 0, 1, 0x80, 4, 1, 2, 3, 4, 0, 1]],
      ['too many candidates', [1, 0x0c, 1, 7, 0, 0, 0, 1, 9]],
      ['no candidates in an offer', [1, 0x0c, 1, 7, 0, 0, 0, 1, 0]],
      ['bad observed transport', [1, 0x0c, 1, 6, 0, 0, 0, 1, 3, 4, 1, 2, 3, 4, 0, 1]],
      ['bad relay reason', [1, 0x0e, 1, 6, 0, 0, 0, 1, 200]],
      ['bad refused id kind', [1, 0x0e, 1, 7, 0, 0, 0, 1, 3, 1]],
      ['truncated session', [1, 0x0e, 1, 5, 0, 0]],
    ];
    for (const [name, bytes] of cases) {
      expect(() => decodeAny(Uint8Array.from(bytes)), name).toThrow(WireError);
    }
    expect(() => decodePunchMessage(3, new Uint8Array(3))).toThrow(WireError);
    expect(() => decodeRelayMessage(3, new Uint8Array(3))).toThrow(WireError);
  });

  it('survives 100,000 random and mutated inputs with nothing but WireError', () => {
    const random = seededRandom(8);
    const valid = [...punchMessages.map((m) => encodePunchMessage(m)), ...relayMessages.map((m) => encodeRelayMessage(m))];
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 100_000; i++) {
      let input: Uint8Array;
      const mode = random.int(4);
      if (mode === 0) {
        input = new Uint8Array(random.int(48));
        for (let j = 0; j < input.length; j++) input[j] = random.int(256);
        if (input.length > 0 && random.int(2) === 0) input[0] = 1;
        if (input.length > 1 && random.int(2) === 0) input[1] = random.int(2) === 0 ? 0x0c : 0x0e;
        if (input.length > 2 && random.int(2) === 0) input[2] = 1;
      } else {
        const base = valid[random.int(valid.length)]!;
        input = base.slice();
        const edits = 1 + random.int(4);
        for (let e = 0; e < edits; e++) {
          const kind = random.int(3);
          if (kind === 0 && input.length > 0) input[random.int(input.length)] = random.int(256);
          else if (kind === 1) input = input.subarray(0, random.int(input.length + 1));
          else {
            const grown = new Uint8Array(input.length + 1 + random.int(4));
            grown.set(input);
            for (let j = input.length; j < grown.length; j++) grown[j] = random.int(256);
            input = grown;
          }
        }
      }
      try {
        decodeAny(input);
        decoded++;
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
        rejected++;
      }
    }
    expect(decoded + rejected).toBe(100_000);
    expect(decoded).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(1000);
  });
});
