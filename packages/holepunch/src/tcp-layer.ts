/**
 * `tcpHolepunch()`: the TCP side of hole punching, above `@deccom/tcp`. It turns a node
 * id into a connection: an ordinary dial first, then a TCP hole punch (candidates
 * exchanged over UDP by `holepunch()` below, simultaneous open from both sides), and
 * hands the punched socket to the TCP layer (`adoptTcpSocket`) as an ordinary connection
 * to that node id. Sockets punched at a peer's request arrive through the `tcp-punched`
 * hook and are adopted the same way. It also tells peers which TCP address their
 * connections come from, so each node learns its externally visible TCP address.
 */
import { AbortError, defineLayer, InvalidArgumentError, NodeId, type Address, type PeerRecord } from '@deccom/core';
import { PunchError } from './errors.js';
import type { ConnectOptions, ConnectOutcome } from './holepunch.js';

export interface TcpHolepunchOptions {
  /** Instance name. Default 'tcp-holepunch'. */
  name?: string;
  /** Try an ordinary TCP dial for this long before punching; 0 punches at once. Default 2,000 ms. */
  directTimeoutMs?: number;
  /** Report to each peer the TCP address its connection came from. Default true. */
  reportObservations?: boolean;
}

declare module '@deccom/core' {
  interface Capabilities {
    /**
     * Provided by `@deccom/tcp` (declared there identically; repeated here so this
     * package depends on `@deccom/core` only): adopts a socket connected some other way.
     */
    adoptTcpSocket(socket: import('node:net').Socket, options?: { expected?: NodeId }): Promise<NodeId>;
    /**
     * Opens a TCP connection to node `id`: dialed directly, or punched through NATs.
     * Resolves with a structured outcome (`direct`, `punched-tcp` or `failed`); never rejects.
     */
    connectTcp(id: NodeId, options?: ConnectOptions): Promise<ConnectOutcome>;
  }
}

export function tcpHolepunch(options: TcpHolepunchOptions = {}) {
  const directTimeoutMs = options.directTimeoutMs ?? 2_000;
  if (!(directTimeoutMs >= 0)) throw new InvalidArgumentError(`tcpHolepunch: directTimeoutMs must be >= 0, got ${directTimeoutMs}`);
  const reportObservations = options.reportObservations ?? true;
  return defineLayer({
    type: 'tcp-holepunch',
    name: options.name,
    needs: ['adoptTcpSocket', 'punchTcp', 'getPeer', 'openConnection', 'reportTcpObservation'],
    optional: ['findPeer'],
    takes: ['tcp-punched'],
    takesOptional: ['connection-open'],
    provides: ['connectTcp'],
    create: (ctx) => {
      const { below, counters, clock } = ctx;
      const reported = new Set<string>();
      const failedOutcome = (address: Address, startedAt: number, attempts: number, error: PunchError): ConnectOutcome => {
        counters.add('outcome.failed');
        return { mechanism: 'failed', address, via: undefined, attempts, elapsedMs: clock.now() - startedAt, error, reason: error.code };
      };
      return {
        stop: () => reported.clear(),
        takes: {
          'tcp-punched': (socket, from) => {
            counters.add('sockets-punched-in');
            below.adoptTcpSocket(socket).then(
              () => counters.add('sockets-adopted'),
              () => counters.drop('adopt-failed'),
            );
            void from;
          },
          'connection-open': (id: NodeId, address: Address) => {
            if (!reportObservations || reported.has(id.hex)) return;
            const peer = below.getPeer(id);
            if (!peer) return;
            if (reported.size >= 4096) reported.clear();
            reported.add(id.hex);
            below.reportTcpObservation(peer.address, address);
          },
        },
        provides: {
          connectTcp: async (id: NodeId, connectOptions: ConnectOptions = {}): Promise<ConnectOutcome> => {
            if (!(id instanceof NodeId)) throw new InvalidArgumentError('tcpHolepunch.connectTcp: id must be a NodeId');
            const startedAt = clock.now();
            const signal = connectOptions.signal;
            let peer: PeerRecord | undefined = below.getPeer(id);
            if (!peer && below.findPeer) peer = await below.findPeer(id, signal ? { signal } : {}).catch(() => undefined);
            const unknown = { host: '0.0.0.0', port: 0 };
            if (!peer) return failedOutcome(unknown, startedAt, 0, new PunchError('TCP_PUNCH_UNAVAILABLE', `tcpHolepunch: node ${id.short} is not known`));
            const tcpAddress = peer.tcpPort === undefined ? peer.address : { host: peer.address.host, port: peer.tcpPort };
            let attempts = 0;
            if (directTimeoutMs > 0 && peer.tcpPort !== undefined) {
              attempts++;
              try {
                await below.openConnection(id, { timeoutMs: directTimeoutMs, ...(signal ? { signal } : {}) });
                counters.add('outcome.direct');
                return { mechanism: 'direct', address: tcpAddress, via: tcpAddress, attempts, elapsedMs: clock.now() - startedAt };
              } catch (error) {
                if (error instanceof AbortError || signal?.aborted) return failedOutcome(tcpAddress, startedAt, attempts, new PunchError('PUNCH_ABORTED', 'tcpHolepunch: aborted', attempts, { cause: error }));
                counters.add('direct-failed');
              }
            }
            try {
              const punched = await below.punchTcp(peer.address, signal ? { signal } : {});
              attempts += punched.attempts;
              await below.adoptTcpSocket(punched.socket, { expected: id });
              counters.add('outcome.punched-tcp');
              return { mechanism: 'punched-tcp', address: tcpAddress, via: punched.remote, attempts, elapsedMs: clock.now() - startedAt };
            } catch (error) {
              const punchError =
                error instanceof PunchError ? error : new PunchError('TCP_PUNCH_FAILED', `tcpHolepunch: could not connect to ${id.short}: ${(error as Error)?.message ?? String(error)}`, attempts, { cause: error });
              return failedOutcome(tcpAddress, startedAt, Math.max(attempts, punchError.attempts), punchError);
            }
          },
        },
      };
    },
  });
}
