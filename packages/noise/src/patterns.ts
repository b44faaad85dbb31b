/**
 * Handshake patterns and protocol names (Noise revision 34, sections 7 and 8).
 *
 * Every pattern of the specification is here: the one-way patterns (7.4), the twelve
 * fundamental interactive patterns (7.5) and the 23 deferred patterns (7.6), with the
 * `pskN` modifiers of section 9 in any combination (`XXpsk0+psk3`).
 */
import { NoiseError } from './errors.js';
import type { CipherName, DhName, HashName } from './crypto.js';

export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';

export interface HandshakePattern {
  /** The pattern's name with modifiers, e.g. `XXpsk3`. */
  readonly name: string;
  /** Pre-message tokens of the initiator (`-> s ...`) and the responder (`<- s ...`). */
  readonly initiatorPreMessage: readonly Token[];
  readonly responderPreMessage: readonly Token[];
  /** Message patterns; even indexes are sent by the initiator, odd ones by the responder. */
  readonly messages: readonly (readonly Token[])[];
  /** One-way patterns (N, K, X): every message, including transport ones, goes initiator to responder. */
  readonly oneWay: boolean;
  /** Number of `psk` tokens: how many pre-shared keys the handshake needs. */
  readonly pskCount: number;
}

/**
 * The patterns in the specification's notation: pre-messages before `...`, then one
 * message per `;`, tokens separated by `,`. Arrows alternate starting with `->`.
 */
const PATTERNS: Record<string, { pre?: [string, string]; messages: string[] }> = {
  // One-way (7.4)
  N: { pre: ['', 's'], messages: ['e, es'] },
  K: { pre: ['s', 's'], messages: ['e, es, ss'] },
  X: { pre: ['', 's'], messages: ['e, es, s, ss'] },
  // Fundamental interactive (7.5)
  NN: { messages: ['e', 'e, ee'] },
  NK: { pre: ['', 's'], messages: ['e, es', 'e, ee'] },
  NX: { messages: ['e', 'e, ee, s, es'] },
  KN: { pre: ['s', ''], messages: ['e', 'e, ee, se'] },
  KK: { pre: ['s', 's'], messages: ['e, es, ss', 'e, ee, se'] },
  KX: { pre: ['s', ''], messages: ['e', 'e, ee, se, s, es'] },
  XN: { messages: ['e', 'e, ee', 's, se'] },
  XK: { pre: ['', 's'], messages: ['e, es', 'e, ee', 's, se'] },
  XX: { messages: ['e', 'e, ee, s, es', 's, se'] },
  IN: { messages: ['e, s', 'e, ee, se'] },
  IK: { pre: ['', 's'], messages: ['e, es, s, ss', 'e, ee, se'] },
  IX: { messages: ['e, s', 'e, ee, se, s, es'] },
  // Deferred (7.6)
  NK1: { pre: ['', 's'], messages: ['e', 'e, ee, es'] },
  NX1: { messages: ['e', 'e, ee, s', 'es'] },
  X1N: { messages: ['e', 'e, ee', 's', 'se'] },
  X1K: { pre: ['', 's'], messages: ['e, es', 'e, ee', 's', 'se'] },
  XK1: { pre: ['', 's'], messages: ['e', 'e, ee, es', 's, se'] },
  X1K1: { pre: ['', 's'], messages: ['e', 'e, ee, es', 's', 'se'] },
  X1X: { messages: ['e', 'e, ee, s, es', 's', 'se'] },
  XX1: { messages: ['e', 'e, ee, s', 'es, s, se'] },
  X1X1: { messages: ['e', 'e, ee, s', 'es, s', 'se'] },
  K1N: { pre: ['s', ''], messages: ['e', 'e, ee', 'se'] },
  K1K: { pre: ['s', 's'], messages: ['e, es', 'e, ee', 'se'] },
  KK1: { pre: ['s', 's'], messages: ['e', 'e, ee, se, es'] },
  K1K1: { pre: ['s', 's'], messages: ['e', 'e, ee, es', 'se'] },
  K1X: { pre: ['s', ''], messages: ['e', 'e, ee, s, es', 'se'] },
  KX1: { pre: ['s', ''], messages: ['e', 'e, ee, se, s', 'es'] },
  K1X1: { pre: ['s', ''], messages: ['e', 'e, ee, s', 'se, es'] },
  I1N: { messages: ['e, s', 'e, ee', 'se'] },
  I1K: { pre: ['', 's'], messages: ['e, es, s', 'e, ee', 'se'] },
  IK1: { pre: ['', 's'], messages: ['e, s', 'e, ee, se, es'] },
  I1K1: { pre: ['', 's'], messages: ['e, s', 'e, ee, es', 'se'] },
  I1X: { messages: ['e, s', 'e, ee, s, es', 'se'] },
  IX1: { messages: ['e, s', 'e, ee, se, s', 'es'] },
  I1X1: { messages: ['e, s', 'e, ee, s', 'se, es'] },
};

