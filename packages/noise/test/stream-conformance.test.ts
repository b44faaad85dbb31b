/**
 * noiseStream re-provides sendMessage / sendStream and the message / stream hooks, so it
 * owes its callers what the transport below owes them: core's conformance suite, run on
 * noiseStream over @deccom/tcp on loopback.
 */
import { describe, it } from 'vitest';
import { createNode } from '@deccom/core';
import { directoryLayer, loopbackMessageHarness, streamConformanceCases } from '@deccom/core/testing';
import { tcp } from '@deccom/tcp';
import { noiseStream, STREAM_FRAME_PLAINTEXT } from '../src/index.js';
import { SEALED_HEADER_LENGTH } from '../src/wire.js';

const TCP_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const WINDOW = 512 * 1024;

const harness = loopbackMessageHarness({
  make: (directory) =>
    createNode({
      layers: [directoryLayer(directory, '127.0.0.1'), tcp({ host: '127.0.0.1', maxMessageBytes: TCP_MAX_MESSAGE_BYTES, streamWindowBytes: WINDOW, closeTimeoutMs: 2000 }), noiseStream()],
    }),
  // A sealed message carries its kind and counter ahead of the ciphertext and a 16-byte tag after.
  maxMessageBytes: TCP_MAX_MESSAGE_BYTES - SEALED_HEADER_LENGTH - 16,
  // What tcp lets ahead of a reader, plus a frame being gathered and a sealed one waiting for credit.
  streamBufferBound: WINDOW + 2 * STREAM_FRAME_PLAINTEXT,
});

describe('message and stream transport conformance: noiseStream over tcp on 127.0.0.1', () => {
  for (const c of streamConformanceCases(harness)) it(c.name, c.run);
});
