/**
 * The Noise Protocol Framework state machines (revision 34, section 5): CipherState,
 * SymmetricState and HandshakeState. Pure: no I/O, no timers. The layers in this package
 * put them on the wire; anyone can use them directly for their own transport.
 */
import { defaultNoiseCrypto, hkdfFromHmac, AEAD_TAG_LENGTH, type AeadFunctions, type DhFunctions, type DhKeyPair, type HashFunctions, type NoiseCrypto, type SealedParts } from './crypto.js';
import { NoiseError } from './errors.js';
import { parseProtocolName, type HandshakePattern, type ProtocolName, type Token } from './patterns.js';

/** Largest Noise message (section 3). */
export const MAX_MESSAGE_LENGTH = 65_535;
/** Nonces at or above this are not used: 2^64 - 1 is reserved (section 5.1) and JS numbers are exact only below 2^53. */
export const MAX_NONCE = Number.MAX_SAFE_INTEGER;
export const KEY_LENGTH = 32;
export const PSK_LENGTH = 32;

const EMPTY = new Uint8Array(0);
const ZEROS_32 = new Uint8Array(32);

/**
 * Section 5.1: a cipher key and a counter nonce. Also offers explicit-nonce calls for
 * transports whose messages can be lost or reordered (section 11.4 "Out-of-order
 * transport messages"), where the nonce travels with the message.
 */
export class CipherState {
  private key: Uint8Array | undefined;
  private n = 0;
  private readonly nonceBytes = new Uint8Array(12);
  private readonly nonceView = new DataView(this.nonceBytes.buffer);

  constructor(
    private readonly aead: AeadFunctions,
    key?: Uint8Array,
  ) {
    if (key !== undefined) this.initializeKey(key);
  }

  initializeKey(key: Uint8Array | undefined): void {
    if (key !== undefined && key.length !== KEY_LENGTH) throw new NoiseError('INVALID_KEY', `cipher key must be ${KEY_LENGTH} bytes`);
    this.key = key;
    this.n = 0;
  }

  hasKey(): boolean {
    return this.key !== undefined;
  }

  /** The next nonce `encryptWithAd` / `decryptWithAd` will use. */
  get nonce(): number {
    return this.n;
  }

  /** SetNonce (section 5.1). */
  setNonce(nonce: number): void {
    if (!Number.isSafeInteger(nonce) || nonce < 0) throw new RangeError(`nonce must be a safe non-negative integer, got ${nonce}`);
    this.n = nonce;
  }

