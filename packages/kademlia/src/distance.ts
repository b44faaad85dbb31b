/** XOR distance over 256-bit ids (Maymounkov and Mazieres 2002, section 2.1). */

/** Compares the distances of `a` and `b` to `target`: negative when `a` is closer. */
export function compareDistance(a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = a[i]! ^ target[i]!;
    const db = b[i]! ^ target[i]!;
    if (da !== db) return da - db;
  }
  return 0;
}

/** Number of leading bits `a` and `b` share (256 when equal). */
export function commonPrefixLength(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return a.length * 8;
}

/** Bit `index` (0 = most significant) of `id`. */
export function bitAt(id: Uint8Array, index: number): number {
  return (id[index >> 3]! >> (7 - (index & 7))) & 1;
}
