/**
 * `@deccom/keepalive`: liveness of tracked peers. A tracked peer not heard from for
 * `intervalMs` is pinged (any datagram from its address counts as a sign of life, through
 * the transport's `traffic` event, so the layer sits anywhere above the transport); a
 * failed ping is retried at the next check, a quarter of `intervalMs` later; after
 * `maxFailures` failed pings in a row the peer is reported through the
 * `peer-unresponsive` event and no longer tracked. Discovery layers track their peers
 * through it and drop the ones it reports.
 *
 * @example
 * ```ts
 * const node = createNode({ layers: [udp(), keepalive({ intervalMs: 5000 }), kademlia({ bootstrap })] });
 * node.on('peer-disconnect', (peer) => console.log('gone:', peer.id.short));
 * ```
 *
 * @packageDocumentation
 */
import { addressKey, defineLayer, InvalidArgumentError, NodeId, type Address } from '@deccom/core';

export interface KeepaliveOptions {
  /** How often tracked peers are checked. Default 10,000 ms. */
  intervalMs?: number;
  /** Ping timeout. Default 2,000 ms (and at most `intervalMs`). */
  pingTimeoutMs?: number;
  /** Failed pings in a row before a peer is reported. Default 3. */
  maxFailures?: number;
  /** Most peers tracked at once (bounded memory). Default 10,000. */
  maxTracked?: number;
  /** Most pings in flight at once (so a big table does not burst). Default 256. */
  maxConcurrentPings?: number;
  /** Instance name. Default `keepalive`. */
  name?: string;
}

interface Tracked {
  id: NodeId;
  address: Address;
  key: string;
  lastHeard: number;
  failures: number;
  pinging: boolean;
}

export function keepalive(options: KeepaliveOptions = {}) {
  const intervalMs = options.intervalMs ?? 10_000;
  if (!(intervalMs > 0)) throw new InvalidArgumentError(`keepalive: intervalMs must be > 0, got ${intervalMs}`);
  const pingTimeoutMs = Math.min(options.pingTimeoutMs ?? 2_000, intervalMs);
  const maxFailures = options.maxFailures ?? 3;
  if (!Number.isInteger(maxFailures) || maxFailures < 1) throw new InvalidArgumentError(`keepalive: maxFailures must be a positive integer, got ${maxFailures}`);
  const maxTracked = options.maxTracked ?? 10_000;
  if (!Number.isInteger(maxTracked) || maxTracked < 1) throw new InvalidArgumentError(`keepalive: maxTracked must be a positive integer, got ${maxTracked}`);
  const maxConcurrentPings = options.maxConcurrentPings ?? 256;
  if (!Number.isInteger(maxConcurrentPings) || maxConcurrentPings < 1) {
    throw new InvalidArgumentError(`keepalive: maxConcurrentPings must be a positive integer, got ${maxConcurrentPings}`);
  }
  if (!(pingTimeoutMs > 0)) throw new InvalidArgumentError(`keepalive: pingTimeoutMs must be > 0, got ${options.pingTimeoutMs}`);
  return defineLayer({
    type: 'keepalive',
    name: options.name,
    needs: ['sendPing'],
    takesOptional: ['traffic'],
    provides: ['trackPeer', 'untrackPeer'],
    offers: { 'peer-unresponsive': 'event' },
    create: (ctx) => {
      const byId = new Map<string, Tracked>();
      const byAddress = new Map<string, Tracked>();
      let inFlight = 0;
      let stopTicking: (() => void) | undefined;
      let running = false;
      let generation = 0;

      const untrack = (entry: Tracked): void => {
        byId.delete(entry.id.hex);
        if (byAddress.get(entry.key) === entry) byAddress.delete(entry.key);
        ctx.counters.set('tracked', byId.size);
      };

      const check = (): void => {
        const now = ctx.clock.now();
        for (const entry of byId.values()) {
          if (inFlight >= maxConcurrentPings) break;
          if (entry.pinging || now - entry.lastHeard < intervalMs) continue;
          entry.pinging = true;
          inFlight++;
          ctx.counters.add('pings');
          // Answers from before a stop (or restart) belong to an older run: ignored.
          const run = generation;
          ctx.below.sendPing(entry.address, { timeoutMs: pingTimeoutMs, signal: ctx.signal }).then(
            () => {
              if (run !== generation) return;
              inFlight--;
              entry.pinging = false;
              entry.failures = 0;
              entry.lastHeard = ctx.clock.now();
            },
            () => {
              if (run !== generation) return;
              inFlight--;
              entry.pinging = false;
              if (!running || byId.get(entry.id.hex) !== entry) return;
              entry.failures++;
              ctx.counters.add('ping-failures');
              if (entry.failures >= maxFailures) {
                untrack(entry);
                ctx.counters.add('unresponsive');
                ctx.emit('peer-unresponsive', entry.id, entry.address);
              }
            },
          );
        }
      };

      return {
        start: () => {
          running = true;
          generation++;
          // Tracking survives a restart; the silence while stopped does not count against anyone.
          const now = ctx.clock.now();
          for (const entry of byId.values()) {
            entry.lastHeard = now;
            entry.failures = 0;
            entry.pinging = false;
          }
          inFlight = 0;
          // Check at a quarter of the interval so a silent peer is pinged within about
          // one interval of its last sign of life.
          stopTicking = ctx.clock.setInterval(check, Math.max(1, intervalMs / 4));
        },
        stop: () => {
          running = false;
          generation++;
          stopTicking?.();
        },
        status: () => ({ tracked: byId.size, pingsInFlight: inFlight }),
        provides: {
          trackPeer: (id: NodeId, address: Address) => {
            if (!(id instanceof NodeId)) throw new InvalidArgumentError('keepalive.trackPeer: id must be a NodeId');
            if (address === null || typeof address !== 'object' || typeof address.host !== 'string' || !Number.isInteger(address.port)) {
              throw new InvalidArgumentError('keepalive.trackPeer: address must be { host, port }');
            }
            const existing = byId.get(id.hex);
            if (existing) {
              if (byAddress.get(existing.key) === existing) byAddress.delete(existing.key);
              existing.address = address;
              existing.key = addressKey(address);
              byAddress.set(existing.key, existing);
              return;
            }
            if (byId.size >= maxTracked) {
              ctx.counters.drop('tracked-full');
              return;
            }
            const entry: Tracked = { id, address, key: addressKey(address), lastHeard: ctx.clock.now(), failures: 0, pinging: false };
            byId.set(id.hex, entry);
            byAddress.set(entry.key, entry);
            ctx.counters.set('tracked', byId.size);
          },
          untrackPeer: (id: NodeId) => {
            const entry = byId.get(id.hex);
            if (entry) untrack(entry);
          },
        },
        takes: {
          traffic: (from: Address) => {
            if (byAddress.size === 0) return;
            const entry = byAddress.get(addressKey(from));
            if (entry) {
              entry.lastHeard = ctx.clock.now();
              entry.failures = 0;
            }
          },
        },
      };
    },
  });
}
