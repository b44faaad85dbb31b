/**
 * A private network of three members on loopback UDP with `@deccom/fixed-peers`: each
 * member is configured with the other members' addresses and talks only to them. An
 * outsider who knows the members' addresses (they are not secret) says HELLO to each, but
 * no member admits it: it never enters a member's peer table, `findPeer` / `sendTo` for it
 * fail, broadcasts never reach it, and its datagrams are dropped by fixed-peers before
 * they reach the app (counted `dropped.not-listed`).
 */
import { createSocket } from 'node:dgram';
import { createNode, Identity, NotFoundError, utf8Decode, utf8Encode, type Address, type PeerRecord } from '@deccom/core';
import { udp } from '@deccom/udp';
import { fixedPeers } from '@deccom/fixed-peers';

const HOST = '127.0.0.1';
const HELLO_INTERVAL_MS = 200;
const SETTLE_DEADLINE_MS = 10_000;

/** A free UDP port on loopback: the members' addresses must be known before they start. */
async function freePort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, HOST, () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

async function waitFor(predicate: () => boolean, deadlineMs: number): Promise<boolean> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > deadlineMs) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

export interface PrivateNetworkReport {
  /** Member name -> names of the members it admitted. */
  peers: Record<string, string[]>;
  /** Member name -> messages its app accepted, as "from: text". */
  accepted: Record<string, string[]>;
  /** Member name -> datagrams its app received from a sender that is not a member (should be 0). */
  leaked: Record<string, number>;
  /** Member name -> the outsider's datagrams fixed-peers dropped before the app. */
  refused: Record<string, number>;
  /** Members that admitted the outsider. */
  outsiderAdmittedBy: string[];
  /** Member name -> HELLOs from the outsider dropped by fixed-peers as not listed. */
  outsiderHellosDropped: Record<string, number>;
  /** What `findPeer(outsider)` on a member gave. */
  findOutsider: string;
  /** Members that saw carol leave (EXIT on stop). */
  sawCarolLeave: string[];
}

export async function privateNetwork(log: (line: string) => void): Promise<PrivateNetworkReport> {
  const names = ['alice', 'bob', 'carol'] as const;
  const addresses = new Map<string, Address>();
  for (const name of names) addresses.set(name, { host: HOST, port: await freePort() });
  const members = names.map((name) => {
    const others = names.filter((other) => other !== name).map((other) => addresses.get(other)!);
    return {
      name,
      node: createNode({
        identity: Identity.generate(),
        layers: [udp({ host: HOST, port: addresses.get(name)!.port }), fixedPeers({ peers: others, helloIntervalMs: HELLO_INTERVAL_MS })],
      }),
    };
  });
  // The outsider knows every member's address, but no member lists its own.
  const outsider = createNode({
    identity: Identity.generate(),
    layers: [udp({ host: HOST }), fixedPeers({ peers: [...addresses.values()], helloIntervalMs: HELLO_INTERVAL_MS })],
  });
  const nameOf = new Map<string, string>();
  const report: PrivateNetworkReport = { peers: {}, accepted: {}, refused: {}, leaked: {}, outsiderAdmittedBy: [], outsiderHellosDropped: {}, findOutsider: '', sawCarolLeave: [] };

  for (const { name, node } of members) {
    nameOf.set(node.id.hex, name);
    report.accepted[name] = [];
    report.refused[name] = 0;
    report.leaked[name] = 0;
    node.on('peer-disconnect', (peer: PeerRecord) => {
      if (nameOf.get(peer.id.hex) === 'carol') report.sawCarolLeave.push(name);
    });
    // A closed network (the default) hands up data from listed addresses only.
    node.handle('datagram', (data: Uint8Array, from: Address) => {
      const sender = node.getPeers().find((peer) => peer.address.host === from.host && peer.address.port === from.port);
      if (!sender) {
        report.leaked[name]! += 1;
        return;
      }
      report.accepted[name]!.push(`${nameOf.get(sender.id.hex) ?? sender.id.short}: ${utf8Decode(data)}`);
    });
  }
  nameOf.set(outsider.id.hex, 'outsider');

  const dropped = (node: (typeof members)[number]['node']): number => node.counters()['fixed-peers']?.['dropped.not-listed'] ?? 0;
  try {
    for (const { node } of members) await node.start();
    await outsider.start();
    log(`members: ${members.map(({ name }) => `${name} ${HOST}:${addresses.get(name)!.port}`).join(', ')}; outsider ${HOST}:${outsider.localAddress().port}`);

    const settled = await waitFor(
      () => members.every(({ node }) => node.getPeers().length === names.length - 1 && dropped(node) >= 1),
      SETTLE_DEADLINE_MS,
    );
    if (!settled) log('  (the network did not settle in time)');
    for (const { name, node } of members) {
      report.peers[name] = node.getPeers().map((peer) => nameOf.get(peer.id.hex) ?? peer.id.short).sort();
      report.outsiderHellosDropped[name] = dropped(node);
      if (node.getPeer(outsider.id)) report.outsiderAdmittedBy.push(name);
      log(`${name} admitted: ${report.peers[name]!.join(', ')}; outsider HELLOs dropped as not listed: ${report.outsiderHellosDropped[name]}`);
    }
    log(`outsider admitted by: ${report.outsiderAdmittedBy.length === 0 ? 'nobody' : report.outsiderAdmittedBy.join(', ')}`);

    try {
      await members[0]!.node.findPeer(outsider.id);
      report.findOutsider = 'found';
    } catch (error) {
      report.findOutsider = error instanceof NotFoundError ? `NotFoundError (${error.code})` : String(error);
    }
    log(`alice.findPeer(outsider): ${report.findOutsider}`);

    // Members broadcast to each other; the outsider sends to the members it knows.
    const droppedBefore = new Map<string, number>(members.map(({ name, node }) => [name, dropped(node)]));
    for (const { name, node } of members) node.broadcast(utf8Encode(`hello from ${name}`));
    for (const address of addresses.values()) outsider.sendDatagram(address, utf8Encode('let me in'));
    const refusedNow = (name: string, node: (typeof members)[number]['node']): number => dropped(node) - droppedBefore.get(name)!;
    await waitFor(() => members.every(({ name, node }) => report.accepted[name]!.length >= names.length - 1 && refusedNow(name, node) >= 1), SETTLE_DEADLINE_MS);
    for (const { name, node } of members) {
      report.accepted[name]!.sort();
      report.refused[name] = refusedNow(name, node);
      log(`${name} received: ${report.accepted[name]!.join(' | ')}; outsider datagrams dropped by fixed-peers: ${report.refused[name]}`);
    }

    // A member that leaves says EXIT: the others drop it at once.
    await members[2]!.node.stop();
    await waitFor(() => report.sawCarolLeave.length === 2, SETTLE_DEADLINE_MS);
    report.sawCarolLeave.sort();
    log(`carol left; seen by: ${report.sawCarolLeave.join(', ')}`);
    return report;
  } finally {
    await outsider.stop();
    for (const { node } of members) await node.stop();
  }
}
