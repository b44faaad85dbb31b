/** Real-time waiting for tests on real sockets (a virtual clock has its own `runUntil`). */

/** Resolves after `ms` of real time. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Checks `predicate` every `everyMs` until it holds (true) or `maxMs` passed (false). */
export async function pollUntil(predicate: () => boolean, maxMs = 10_000, everyMs = 2): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
  return true;
}
