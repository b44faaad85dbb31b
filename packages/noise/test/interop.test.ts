/**
 * Interop: our handshake against an independent Noise implementation, the npm package
 * `noise-handshake` (Holepunch; libsodium underneath), suite 25519_ChaChaPoly_BLAKE2b, with
 * us in both roles, on both of our crypto paths.
 */
import { describe, expect, it } from 'vitest';
import NoiseState from 'noise-handshake';
import TheirCipher from 'noise-handshake/cipher.js';
import { generateKeyPair as theirKeyPair } from 'noise-handshake/dh.js';
import { HandshakeState, nobleNoiseCrypto, nodeNoiseCrypto, type NoiseCrypto, type TransportKeys } from '../src/index.js';
import { hex } from './helpers.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const paths: [string, NoiseCrypto][] = [['noble', nobleNoiseCrypto]];
const node = nodeNoiseCrypto();
if (node) paths.push(['node', node]);
const PROLOGUE = text('deccom interop');

/** Transport messages both ways: ours encrypts, theirs decrypts, and back. */
function exchange(ours: TransportKeys, theirs: NoiseState): void {
  const theirSend = new TheirCipher(theirs.tx);
  const theirReceive = new TheirCipher(theirs.rx);
  for (let i = 0; i < 5; i++) {
    const message = text(`message ${i} from us`);
    expect(hex(theirReceive.decrypt(ours.send!.encryptWithAd(new Uint8Array(0), message)))).toBe(hex(message));
    const reply = text(`reply ${i} from them`);
    expect(hex(ours.receive!.decryptWithAd(new Uint8Array(0), theirSend.encrypt(reply)))).toBe(hex(reply));
  }
}

describe('interop with noise-handshake (Noise_XX_25519_ChaChaPoly_BLAKE2b)', () => {
  for (const [name, crypto] of paths) {
    const protocol = 'Noise_XX_25519_ChaChaPoly_BLAKE2b';

    it(`we initiate, they respond (${name} path)`, () => {
      const ourStatic = crypto.dh('25519').generateKeyPair();
      const theirStatic = theirKeyPair();
      const us = new HandshakeState({ protocol, initiator: true, prologue: PROLOGUE, staticKeyPair: ourStatic, crypto });
      const them = new NoiseState('XX', false, theirStatic);
      them.initialise(PROLOGUE);
      expect(hex(them.recv(us.writeMessage(text('hello'))))).toBe(hex(text('hello')));
      expect(hex(us.readMessage(them.send(text('hi back'))))).toBe(hex(text('hi back')));
      expect(hex(them.recv(us.writeMessage(text('final'))))).toBe(hex(text('final')));
      expect(us.complete && them.complete).toBe(true);
      expect(hex(us.handshakeHash)).toBe(hex(them.hash));
      expect(hex(us.remoteStaticKey!)).toBe(hex(theirStatic.publicKey));
      expect(hex(them.rs)).toBe(hex(ourStatic.publicKey));
      exchange(us.split(), them);
    });

    it(`they initiate, we respond (${name} path)`, () => {
      const ourStatic = crypto.dh('25519').generateKeyPair();
      const theirStatic = theirKeyPair();
      const us = new HandshakeState({ protocol, initiator: false, prologue: PROLOGUE, staticKeyPair: ourStatic, crypto });
      const them = new NoiseState('XX', true, theirStatic);
      them.initialise(PROLOGUE);
      expect(us.readMessage(them.send()).length).toBe(0);
      expect(hex(them.recv(us.writeMessage(text('identity proof'))))).toBe(hex(text('identity proof')));
      expect(hex(us.readMessage(them.send(text('theirs'))))).toBe(hex(text('theirs')));
      expect(us.complete && them.complete).toBe(true);
      expect(hex(us.handshakeHash)).toBe(hex(them.hash));
      expect(hex(us.remoteStaticKey!)).toBe(hex(theirStatic.publicKey));
      exchange(us.split(), them);
    });

    it(`IK both ways too (${name} path)`, () => {
      const ik = 'Noise_IK_25519_ChaChaPoly_BLAKE2b';
      const ourStatic = crypto.dh('25519').generateKeyPair();
      const theirStatic = theirKeyPair();
      // We initiate knowing their static key.
      const us = new HandshakeState({ protocol: ik, initiator: true, prologue: PROLOGUE, staticKeyPair: ourStatic, remoteStaticKey: theirStatic.publicKey, crypto });
      const them = new NoiseState('IK', false, theirStatic);
      them.initialise(PROLOGUE);
      them.recv(us.writeMessage(text('0-rtt')));
      us.readMessage(them.send());
      expect(hex(us.handshakeHash)).toBe(hex(them.hash));
      exchange(us.split(), them);
      // They initiate knowing ours.
      const us2 = new HandshakeState({ protocol: ik, initiator: false, prologue: PROLOGUE, staticKeyPair: ourStatic, crypto });
      const them2 = new NoiseState('IK', true, theirStatic);
      them2.initialise(PROLOGUE, ourStatic.publicKey);
      us2.readMessage(them2.send(text('x')));
      them2.recv(us2.writeMessage());
      expect(hex(us2.handshakeHash)).toBe(hex(them2.hash));
      exchange(us2.split(), them2);
    });

    it(`a tampered message from them is refused and leaves our state usable (${name} path)`, () => {
      const us = new HandshakeState({ protocol, initiator: true, prologue: PROLOGUE, staticKeyPair: crypto.dh('25519').generateKeyPair(), crypto });
      const them = new NoiseState('XX', false, theirKeyPair());
      them.initialise(PROLOGUE);
      them.recv(us.writeMessage());
      const reply = them.send(text('payload'));
      const tampered = new Uint8Array(reply); // a copy (Buffer#slice would be a view)
      tampered[40] = tampered[40]! ^ 1;
      expect(() => us.readMessage(tampered)).toThrow(/authentication failed/);
      expect(hex(us.readMessage(reply))).toBe(hex(text('payload')));
    });
  }
});
