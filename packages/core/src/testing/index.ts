/**
 * `@deccom/core/testing`: a virtual clock, an in-memory network with NAT emulation, a
 * transport on it, and the conformance suites every transport passes. Users can test
 * their own layers and whole networks with it.
 *
 * @example
 * ```ts
 * import { createNode } from '@deccom/core';
 * import { MemoryNetwork, VirtualClock, memoryTransport } from '@deccom/core/testing';
 *
 * const clock = new VirtualClock();
 * const network = new MemoryNetwork({ clock, defaultLink: { latencyMs: 50, jitterMs: 10 } });
 * const a = createNode({ clock, layers: [memoryTransport(network)] });
 * const b = createNode({ clock, layers: [memoryTransport(network)] });
 * await a.start(); await b.start();
 * const rtt = a.sendPing(b.localAddress());
 * await clock.advance(200);
 * console.log(await rtt); // ~100 virtual ms
 * ```
 *
 * @packageDocumentation
 */
export { VirtualClock } from './virtual-clock.js';
export { pollUntil, sleep } from './poll.js';
export { MemoryNetwork, Nat, type LinkOptions, type NatOptions, type NatType, type Endpoint, type NetworkStats, type NetworkEvent, type MemoryNetworkOptions } from './memory-network.js';
export { memoryTransport, MEMORY_PROTOCOL, type MemoryTransportOptions } from './memory-transport.js';
export { transportConformanceCases, type ConformanceCase, type ConformanceNode, type TransportHarness } from './conformance.js';
export {
  streamConformanceCases,
  loopbackMessageHarness,
  directoryLayer,
  type MessageNode,
  type MessageTransportHarness,
  type DirectoryNode,
  type LoopbackHarnessOptions,
} from './stream-conformance.js';
