import { describe, expect, it } from 'vitest';
import { loopbackNetwork } from './loopback.js';

describe('kademlia over real UDP on 127.0.0.1 (slow)', () => {
  it('200 nodes join through one node and every lookup succeeds', async () => {
    const result = await loopbackNetwork(200, 400);
    expect(result.failures).toEqual([]);
    expect(result.ok).toBe(400);
  }, 180_000);
});
