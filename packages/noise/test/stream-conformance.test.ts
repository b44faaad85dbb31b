/**
 * noiseStream re-provides sendMessage / sendStream and the message / stream hooks, so it
 * owes its callers what the transport below owes them: core's conformance suite, run on
 * noiseStream over @deccom/tcp on loopback.
 */
import { describe, it } from 'vitest';
import { createNode, defineLayer, type Address, type NodeId, type PeerRecord } from '@deccom/core';
import { streamConformanceCases, type MessageTransportHarness } from '@deccom/core/testing';
import { tcp } from '@deccom/tcp';
import { noiseStream, STREAM_FRAME_PLAINTEXT } from '../src/index.js';
import { SEALED_HEADER_LENGTH } from '../src/wire.js';
import { sleep, waitFor } from './helpers.js';

const TCP_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** A sealed message carries its kind and counter ahead of the ciphertext and a 16-byte tag after. */
const MAX_MESSAGE_BYTES = TCP_MAX_MESSAGE_BYTES - SEALED_HEADER_LENGTH - 16;
const WINDOW = 512 * 1024;

/** A node over tcp on `host` with noiseStream, found by id in `records`. */
function makeNode(host: string, records: Map<string, PeerRecord>, port: number) {
  const address: Address = { host, port };
  const book = defineLayer({
    type: 'book',
    provides: ['localAddress', 'getPeer'],
    create: () => ({ provides: { localAddress: () => address, getPeer: (id: NodeId) => records.get(id.hex) } }),
  });
  return createNode({
    layers: [book, tcp({ host, maxMessageBytes: TCP_MAX_MESSAGE_BYTES, streamWindowBytes: WINDOW, closeTimeoutMs: 2000 }), noiseStream()],
  });
}

function harness(host: '127.0.0.1' | '::1') {
  return async (): Promise<MessageTransportHarness> => {
    const records = new Map<string, PeerRecord>();
    const nodes: ReturnType<typeof makeNode>[] = [];
    let port = 42_000;
    const make = () => {
      const node = makeNode(host, records, port++);
      nodes.push(node);
      return node;
    };
    return {
      maxMessageBytes: MAX_MESSAGE_BYTES,
      // What tcp lets ahead of a reader, plus a frame being gathered and a sealed one
      // waiting for credit.
      streamBufferBound: WINDOW + 2 * STREAM_FRAME_PLAINTEXT,
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

describe('message and stream transport conformance: noiseStream over tcp on 127.0.0.1', () => {
  for (const c of streamConformanceCases(harness('127.0.0.1'))) it(c.name, c.run);
});
