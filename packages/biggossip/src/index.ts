/**
 * `@deccom/biggossip`: discovery for networks where every node should know (nearly)
 * every other. Every interval a node PULLs from a few random peers, whose answers carry
 * up to `pullSize` random peer records split over datagrams; a newly learned peer gets an
 * introduction, so knowledge spreads both ways. A few liveness pings per interval drop
 * dead peers; LEAVE and SUSPECT notices are flooded and checked by every node. Finding a
 * node floods a FIND with duplicate suppression and a hop limit.
 *
 * It offers the same discovery contract as `@deccom/kademlia` (findPeer, getPeer,
 * getPeers, addPeer, approve, peer-connect, peer-disconnect), so one can replace the other
 * in a stack by changing one line.
 *
 * @example
 * ```ts
 * const node = createNode({ layers: [udp(), biggossip({ bootstrap: [seedAddress] })] });
 * await node.start();
 * const peer = await node.findPeer(id);
 * ```
 *
 * @packageDocumentation
 */
import {
  addressKey,
  checkTimeoutMs,
  DecComError,
  decodeFrame,
  defineLayer,
  dropReason,
  DuplicateCache,
  encodeData,
  InvalidArgumentError,
  NodeId,
  NotFoundError,
  OncePerInterval,
  PeerStore,
  SharedSearches,
  StateError,
  throwIfAborted,
  TimeoutError,
  toHex,
  verifyPeerRecord,
  type Address,
  type FindOptions,
  type PeerRecord,
} from '@deccom/core';
import {
  decodeMessage,
  encodeFind,
  encodeFound,
  encodeNotice,
  encodePull,
  encodePullResponse,
  encodeRecordMessage,
  BIGGOSSIP_PROTOCOL,
  MESSAGE,
  NOTICE_ID_LENGTH,
  type BigGossipMessage,
} from './wire.js';

export { BIGGOSSIP_PROTOCOL, MESSAGE, decodeMessage, type BigGossipMessage, encodeFind, encodeFound, encodeNotice, encodePull, encodePullResponse, encodeRecordMessage } from './wire.js';

/** Errors of this layer: `FIND_LIMIT` when too many distinct finds are in progress. */
export class BigGossipError extends DecComError {}

/** Most finds (distinct target peers) in progress at once; concurrent finds of one peer share one. */
const MAX_FINDS = 1024;

/** Addresses remembered for the one-PUSH-per-interval limit on senders we do not know. */
const UNKNOWN_PUSH_SOURCES = 4_096;

export interface BigGossipOptions {
  /** Addresses to join through. Default none. */
  bootstrap?: readonly Address[];
  /** Gossip round interval. Default 1,000 ms. */
  intervalMs?: number;
  /** Peers pinged per round. Default 5 (as the original). */
  pingsPerRound?: number;
  /** Ping timeout. Default half the interval. */
  pingTimeoutMs?: number;
  /** Records in a PULL answer, split over as many datagrams as needed. Default 100. */
  pullSize?: number;
  /** Peers pulled from per interval. Default 2 (as the original). */
  pullsPerRound?: number;
  /** Peers a FIND, LEAVE or SUSPECT is forwarded to at each hop (0 = every known peer). Default 0. */
  floodFanout?: number;
  /** Hop limit of flooded messages. Default 8. */
  hopLimit?: number;
  /** FIND deadline. Default 5,000 ms. */
  findTimeoutMs?: number;
  /** Known peers at most; the least recently seen is evicted. Default 10,000. */
  maxPeers?: number;
  /** Flooded message ids remembered for duplicate suppression. Default 4,096. */
  duplicateCacheSize?: number;
  /** Instance name. Default `biggossip`. */
  name?: string;
}

