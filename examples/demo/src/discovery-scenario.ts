/**
 * The demo's discovery scenario, written against the discovery contract every DecCom
 * discovery layer shares (findPeer, getPeers, sendDatagram, peer events): any of
 * kademlia, gossip, biggossip runs it unchanged.
 */
import { createNode, Identity, type Address, type AnyLayer, type Capabilities, type HookHandler } from '@deccom/core';
import { udp } from '@deccom/udp';
import { keepalive } from '@deccom/keepalive';

/** A discovery layer: anything that provides the discovery contract over a datagram transport. */
type DiscoveryLayer = AnyLayer & {
  readonly provides?: readonly ('findPeer' | 'getPeers' | 'sendDatagram' | string)[];
};

interface DiscoveryNode extends Pick<Capabilities, 'findPeer' | 'getPeers' | 'sendDatagram' | 'localAddress'> {
  readonly id: { short: string; equals(other: unknown): boolean };
  start(): Promise<void>;
  stop(): Promise<void>;
  handle(hook: 'datagram', handler: HookHandler<'datagram'>): () => void;
  mermaid(): string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Eight nodes join through one, node 1 finds node 7 by id and sends it a datagram.
 * `above` adds layers on top of discovery (the demo puts Noise there, so the datagram is
 * encrypted end to end and a peer joins discovery only after its handshake).
 * Returns node 1's diagram.
 */
export async function discoveryScenario(
  discovery: (bootstrap: Address[]) => DiscoveryLayer,
  log: (line: string) => void,
  above: () => AnyLayer[] = () => [],
): Promise<{ first: string; received: string; peersKnown: number[] }> {
  const make = (bootstrap: Address[]) =>
    createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), keepalive({ intervalMs: 5000 }), discovery(bootstrap), ...above()] as never }) as unknown as DiscoveryNode;
  const seed = make([]);
  await seed.start();
  const members = [seed];
  for (let i = 0; i < 7; i++) {
    const member = make([seed.localAddress()]);
    await member.start();
    members.push(member);
  }
  await sleep(2500);
  const peersKnown = members.map((m) => m.getPeers().length);
  members.forEach((member, i) => log(`  node ${i} (${member.id.short}…) knows ${peersKnown[i]} peers`));
  const [first, last] = [members[1]!, members[7]!];
  const last7 = last as unknown as { id: Parameters<Capabilities['findPeer']>[0] };
  const found = await first.findPeer(last7.id, { timeoutMs: 5000 });
  log(`  node 1 looked up node 7 by id: ${found.id.short}… at ${found.address.host}:${found.address.port}`);
  const greeting = new Promise<string>((resolve) => last.handle('datagram', (data) => resolve(new TextDecoder().decode(data))));
  first.sendDatagram(found.address, new TextEncoder().encode('hello node 7, I found you by id'));
  const received = await greeting;
  log(`  node 7 received: "${received}"`);
  const secure = (first as unknown as { secureSession?: (address: Address) => { remoteId: { short: string }; handshakeHash: Uint8Array } | undefined }).secureSession?.(found.address);
  if (secure !== undefined) {
    const hash = Array.from(secure.handshakeHash.subarray(0, 8), (byte) => byte.toString(16).padStart(2, '0')).join('');
    log(`  (sent encrypted: Noise XX session with ${secure.remoteId.short}…, handshake hash ${hash}…)`);
  }
  const diagram = first.mermaid();
  for (const member of members) await member.stop();
  return { first: diagram, received, peersKnown };
}
