/**
 * streamDelay re-provides sendMessage / sendStream (and in receive mode re-offers the
 * message and stream hooks), so it owes its callers what the transport below owes them:
 * core's message and stream conformance suite, over @deccom/tcp on loopback.
 */
import { describe, it } from 'vitest';
import { createNode, defineLayer, type Address, type NodeId, type PeerRecord } from '@deccom/core';
import { streamConformanceCases, type MessageTransportHarness } from '@deccom/core/testing';
import { tcp } from '@deccom/tcp';
import { streamDelay, type StreamDelayOptions } from '../src/index.js';

const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const WINDOW = 512 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(predicate: () => boolean, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(2);
  }
  return true;
}

type Options = StreamDelayOptions & { mode?: 'send' | 'receive' };

function makeNode(options: Options, records: Map<string, PeerRecord>, port: number) {
  const address: Address = { host: '127.0.0.1', port };
  const book = defineLayer({
    type: 'book',
    provides: ['localAddress', 'getPeer'],
    create: () => ({ provides: { localAddress: () => address, getPeer: (id: NodeId) => records.get(id.hex) } }),
  });
  const transport = tcp({ host: '127.0.0.1', maxMessageBytes: MAX_MESSAGE_BYTES, streamWindowBytes: WINDOW, closeTimeoutMs: 2000 });
  return options.mode === 'receive'
    ? createNode({ layers: [book, transport, streamDelay({ ...options, mode: 'receive' })] })
    : createNode({ layers: [book, transport, streamDelay({ ...options, mode: 'send' })] });
}

function harness(options: Options) {
  return async (): Promise<MessageTransportHarness> => {
    const records = new Map<string, PeerRecord>();
    const nodes: ReturnType<typeof makeNode>[] = [];
    let port = 43_000;
    const make = () => {
      const node = makeNode(options, records, port++);
      nodes.push(node);
      return node;
    };
    return {
      maxMessageBytes: MAX_MESSAGE_BYTES,
      // What tcp lets ahead of a reader, plus what the modelled link holds in flight.
      streamBufferBound: WINDOW + 256 * 1024,
      createNodes: async (count) => {
        const created = Array.from({ length: count }, make);
        for (const node of created) {
          await node.start();
          records.set(node.id.hex, node.localPeer());
        }
        return created;
      },
      createIdleNode: make,
      waitFor,
      settle: sleep,
      cleanup: async () => {
        await Promise.all(nodes.map((n) => n.stop()));
      },
    };
  };
}

for (const options of [{ latencyMs: 0 }, { latencyMs: 5 }, { latencyMs: 5, mode: 'receive' }] as const satisfies readonly Options[]) {
  describe(`message and stream transport conformance: streamDelay(${JSON.stringify(options)}) over tcp on 127.0.0.1`, () => {
    for (const c of streamConformanceCases(harness(options))) it(c.name, c.run);
  });
}
