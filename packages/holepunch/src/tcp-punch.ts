/**
 * TCP simultaneous open (RFC 793 section 3.4, figure 8): both peers connect to each
 * other at the same time from a port each announced beforehand. Each SYN leaving a NAT
 * opens a mapping that lets the other side's SYN in; when the SYNs cross, both kernels
 * move from SYN-SENT to SYN-RECEIVED to ESTABLISHED and both `connect()` calls succeed,
 * with one connection between the two ports and no listener anywhere.
 *
 * Node 20 does this with `net.connect({ localPort })`: libuv binds the socket with
 * SO_REUSEADDR, so attempts towards several candidates can share the local port, and a
 * failed attempt (refused, or no answer in time) frees the port at once (a connection
 * that never got established leaves no TIME-WAIT), so the next round can use it again.
 */
import { connect, createServer, type Socket } from 'node:net';
import { AbortError, ipFamily, type Address, type ScopedClock } from '@deccom/core';
import { PunchError } from './errors.js';

export interface SimultaneousOpenOptions {
  /** Local IP to bind ('0.0.0.0' or '::' for any). */
  localHost: string;
  /** The local port announced to the peer. */
  localPort: number;
  /** The peer's candidate addresses. */
  remotes: readonly Address[];
  clock: ScopedClock;
  /** How long one connect attempt may stay in SYN-SENT before it is abandoned. */
  attemptTimeoutMs: number;
  /** Pause between rounds (the first round starts at once). */
  pauseMs: number;
  /** Give up after this long. */
  deadlineMs: number;
  signal?: AbortSignal | undefined;
  /** Called for every failed attempt (for counters). */
  onAttemptFailed?: ((error: Error) => void) | undefined;
}

export interface SimultaneousOpenResult {
  readonly socket: Socket;
  readonly remote: Address;
  /** Connect attempts made, over every round and candidate. */
  readonly attempts: number;
}

/**
 * Connects from `localHost:localPort` to the first of `remotes` that answers, round after
 * round, until one connects or the deadline passes (rejects with `TCP_PUNCH_FAILED`).
 */
export function simultaneousOpen(options: SimultaneousOpenOptions): Promise<SimultaneousOpenResult> {
  const { clock, localHost, localPort, signal } = options;
  const family = ipFamily(localHost);
  const remotes = options.remotes.filter((remote) => ipFamily(remote.host) === family);
  return new Promise<SimultaneousOpenResult>((resolve, reject) => {
    if (remotes.length === 0) {
      reject(new PunchError('TCP_PUNCH_FAILED', `tcp punch: no candidate of the local address family (IPv${family})`));
      return;
    }
    const live = new Set<Socket>();
    let attempts = 0;
    let done = false;
    let lastError: Error | undefined;
    const startedAt = clock.now();
    const finish = (result: SimultaneousOpenResult | undefined, error?: Error): void => {
      if (done) return;
      done = true;
      clock.clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
      for (const socket of live) if (socket !== result?.socket) socket.destroy();
      live.clear();
      if (result) resolve(result);
      else reject(error);
    };
    const onAbort = (): void => finish(undefined, new AbortError('tcp punch: aborted', { cause: signal?.reason }));
    const deadline = clock.setTimeout(
      () => finish(undefined, new PunchError('TCP_PUNCH_FAILED', `tcp punch: no connection within ${options.deadlineMs} ms (${attempts} attempts)`, attempts, { cause: lastError })),
      options.deadlineMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) {
      onAbort();
      return;
    }

    const tryOne = (remote: Address): Promise<void> =>
      new Promise<void>((settle) => {
        attempts++;
        const socket = connect({ host: remote.host, port: remote.port, localAddress: localHost, localPort, family });
        live.add(socket);
        let settled = false;
        const end = (error: Error | undefined): void => {
          if (settled) return;
          settled = true;
          clock.clearTimeout(timer);
          socket.removeListener('connect', onConnect);
          if (error) {
            lastError = error;
            options.onAttemptFailed?.(error);
            live.delete(socket);
            socket.destroy();
          }
          settle();
        };
        const onConnect = (): void => {
          end(undefined);
          socket.removeListener('error', onError);
          if (done) {
            socket.destroy();
            return;
          }
          finish({ socket, remote, attempts });
        };
        const onError = (error: Error): void => end(error);
        const timer = clock.setTimeout(() => end(new Error(`connect to ${remote.host}:${remote.port} timed out`)), options.attemptTimeoutMs);
        socket.once('connect', onConnect);
        socket.on('error', onError);
      });

    const round = async (): Promise<void> => {
      while (!done) {
        await Promise.all(remotes.map((remote) => tryOne(remote)));
        if (done) return;
        if (clock.now() - startedAt + options.pauseMs >= options.deadlineMs) return;
        await clock.sleep(options.pauseMs).catch(() => undefined);
      }
    };
    round().catch((error: unknown) => finish(undefined, error instanceof Error ? error : new Error(String(error))));
  });
}

/** A free local TCP port on `host`, found by listening on port 0 and closing at once. */
export function freeTcpPort(host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('tcp punch: could not find a free port'))));
    });
  });
}
