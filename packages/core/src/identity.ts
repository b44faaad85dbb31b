/**
 * Node identity. A node's public identity is an Ed25519 public key (32 bytes) or a
 * plain string (handy for tests with a few named nodes); its id is SHA-256 of the public
 * identity bytes.
 */
import { bytesEqual, fromHex, toHex, utf8Decode, utf8Encode } from './bytes.js';
import { coreCrypto, ed25519PublicToX25519, ed25519SecretToX25519, type CoreCrypto } from './crypto.js';
import { IdentityError, InvalidArgumentError } from './errors.js';
import { secureRandomBytes } from './random.js';

export const NODE_ID_LENGTH = 32;

/** A 256-bit node id (SHA-256 of a public identity). */
export class NodeId {
  readonly bytes: Uint8Array;
  private hexCache: string | undefined;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== NODE_ID_LENGTH) {
      throw new InvalidArgumentError(`NodeId: expected ${NODE_ID_LENGTH} bytes, got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`);
    }
    this.bytes = bytes;
  }

  static fromHex(hex: string): NodeId {
    if (hex.length !== NODE_ID_LENGTH * 2) throw new InvalidArgumentError(`NodeId.fromHex: expected 64 hex characters, got ${hex.length}`);
    try {
      return new NodeId(fromHex(hex));
    } catch (cause) {
      throw new InvalidArgumentError(`NodeId.fromHex: not hex`, { cause });
    }
  }

  /** The id a string identity would have: SHA-256 of its UTF-8 bytes. */
  static ofString(name: string): NodeId {
    return new NodeId(coreCrypto().sha256(utf8Encode(name)));
  }

  /** Hex string; also the key used in maps. */
  get hex(): string {
    return (this.hexCache ??= toHex(this.bytes));
  }

  equals(other: NodeId): boolean {
    // Hex strings are cached per id and compared by the engine in one step.
    return this === other || this.hex === other.hex;
  }

  toString(): string {
    return this.hex;
  }

  /** First 8 hex characters, for logs and diagrams. */
  get short(): string {
    return this.hex.slice(0, 8);
  }

  toJSON(): string {
    return this.hex;
  }
}

export type IdentityKind = 'ed25519' | 'string';

/** The public half of an identity: what peers see and verify. */
export class PublicIdentity {
  readonly kind: IdentityKind;
  /** The public identity bytes: an Ed25519 key, or the UTF-8 string. */
  readonly bytes: Uint8Array;
  readonly id: NodeId;

  constructor(kind: IdentityKind, bytes: Uint8Array, crypto: CoreCrypto = coreCrypto()) {
    if (kind === 'ed25519' && bytes.length !== 32) throw new IdentityError('INVALID_KEY', `Ed25519 public key must be 32 bytes, got ${bytes.length}`);
    if (kind === 'string' && (bytes.length === 0 || bytes.length > 63)) {
      throw new IdentityError('INVALID_KEY', `string identity must be 1..63 UTF-8 bytes, got ${bytes.length}`);
    }
    this.kind = kind;
    this.bytes = bytes;
    this.id = new NodeId(crypto.sha256(bytes));
  }

  /** Verifies an Ed25519 signature. String identities cannot sign: always false. */
  verify(message: Uint8Array, signature: Uint8Array, crypto: CoreCrypto = coreCrypto()): boolean {
    return this.kind === 'ed25519' && crypto.ed25519Verify(this.bytes, message, signature);
  }

  /** The X25519 public key matching this Ed25519 key (for Noise static keys). */
  toX25519(): Uint8Array {
    if (this.kind !== 'ed25519') throw new IdentityError('UNSUPPORTED', 'a string identity has no X25519 key');
    return ed25519PublicToX25519(this.bytes);
  }

  equals(other: PublicIdentity): boolean {
    return this.kind === other.kind && bytesEqual(this.bytes, other.bytes);
  }

  toString(): string {
    return this.kind === 'string' ? utf8Decode(this.bytes) : `ed25519:${toHex(this.bytes)}`;
  }
}

/** A node's own identity, with its secret when it has one. */
export class Identity {
  readonly public: PublicIdentity;
  readonly #seed: Uint8Array | undefined;
  readonly #crypto: CoreCrypto;

  private constructor(publicIdentity: PublicIdentity, seed: Uint8Array | undefined, crypto: CoreCrypto) {
    this.public = publicIdentity;
    this.#seed = seed;
    this.#crypto = crypto;
  }

  /** A fresh Ed25519 identity from the platform CSPRNG. */
  static generate(crypto: CoreCrypto = coreCrypto()): Identity {
    return Identity.fromSeed(secureRandomBytes(32), crypto);
  }

  /** An Ed25519 identity from a 32-byte secret seed (RFC 8032 private key). */
  static fromSeed(seed: Uint8Array, crypto: CoreCrypto = coreCrypto()): Identity {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new InvalidArgumentError('Identity.fromSeed: the seed must be 32 bytes');
    const copy = seed.slice();
    return new Identity(new PublicIdentity('ed25519', crypto.ed25519PublicKey(copy), crypto), copy, crypto);
  }

  /** A string identity (cannot sign). For tests and closed networks of named nodes. */
  static fromString(name: string): Identity {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('Identity.fromString: the name must be a non-empty string');
    return new Identity(new PublicIdentity('string', utf8Encode(name)), undefined, coreCrypto());
  }

  get id(): NodeId {
    return this.public.id;
  }

  get kind(): IdentityKind {
    return this.public.kind;
  }

  get canSign(): boolean {
    return this.#seed !== undefined;
  }

  /** Ed25519 signature of `message`. Throws for a string identity. */
  sign(message: Uint8Array): Uint8Array {
    if (this.#seed === undefined) throw new IdentityError('UNSUPPORTED', 'a string identity cannot sign');
    return this.#crypto.ed25519Sign(this.#seed, message);
  }

  /** The X25519 secret scalar matching this identity (for a Noise static key). */
  x25519Secret(): Uint8Array {
    if (this.#seed === undefined) throw new IdentityError('UNSUPPORTED', 'a string identity has no X25519 key');
    return ed25519SecretToX25519(this.#seed);
  }

  toString(): string {
    return this.public.toString();
  }
}
