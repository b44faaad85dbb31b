import { describe, expect, it } from 'vitest';
import { createNode, encodeControl, Identity, StateError, TimeoutError } from '@deccom/core';
import { udp } from '@deccom/udp';
import { echo, ECHO_PROTOCOL } from '../src/echo.js';

describe('custom echo layer over real UDP on loopback', () => {
  it('echoes, passes application data through, drops garbage, and ends pending requests on stop', async () => {
    const alice = createNode({ identity: Identity.fromString('alice'), layers: [udp({ host: '127.0.0.1' }), echo({ timeoutMs: 2000 })] });
    const bob = createNode({ identity: Identity.fromString('bob'), layers: [udp({ host: '127.0.0.1' }), echo()] });
    await alice.start();
    await bob.start();
    try {
      const answer = await alice.echo(bob.localAddress(), 'hello');
      expect(answer.text).toBe('hello');
      expect(answer.rttMs).toBeGreaterThanOrEqual(0);

      // Application bytes that look exactly like an echo request are still application data.
      const lookalike = encodeControl(ECHO_PROTOCOL, 1, Uint8Array.of(0, 0, 0, 1, 0x68));
      const received = new Promise<Uint8Array>((resolve) => bob.handle('datagram', (data) => resolve(data)));
      alice.sendDatagram(bob.localAddress(), lookalike);
      expect([...(await received)]).toEqual([...lookalike]);
      expect(bob.counters()['echo']?.['requests-in']).toBe(1);

      // Garbage addressed to the echo layer is dropped and counted.
      const before = bob.counters()['echo']?.['dropped'] ?? 0;
      const udpOnly = createNode({ layers: [udp({ host: '127.0.0.1' })] });
      await udpOnly.start();
      udpOnly.sendDatagram(bob.localAddress(), Uint8Array.of(0x01, ECHO_PROTOCOL.id, 1, 1, 0));
      udpOnly.sendDatagram(bob.localAddress(), Uint8Array.of(0x07));
      for (let i = 0; i < 100 && (bob.counters()['echo']?.['dropped'] ?? 0) < before + 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(bob.counters()['echo']?.['dropped']).toBe(before + 2);
      await udpOnly.stop();

      // A silent peer times out with a typed error; stop ends what is pending.
      await expect(alice.echo({ host: '127.0.0.1', port: 9 }, 'anyone?', { timeoutMs: 50 })).rejects.toBeInstanceOf(TimeoutError);
      const hanging = alice.echo({ host: '127.0.0.1', port: 9 }, 'anyone?', { timeoutMs: 60_000 });
      await alice.stop();
      await expect(hanging).rejects.toBeInstanceOf(StateError);
    } finally {
      await alice.stop();
      await bob.stop();
    }
  });
});
