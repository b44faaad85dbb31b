// One DecCom node of the real-NAT scenario (see holepunch-nat.sh). Prints JSON lines:
// {"event":"ready",...} once started, and (role a) {"event":"result",...} at the end.
// Runs the built packages (dist/), resolved by path so no install step is needed here.
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string', default: '0' },
    bootstrap: { type: 'string' },
    scenario: { type: 'string', default: 'punch' },
  },
});
const root = new URL('../../packages/', import.meta.url);
const load = (pkg) => import(new URL(`${pkg}/dist/index.js`, root).href);
const [{ createNode, Identity, parseAddress, utf8Encode, utf8Decode }, { udp }, { kademlia }, { tcp }, { holepunch, tcpHolepunch }] = await Promise.all(
  ['core', 'udp', 'kademlia', 'tcp', 'holepunch'].map(load),
);

const print = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const identities = { introducer: Identity.fromString('netns-introducer'), a: Identity.fromString('netns-a'), b: Identity.fromString('netns-b') };
const role = values.role;
const bootstrap = values.bootstrap ? [parseAddress(values.bootstrap)] : [];
const node = createNode({
  identity: identities[role],
  layers: [
    udp({ host: values.host, port: Number(values.port) }),
    holepunch(),
    kademlia({ bootstrap, bootstrapRetryMs: 1_000 }),
    tcp({ host: values.host }),
    tcpHolepunch({ directTimeoutMs: 1_500 }),
  ],
});
await node.start();
let stopping = false;
const stop = async (code) => {
  if (stopping) return;
  stopping = true;
  await node.stop().catch(() => undefined);
  process.exit(code);
};
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
print({ event: 'ready', role, udp: node.localAddress(), tcpPort: node.localTcpPort() });

if (role !== 'a') {
  // Introducer and B: answer every datagram and message with an echo.
  node.handle('datagram', (data, from) => node.sendDatagram(from, utf8Encode(`echo:${utf8Decode(data)}`)));
  node.handle('message', (data, from) => void node.sendMessage(from, utf8Encode(`echo:${utf8Decode(data)}`)).catch(() => undefined));
} else {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const plain = (outcome) =>
    outcome && { mechanism: outcome.mechanism, attempts: outcome.attempts, elapsedMs: Math.round(outcome.elapsedMs), reason: outcome.reason, via: outcome.via };
  const result = { event: 'result', scenario: values.scenario, ok: false };
  const deadline = Date.now() + 60_000;
  try {
    let peer;
    while (!peer && Date.now() < deadline) {
      peer = await node.findPeer(identities.b.id, { timeoutMs: 5_000 }).catch(() => undefined);
      if (!peer) await sleep(500);
    }
    if (!peer) throw new Error('could not find node B through the introducer');
    result.bAddress = peer.address;
    const udpOutcome = await node.connect(peer.address);
    result.udp = plain(udpOutcome);
    const echoes = new Set();
    node.handle('datagram', (data) => echoes.add(utf8Decode(data)));
    for (let i = 0; i < 20 && !echoes.has('echo:udp-hello'); i++) {
      node.sendDatagram(peer.address, utf8Encode('udp-hello'));
      await sleep(250);
    }
    result.udpEcho = echoes.has('echo:udp-hello');
    result.natType = node.natType();
    if (values.scenario === 'punch') {
      const tcpOutcome = await node.connectTcp(identities.b.id);
      result.tcp = plain(tcpOutcome);
      if (tcpOutcome.error) result.tcpError = `${tcpOutcome.error.code}: ${tcpOutcome.error.message}${tcpOutcome.error.cause ? ` (${tcpOutcome.error.cause.message ?? tcpOutcome.error.cause})` : ''}`;
      const messages = new Set();
      node.handle('message', (data) => messages.add(utf8Decode(data)));
      if (tcpOutcome.mechanism !== 'failed') {
        await node.sendMessage(identities.b.id, utf8Encode('tcp-hello'), { timeoutMs: 10_000 }).catch((error) => (result.tcpSendError = String(error)));
        for (let i = 0; i < 40 && !messages.has('echo:tcp-hello'); i++) await sleep(250);
      }
      result.tcpEcho = messages.has('echo:tcp-hello');
      result.ok = result.udp.mechanism === 'punched-udp' && result.udpEcho && result.tcp.mechanism === 'punched-tcp' && result.tcpEcho;
    } else {
      result.ok = result.udp.mechanism === 'relayed' && result.udpEcho;
    }
  } catch (error) {
    result.error = String(error?.stack ?? error);
  }
  result.counters = node.counters()['holepunch'];
  print(result);
  await stop(result.ok ? 0 : 1);
}
