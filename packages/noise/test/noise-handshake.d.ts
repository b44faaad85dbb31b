// Minimal types for the npm package `noise-handshake` (an independent Noise implementation used in the interop test).
declare module 'noise-handshake' {
  interface KeyPair {
    publicKey: Uint8Array;
    secretKey: Uint8Array;
  }
  export default class NoiseState {
    constructor(pattern: string, initiator: boolean, staticKeypair?: KeyPair | null, options?: Record<string, unknown>);
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    send(payload?: Uint8Array): Uint8Array;
    recv(message: Uint8Array): Uint8Array;
    readonly complete: boolean;
    readonly rx: Uint8Array;
    readonly tx: Uint8Array;
    readonly hash: Uint8Array;
    readonly rs: Uint8Array;
    readonly s: KeyPair;
    readonly curve: { generateKeyPair(): KeyPair };
  }
}
declare module 'noise-handshake/cipher.js' {
  export default class CipherState {
    constructor(key?: Uint8Array);
    encrypt(plaintext: Uint8Array, ad?: Uint8Array): Uint8Array;
    decrypt(ciphertext: Uint8Array, ad?: Uint8Array): Uint8Array;
  }
}
declare module 'noise-handshake/dh.js' {
  export function generateKeyPair(secretKey?: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
}
