/**
 * `deccom chat`: a chat node. Lines from stdin go to everyone who announced the topic,
 * or to one peer (`/msg <id-prefix> text`); incoming messages print on stdout. Every
 * message is a datagram in a Noise session with the peer (encrypted, authenticated:
 * the sender shown is the identity the handshake proved, not a claim in the message).
 */
import { createInterface } from 'node:readline';
import { userInfo } from 'node:os';
import { NodeId, sha256, utf8Encode, type Address, type PeerRecord } from '@deccom/core';
import { EXIT, UsageError } from '../errors.js';
import { HELP } from '../help.js';
import { printers, type CliIo } from '../io.js';
import { at, discoveryNode, formatCounters, joinNetwork, matchPeers } from '../network.js';
import {
  BOOTSTRAP_OPTION,
  NETWORK_OPTIONS,
  bootstrapValue,
  hostValue,
  identityValue,
  noiseModeValue,
  parseCommand,
  portValue,
  stringValue,
  timeoutValue,
} from '../options.js';

const MAX_NAME_LENGTH = 32;
const MAX_TOPIC_LENGTH = 64;
const TOPIC_CONNECT_TIMEOUT_MS = 3000;

/** The chat message on the wire: UTF-8 JSON in one encrypted datagram. */
interface ChatMessage {
  readonly v: 1;
  readonly name: string;
  readonly text: string;
  /** Present for topic messages. */
  readonly topic?: string;
}

/** The 32-byte Kademlia topic key of a chat topic. */
export function topicKey(topic: string): Uint8Array {
  return sha256(utf8Encode(`deccom-chat/${topic}`));
}

/** Control characters out, so a peer cannot move the cursor or clear our terminal. */
const clean = (text: string, max: number) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').slice(0, max);

export function encodeChat(message: ChatMessage): Uint8Array {
  return utf8Encode(JSON.stringify(message));
}

/** Decodes a chat datagram; undefined for anything else (dropped, counted by the caller). */
export function decodeChat(data: Uint8Array): ChatMessage | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { v, name, text, topic } = parsed as Record<string, unknown>;
  if (v !== 1 || typeof name !== 'string' || typeof text !== 'string') return undefined;
  if (topic !== undefined && typeof topic !== 'string') return undefined;
  return { v: 1, name: clean(name, MAX_NAME_LENGTH), text: clean(text, 4096), ...(topic !== undefined ? { topic: clean(topic, MAX_TOPIC_LENGTH) } : {}) };
}

function defaultName(): string {
  try {
    return userInfo().username || 'anonymous';
  } catch {
    return 'anonymous';
  }
}

