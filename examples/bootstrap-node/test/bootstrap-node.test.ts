import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createNode, Identity } from '@deccom/core';
import { udp } from '@deccom/udp';
import { keepalive } from '@deccom/keepalive';
import { kademlia } from '@deccom/kademlia';
import { noise } from '@deccom/noise';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('examples/bootstrap-node', () => {
  let output = '';
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });

  const waitFor = async (pattern: RegExp): Promise<RegExpMatchArray> => {
    for (let i = 0; i < 400; i++) {
      const match = output.match(pattern);
      if (match) return match;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`timed out waiting for ${pattern}; output:\n${output}`);
  };

  it('lets a node join through it, logs the peer, and stops cleanly on SIGTERM', async () => {
    expect(existsSync(main), 'build the example first (the root `test` command does)').toBe(true);
    const started = spawn(process.execPath, [main, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    started.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    started.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    // 'close', not 'exit': the last output may still be in the pipes at 'exit'.
    exited = new Promise<number | null>((resolve) => started.on('close', resolve));
    const id = (await waitFor(/^bootstrap node ([0-9a-f]{64})$/m))[1]!;
    const port = Number((await waitFor(/^listening at 127\.0\.0\.1:(\d+);/m))[1]);
    const joiner = createNode({
      identity: Identity.generate(),
      layers: [udp({ host: '127.0.0.1' }), keepalive(), kademlia({ bootstrap: [{ host: '127.0.0.1', port }] }), noise()],
    });
    await joiner.start();
    try {
      for (let i = 0; i < 200 && joiner.getPeers().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(joiner.getPeers().map((peer) => peer.id.hex)).toEqual([id]);
      await waitFor(new RegExp(`^peer joined ${joiner.id.short}… at 127\\.0\\.0\\.1:${joiner.localAddress().port}$`, 'm'));
    } finally {
      await joiner.stop();
    }
    started.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toMatch(/stopping; 1 peers known\nstopped\n$/);
  }, 30_000);
});
