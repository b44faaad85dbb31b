import { describe, expect, it } from 'vitest';
import { privateNetwork } from '../src/scenario.js';

describe('example: private network (fixed-peers over UDP on 127.0.0.1)', () => {
  it('members admit only each other; the outsider is dropped everywhere', async () => {
    const lines: string[] = [];
    const report = await privateNetwork((line) => lines.push(line));
    expect(report.peers).toEqual({ alice: ['bob', 'carol'], bob: ['alice', 'carol'], carol: ['alice', 'bob'] });
    expect(report.outsiderAdmittedBy).toEqual([]);
    for (const name of ['alice', 'bob', 'carol']) expect(report.outsiderHellosDropped[name]).toBeGreaterThanOrEqual(1);
    expect(report.findOutsider).toMatch(/^NotFoundError/);
    expect(report.accepted).toEqual({
      alice: ['bob: hello from bob', 'carol: hello from carol'],
      bob: ['alice: hello from alice', 'carol: hello from carol'],
      carol: ['alice: hello from alice', 'bob: hello from bob'],
    });
    for (const name of ['alice', 'bob', 'carol']) expect(report.refused[name]).toBeGreaterThanOrEqual(1);
    expect(report.leaked).toEqual({ alice: 0, bob: 0, carol: 0 });
    expect(report.sawCarolLeave).toEqual(['alice', 'bob']);
    expect(lines).toContain('outsider admitted by: nobody');
    expect(lines.some((line) => line.startsWith('alice received: bob: hello from bob | carol: hello from carol; outsider datagrams dropped by fixed-peers: '))).toBe(true);
    expect(lines).toContain('carol left; seen by: alice, bob');
  }, 60_000);
});
