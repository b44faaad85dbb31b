/**
 * The stacks the CLI runs, bottom to top, and joining a network through bootstrap nodes.
 *
 * Every node: udp > keepalive > kademlia > noise. Kademlia finds peers and topics; Noise
 * (XX, bound to each node's Ed25519 identity) admits a peer into Kademlia's table only
 * after a handshake and encrypts application datagrams. File transfers add rudp above
 * Noise (reliable messages, encrypted chunk by chunk) or tcp > noiseStream (streams).
 */
import { createNode, type Address, type Identity, type NodeId, type PeerRecord } from '@deccom/core';
import { udp } from '@deccom/udp';
import { keepalive } from '@deccom/keepalive';
import { kademlia } from '@deccom/kademlia';
import { noise, noiseStream } from '@deccom/noise';
import { rudp } from '@deccom/rudp';
import { tcp } from '@deccom/tcp';
import { CliError, EXIT } from './errors.js';
import type { NoiseMode } from './options.js';

export interface StackOptions {
  readonly identity: Identity;
  readonly host: string;
  readonly port: number;
  readonly bootstrap: readonly Address[];
  readonly noise: NoiseMode;
}

const KEEPALIVE_INTERVAL_MS = 10_000;
/** rudp's deadline for one file; the size limit below keeps a file far inside it. */
export const MAX_RUDP_FILE_BYTES = 1024 * 1024 * 1024 - 64 * 1024;

/** udp > keepalive > kademlia > noise: the base of every stack the CLI runs. */
function discoveryLayers(options: StackOptions) {
  return [
    udp({ host: options.host, port: options.port }),
    keepalive({ intervalMs: KEEPALIVE_INTERVAL_MS }),
    kademlia({ bootstrap: options.bootstrap }),
    noise({ mode: options.noise }),
  ] as const;
}

/** The base stack alone: bootstrap nodes, chat, status. */
export function discoveryNode(options: StackOptions) {
  return createNode({ identity: options.identity, layers: discoveryLayers(options) });
}

/** ... > noise > rudp: sends files over reliable UDP. */
export function rudpNode(options: StackOptions) {
  return createNode({ identity: options.identity, layers: [...discoveryLayers(options), rudp()] });
}

/** ... > noise > tcp > noiseStream: sends files as TCP streams. */
export function tcpNode(options: StackOptions) {
  return createNode({ identity: options.identity, layers: [...discoveryLayers(options), tcp({ host: options.host }), noiseStream({ mode: options.noise })] });
}

/** Both transports: receives files sent over either. */
export function receiverNode(options: StackOptions) {
  return createNode({
    identity: options.identity,
    layers: [...discoveryLayers(options), rudp(), tcp({ host: options.host }), noiseStream({ mode: options.noise })],
  });
}

/** What joining needs of a node: every stack above has it. */
export interface JoinableNode {
  sendPing(to: Address, options?: { timeoutMs?: number }): Promise<number>;
  getPeers(): PeerRecord[];
  readonly id: NodeId;
}

export const at = (address: Address): string => (address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`);

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export interface JoinResult {
  /** Round-trip time to each bootstrap address that answered, in ms. */
  readonly rtts: ReadonlyMap<string, number>;
}

/**
 * Joins through `bootstrap`: pings every address (a bootstrap node that is not there
 * fails here, clearly, instead of leaving an empty table), then waits until Kademlia
 * holds at least one peer admitted by a Noise handshake. Fails with exit code 3.
 */
export async function joinNetwork(node: JoinableNode, bootstrap: readonly Address[], timeoutMs: number, signal?: AbortSignal): Promise<JoinResult> {
  const rtts = new Map<string, number>();
  if (bootstrap.length === 0) return { rtts };
  const deadline = Date.now() + timeoutMs;
  const results = await Promise.allSettled(bootstrap.map((address) => node.sendPing(address, { timeoutMs })));
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') rtts.set(at(bootstrap[i]!), result.value);
  });
  if (rtts.size === 0) {
    throw new CliError(
      EXIT.NETWORK,
      `no bootstrap node answered within ${timeoutMs / 1000} s (tried ${bootstrap.map(at).join(', ')}); is \`deccom bootstrap\` running there, and is the address right?`,
    );
  }
  while (node.getPeers().length === 0) {
    if (signal?.aborted) throw new CliError(EXIT.NETWORK, 'interrupted while joining');
    if (Date.now() >= deadline) {
      throw new CliError(
        EXIT.NETWORK,
        `the bootstrap node answered pings but admitted no peer within ${timeoutMs / 1000} s: it must run a DecCom node with the same --noise mode`,
      );
    }
    await sleep(50, signal);
  }
  return { rtts };
}

/** Resolves once `signal` aborts. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Peers whose id starts with `prefix` (hex, case-insensitive), unique by id. */
export function matchPeers(peers: Iterable<PeerRecord>, prefix: string): PeerRecord[] {
  const wanted = prefix.toLowerCase();
  const found = new Map<string, PeerRecord>();
  for (const peer of peers) if (peer.id.hex.startsWith(wanted)) found.set(peer.id.hex, peer);
  return [...found.values()];
}

/** Prints `counters()` as indented `layer.counter value` lines (only non-zero ones). */
export function formatCounters(counters: Record<string, Record<string, number>>): string[] {
  const lines: string[] = [];
  for (const [layer, values] of Object.entries(counters)) {
    const entries = Object.entries(values).filter(([, value]) => value !== 0);
    if (entries.length === 0) continue;
    lines.push(`  ${layer}: ${entries.map(([name, value]) => `${name}=${value}`).join(' ')}`);
  }
  return lines;
}
