import { MAX_TCP_CANDIDATES, PUNCH_MESSAGE, RELAY_MESSAGE, type PunchMessage, type RelayMessage } from '../src/index.js';

const v4 = { host: '203.0.113.7', port: 4000 };
const v6 = { host: '2001:db8::1', port: 65535 };

export const punchMessages: PunchMessage[] = [
  { type: PUNCH_MESSAGE.punchRequest, nonce: 1, natType: 'cone', target: v4 },
  { type: PUNCH_MESSAGE.punchRequest, nonce: 0xffffffff, natType: 'symmetric', target: v6 },
  { type: PUNCH_MESSAGE.punchRelayed, nonce: 2, natType: 'unknown', peer: v4 },
  { type: PUNCH_MESSAGE.punchRelayed, nonce: 3, natType: 'none', peer: v6 },
  { type: PUNCH_MESSAGE.probe, nonce: 4 },
  { type: PUNCH_MESSAGE.probeAck, nonce: 5, flags: 0, observed: v4 },
  { type: PUNCH_MESSAGE.probeAck, nonce: 5, flags: 1, observed: v6 },
  { type: PUNCH_MESSAGE.observeRequest, nonce: 6 },
  { type: PUNCH_MESSAGE.observed, nonce: 7, transport: 'udp', observed: v4 },
  { type: PUNCH_MESSAGE.observed, nonce: 0, transport: 'tcp', observed: v6 },
  { type: PUNCH_MESSAGE.tcpOffer, nonce: 8, candidates: [v4, v6] },
  { type: PUNCH_MESSAGE.tcpOffer, nonce: 8, candidates: Array.from({ length: MAX_TCP_CANDIDATES }, (_, i) => ({ host: `10.0.0.${i + 1}`, port: 1000 + i })) },
  { type: PUNCH_MESSAGE.tcpAnswer, nonce: 9, candidates: [] },
  { type: PUNCH_MESSAGE.tcpAnswer, nonce: 9, candidates: [v4] },
];

export const relayMessages: RelayMessage[] = [
  { type: RELAY_MESSAGE.open, nonce: 10, target: v4 },
  { type: RELAY_MESSAGE.open, nonce: 10, target: v6 },
  { type: RELAY_MESSAGE.incoming, session: 11, peer: v4 },
  { type: RELAY_MESSAGE.accept, session: 12 },
  { type: RELAY_MESSAGE.opened, nonce: 13, session: 14 },
  { type: RELAY_MESSAGE.data, session: 15, payload: new Uint8Array([0, 1, 2, 3]) },
  { type: RELAY_MESSAGE.data, session: 15, payload: new Uint8Array(0) },
  { type: RELAY_MESSAGE.close, session: 16, reason: 'idle' },
  { type: RELAY_MESSAGE.refused, id: 17, idKind: 'nonce', reason: 'sessions' },
  { type: RELAY_MESSAGE.refused, id: 18, idKind: 'session', reason: 'bandwidth' },
];

