import { createHash, randomFillSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { main, Progress, progressBar } from '../src/index.js';
import { ACK_STATUS, FileParser, FileWireError, decodeAck, encodeAck, encodeFileHeader, safeFileName } from '../src/file-wire.js';
import { decodeChat, encodeChat } from '../src/commands/chat.js';

function capture() {
  let text = '';
  return { stream: { write: (chunk: string) => (text += chunk), isTTY: false }, text: () => text };
}

function transfer(name: string, content: Uint8Array): Uint8Array {
  const header = encodeFileHeader(name, content.byteLength);
  const digest = createHash('sha256').update(content).digest();
  const all = new Uint8Array(header.byteLength + content.byteLength + 32);
  all.set(header, 0);
  all.set(content, header.byteLength);
  all.set(digest, header.byteLength + content.byteLength);
  return all;
}

async function parse(chunks: Uint8Array[]) {
  const pieces: Uint8Array[] = [];
  let header: { name: string; size: number } | undefined;
  const parser = new FileParser(
    (parsed) => void (header = parsed),
    (piece) => void pieces.push(piece.slice()),
  );
  for (const chunk of chunks) await parser.push(chunk);
  const digests = parser.finish();
  return { header, content: Buffer.concat(pieces), ...digests };
}

describe('main() in process', () => {
  it('runs describe and returns 0, and returns 2 with a message for bad flags', async () => {
    const out = capture();
    const err = capture();
    expect(await main(['describe', '--format', 'text', '--stack', 'send-tcp'], { stdout: out.stream, stderr: err.stream })).toBe(0);
    expect(out.text()).toContain("stack 'send-tcp', bottom to top: udp > keepalive > kademlia > noise > tcp > noise-stream");
    expect(out.text()).toContain('calls getPeer of kademlia');
    expect(await main(['describe', '--format', 'svg'], { stdout: out.stream, stderr: err.stream })).toBe(2);
    expect(err.text()).toContain("--format must be mermaid, text or json; got 'svg'");
  });
});

describe('file-transfer format', () => {
  it('parses a transfer split at every possible point, and the hash matches', async () => {
    const content = randomFillSync(new Uint8Array(3000));
    const whole = transfer('report.pdf', content);
    for (let split = 0; split <= whole.byteLength; split += 7) {
      const result = await parse([whole.subarray(0, split), whole.subarray(split)]);
      expect(result.header).toEqual({ name: 'report.pdf', size: 3000 });
      expect(Buffer.compare(result.content, Buffer.from(content))).toBe(0);
      expect(Buffer.from(result.actual).equals(Buffer.from(result.expected))).toBe(true);
    }
    const byteByByte = await parse([...whole].map((byte) => Uint8Array.of(byte)));
    expect(byteByByte.content.byteLength).toBe(3000);
  });

  it('reports a changed byte as differing digests, and truncation or excess as errors', async () => {
    const whole = transfer('a.bin', randomFillSync(new Uint8Array(500)));
    const corrupted = whole.slice();
    corrupted[whole.byteLength - 100]! ^= 1;
    const result = await parse([corrupted]);
    expect(Buffer.from(result.actual).equals(Buffer.from(result.expected))).toBe(false);
    await expect(parse([whole.subarray(0, whole.byteLength - 1)])).rejects.toThrow(/ended after 500 of 500 bytes/);
    await expect(parse([whole.subarray(0, 20)])).rejects.toThrow(/ended after 0 of 500/);
    await expect(parse([whole, Uint8Array.of(0)])).rejects.toThrow(FileWireError);
    await expect(parse([new TextEncoder().encode('GET / HTTP/1.1\r\n')])).rejects.toThrow(/not a deccom file transfer/);
  });

  it('never throws anything but FileWireError on random input', async () => {
    const valid = transfer('x', new Uint8Array(10));
    for (let i = 0; i < 5000; i++) {
      const input = i % 2 === 0 ? randomFillSync(new Uint8Array(i % 64)) : valid.slice();
      if (i % 2 === 1) input[i % input.byteLength] = (i * 31) & 0xff;
      try {
        await parse([input]);
      } catch (error) {
        expect(error).toBeInstanceOf(FileWireError);
      }
    }
  });

  it('keeps only a safe base name', () => {
    expect(safeFileName('../../etc/passwd')).toBe('passwd');
    expect(safeFileName('..')).toBe('received-file');
    expect(safeFileName('C:\\Users\\x\\evil.txt')).toBe('evil.txt');
    expect(safeFileName('a\u0007b')).toBe('a_b');
  });

  it('round-trips confirmations and refuses anything else', () => {
    const digest = randomFillSync(new Uint8Array(32));
    expect(decodeAck(encodeAck(ACK_STATUS.HASH_DIFFERS, digest))).toEqual({ status: 1, digest });
    expect(decodeAck(encodeAck(ACK_STATUS.INTACT, digest).subarray(1))).toBeUndefined();
    const badStatus = encodeAck(ACK_STATUS.INTACT, digest);
    badStatus[5] = 9;
    expect(decodeAck(badStatus)).toBeUndefined();
  });
});

describe('chat messages', () => {
  it('round-trip, and strip control characters a peer could use on our terminal', () => {
    expect(decodeChat(encodeChat({ v: 1, name: 'alice', text: 'hi', topic: 'lobby' }))).toEqual({ v: 1, name: 'alice', text: 'hi', topic: 'lobby' });
    expect(decodeChat(encodeChat({ v: 1, name: 'x\u001b[2J', text: 'a\rb' }))?.name).toBe('x [2J');
    expect(decodeChat(new TextEncoder().encode('{"v":2,"name":"a","text":"b"}'))).toBeUndefined();
    expect(decodeChat(Uint8Array.of(0xff, 0xfe))).toBeUndefined();
    expect(decodeChat(new TextEncoder().encode('null'))).toBeUndefined();
  });
});

describe('progress', () => {
  it('draws a bar', () => {
    expect(progressBar(0, 100, 10)).toBe('[..........]   0%');
    expect(progressBar(50, 100, 10)).toBe('[#####.....]  50%');
    expect(progressBar(100, 100, 10)).toBe('[##########] 100%');
  });

  it('prints a line per quarter without a terminal, and redraws one line with \\r on a terminal', () => {
    const plain = capture();
    const progress = new Progress(plain.stream, 'sending', 1000, false);
    for (let done = 0; done <= 1000; done += 10) progress.update(done);
    progress.finish();
    expect(plain.text().split('\n').filter(Boolean).map((line) => line.match(/(\d+)%/)?.[1])).toEqual(['25', '50', '75', '100']);
    const tty = capture();
    const bar = new Progress(tty.stream, 'sending', 1000, true);
    bar.update(1000);
    bar.finish();
    expect(tty.text()).toMatch(/^\rsending \[#{30}\] 100% .*\n$/);
  });
});
