/**
 * Address diversity of a bucket: at most `maxPerPrefix` contacts of one bucket (and as
 * many waiting in its replacement cache) may share a network prefix, an IPv4 /24 or an
 * IPv6 /48 by default. Identities cost nothing to make, addresses do: without the rule,
 * one host answering from a few ports with thousands of fresh identities can fill whole
 * buckets and eclipse a node (Sybil attack). The rule follows the IP-prefix limits of
 * S/Kademlia (Baumgart and Mies 2007, section 4.3) and of the BitTorrent DHT routing
 * tables (BEP 42 discusses the same attack); Ethereum's discv5 uses 2 per /24 per bucket.
 *
 * Loopback, private (RFC 1918, RFC 6598 shared space), link-local and unique-local
 * addresses are exempt by default: nodes on one LAN or one machine legitimately share a
 * prefix, the in-memory network hands out 10.x.y.z hosts, and an attacker on the LAN has
 * easier means than a Sybil swarm. `exempt: 'none'` applies the rule to them too.
 */
import { ipFamily, ipToBytes } from '@deccom/core';

export type PrefixRuleExempt = 'private' | 'loopback' | 'none';

export interface DiversityRule {
  /** Contacts per bucket from one prefix, at most (and as many replacements). 0 = no rule. */
  readonly maxPerPrefix: number;
  /** Prefix length for IPv4 hosts, 8..32. */
  readonly ipv4Bits: number;
  /** Prefix length for IPv6 hosts, 16..128. */
  readonly ipv6Bits: number;
  readonly exempt: PrefixRuleExempt;
}

export const DEFAULT_DIVERSITY: DiversityRule = { maxPerPrefix: 2, ipv4Bits: 24, ipv6Bits: 48, exempt: 'private' };

function isLoopback(bytes: Uint8Array): boolean {
  if (bytes.length === 4) return bytes[0] === 127;
  for (let i = 0; i < 15; i++) if (bytes[i] !== 0) return false;
  return bytes[15] === 1;
}

function isPrivate(bytes: Uint8Array): boolean {
  if (bytes.length === 4) {
    const [a, b] = [bytes[0]!, bytes[1]!];
    return a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b < 128);
  }
  return (bytes[0]! & 0xfe) === 0xfc || (bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80);
}

/**
 * The prefix `host` counts against, as a string key, or undefined when the rule does not
 * apply to it (exempt, or not an IP literal). IPv4-mapped IPv6 hosts count as IPv4.
 */
export function prefixKey(host: string, rule: DiversityRule): string | undefined {
  if (rule.maxPerPrefix <= 0 || ipFamily(host) === 0) return undefined;
  let bytes = ipToBytes(host);
  if (bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) bytes = bytes.subarray(12);
  if (rule.exempt !== 'none' && isLoopback(bytes)) return undefined;
  if (rule.exempt === 'private' && isPrivate(bytes)) return undefined;
  const bits = bytes.length === 4 ? rule.ipv4Bits : rule.ipv6Bits;
  let key = bytes.length === 4 ? '4:' : '6:';
  for (let i = 0; i * 8 < bits; i++) {
    const keep = Math.min(8, bits - i * 8);
    key += `${(bytes[i]! & ((0xff << (8 - keep)) & 0xff)).toString(16)}.`;
  }
  return key;
}