  /** The 12-byte AEAD nonce: 32 zero bits then the 64-bit counter, little-endian for ChaChaPoly, big-endian for AESGCM (section 12). */
  private nonceFor(n: number, max = false): Uint8Array {
    const littleEndian = this.aead.name === 'ChaChaPoly';
    const high = max ? 0xffffffff : Math.floor(n / 0x1_0000_0000);
    const low = max ? 0xffffffff : n >>> 0;
    if (littleEndian) {
      this.nonceView.setUint32(4, low, true);
      this.nonceView.setUint32(8, high, true);
    } else {
      this.nonceView.setUint32(4, high, false);
      this.nonceView.setUint32(8, low, false);
    }
    return this.nonceBytes;
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.key === undefined) return plaintext;
    if (this.n >= MAX_NONCE) throw new NoiseError('NONCE_EXHAUSTED', 'cipher state ran out of nonces');
    const out = this.aead.seal(this.key, this.nonceFor(this.n), ad, plaintext);
    this.n++;
    return out;
  }

  /** Throws {@link NoiseError} `DECRYPT_FAILED` when authentication fails; the nonce is then not advanced. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.key === undefined) return ciphertext;
    if (this.n >= MAX_NONCE) throw new NoiseError('NONCE_EXHAUSTED', 'cipher state ran out of nonces');
    const plain = this.aead.open(this.key, this.nonceFor(this.n), ad, ciphertext);
    if (plain === undefined) throw new NoiseError('DECRYPT_FAILED', 'message authentication failed');
    this.n++;
    return plain;
  }

  /** Encrypts with an explicit nonce, leaving the counter alone. */
  encryptAt(nonce: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.key === undefined) throw new NoiseError('HANDSHAKE_STATE', 'cipher state has no key');
    if (!Number.isSafeInteger(nonce) || nonce < 0) throw new RangeError(`nonce must be a safe non-negative integer, got ${nonce}`);
    return this.aead.seal(this.key, this.nonceFor(nonce), ad, plaintext);
  }

  /** {@link encryptAt} writing into `out` at `offset` (`plaintext.length + 16` bytes). */
  encryptAtInto(nonce: number, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
    if (this.key === undefined) throw new NoiseError('HANDSHAKE_STATE', 'cipher state has no key');
    if (!Number.isSafeInteger(nonce) || nonce < 0) throw new RangeError(`nonce must be a safe non-negative integer, got ${nonce}`);
    this.aead.sealInto(this.key, this.nonceFor(nonce), ad, plaintext, out, offset);
  }

  /** {@link encryptAt} returning ciphertext and tag apart (no copy to join them). */
  encryptAtParts(nonce: number, ad: Uint8Array, plaintext: Uint8Array): SealedParts {
    if (this.key === undefined) throw new NoiseError('HANDSHAKE_STATE', 'cipher state has no key');
    if (!Number.isSafeInteger(nonce) || nonce < 0) throw new RangeError(`nonce must be a safe non-negative integer, got ${nonce}`);
    const aead = this.aead;
    if (aead.sealParts) return aead.sealParts(this.key, this.nonceFor(nonce), ad, plaintext);
    const sealed = aead.seal(this.key, this.nonceFor(nonce), ad, plaintext);
    return { ciphertext: sealed.subarray(0, plaintext.length), tag: sealed.subarray(plaintext.length) };
  }

  /** Decrypts with an explicit nonce; undefined when authentication fails. */
  decryptAt(nonce: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined {
    if (this.key === undefined) throw new NoiseError('HANDSHAKE_STATE', 'cipher state has no key');
    if (!Number.isSafeInteger(nonce) || nonce < 0) return undefined;
    return this.aead.open(this.key, this.nonceFor(nonce), ad, ciphertext);
  }

  /**
   * {@link decryptAt} of a ciphertext that arrived in `pieces`, its tag apart: the plaintext
   * in pieces, or undefined when authentication fails.
   */
  decryptAtParts(nonce: number, ad: Uint8Array, pieces: readonly Uint8Array[], tag: Uint8Array): Uint8Array[] | undefined {
    if (this.key === undefined) throw new NoiseError('HANDSHAKE_STATE', 'cipher state has no key');
    if (!Number.isSafeInteger(nonce) || nonce < 0) return undefined;
    const aead = this.aead;
    if (aead.openParts) return aead.openParts(this.key, this.nonceFor(nonce), ad, pieces, tag);
    let length = tag.length;
    for (const piece of pieces) length += piece.length;
    const sealed = new Uint8Array(length);
    let offset = 0;
    for (const piece of pieces) {
      sealed.set(piece, offset);
      offset += piece.length;
    }
    sealed.set(tag, offset);
    const plain = aead.open(this.key, this.nonceFor(nonce), ad, sealed);
    return plain === undefined ? undefined : [plain];
  }

  /** Rekey() (section 4.2): k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, zeros). The nonce is kept. */
  rekey(): void {
    if (this.key === undefined) throw new NoiseError('HANDSHAKE_STATE', 'cipher state has no key');
    this.key = this.aead.seal(this.key, this.nonceFor(0, true), EMPTY, ZEROS_32).slice(0, KEY_LENGTH);
  }

  /** An independent copy (same key and nonce), e.g. to derive the next rekey epoch while keeping this one. */
  fork(): CipherState {
    const copy = new CipherState(this.aead);
    copy.restore(this.snapshot());
    return copy;
  }

  /** @internal State copy for transactional reads. */
  snapshot(): { key: Uint8Array | undefined; n: number } {
    return { key: this.key, n: this.n };
  }

  /** @internal */
  restore(state: { key: Uint8Array | undefined; n: number }): void {
    this.key = state.key;
    this.n = state.n;
  }
}

