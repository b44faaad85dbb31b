import { describe, it } from 'vitest';
import { streamConformanceCases, type MessageTransportHarness } from '@deccom/core/testing';
import { Book, HOSTS, makeNode, sleep, startIn, waitFor, type TestNode } from './helpers.js';

const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const WINDOW = 512 * 1024;

function harness(host: string) {
  return async (): Promise<MessageTransportHarness> => {
    const book = new Book();
    const nodes: TestNode[] = [];
    const options = { maxMessageBytes: MAX_MESSAGE_BYTES, streamWindowBytes: WINDOW, closeTimeoutMs: 2000 };
    return {
      maxMessageBytes: MAX_MESSAGE_BYTES,
      streamBufferBound: WINDOW,
      createNodes: async (count) => {
        const created = Array.from({ length: count }, () => makeNode(book, host, options));
        nodes.push(...created);
        for (const node of created) await startIn(book, node);
        return created;
      },
      createIdleNode: () => {
        const node = makeNode(book, host, options);
        nodes.push(node);
        return node;
      },
      waitFor,
      settle: sleep,
      cleanup: async () => {
        await Promise.all(nodes.map((n) => n.stop()));
      },
    };
  };
}

for (const host of HOSTS) {
  describe(`message and stream transport conformance: tcp over ${host}`, () => {
    for (const c of streamConformanceCases(harness(host))) it(c.name, c.run);
  });
}
