/**
 * `@deccom/holepunch`: UDP and TCP hole punching through NATs, with relay fallback.
 *
 * `holepunch()` sits between the datagram transport and discovery. Discovery tells it who
 * introduced which address (`heardFrom`); the first datagram to an address never heard
 * from is queued while both sides punch (a probe from each side, the punch request
 * relayed by the introducer); when punching cannot work (symmetric NATs on both sides)
 * or fails, traffic goes through a willing peer as a relay, within that peer's budgets.
 * `tcpHolepunch()` sits above `@deccom/tcp` and hands TCP connections punched by
 * simultaneous open to it as ordinary connections.
 *
 * @example
 * ```ts
 * import { createNode } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 * import { kademlia } from '@deccom/kademlia';
 * import { tcp } from '@deccom/tcp';
 * import { holepunch, tcpHolepunch } from '@deccom/holepunch';
 *
 * const node = createNode({
 *   layers: [
 *     udp({ host: '0.0.0.0' }),
 *     holepunch(),
 *     kademlia({ bootstrap: [{ host: '203.0.113.7', port: 7000 }] }),
 *     tcp({ host: '0.0.0.0' }),
 *     tcpHolepunch(),
 *   ],
 * });
 * await node.start();
 * const peer = await node.findPeer(otherId);
 * const outcome = await node.connect(peer.address); // direct / punched-udp / relayed / failed
 * console.log(outcome.mechanism, outcome.attempts, node.natType());
 * const tcpOutcome = await node.connectTcp(peer.id); // direct / punched-tcp / failed
 * await node.sendMessage(peer.id, new TextEncoder().encode('through both NATs'));
 * await node.stop();
 * ```
 *
 * @packageDocumentation
 */
export {
  holepunch,
  type HolepunchOptions,
  type RelayServiceOptions,
  type ConnectOptions,
  type ConnectOutcome,
  type Mechanism,
  type TcpPunchOptions,
  type TcpPunchResult,
} from './holepunch.js';
export { tcpHolepunch, type TcpHolepunchOptions } from './tcp-layer.js';
export { PunchError, RelayError, type PunchErrorCode, type RelayErrorCode } from './errors.js';
export { NatClassifier, type NatType, type NatReport, type NatClassifierOptions } from './nat.js';
export { IntroducerBook, type IntroducerBookOptions } from './introducers.js';
export { RelayBudget, TokenBucket, type RelayBudgetOptions, type BudgetRefusal } from './budget.js';
export { SendQueue, nextRetryDelay, type SendQueueOptions, type RetryScheduleOptions } from './queue.js';
export { simultaneousOpen, freeTcpPort, type SimultaneousOpenOptions, type SimultaneousOpenResult } from './tcp-punch.js';
export {
  HOLEPUNCH_PROTOCOL,
  RELAY_PROTOCOL,
  PUNCH_MESSAGE,
  RELAY_MESSAGE,
  RELAY_REASON,
  WIRE_NAT_TYPE,
  OBSERVED_TRANSPORT,
  PROBE_ACK_UNSOLICITED,
  MAX_TCP_CANDIDATES,
  RELAY_DATA_OVERHEAD,
  encodePunchMessage,
  decodePunchMessage,
  encodeRelayMessage,
  decodeRelayMessage,
  encodeRelayData,
  decodeIncoming,
  punchMessageLength,
  relayMessageLength,
  type PunchMessage,
  type RelayMessage,
  type RelayReason,
  type WireNatType,
  type ObservedTransport,
  type Incoming,
} from './wire.js';