/** Section 5.2. */
export class SymmetricState {
  readonly cipher: CipherState;
  private ck: Uint8Array;
  private h: Uint8Array;

  constructor(
    protocolName: string,
    private readonly hashFunctions: HashFunctions,
    private readonly aead: AeadFunctions,
  ) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= hashFunctions.length) {
      this.h = new Uint8Array(hashFunctions.length);
      this.h.set(name);
    } else {
      this.h = hashFunctions.hash(name);
    }
    this.ck = this.h;
    this.cipher = new CipherState(aead);
  }

  /** HKDF (section 4.3) with 2 or 3 outputs. */
  private hkdf(inputKeyMaterial: Uint8Array, outputs: 2 | 3): Uint8Array[] {
    const hash = this.hashFunctions;
    return hash.hkdf ? hash.hkdf(this.ck, inputKeyMaterial, outputs) : hkdfFromHmac(hash, this.ck, inputKeyMaterial, outputs);
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempKey] = this.hkdf(inputKeyMaterial, 2) as [Uint8Array, Uint8Array];
    this.ck = ck;
    this.cipher.initializeKey(tempKey.slice(0, KEY_LENGTH));
  }

  mixHash(data: Uint8Array): void {
    this.h = this.hashFunctions.hash(this.h, data);
  }

  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [ck, tempHash, tempKey] = this.hkdf(inputKeyMaterial, 3) as [Uint8Array, Uint8Array, Uint8Array];
    this.ck = ck;
    this.mixHash(tempHash);
    this.cipher.initializeKey(tempKey.slice(0, KEY_LENGTH));
  }

  get handshakeHash(): Uint8Array {
    return this.h;
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cipher.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  split(): [CipherState, CipherState] {
    const [key1, key2] = this.hkdf(EMPTY, 2) as [Uint8Array, Uint8Array];
    return [new CipherState(this.aead, key1.slice(0, KEY_LENGTH)), new CipherState(this.aead, key2.slice(0, KEY_LENGTH))];
  }

  /** @internal */
  snapshot(): { ck: Uint8Array; h: Uint8Array; cipher: { key: Uint8Array | undefined; n: number } } {
    return { ck: this.ck, h: this.h, cipher: this.cipher.snapshot() };
  }

  /** @internal */
  restore(state: { ck: Uint8Array; h: Uint8Array; cipher: { key: Uint8Array | undefined; n: number } }): void {
    this.ck = state.ck;
    this.h = state.h;
    this.cipher.restore(state.cipher);
  }
}

export interface HandshakeOptions {
  /** A protocol name such as `Noise_XX_25519_ChaChaPoly_SHA256`. */
  protocol: string | ProtocolName;
  /** True on the side that sends the first message. */
  initiator: boolean;
  /** Data both sides must agree on (section 6). Default empty. */
  prologue?: Uint8Array;
  /** This side's static key pair, when the pattern uses one. */
  staticKeyPair?: DhKeyPair;
  /** The peer's static public key, when known in advance (`<- s` / `-> s` pre-messages). */
  remoteStaticKey?: Uint8Array;
  /** Pre-shared keys (32 bytes each) in the order of the pattern's `psk` tokens. */
  psks?: readonly Uint8Array[];
  /** Crypto implementation. Default {@link defaultNoiseCrypto}. */
  crypto?: NoiseCrypto;
  /**
   * TESTS ONLY: the ephemeral key pair to use instead of a fresh one, so published
   * vectors can be checked byte for byte. Reusing an ephemeral key in real traffic
   * destroys the handshake's security.
   */
  testEphemeralKeyPair?: DhKeyPair;
}

