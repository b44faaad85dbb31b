/**
 * Every Noise vector of cacophony and snow (`../shared/vectors/`), byte for byte, on both
 * crypto paths. Every pattern, DH, cipher and hash in those files is supported, so every
 * vector runs.
 */
import { describe, expect, it } from 'vitest';
import { HandshakeState, nobleNoiseCrypto, nodeNoiseCrypto, parseProtocolName, type CipherState, type NoiseCrypto } from '../src/index.js';
import { hex, readVectors, unhex, vectorsPresent } from './helpers.js';

interface NoiseVector {
  protocol_name: string;
  init_prologue: string;
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  init_psks?: string[];
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral?: string;
  resp_remote_static?: string;
  resp_psks?: string[];
  handshake_hash?: string;
  messages: { payload: string; ciphertext: string }[];
}

/** Runs one vector; returns a description of the first mismatch, or undefined. */
function runVector(vector: NoiseVector, crypto: NoiseCrypto): string | undefined {
  const protocol = parseProtocolName(vector.protocol_name);
  const dh = crypto.dh(protocol.dh);
  const side = (initiator: boolean): HandshakeState => {
    const p = initiator ? 'init' : 'resp';
    const v = vector as unknown as Record<string, string | string[] | undefined>;
    const s = v[`${p}_static`] as string | undefined;
    const e = v[`${p}_ephemeral`] as string | undefined;
    const rs = v[`${p}_remote_static`] as string | undefined;
    return new HandshakeState({
      protocol,
      initiator,
      prologue: unhex(v[`${p}_prologue`] as string),
      staticKeyPair: s ? dh.keyPairFromSecret(unhex(s)) : undefined,
      remoteStaticKey: rs ? unhex(rs) : undefined,
      psks: ((v[`${p}_psks`] as string[] | undefined) ?? []).map(unhex),
      testEphemeralKeyPair: e ? dh.keyPairFromSecret(unhex(e)) : undefined,
      crypto,
    });
  };
  const initiator = side(true);
  const responder = side(false);
  let initiatorSend: CipherState | undefined;
  let initiatorReceive: CipherState | undefined;
  let responderSend: CipherState | undefined;
  let responderReceive: CipherState | undefined;
  for (let i = 0; i < vector.messages.length; i++) {
    const { payload, ciphertext } = vector.messages[i]!;
    const fromInitiator = protocol.pattern.oneWay || i % 2 === 0;
    if (!initiator.complete) {
      const [writer, reader] = fromInitiator ? [initiator, responder] : [responder, initiator];
      const written = writer.writeMessage(unhex(payload));
      if (hex(written) !== ciphertext) return `message ${i}: ciphertext ${hex(written)} != ${ciphertext}`;
      const read = reader.readMessage(written);
      if (hex(read) !== payload) return `message ${i}: payload ${hex(read)} != ${payload}`;
      if (initiator.complete !== responder.complete) return `message ${i}: sides disagree on completion`;
      if (initiator.complete) {
        if (vector.handshake_hash && hex(initiator.handshakeHash) !== vector.handshake_hash) return `handshake hash ${hex(initiator.handshakeHash)}`;
        if (hex(initiator.handshakeHash) !== hex(responder.handshakeHash)) return 'handshake hashes differ';
        ({ send: initiatorSend, receive: initiatorReceive } = initiator.split());
        ({ send: responderSend, receive: responderReceive } = responder.split());
      }
    } else {
      const sender = fromInitiator ? initiatorSend : responderSend;
      const receiver = fromInitiator ? responderReceive : initiatorReceive;
      if (!sender || !receiver) return `message ${i}: no transport cipher for this direction`;
      const written = sender.encryptWithAd(new Uint8Array(0), unhex(payload));
      if (hex(written) !== ciphertext) return `transport message ${i}: ciphertext ${hex(written)} != ${ciphertext}`;
      if (hex(receiver.decryptWithAd(new Uint8Array(0), written)) !== payload) return `transport message ${i}: payload mismatch`;
    }
  }
  return undefined;
}

const present = vectorsPresent();
const FILES = ['cacophony/cacophony.txt', 'snow/snow.txt'] as const;
const paths: [string, NoiseCrypto][] = [['noble', nobleNoiseCrypto]];
const node = nodeNoiseCrypto();
if (node) paths.push(['node', node]);

describe.skipIf(!present)('published Noise vectors', () => {
  if (!present) it.skip('../shared/vectors is absent: vector tests skipped', () => undefined);
  for (const file of FILES) {
    const vectors = present ? readVectors<{ vectors: NoiseVector[] }>(file).vectors : [];
    for (const [name, crypto] of paths) {
      // The noble path is pure JavaScript: ~20 s for cacophony's 944 vectors on a loaded machine.
      it(`${file}: all ${vectors.length} vectors pass on the ${name} path`, { timeout: 300_000 }, () => {
        const failures: string[] = [];
        const bySuite = new Map<string, number>();
        for (const vector of vectors) {
          const failure = runVector(vector, crypto);
          if (failure) failures.push(`${vector.protocol_name}: ${failure}`);
          const suite = vector.protocol_name.split('_').slice(2).join('_');
          bySuite.set(suite, (bySuite.get(suite) ?? 0) + 1);
        }
        expect(failures.slice(0, 10)).toEqual([]);
        expect(vectors.length).toBeGreaterThan(400);
      });
    }
  }
  it('a corrupted vector is reported, not passed', () => {
    const vector = readVectors<{ vectors: NoiseVector[] }>('cacophony/cacophony.txt').vectors.find((v) => v.protocol_name === 'Noise_XX_25519_ChaChaPoly_SHA256')!;
    const last = vector.messages.length - 1;
    const corrupted = { ...vector, messages: vector.messages.map((m, i) => (i === last ? { ...m, ciphertext: m.ciphertext.replace(/^./, (c) => (c === '0' ? '1' : '0')) } : m)) };
    expect(runVector(vector, nobleNoiseCrypto)).toBeUndefined();
    expect(runVector(corrupted, nobleNoiseCrypto)).toMatch(/transport message/);
    expect(runVector({ ...vector, handshake_hash: '00' }, nobleNoiseCrypto)).toMatch(/handshake hash/);
  });
  it('covers XX and IK with 25519, ChaChaPoly, SHA256 and BLAKE2b in both files', () => {
    for (const file of FILES) {
      const names = new Set(readVectors<{ vectors: NoiseVector[] }>(file).vectors.map((v) => v.protocol_name));
      for (const pattern of ['XX', 'IK']) for (const hash of ['SHA256', 'BLAKE2b']) expect(names.has(`Noise_${pattern}_25519_ChaChaPoly_${hash}`)).toBe(true);
    }
  });
});
