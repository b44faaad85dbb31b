import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createPeerRecord, Identity, TimeoutError } from '@deccom/core';
import { ConnectionError } from '../src/index.js';
import { Book, makeNode, startIn, waitFor, type TestNode } from './helpers.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

interface Child {
  process: ChildProcess;
  lines: string[];
}

const children: Child[] = [];
const nodes: TestNode[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) {
      const exited = new Promise((resolve) => child.process.once('exit', resolve));
      child.process.kill('SIGKILL');
      await exited;
    }
  }
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

function freePort(host: string): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function spawnChild(host: string, port: number, name: string): Promise<Child> {
  const child: Child = {
    process: spawn(process.execPath, ['--conditions=@deccom/source', '--import', './register-ts.mjs', './child-node.ts', host, String(port), name], {
      cwd: fixtures,
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
    lines: [],
  };
  children.push(child);
  let buffered = '';
  child.process.stdout!.on('data', (data: Buffer) => {
    buffered += data.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    child.lines.push(...parts);
  });
  expect(await waitFor(() => child.lines.some((l) => l.startsWith('ready')), 30_000)).toBe(true);
  return child;
}

describe('a peer in another process', () => {
  it('is detected when killed, and reconnected to when it returns', async () => {
    const host = '127.0.0.1';
    const port = await freePort(host);
    const name = 'child-peer';
    const childId = Identity.fromString(name).id;
    let child = await spawnChild(host, port, name);

    const book = new Book();
    const a = makeNode(book, host, { reconnectDelayMs: 50, maxReconnectDelayMs: 400 });
    nodes.push(a);
    await startIn(book, a);
    book.records.set(childId.hex, createPeerRecord(Identity.fromString(name).public, { host, port: 1 }, port));
    const opened: number[] = [];
    const lost: (Error | undefined)[] = [];
    a.on('connection-open', () => void opened.push(Date.now()));
    a.on('connection-close', (_id, reason) => void lost.push(reason));

    await a.openConnection(childId);
    await a.sendMessage(childId, new TextEncoder().encode('before'));
    expect(await waitFor(() => child.lines.includes('message before'))).toBe(true);

    // Kill -9: no goodbye; the kernel closes its sockets.
    const exited = new Promise((resolve) => child.process.once('exit', resolve));
    child.process.kill('SIGKILL');
    await exited;
    expect(await waitFor(() => lost.length === 1)).toBe(true);
    expect(lost[0]).toBeInstanceOf(ConnectionError);

    // While it is gone, sends wait for it and give up at their deadline.
    await expect(a.sendMessage(childId, new TextEncoder().encode('lost'), { timeoutMs: 300 })).rejects.toBeInstanceOf(TimeoutError);

    // It comes back on the same port: the kept connection is re-established by itself.
    child = await spawnChild(host, port, name);
    expect(await waitFor(() => opened.length === 2, 20_000)).toBe(true);
    await a.sendMessage(childId, new TextEncoder().encode('after'));
    expect(await waitFor(() => child.lines.includes('message after'))).toBe(true);
    expect(child.lines).not.toContain('message lost');
  });
});