/** The two transport cipher states a finished handshake yields, from this side's view. */
export interface TransportKeys {
  /** Encrypts what this side sends (undefined for the responder of a one-way pattern). */
  readonly send: CipherState | undefined;
  /** Decrypts what this side receives (undefined for the initiator of a one-way pattern). */
  readonly receive: CipherState | undefined;
  /** The handshake hash h, for channel binding (section 11.2). */
  readonly handshakeHash: Uint8Array;
}

/**
 * Section 5.3. Call {@link writeMessage} and {@link readMessage} in the pattern's order;
 * after the last message {@link complete} is true and {@link split} gives the transport
 * keys.
 *
 * Unlike the specification, which aborts on a failed `readMessage`, a failed read here
 * leaves the state exactly as it was before the call, so an injected or corrupted
 * datagram cannot break a handshake in progress: the genuine message can still be read.
 */
export class HandshakeState {
  readonly protocol: ProtocolName;
  readonly initiator: boolean;
  private readonly pattern: HandshakePattern;
  private readonly dh: DhFunctions;
  private readonly symmetric: SymmetricState;
  private readonly psks: readonly Uint8Array[];
  private readonly isPsk: boolean;
  private s: DhKeyPair | undefined;
  private e: DhKeyPair | undefined;
  private rs: Uint8Array | undefined;
  private re: Uint8Array | undefined;
  private messageIndex = 0;
  private pskIndex = 0;
  private testEphemeral: DhKeyPair | undefined;

  constructor(options: HandshakeOptions) {
    const protocol = typeof options.protocol === 'string' ? parseProtocolName(options.protocol) : options.protocol;
    const crypto = options.crypto ?? defaultNoiseCrypto();
    this.protocol = protocol;
    this.initiator = options.initiator === true;
    this.pattern = protocol.pattern;
    this.dh = crypto.dh(protocol.dh);
    this.symmetric = new SymmetricState(protocol.name, crypto.hash(protocol.hash), crypto.cipher(protocol.cipher));
    this.s = options.staticKeyPair;
    this.rs = options.remoteStaticKey;
    this.testEphemeral = options.testEphemeralKeyPair;
    this.psks = options.psks ?? [];
    this.isPsk = this.pattern.pskCount > 0;
    if (this.psks.length !== this.pattern.pskCount) {
      throw new NoiseError('MISSING_KEY', `${protocol.name} needs ${this.pattern.pskCount} pre-shared key(s), got ${this.psks.length}`);
    }
    for (const psk of this.psks) {
      if (psk.length !== PSK_LENGTH) throw new NoiseError('INVALID_KEY', `a pre-shared key must be ${PSK_LENGTH} bytes, got ${psk.length}`);
    }
    if (this.s && this.s.publicKey.length !== this.dh.length) throw new NoiseError('INVALID_KEY', `static key must be ${this.dh.length} bytes`);
    if (this.rs && this.rs.length !== this.dh.length) throw new NoiseError('INVALID_KEY', `remote static key must be ${this.dh.length} bytes`);
    this.checkKeys();

    this.symmetric.mixHash(options.prologue ?? EMPTY);
    // Pre-messages (section 5.3 Initialize): the initiator's keys first, then the responder's.
    for (const token of this.pattern.initiatorPreMessage) this.symmetric.mixHash(this.preMessageKey(token, true));
    for (const token of this.pattern.responderPreMessage) this.symmetric.mixHash(this.preMessageKey(token, false));
  }

