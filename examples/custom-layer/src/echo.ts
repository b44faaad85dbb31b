/**
 * A complete DecCom layer in one file: `echo(address, text)` sends text to a peer, whose
 * echo layer sends it back; the promise resolves with the answer and the round trip.
 *
 * It shows every part a layer has:
 * 1. its capabilities and hooks added to the shared contracts (module augmentation);
 * 2. a wire format with a registered protocol id from the user range (>= 0x80) and a
 *    version, framed so application data passing through can never be taken for an
 *    echo message;
 * 3. the declaration: what it needs below, provides above, which hook it takes and
 *    offers; a stack without a transport under it does not compile;
 * 4. counters, a logger, timers from the context clock, and pending requests that end
 *    on stop.
 */
import {
  ByteReader,
  ByteWriter,
  decodeFrame,
  defineLayer,
  dropReason,
  encodeControl,
  encodeData,
  FIRST_USER_PROTOCOL,
  PendingRequests,
  protocolId,
  StateError,
  utf8Encode,
  addressKey,
  InvalidArgumentError,
  type Address,
} from '@deccom/core';

// 1. The contract: `echo` becomes a capability any layer above (or the app) can call.
declare module '@deccom/core' {
  interface Capabilities {
    /** Sends `text` to `to` and resolves with what came back. */
    echo(to: Address, text: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<{ text: string; rttMs: number }>;
  }
}

// 2. The wire format: one request and one answer, both `u32 request id, utf8 text`.
export const ECHO_PROTOCOL = protocolId('example/echo', FIRST_USER_PROTOCOL, 1);
const ECHO_REQUEST = 1;
const ECHO_ANSWER = 2;

function encodeEcho(type: number, requestId: number, text: string): Uint8Array {
  const body = utf8Encode(text);
  return encodeControl(ECHO_PROTOCOL, type, new ByteWriter(4 + body.length).u32(requestId).raw(body).finish());
}

function decodeEcho(body: Uint8Array): { requestId: number; text: string } {
  const reader = new ByteReader(body);
  const requestId = reader.u32('echo request id');
  return { requestId, text: reader.utf8(reader.remaining, 'echo text') };
}

export interface EchoOptions {
  /** How long `echo()` waits for the answer. Default 1000 ms. */
  timeoutMs?: number;
  /** Instance name, if a stack has two echo layers. Default `echo`. */
  name?: string;
}

// 3. The declaration.
export function echo(options: EchoOptions = {}) {
  const timeoutMs = options.timeoutMs ?? 1000;
  return defineLayer({
    type: 'echo',
    name: options.name,
    protocol: ECHO_PROTOCOL,
    needs: ['sendDatagram', 'maxDatagramSize'],
    takes: ['datagram'],
    provides: ['echo', 'sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive' },
    create: (ctx) => {
      // 4. State lives in the closure; everything that can wait is released on stop.
      const pending = new PendingRequests<string, { text: string; rttMs: number }>(ctx.clock, 1024);
      let nextId = ctx.random.int(2 ** 32);
      let running = false;

      return {
        start: () => {
          running = true;
        },
        stop: () => {
          running = false;
          pending.rejectAll(new StateError('STOPPED', 'echo: the node stopped'));
        },
        provides: {
          echo: async (to, text, callOptions = {}) => {
            if (!running) throw new StateError('NOT_STARTED', 'echo: start the node first');
            if (utf8Encode(text).length + 8 > ctx.below.maxDatagramSize()) throw new InvalidArgumentError('echo: text too long for one datagram');
            const requestId = (nextId = (nextId + 1) >>> 0);
            const sentAt = ctx.clock.now();
            const answer = pending.add(`${addressKey(to)}/${requestId}`, callOptions.timeoutMs ?? timeoutMs, 'echo', callOptions.signal);
            ctx.below.sendDatagram(to, encodeEcho(ECHO_REQUEST, requestId, text));
            ctx.counters.add('requests-out');
            const result = await answer;
            return { text: result.text, rttMs: ctx.clock.now() - sentAt };
          },
          // Application datagrams pass through, framed as DATA.
          sendDatagram: (to, data) => ctx.below.sendDatagram(to, encodeData(data)),
          maxDatagramSize: () => ctx.below.maxDatagramSize() - 1,
        },
        takes: {
          datagram: (bytes, from) => {
            let frame;
            try {
              frame = decodeFrame(bytes, ECHO_PROTOCOL);
              if (frame.kind === 'data') {
                const deliver = ctx.slots.datagram;
                if (deliver) deliver(frame.payload, from);
                else ctx.counters.drop('no-receiver');
                return;
              }
              const message = decodeEcho(frame.body);
              if (frame.type === ECHO_REQUEST) {
                ctx.counters.add('requests-in');
                ctx.below.sendDatagram(from, encodeEcho(ECHO_ANSWER, message.requestId, message.text));
              } else if (frame.type === ECHO_ANSWER) {
                if (!pending.resolve(`${addressKey(from)}/${message.requestId}`, { text: message.text, rttMs: 0 })) ctx.counters.drop('unsolicited');
              } else {
                ctx.counters.drop('unknown-type');
              }
            } catch (error) {
              ctx.counters.drop(dropReason(error));
              ctx.logger.debug('dropped a malformed echo datagram', { from, error });
            }
          },
        },
      };
    },
  });
}
