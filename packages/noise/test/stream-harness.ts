/** An in-process message/stream transport (what @deccom/tcp provides), with hooks to tamper with traffic. */
import { defineLayer, type Address, type ByteSource, type NodeId } from '@deccom/core';

interface Endpoint {
  message(data: Uint8Array, from: NodeId, address: Address): void;
  stream(source: AsyncIterable<Uint8Array>, from: NodeId, address: Address): void;
  close(from: NodeId): void;
}

export class Pipe {
  readonly endpoints = new Map<string, Endpoint>();
  /** Rewrites (or drops, with undefined) each message in flight. */
  onMessage: ((data: Uint8Array, from: NodeId, to: NodeId) => Uint8Array | undefined) | undefined;
  /** Rewrites the chunks of each stream in flight. */
  onStream: ((chunks: Uint8Array[]) => Uint8Array[]) | undefined;
  /** Overrides the id a sender claims (a forged introduction). */
  claim: ((from: NodeId) => NodeId) | undefined;
  private port = 1;

  layer() {
    const endpoints = this.endpoints;
    const address: Address = { host: '127.0.0.1', port: this.port++ };
    return defineLayer({
      type: 'pipe',
      provides: ['sendMessage', 'sendStream', 'localAddress', 'closeConnection'],
      offers: { message: 'exclusive', stream: 'exclusive', 'connection-close': 'event' },
      create: (ctx) => {
        const self = ctx.identity.id;
        return {
          provides: {
            localAddress: () => address,
            sendMessage: async (to: NodeId, data: Uint8Array) => {
              const copy = this.onMessage ? this.onMessage(data.slice(), self, to) : data.slice();
              if (!copy) return;
              const from = this.claim ? this.claim(self) : self;
              setImmediate(() => endpoints.get(to.hex)?.message(copy, from, address));
            },
            sendStream: async (to: NodeId, source: ByteSource) => {
              const chunks: Uint8Array[] = [];
              for await (const chunk of source as AsyncIterable<Uint8Array>) chunks.push(chunk.slice());
              const delivered = this.onStream ? this.onStream(chunks) : chunks;
              const from = this.claim ? this.claim(self) : self;
              setImmediate(() =>
                endpoints.get(to.hex)?.stream(
                  (async function* () {
                    for (const chunk of delivered) yield chunk;
                  })(),
                  from,
                  address,
                ),
              );
            },
            closeConnection: async (to: NodeId) => {
              setImmediate(() => endpoints.get(to.hex)?.close(self));
              ctx.emit('connection-close', to);
            },
          },
          start: () => {
            endpoints.set(self.hex, {
              message: (data, from, addr) => ctx.slots.message?.(data, from, addr),
              stream: (source, from, addr) => ctx.slots.stream?.(source, from, addr),
              close: (from) => ctx.emit('connection-close', from),
            });
          },
          stop: () => {
            endpoints.delete(self.hex);
          },
        };
      },
    });
  }
}
