/**
 * A sliding anti-replay window over 64-bit message counters, in the style of RFC 6479
 * (the bitmap WireGuard uses): a ring of 32-bit words, so sliding forward clears whole
 * words instead of shifting bits. Datagrams may arrive reordered; any counter within
 * {@link REPLAY_WINDOW} of the highest one seen is accepted once.
 */

const WORDS = 128;
const BITS = 32;
/** Counters this far behind the highest one seen are still accepted (once): 4,064. */
export const REPLAY_WINDOW = (WORDS - 1) * BITS;

export type ReplayVerdict = 'ok' | 'replayed' | 'too-old';

export class ReplayWindow {
  private readonly bitmap = new Uint32Array(WORDS);
  private highest = -1;

  /** Whether `counter` may be accepted. Does not record it: call {@link accept} after authenticating. */
  check(counter: number): ReplayVerdict {
    if (counter > this.highest) return 'ok';
    if (this.highest - counter >= REPLAY_WINDOW) return 'too-old';
    const word = Math.floor(counter / BITS) % WORDS;
    return (this.bitmap[word]! >>> (counter % BITS)) & 1 ? 'replayed' : 'ok';
  }

  /** Records an authenticated `counter` (which passed {@link check}). */
  accept(counter: number): void {
    if (counter > this.highest) {
      const currentWord = Math.floor(this.highest / BITS);
      const newWord = Math.floor(counter / BITS);
      const advance = Math.min(newWord - currentWord, WORDS);
      for (let i = 1; i <= advance; i++) this.bitmap[(((currentWord + i) % WORDS) + WORDS) % WORDS] = 0;
      this.highest = counter;
    }
    const word = Math.floor(counter / BITS) % WORDS;
    this.bitmap[word] = this.bitmap[word]! | (1 << (counter % BITS));
  }

  /** Highest counter accepted so far (-1 before any). */
  get highestAccepted(): number {
    return this.highest;
  }
}