export function biggossip(options: BigGossipOptions = {}) {
  const intervalMs = options.intervalMs ?? 1000;
  if (!(intervalMs > 0)) throw new InvalidArgumentError(`biggossip: intervalMs must be > 0, got ${intervalMs}`);
  const pingsPerRound = options.pingsPerRound ?? 5;
  const pingTimeoutMs = options.pingTimeoutMs ?? intervalMs / 2;
  const pullSize = options.pullSize ?? 100;
  const floodFanout = options.floodFanout ?? 0;
  const hopLimit = options.hopLimit ?? 8;
  if (!Number.isInteger(hopLimit) || hopLimit < 1 || hopLimit > 255) throw new InvalidArgumentError(`biggossip: hopLimit must be 1..255, got ${hopLimit}`);
  const findTimeoutMs = options.findTimeoutMs ?? 5000;
  const maxPeers = options.maxPeers ?? 10_000;
  const pullsPerRound = options.pullsPerRound ?? 2;
  const bootstrap = [...(options.bootstrap ?? [])];

  return defineLayer({
    type: 'biggossip',
    name: options.name,
    protocol: BIGGOSSIP_PROTOCOL,
    needs: ['sendDatagram', 'sendPing', 'maxDatagramSize'],
    optional: ['heardFrom'],
    takes: ['datagram'],
    provides: ['findPeer', 'getPeer', 'getPeers', 'addPeer', 'sendDatagram', 'maxDatagramSize'],
    offers: { datagram: 'exclusive', approve: 'exclusive', 'peer-connect': 'event', 'peer-disconnect': 'event' },
    create: (ctx) => {
      const self = ctx.identity.id;
      const store = new PeerStore(maxPeers);
      const seenFloods = new DuplicateCache(options.duplicateCacheSize ?? 4096);
      /** Finds in flight: the find id we flooded, by target (one per target, shared by its callers). */
      const findIds = new Map<string, string>();
      /** Targets by the find id we flooded, to match FOUND answers. */
      const findTargets = new Map<string, string>();
      const finds = new SharedSearches<string, PeerRecord>(
        ctx.clock,
        MAX_FINDS,
        () => new BigGossipError('FIND_LIMIT', `biggossip: ${MAX_FINDS} finds (distinct peers) are in progress`),
        (target) => {
          const findId = findIds.get(target);
          findIds.delete(target);
          if (findId !== undefined) findTargets.delete(findId);
        },
      );
      const approving = new Set<string>();
      const suspectChecks = new Set<string>();
      const counters = ctx.counters;
      let running = false;
      /** Stopped after running: calls get STOPPED rather than NOT_STARTED. */
      let stopped = false;
      /** Addresses not in the view whose PUSH was taken in the last interval. */
      const unknownPushes = new OncePerInterval(intervalMs, UNKNOWN_PUSH_SOURCES);
      let stopRounds: (() => void) | undefined;
      let nextRequestId = ctx.random.int(2 ** 32);

      const send = (to: Address, bytes: Uint8Array): void => {
        counters.add('messages-out');
        ctx.below.sendDatagram(to, bytes);
      };

      const acceptable = (peer: PeerRecord): boolean => {
        if (peer.id.equals(self)) return false;
        if (peer.signature !== undefined && !verifyPeerRecord(peer)) {
          counters.drop('bad-signature');
          return false;
        }
        return true;
      };

      const insert = (peer: PeerRecord): void => {
        const { added, evicted } = store.upsert(peer, ctx.clock.now());
        if (evicted) {
          counters.add('evicted.capacity');
          ctx.emit('peer-disconnect', evicted);
        }
        if (added) {
          counters.set('peers', store.size);
          ctx.emit('peer-connect', peer);
          // Introductions to new peers: they learn us as we learn them.
          send(peer.address, encodeRecordMessage(MESSAGE.introduce, ctx.localPeer()));
        }
      };

      /** A peer we heard of: known peers are refreshed; new ones join after approval. */
      const learn = (peer: PeerRecord, direct: boolean): void => {
        if (!acceptable(peer)) return;
        if (store.has(peer.id)) {
          if (direct) store.upsert(peer, ctx.clock.now());
          return;
        }
        if (isDeparted(peer.id)) {
          // A message the peer sent before leaving can arrive after its LEAVE: for one
          // interval even direct contact does not bring it back.
          if (!direct || (leftAt.get(peer.id.hex) ?? -Infinity) > ctx.clock.now() - intervalMs) return;
          departed.delete(peer.id.hex);
          leftAt.delete(peer.id.hex);
        }
        const approve = ctx.slots.approve;
        if (!approve) return insert(peer);
        if (approving.has(peer.id.hex) || approving.size >= 1024) return;
        approving.add(peer.id.hex);
        Promise.resolve()
          .then(() => approve(peer))
          .then(
            (ok) => {
              approving.delete(peer.id.hex);
              if (running && ok) insert(peer);
              else if (!ok) counters.add('rejected-peers');
            },
            () => {
              approving.delete(peer.id.hex);
              counters.add('rejected-peers');
            },
          );
      };

      // Recently departed peers: their records still circulate in other nodes' answers for a
      // while, and must not bring them back. Only the peer itself, talking to us, lifts it.
      const departed = new Map<string, number>();
      const leftAt = new Map<string, number>();
      const tombstoneMs = intervalMs * 30;
      const isDeparted = (id: NodeId): boolean => {
        const until = departed.get(id.hex);
        if (until === undefined) return false;
        if (until > ctx.clock.now()) return true;
        departed.delete(id.hex);
        return false;
      };

      const drop = (id: NodeId, reason: string): void => {
        const peer = store.remove(id);
        if (!peer) return;
        if (departed.size >= 10_000) departed.clear();
        departed.set(id.hex, ctx.clock.now() + tombstoneMs);
        counters.add(`dropped-peers.${reason}`);
        counters.set('peers', store.size);
        ctx.emit('peer-disconnect', peer);
      };

      const flood = (bytes: Uint8Array, except?: Address): void => {
        const targets = floodFanout > 0 ? store.sample(floodFanout + 1, ctx.random) : store.sample(store.size, ctx.random);
        let sent = 0;
        for (const target of targets) {
          if (except && target.peer.address.port === except.port && target.peer.address.host === except.host) continue;
          if (floodFanout > 0 && sent >= floodFanout) break;
          send(target.peer.address, bytes);
          sent++;
        }
      };

      const newNoticeId = (): Uint8Array => ctx.random.bytes(NOTICE_ID_LENGTH);

      const round = (): void => {
        // Liveness: ping a few random peers; one that does not answer is dropped and suspected.
        for (const stored of store.sample(pingsPerRound, ctx.random)) {
          const peer = stored.peer;
          counters.add('pings');
          ctx.below.sendPing(peer.address, { timeoutMs: pingTimeoutMs, signal: ctx.signal }).then(
            () => store.touch(peer.id, ctx.clock.now()),
            () => {
              if (!running || !store.has(peer.id)) return;
              drop(peer.id, 'ping');
              const noticeId = newNoticeId();
              seenFloods.add(toHex(noticeId));
              flood(encodeNotice(MESSAGE.suspect, noticeId, hopLimit, peer.id.bytes));
            },
          );
        }
        // Membership exchange: PULL from a few random peers.
        for (const target of store.sample(pullsPerRound, ctx.random)) {
          counters.add('pulls');
          nextRequestId = (nextRequestId + 1) >>> 0;
          send(target.peer.address, encodePull(nextRequestId, ctx.localPeer()));
        }
        if (store.size === 0) for (const address of bootstrap) send(address, encodeRecordMessage(MESSAGE.introduce, ctx.localPeer()));
      };

      /** A node we may have dropped; check it ourselves before believing a SUSPECT. */
      const checkSuspect = (id: NodeId): void => {
        const stored = store.get(id);
        if (!stored || suspectChecks.has(id.hex)) return;
        suspectChecks.add(id.hex);
        ctx.below.sendPing(stored.peer.address, { timeoutMs: pingTimeoutMs, signal: ctx.signal }).then(
          () => {
            suspectChecks.delete(id.hex);
            store.touch(id, ctx.clock.now());
          },
          () => {
            suspectChecks.delete(id.hex);
            if (running) drop(id, 'suspect');
          },
        );
      };

      const onMessage = (message: BigGossipMessage, from: Address): void => {
        switch (message.type) {
          case MESSAGE.introduce: {
            const observed = message.peer.address.host === from.host && message.peer.address.port === from.port;
            const known = store.has(message.peer.id);
            learn(observed ? message.peer : { ...message.peer, address: from, signature: undefined }, true);
            // Answer a first introduction with our own, so both sides know each other.
            if (!known) send(from, encodeRecordMessage(MESSAGE.introduce, ctx.localPeer()));
            break;
          }
          case MESSAGE.push: {
            // As in gossip: from an address not in the view, one PUSH per interval (else one
            // address could fill the membership with made-up records).
            const sender = store.byAddressOf(from);
            if (!sender && !unknownPushes.allow(addressKey(from), ctx.clock.now())) {
              counters.drop('unsolicited-push');
              return;
            }
            if (!store.has(message.peer.id) && sender) ctx.below.heardFrom?.(message.peer.address, sender.peer);
            learn(message.peer, false);
            break;
          }
          case MESSAGE.pull: {
            learn(message.peer, true);
            const peers = store.sample(pullSize, ctx.random, message.peer.id).map((s) => s.peer);
            for (const part of encodePullResponse(message.requestId, peers, ctx.below.maxDatagramSize())) send(from, part);
            break;
          }
          case MESSAGE.pullResponse: {
            const sender = store.byAddressOf(from);
            if (!sender) {
              counters.drop('unsolicited-response');
              return;
            }
            store.touch(sender.peer.id, ctx.clock.now());
            for (const peer of message.peers) {
              if (!store.has(peer.id) && !peer.id.equals(self)) ctx.below.heardFrom?.(peer.address, sender.peer);
              learn(peer, false);
            }
            break;
          }
          case MESSAGE.find: {
            if (!seenFloods.add(toHex(message.findId))) {
              counters.drop('duplicate-flood');
              return;
            }
            counters.add('finds-in');
            const origin = message.origin;
            const target = new NodeId(message.target);
            if (target.equals(self)) {
              send(origin.address, encodeFound(message.findId, ctx.localPeer()));
              return;
            }
            const known = store.get(target);
            if (known) {
              send(origin.address, encodeFound(message.findId, known.peer));
              return;
            }
            if (message.hops > 1) flood(encodeFind(message.findId, message.target, message.hops - 1, origin), from);
            break;
          }
          case MESSAGE.found: {
            const target = findTargets.get(toHex(message.findId));
            if (target === undefined || target !== message.peer.id.hex) {
              counters.drop('unsolicited-found');
              return;
            }
            if (!acceptable(message.peer)) return;
            learn(message.peer, false);
            finds.resolve(target, message.peer);
            break;
          }
          case MESSAGE.leave:
          case MESSAGE.suspect: {
            if (!seenFloods.add(toHex(message.noticeId))) {
              counters.drop('duplicate-flood');
              return;
            }
            const subject = new NodeId(message.subject);
            if (subject.equals(self)) return;
            // A LEAVE straight from the leaving node is believed; anything relayed is only a
            // hint: every node checks the subject itself (so nobody can evict others by lying).
            const sender = store.byAddressOf(from);
            if (message.type === MESSAGE.leave && sender?.peer.id.equals(subject)) {
              drop(subject, 'leave');
              if (leftAt.size >= 10_000) leftAt.clear();
              leftAt.set(subject.hex, ctx.clock.now());
            }
            else if (store.has(subject)) checkSuspect(subject);
            else if (!departed.has(subject.hex) && departed.size < 10_000) {
              // Not known here: keep it from arriving through answers already in flight
              // for a few intervals (direct contact from the node lifts this).
              departed.set(subject.hex, ctx.clock.now() + intervalMs * 3);
            }
            if (message.hops > 1) flood(encodeNotice(message.type, message.noticeId, message.hops - 1, message.subject), from);
            break;
          }
        }
      };

      const findPeer = async (id: NodeId, findOptions: FindOptions = {}): Promise<PeerRecord> => {
        if (!running) throw stopped ? new StateError('STOPPED', 'biggossip.findPeer: the node stopped') : new StateError('NOT_STARTED', 'biggossip.findPeer: the layer is not started');
        if (!(id instanceof NodeId)) throw new InvalidArgumentError('biggossip.findPeer: id must be a NodeId');
        checkTimeoutMs(findOptions.timeoutMs, 'biggossip.findPeer');
        throwIfAborted(findOptions.signal);
        if (id.equals(self)) return ctx.localPeer();
        const known = store.get(id);
        if (known) return known.peer;
        const timeoutMs = findOptions.timeoutMs ?? findTimeoutMs;
        const target = id.hex;
        if (finds.has(target)) counters.add('finds-shared');
        return finds.wait(
          target,
          {
            timeoutMs,
            signal: findOptions.signal,
            description: 'biggossip.findPeer',
            onTimeout: () => {
              counters.add('finds-not-found');
              return new NotFoundError(`biggossip: peer ${id.short}… not found within ${timeoutMs} ms`, { cause: new TimeoutError('find deadline') });
            },
          },
          () => {
            const findId = ctx.random.bytes(NOTICE_ID_LENGTH);
            const key = toHex(findId);
            seenFloods.add(key);
            findIds.set(target, key);
            findTargets.set(key, target);
            counters.add('finds');
            flood(encodeFind(findId, id.bytes, hopLimit, ctx.localPeer()));
          },
        );
      };

      return {
        start: () => {
          running = true;
          stopped = false;
          stopRounds = ctx.clock.setInterval(round, intervalMs);
        },
        // Introduced once the whole stack is up, so our record carries a TCP port bound above.
        started: () => {
          if (!running) return;
          for (const address of bootstrap) send(address, encodeRecordMessage(MESSAGE.introduce, ctx.localPeer()));
        },
        stop: () => {
          // Tell the network we leave (flooded, so every node drops us at once).
          if (running && store.size > 0) {
            const noticeId = newNoticeId();
            flood(encodeNotice(MESSAGE.leave, noticeId, hopLimit, self.bytes));
          }
          running = false;
          stopRounds?.();
          stopped = true;
          finds.rejectAll(new StateError('STOPPED', 'biggossip: the node stopped'));
          approving.clear();
          departed.clear();
          leftAt.clear();
          store.clear();
          seenFloods.clear();
          unknownPushes.clear();
        },
        status: () => ({ peers: store.size, findsInProgress: finds.size }),
        provides: {
          findPeer,
          getPeer: (id: NodeId) => store.get(id)?.peer,
          getPeers: () => store.peers(),
          addPeer: (peer: PeerRecord) => learn(peer, false),
          sendDatagram: (to: Address, data: Uint8Array) => ctx.below.sendDatagram(to, encodeData(data)),
          maxDatagramSize: () => ctx.below.maxDatagramSize() - 1,
        },
        takes: {
          datagram: (bytes: Uint8Array, from: Address) => {
            let message: BigGossipMessage;
            try {
              const frame = decodeFrame(bytes, BIGGOSSIP_PROTOCOL);
              if (frame.kind === 'data') {
                const slot = ctx.slots.datagram;
                if (slot) slot(frame.payload, from);
                else counters.drop('no-receiver');
                return;
              }
              message = decodeMessage(frame.type, frame.body);
            } catch (error) {
              counters.drop(dropReason(error));
              return;
            }
            counters.add('messages-in');
            if (running) onMessage(message, from);
          },
        },
      };
    },
  });
}
