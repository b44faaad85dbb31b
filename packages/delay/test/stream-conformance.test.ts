/**
 * streamDelay re-provides sendMessage / sendStream (and in receive mode re-offers the
 * message and stream hooks), so it owes its callers what the transport below owes them:
 * core's message and stream conformance suite, over @deccom/tcp on loopback.
 */
import { describe, it } from 'vitest';
import { createNode } from '@deccom/core';
import { directoryLayer, loopbackMessageHarness, streamConformanceCases } from '@deccom/core/testing';
import { tcp } from '@deccom/tcp';
import { streamDelay, type StreamDelayOptions } from '../src/index.js';

const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const WINDOW = 512 * 1024;

type Options = StreamDelayOptions & { mode?: 'send' | 'receive' };

function harness(options: Options) {
  return loopbackMessageHarness({
    make: (directory) => {
      const layers = [directoryLayer(directory, '127.0.0.1'), tcp({ host: '127.0.0.1', maxMessageBytes: MAX_MESSAGE_BYTES, streamWindowBytes: WINDOW, closeTimeoutMs: 2000 })] as const;
      return options.mode === 'receive'
        ? createNode({ layers: [...layers, streamDelay({ ...options, mode: 'receive' })] })
        : createNode({ layers: [...layers, streamDelay({ ...options, mode: 'send' })] });
    },
    maxMessageBytes: MAX_MESSAGE_BYTES,
    // What tcp lets ahead of a reader, plus what the modelled link holds in flight.
    streamBufferBound: WINDOW + 256 * 1024,
  });
}

for (const options of [{ latencyMs: 0 }, { latencyMs: 5 }, { latencyMs: 5, mode: 'receive' }] as const satisfies readonly Options[]) {
  describe(`message and stream transport conformance: streamDelay(${JSON.stringify(options)}) over tcp on 127.0.0.1`, () => {
    for (const c of streamConformanceCases(harness(options))) it(c.name, c.run);
  });
}