export async function chatCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('chat', args, {
    ...NETWORK_OPTIONS,
    ...BOOTSTRAP_OPTION,
    name: { type: 'string' },
    topic: { type: 'string' },
    stay: { type: 'boolean' },
  });
  const { out, err } = printers(io);
  if (values['help'] === true) {
    io.stdout.write(HELP['chat']!);
    return EXIT.OK;
  }
  const bootstrap = await bootstrapValue(values);
  if (bootstrap.length === 0) throw new UsageError('--bootstrap is required (the address a `deccom bootstrap` node printed)');
  const name = clean(stringValue(values, 'name') ?? defaultName(), MAX_NAME_LENGTH);
  const topic = stringValue(values, 'topic') ?? 'lobby';
  if (topic.length > MAX_TOPIC_LENGTH || /[\u0000-\u001f]/.test(topic)) throw new UsageError(`--topic must be at most ${MAX_TOPIC_LENGTH} printable characters`);
  const host = hostValue(values, bootstrap);
  const port = portValue(values);
  const timeoutMs = timeoutValue(values, 10);
  const noiseMode = noiseModeValue(values);
  const { identity, note } = identityValue(values);
  if (note) err(note);

  const node = discoveryNode({ identity, host, port, bootstrap, noise: noiseMode });
  const key = topicKey(topic);
  let dropped = 0;
  let received = 0;
  let sent = 0;
  const topicPeers = new Map<string, PeerRecord>();

  node.handle('datagram', (data, from: Address) => {
    const sender = node.secureSession(from)?.remoteId;
    const message = decodeChat(data);
    if (message === undefined || sender === undefined) {
      dropped += 1;
      return;
    }
    received += 1;
    const where = message.topic !== undefined ? `[${message.topic}]` : '[direct]';
    out(`${where} ${message.name} (${sender.short}): ${message.text}`);
  });

  await node.start();
  const rl = createInterface({ input: io.stdin, terminal: false });
  // Iterate from now on: lines piped in while the node joins are buffered, not lost
  // (readline emits them at once, and an iterator created later would miss them).
  const lines = rl[Symbol.asyncIterator]();
  try {
    out(`id       ${node.id.hex}`);
    out(`address  ${at(node.localAddress())}`);
    await joinNetwork(node, bootstrap, timeoutMs, io.signal);
    await node.announce(key);
    out(`joined through ${bootstrap.map(at).join(', ')} as '${name}'; topic '${topic}' announced; type a line to send it, /help for commands`);

    const refreshTopic = async (): Promise<PeerRecord[]> => {
      const providers = await node.lookupTopic(key, { timeoutMs });
      topicPeers.clear();
      for (const peer of providers) if (!peer.id.equals(node.id)) topicPeers.set(peer.id.hex, peer);
      return [...topicPeers.values()];
    };

    // Announcements outlive a peer that left (until their TTL), so a silent topic peer
    // should not hold a message up for long.
    const connectTimeoutMs = Math.min(timeoutMs, TOPIC_CONNECT_TIMEOUT_MS);

    /** Opens (or reuses) the Noise session first, so the datagram leaves now, sealed, to the identity we meant. */
    const deliver = async (peer: PeerRecord, message: ChatMessage): Promise<void> => {
      const bytes = encodeChat(message);
      if (bytes.byteLength > node.maxDatagramSize()) throw new UsageError(`message too long: ${bytes.byteLength} bytes encoded, at most ${node.maxDatagramSize()}`);
      await node.secureConnect(peer.address, { expectedId: peer.id, timeoutMs: connectTimeoutMs });
      node.sendDatagram(peer.address, bytes);
      sent += 1;
    };

    const sendToAll = async (peers: PeerRecord[], message: ChatMessage): Promise<number> => {
      const results = await Promise.allSettled(peers.map((peer) => deliver(peer, message)));
      results.forEach((result, i) => {
        if (result.status === 'rejected') err(`could not reach ${peers[i]!.id.short}… at ${at(peers[i]!.address)}: ${(result.reason as Error).message}`);
      });
      return results.filter((result) => result.status === 'fulfilled').length;
    };

    const resolvePeer = async (prefix: string): Promise<PeerRecord | undefined> => {
      if (!/^[0-9a-fA-F]{1,64}$/.test(prefix)) {
        err(`'${prefix}' is not an id prefix (hex digits)`);
        return undefined;
      }
      let matches = matchPeers([...node.getPeers(), ...topicPeers.values()], prefix).filter((peer) => !peer.id.equals(node.id));
      if (matches.length === 0) matches = matchPeers(await refreshTopic(), prefix);
      if (matches.length === 0 && prefix.length === 64) {
        try {
          matches = [await node.findPeer(NodeId.fromHex(prefix), { timeoutMs })];
        } catch {
          matches = [];
        }
      }
      if (matches.length === 1) return matches[0];
      if (matches.length === 0) err(`no known peer has an id starting with ${prefix} (/peers lists them)`);
      else err(`${matches.length} peers have ids starting with ${prefix}: ${matches.map((peer) => peer.id.short).join(', ')}; give more digits`);
      return undefined;
    };

    const handleLine = async (line: string): Promise<boolean> => {
      const trimmed = line.trim();
      if (trimmed.length === 0) return true;
      if (!trimmed.startsWith('/')) {
        const peers = await refreshTopic();
        if (peers.length === 0) {
          err(`nobody else is in topic '${topic}' yet; message not sent`);
          return true;
        }
        const count = await sendToAll(peers, { v: 1, name, text: trimmed, topic });
        out(`you -> [${topic}] (${count} of ${peers.length} peers): ${trimmed}`);
        return true;
      }
      const [command = ''] = trimmed.split(/\s+/);
      switch (command) {
        case '/msg': {
          const parts = /^\/msg\s+(\S+)\s+(.+)$/.exec(trimmed);
          if (parts === null) {
            err('usage: /msg <id-prefix> <text>');
            return true;
          }
          const [, prefix = '', text = ''] = parts;
          const peer = await resolvePeer(prefix);
          if (peer === undefined) return true;
          if ((await sendToAll([peer], { v: 1, name, text })) === 1) out(`you -> ${peer.id.short}…: ${text}`);
          return true;
        }
        case '/peers': {
          const inTopic = await refreshTopic();
          const known = node.getPeers();
          out(`known peers (${known.length}):`);
          for (const peer of known) out(`  ${peer.id.hex} at ${at(peer.address)}${topicPeers.has(peer.id.hex) ? ` [${topic}]` : ''}`);
          out(`in topic '${topic}' (${inTopic.length}): ${inTopic.map((peer) => peer.id.short).join(', ') || 'nobody else'}`);
          return true;
        }
        case '/status': {
          out(`id ${node.id.hex} at ${at(node.localAddress())}, name '${name}', topic '${topic}', noise ${noiseMode}`);
          out(`peers known ${node.getPeers().length}; chat messages sent ${sent}, received ${received}, dropped ${dropped}`);
          out('counters:');
          for (const counterLine of formatCounters(node.counters())) out(counterLine);
          return true;
        }
        case '/help':
          io.stdout.write(HELP['chat']!);
          return true;
        case '/quit':
          return false;
        default:
          err(`unknown command ${command}; /help lists them`);
          return true;
      }
    };

    // Lines are handled one at a time, in order; the loop ends on /quit, end of input
    // (unless --stay) or SIGINT / SIGTERM.
    const stop = new Promise<'signal'>((resolve) => {
      if (io.signal.aborted) resolve('signal');
      else io.signal.addEventListener('abort', () => resolve('signal'), { once: true });
    });
    for (;;) {
      const next = await Promise.race([lines.next(), stop]);
      if (next === 'signal') break;
      if (next.done) {
        if (values['stay'] === true) await stop;
        break;
      }
      try {
        if (!(await handleLine(next.value))) break;
      } catch (error) {
        err(`error: ${(error as Error).message}`);
      }
    }
  } finally {
    rl.close();
    await node.stop();
  }
  out('left the chat');
  return EXIT.OK;
}
