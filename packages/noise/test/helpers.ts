import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The shared published vectors folder (never copied into the repository). */
export const VECTORS_DIR = fileURLToPath(new URL('../../../../shared/vectors/', import.meta.url));

export function vectorsPresent(): boolean {
  return existsSync(VECTORS_DIR);
}

export function readVectors<T>(relativePath: string): T {
  return JSON.parse(readFileSync(VECTORS_DIR + relativePath, 'utf8')) as T;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function unhex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` every 2 ms until it holds (true) or `maxMs` passed (false). */
export async function waitFor(predicate: () => boolean, maxMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(2);
  }
  return true;
}
