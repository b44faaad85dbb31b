import { describe, it } from 'vitest';
import { createNode } from '@deccom/core';
import { directoryLayer, loopbackMessageHarness, streamConformanceCases } from '@deccom/core/testing';
import { tcp } from '../src/index.js';
import { HOSTS } from './helpers.js';

const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const WINDOW = 512 * 1024;

function harness(host: string) {
  return loopbackMessageHarness({
    make: (directory) => createNode({ layers: [directoryLayer(directory, host), tcp({ host, maxMessageBytes: MAX_MESSAGE_BYTES, streamWindowBytes: WINDOW, closeTimeoutMs: 2000 })] }),
    maxMessageBytes: MAX_MESSAGE_BYTES,
    streamBufferBound: WINDOW,
  });
}

for (const host of HOSTS) {
  describe(`message and stream transport conformance: tcp over ${host}`, () => {
    for (const c of streamConformanceCases(harness(host))) it(c.name, c.run);
  });
}