const ONE_WAY = new Set(['N', 'K', 'X']);

function tokens(text: string): Token[] {
  return text === '' ? [] : (text.split(',').map((t) => t.trim()) as Token[]);
}

/** Names of every base pattern this implementation knows. */
export const PATTERN_NAMES: readonly string[] = Object.keys(PATTERNS);

/**
 * A pattern by name, with `pskN` modifiers applied (section 9.2: `psk0` goes at the
 * start of the first message, `pskN` at the end of message N).
 */
export function handshakePattern(name: string): HandshakePattern {
  const match = /^([NKXI1]+)((?:psk\d+)(?:\+psk\d+)*)?$/.exec(name);
  const base = match ? PATTERNS[match[1]!] : undefined;
  if (!match || !base) throw new NoiseError('UNSUPPORTED_PROTOCOL', `unknown handshake pattern '${name}'`);
  const messages = base.messages.map(tokens);
  let pskCount = 0;
  if (match[2] !== undefined) {
    const seen = new Set<number>();
    for (const modifier of match[2].split('+')) {
      const position = Number(modifier.slice(3));
      if (seen.has(position) || position > messages.length) {
        throw new NoiseError('UNSUPPORTED_PROTOCOL', `invalid psk modifier '${modifier}' for pattern '${match[1]}'`);
      }
      seen.add(position);
      if (position === 0) messages[0]!.unshift('psk');
      else messages[position - 1]!.push('psk');
      pskCount++;
    }
  }
  return {
    name,
    initiatorPreMessage: tokens(base.pre?.[0] ?? ''),
    responderPreMessage: tokens(base.pre?.[1] ?? ''),
    messages,
    oneWay: ONE_WAY.has(match[1]!),
    pskCount,
  };
}

export interface ProtocolName {
  readonly name: string;
  readonly pattern: HandshakePattern;
  readonly dh: DhName;
  readonly cipher: CipherName;
  readonly hash: HashName;
}

const DH_NAMES = new Set<string>(['25519', '448']);
const CIPHER_NAMES = new Set<string>(['ChaChaPoly', 'AESGCM']);
const HASH_NAMES = new Set<string>(['SHA256', 'SHA512', 'BLAKE2s', 'BLAKE2b']);

/** Parses `Noise_XX_25519_ChaChaPoly_SHA256` (section 8). */
export function parseProtocolName(name: string): ProtocolName {
  const parts = name.split('_');
  if (parts.length !== 5 || parts[0] !== 'Noise') throw new NoiseError('UNSUPPORTED_PROTOCOL', `'${name}' is not a Noise protocol name`);
  const [, patternName, dh, cipher, hash] = parts as [string, string, string, string, string];
  if (!DH_NAMES.has(dh)) throw new NoiseError('UNSUPPORTED_PROTOCOL', `unsupported DH '${dh}' in '${name}'`);
  if (!CIPHER_NAMES.has(cipher)) throw new NoiseError('UNSUPPORTED_PROTOCOL', `unsupported cipher '${cipher}' in '${name}'`);
  if (!HASH_NAMES.has(hash)) throw new NoiseError('UNSUPPORTED_PROTOCOL', `unsupported hash '${hash}' in '${name}'`);
  return { name, pattern: handshakePattern(patternName), dh: dh as DhName, cipher: cipher as CipherName, hash: hash as HashName };
}
