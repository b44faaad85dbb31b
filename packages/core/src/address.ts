/**
 * Network addresses. A host is an IPv4 or IPv6 literal (names are resolved by the user
 * before they reach a layer); the in-memory network uses the same literals.
 */
import { isIP } from 'node:net';
import { InvalidArgumentError } from './errors.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** 4 for IPv4, 6 for IPv6, 0 when `host` is not an IP literal. */
export function ipFamily(host: string): 0 | 4 | 6 {
  return isIP(host) as 0 | 4 | 6;
}

/** A stable string key, `1.2.3.4:5` or `[::1]:5`, for maps keyed by address. */
export function addressKey(address: Address): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function sameAddress(a: Address, b: Address): boolean {
  return a.port === b.port && a.host === b.host;
}

/** Parses `host:port` or `[v6]:port`. */
export function parseAddress(text: string): Address {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!match) throw new InvalidArgumentError(`parseAddress: expected host:port or [ipv6]:port, got '${text}'`);
  const address = { host: match[1]!, port: Number(match[2]) };
  checkAddress(address, 'parseAddress');
  return address;
}

/** Throws {@link InvalidArgumentError} unless `address` is an IP literal with a valid port. */
export function checkAddress(address: Address, where: string): void {
  if (typeof address !== 'object' || address === null || typeof address.host !== 'string' || ipFamily(address.host) === 0) {
    throw new InvalidArgumentError(`${where}: host must be an IPv4 or IPv6 literal, got ${JSON.stringify(address?.host)}`);
  }
  if (!Number.isInteger(address.port) || address.port < 0 || address.port > 65535) {
    throw new InvalidArgumentError(`${where}: port must be an integer in 0..65535, got ${String(address.port)}`);
  }
}
