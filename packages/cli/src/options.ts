/**
 * Command-line parsing on node:util parseArgs, and the values the commands share:
 * addresses (`host:port`, `[v6]:port`, names resolved by DNS), ports, timeouts,
 * the Noise mode and the identity file.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Identity, type Address } from '@deccom/core';
import { CliError, EXIT, UsageError } from './errors.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Options every networked command accepts. */
export const NETWORK_OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  'identity-file': { type: 'string' },
  timeout: { type: 'string' },
  noise: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec;

export const BOOTSTRAP_OPTION = { bootstrap: { type: 'string', short: 'b', multiple: true } } as const satisfies OptionSpec;

/** Parses `args` strictly; any unknown flag or missing value is a UsageError naming the command. */
export function parseCommand(command: string, args: readonly string[], options: OptionSpec, positionals = 0): { values: Values; positionals: string[] } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: positionals > 0, strict: true }) as { values: Values; positionals: string[] };
  } catch (error) {
    throw new UsageError(describeParseError(error), command);
  }
  if (parsed.values['help'] === true) return parsed;
  if (parsed.positionals.length > positionals) {
    throw new UsageError(`unexpected argument '${parsed.positionals[positionals]}'`, command);
  }
  return parsed;
}

function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // parseArgs messages end with a hint about '--' that does not apply here; keep the first sentence.
  const first = (message.split('\n')[0] ?? message).split('. ')[0] ?? message;
  return first.replace(/\.$/, '');
}

export function stringValue(values: Values, name: string): string | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new UsageError(`--${name} needs a value`);
  if (value.length === 0) throw new UsageError(`--${name} needs a non-empty value`);
  return value;
}

export function portValue(values: Values, name = 'port', fallback = 0): number {
  const text = stringValue(values, name);
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--${name} must be a port number 0..65535, got '${text}'`);
  }
  return port;
}

/** `--timeout <seconds>` (decimals allowed), returned in milliseconds. */
export function timeoutValue(values: Values, fallbackSeconds: number): number {
  const text = stringValue(values, 'timeout');
  if (text === undefined) return fallbackSeconds * 1000;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(seconds > 0) || seconds > 86_400) {
    throw new UsageError(`--timeout must be a number of seconds, more than 0 and at most 86400, got '${text}'`);
  }
  return Math.round(seconds * 1000);
}

export type NoiseMode = 'encrypt' | 'sign-only';

export function noiseModeValue(values: Values): NoiseMode {
  const text = stringValue(values, 'noise') ?? 'encrypt';
  if (text !== 'encrypt' && text !== 'sign-only') throw new UsageError(`--noise must be 'encrypt' or 'sign-only', got '${text}'`);
  return text;
}

/** Parses `host:port`, `[ipv6]:port`; host names are resolved later by resolveAddress. */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const trimmed = text.trim();
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(trimmed);
  const plain = /^([^:[\]\s]+):(\d+)$/.exec(trimmed);
  const match = bracketed ?? plain;
  if (!match) throw new UsageError(`${flag} expects host:port (or [ipv6]:port), got '${text}'`);
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`${flag}: port must be 1..65535 in '${text}'`);
  const host = match[1]!;
  if (bracketed && isIP(host) !== 6) throw new UsageError(`${flag}: '${host}' in brackets is not an IPv6 address`);
  return { host, port };
}

/** Resolves a host name to an IP literal (the transports take IP literals only). */
export async function resolveAddress(address: { host: string; port: number }): Promise<Address> {
  if (isIP(address.host) !== 0) return { host: address.host, port: address.port };
  try {
    const resolved = await lookup(address.host);
    return { host: resolved.address, port: address.port };
  } catch {
    throw new CliError(EXIT.NETWORK, `cannot resolve host name '${address.host}'`);
  }
}

/** `--bootstrap a:1,b:2` (the flag may also repeat). */
export async function bootstrapValue(values: Values): Promise<Address[]> {
  const raw = values['bootstrap'];
  const texts = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(String);
  const parts = texts.flatMap((text) => text.split(',')).filter((part) => part.trim().length > 0);
  if (texts.length > 0 && parts.length === 0) throw new UsageError('--bootstrap needs at least one host:port');
  const addresses: Address[] = [];
  for (const part of parts) addresses.push(await resolveAddress(parseHostPort(part, '--bootstrap')));
  return addresses;
}

const isLoopback = (host: string) => host === '::1' || host.startsWith('127.') || host === 'localhost';

/**
 * The interface to bind: `--host` when given; otherwise loopback when every address we
 * will talk to is on loopback (nothing is exposed by default), else all interfaces of
 * the right family.
 */
export function hostValue(values: Values, peers: readonly Address[]): string {
  const host = stringValue(values, 'host');
  if (host !== undefined) {
    if (isIP(host) === 0) throw new UsageError(`--host must be an IP address to bind (e.g. 127.0.0.1, 0.0.0.0, ::), got '${host}'`);
    return host;
  }
  const first = peers[0];
  if (first === undefined) return '127.0.0.1';
  const v6 = isIP(first.host) === 6;
  if (peers.every((peer) => isLoopback(peer.host))) return v6 ? '::1' : '127.0.0.1';
  return v6 ? '::' : '0.0.0.0';
}

/**
 * `--identity-file <path>`: the node's Ed25519 identity, kept as a 32-byte seed in hex.
 * A missing file is created (mode 0600), so a node keeps its id across restarts.
 */
export function identityValue(values: Values): { identity: Identity; note?: string } {
  const path = stringValue(values, 'identity-file');
  if (path === undefined) return { identity: Identity.generate() };
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(EXIT.FILE, `cannot read identity file ${path}: ${(error as Error).message}`);
  }
  if (text === undefined) {
    const seed = randomBytes(32);
    try {
      writeFileSync(path, `${seed.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      throw new CliError(EXIT.FILE, `cannot create identity file ${path}: ${(error as Error).message}`);
    }
    return { identity: Identity.fromSeed(new Uint8Array(seed)), note: `created identity file ${path}` };
  }
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new CliError(EXIT.FILE, `identity file ${path} must hold a 32-byte seed as 64 hex digits`);
  return { identity: Identity.fromSeed(new Uint8Array(Buffer.from(hex, 'hex'))) };
}
