export * from './errors.js';
export * from './crypto.js';
export * from './patterns.js';
export * from './handshake.js';
