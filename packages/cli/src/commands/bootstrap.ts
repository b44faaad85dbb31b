/** `deccom bootstrap`: a node others join through, running until SIGINT / SIGTERM. */
import { EXIT } from '../errors.js';
import { HELP } from '../help.js';
import { printers, type CliIo } from '../io.js';
import { at, discoveryNode, joinNetwork, untilAborted } from '../network.js';
import {
  BOOTSTRAP_OPTION,
  NETWORK_OPTIONS,
  bootstrapValue,
  hostValue,
  identityValue,
  noiseModeValue,
  parseCommand,
  portValue,
  timeoutValue,
} from '../options.js';

export const DEFAULT_BOOTSTRAP_PORT = 7000;

export async function bootstrapCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('bootstrap', args, { ...NETWORK_OPTIONS, ...BOOTSTRAP_OPTION });
  const { out, err } = printers(io);
  if (values['help'] === true) {
    io.stdout.write(HELP['bootstrap']!);
    return EXIT.OK;
  }
  const bootstrap = await bootstrapValue(values);
  const host = hostValue(values, bootstrap);
  const port = portValue(values, 'port', DEFAULT_BOOTSTRAP_PORT);
  const timeoutMs = timeoutValue(values, 10);
  const noiseMode = noiseModeValue(values);
  const { identity, note } = identityValue(values);
  if (note) err(note);

  const node = discoveryNode({ identity, host, port, bootstrap, noise: noiseMode });
  await node.start();
  try {
    node.on('peer-connect', (peer) => out(`peer joined  ${peer.id.short}… at ${at(peer.address)}`));
    node.on('peer-disconnect', (peer) => out(`peer left    ${peer.id.short}… at ${at(peer.address)}`));
    const address = node.localAddress();
    out('deccom bootstrap node');
    out(`id       ${node.id.hex}`);
    out(`address  ${at(address)}`);
    out(`stack    ${node.describe().layers.map((layer) => layer.name).join(' > ')} (noise: ${noiseMode})`);
    if (bootstrap.length > 0) {
      await joinNetwork(node, bootstrap, timeoutMs, io.signal);
      out(`joined through ${bootstrap.map(at).join(', ')}`);
    }
    const shown = address.host === '0.0.0.0' || address.host === '::' ? `<this machine's address>:${address.port}` : at(address);
    out(`join with: deccom chat --bootstrap ${shown}`);
    out('running; Ctrl-C (SIGINT) or SIGTERM stops it');
    await untilAborted(io.signal);
    out(`stopping (knew ${node.getPeers().length} peers)`);
  } finally {
    await node.stop();
  }
  out('stopped');
  return EXIT.OK;
}
