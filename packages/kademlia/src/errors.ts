import { DecComError } from '@deccom/core';

/**
 * Errors of `@deccom/kademlia` besides core's: code `LOOKUP_LIMIT` when
 * `maxConcurrentLookups` lookups are already running. A lookup that ends without the
 * peer rejects with core's `NotFoundError` (`PEER_NOT_FOUND`).
 */
export class KademliaError extends DecComError {}
