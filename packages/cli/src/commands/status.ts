/** `deccom status`: join a network, print what this node sees (peers, topic, counters), leave. */
import { EXIT, UsageError } from '../errors.js';
import { HELP } from '../help.js';
import { printers, type CliIo } from '../io.js';
import { at, discoveryNode, formatCounters, joinNetwork } from '../network.js';
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
import { topicKey } from './chat.js';

const SETTLE_MS = 1000;

export async function statusCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('status', args, { ...NETWORK_OPTIONS, ...BOOTSTRAP_OPTION, topic: { type: 'string' } });
  const { out, err } = printers(io);
  if (values['help'] === true) {
    io.stdout.write(HELP['status']!);
    return EXIT.OK;
  }
  const bootstrap = await bootstrapValue(values);
  if (bootstrap.length === 0) throw new UsageError('--bootstrap is required (the network to look at)');
  const topic = stringValue(values, 'topic');
  const host = hostValue(values, bootstrap);
  const port = portValue(values);
  const timeoutMs = timeoutValue(values, 10);
  const noiseMode = noiseModeValue(values);
  const { identity, note } = identityValue(values);
  if (note) err(note);
  const node = discoveryNode({ identity, host, port, bootstrap, noise: noiseMode });
  await node.start();
  try {
    const startedAt = performance.now();
    const { rtts } = await joinNetwork(node, bootstrap, timeoutMs, io.signal);
    const joinedMs = performance.now() - startedAt;
    // Let the self-lookup of the join bring in the peers the bootstrap node knows.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    out(`node     ${node.id.hex} at ${at(node.localAddress())} (noise ${noiseMode})`);
    for (const address of bootstrap) {
      const rtt = rtts.get(at(address));
      out(`bootstrap ${at(address)}: ${rtt === undefined ? 'no answer' : `ping ${rtt.toFixed(2)} ms`}`);
    }
    out(`joined in ${joinedMs.toFixed(0)} ms`);
    const peers = node.getPeers();
    out(`peers known: ${peers.length}`);
    for (const peer of peers) out(`  ${peer.id.hex} at ${at(peer.address)}${peer.tcpPort !== undefined ? ` (tcp ${peer.tcpPort})` : ''}`);
    if (topic !== undefined) {
      const providers = await node.lookupTopic(topicKey(topic), { timeoutMs });
      out(`topic '${topic}': ${providers.length} provider(s)`);
      for (const peer of providers) out(`  ${peer.id.hex} at ${at(peer.address)}`);
    }
    out('counters:');
    for (const line of formatCounters(node.counters())) out(line);
  } finally {
    await node.stop();
  }
  return EXIT.OK;
}
