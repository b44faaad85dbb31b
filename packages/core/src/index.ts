/**
 * `@deccom/core`: the binding model, identity, peer records and wire helpers that every
 * DecCom layer shares.
 *
 * @example
 * ```ts
 * import { createNode, Identity } from '@deccom/core';
 * import { udp } from '@deccom/udp';
 *
 * const node = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' })] });
 * await node.start();
 * node.handle('datagram', (data, from) => console.log('got', data.length, 'bytes from', from));
 * node.sendDatagram({ host: '127.0.0.1', port: 9000 }, new TextEncoder().encode('hi'));
 * console.log(node.mermaid());
 * await node.stop();
 * ```
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './bytes.js';
export * from './coalesce.js';
export * from './address.js';
export { ipToBytes, bytesToIp } from './ip.js';
export * from './clock.js';
export * from './random.js';
export * from './logger.js';
export * from './counters.js';
export * from './crypto.js';
export * from './identity.js';
export * from './peer-record.js';
export * from './frame.js';
export type * from './capabilities.js';
export * from './layer.js';
export * from './node.js';
export * from './describe.js';
export * from './pending.js';
export * from './peer-store.js';