  private checkKeys(): void {
    const ours = (sentByInitiator: boolean): boolean => sentByInitiator === this.initiator;
    const needsStatic =
      (this.pattern.initiatorPreMessage.includes('s') && this.initiator) ||
      (this.pattern.responderPreMessage.includes('s') && !this.initiator) ||
      this.pattern.messages.some((tokens, i) => ours(i % 2 === 0 || this.pattern.oneWay) && tokens.includes('s'));
    if (needsStatic && !this.s) throw new NoiseError('MISSING_KEY', `${this.protocol.name} needs this side's static key pair`);
    const needsRemoteStatic =
      (this.pattern.initiatorPreMessage.includes('s') && !this.initiator) || (this.pattern.responderPreMessage.includes('s') && this.initiator);
    if (needsRemoteStatic && !this.rs) throw new NoiseError('MISSING_KEY', `${this.protocol.name} needs the remote static public key`);
  }

  private preMessageKey(token: Token, ofInitiator: boolean): Uint8Array {
    const mine = ofInitiator === this.initiator;
    if (token === 's') return mine ? this.s!.publicKey : this.rs!;
    throw new NoiseError('UNSUPPORTED_PROTOCOL', `pre-message token '${token}' is not supported`);
  }

  /** Whose turn it is: true when this side writes the next message. */
  get isMyTurn(): boolean {
    if (this.complete) return false;
    const byInitiator = this.pattern.oneWay || this.messageIndex % 2 === 0;
    return byInitiator === this.initiator;
  }

  /** True after the last handshake message was written or read. */
  get complete(): boolean {
    return this.messageIndex >= this.pattern.messages.length;
  }

  /** The handshake hash h so far (final once complete). */
  get handshakeHash(): Uint8Array {
    return this.symmetric.handshakeHash;
  }

  /** The peer's static public key, once received (or given). */
  get remoteStaticKey(): Uint8Array | undefined {
    return this.rs;
  }

  get remoteEphemeralKey(): Uint8Array | undefined {
    return this.re;
  }

  /** This side's ephemeral public key, once generated. */
  get localEphemeralKey(): Uint8Array | undefined {
    return this.e?.publicKey;
  }

  /** Messages written or read so far. */
  get messagesDone(): number {
    return this.messageIndex;
  }

  private dhFor(token: 'ee' | 'es' | 'se' | 'ss'): Uint8Array {
    // Section 5.3: "es" is DH(e, rs) for the initiator and DH(s, re) for the responder; "se" the reverse.
    const need = <T>(value: T | undefined, what: string): T => {
      if (value === undefined) throw new NoiseError('MISSING_KEY', `token '${token}' needs ${what}`);
      return value;
    };
    switch (token) {
      case 'ee':
        return this.dh.dh(need(this.e, 'an ephemeral key'), need(this.re, 'the remote ephemeral key'));
      case 'ss':
        return this.dh.dh(need(this.s, 'a static key'), need(this.rs, 'the remote static key'));
      case 'es':
        return this.initiator
          ? this.dh.dh(need(this.e, 'an ephemeral key'), need(this.rs, 'the remote static key'))
          : this.dh.dh(need(this.s, 'a static key'), need(this.re, 'the remote ephemeral key'));
      case 'se':
        return this.initiator
          ? this.dh.dh(need(this.s, 'a static key'), need(this.re, 'the remote ephemeral key'))
          : this.dh.dh(need(this.e, 'an ephemeral key'), need(this.rs, 'the remote static key'));
    }
  }

  /** WriteMessage (section 5.3): the next handshake message carrying `payload`. */
  writeMessage(payload: Uint8Array = EMPTY): Uint8Array {
    if (!this.isMyTurn) throw new NoiseError('HANDSHAKE_STATE', this.complete ? 'the handshake is complete' : 'it is the peer\'s turn to send');
    const parts: Uint8Array[] = [];
    for (const token of this.pattern.messages[this.messageIndex]!) {
      switch (token) {
        case 'e': {
          this.e = this.testEphemeral ?? this.dh.generateKeyPair();
          this.testEphemeral = undefined;
          parts.push(this.e.publicKey);
          this.symmetric.mixHash(this.e.publicKey);
          if (this.isPsk) this.symmetric.mixKey(this.e.publicKey);
          break;
        }
        case 's':
          parts.push(this.symmetric.encryptAndHash(this.s!.publicKey));
          break;
        case 'psk':
          this.symmetric.mixKeyAndHash(this.psks[this.pskIndex++]!);
          break;
        default:
          this.symmetric.mixKey(this.dhFor(token));
      }
    }
    parts.push(this.symmetric.encryptAndHash(payload));
    let length = 0;
    for (const part of parts) length += part.length;
    if (length > MAX_MESSAGE_LENGTH) throw new NoiseError('MESSAGE_TOO_LONG', `handshake message of ${length} bytes exceeds ${MAX_MESSAGE_LENGTH}`);
    const out = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    this.messageIndex++;
    return out;
  }

  /**
   * ReadMessage (section 5.3): processes the peer's next handshake message and returns its
   * payload. Throws {@link NoiseError} (`DECRYPT_FAILED`, `DH_FAILED`, `HANDSHAKE_STATE`,
   * `MESSAGE_TOO_LONG`); on any error the state is left as it was.
   */
  readMessage(message: Uint8Array): Uint8Array {
    if (this.complete || this.isMyTurn) throw new NoiseError('HANDSHAKE_STATE', this.complete ? 'the handshake is complete' : 'it is this side\'s turn to send');
    if (message.length > MAX_MESSAGE_LENGTH) throw new NoiseError('MESSAGE_TOO_LONG', `handshake message of ${message.length} bytes exceeds ${MAX_MESSAGE_LENGTH}`);
    const saved = { symmetric: this.symmetric.snapshot(), rs: this.rs, re: this.re, pskIndex: this.pskIndex };
    try {
      let offset = 0;
      const take = (n: number): Uint8Array => {
        if (offset + n > message.length) throw new NoiseError('DECRYPT_FAILED', 'handshake message is truncated');
        const out = message.subarray(offset, offset + n);
        offset += n;
        return out;
      };
      for (const token of this.pattern.messages[this.messageIndex]!) {
        switch (token) {
          case 'e': {
            const re = take(this.dh.length).slice();
            this.re = re;
            this.symmetric.mixHash(re);
            if (this.isPsk) this.symmetric.mixKey(re);
            break;
          }
          case 's': {
            const length = this.dh.length + (this.symmetric.cipher.hasKey() ? AEAD_TAG_LENGTH : 0);
            this.rs = this.symmetric.decryptAndHash(take(length)).slice();
            break;
          }
          case 'psk':
            this.symmetric.mixKeyAndHash(this.psks[this.pskIndex++]!);
            break;
          default:
            this.symmetric.mixKey(this.dhFor(token));
        }
      }
      const rest = message.subarray(offset);
      if (this.symmetric.cipher.hasKey() && rest.length < AEAD_TAG_LENGTH) throw new NoiseError('DECRYPT_FAILED', 'handshake message is truncated');
      const payload = this.symmetric.decryptAndHash(rest);
      this.messageIndex++;
      return payload === rest ? rest.slice() : payload;
    } catch (error) {
      this.symmetric.restore(saved.symmetric);
      this.rs = saved.rs;
      this.re = saved.re;
      this.pskIndex = saved.pskIndex;
      throw error;
    }
  }

  /**
   * Split (section 5.2) from this side's view. Only once the handshake is complete. For
   * one-way patterns only the initiator's sending key (the responder's receiving key) exists.
   */
  split(): TransportKeys {
    if (!this.complete) throw new NoiseError('HANDSHAKE_STATE', 'the handshake is not complete');
    const [c1, c2] = this.symmetric.split();
    const handshakeHash = this.symmetric.handshakeHash;
    if (this.pattern.oneWay) return this.initiator ? { send: c1, receive: undefined, handshakeHash } : { send: undefined, receive: c1, handshakeHash };
    return this.initiator ? { send: c1, receive: c2, handshakeHash } : { send: c2, receive: c1, handshakeHash };
  }
}
