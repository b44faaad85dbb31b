/**
 * `deccom send-file` and `deccom receive-file`: one file over reliable UDP (rudp above
 * Noise, so every chunk is encrypted) or as a TCP stream (tcp with noiseStream), with a
 * progress bar, the rate, and a SHA-256 check the receiver confirms back to the sender.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink, access, type FileHandle } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { basename, join, resolve as resolvePath } from 'node:path';
import { NodeId, type Address, type PeerRecord } from '@deccom/core';
import { CliError, EXIT, UsageError, type ExitCode } from '../errors.js';
import { HELP } from '../help.js';
import { printers, type CliIo } from '../io.js';
import { MAX_RUDP_FILE_BYTES, at, joinNetwork, matchPeers, receiverNode, rudpNode, tcpNode, untilAborted } from '../network.js';
import {
  BOOTSTRAP_OPTION,
  NETWORK_OPTIONS,
  bootstrapValue,
  hostValue,
  identityValue,
  noiseModeValue,
  parseCommand,
  parseHostPort,
  portValue,
  resolveAddress,
  stringValue,
  timeoutValue,
} from '../options.js';
import { Progress, formatSize, megabytesPerSecond } from '../progress.js';
import { ACK_STATUS, FileParser, FileWireError, decodeAck, encodeAck, encodeFileHeader, hex, type AckStatus, type FileHeader } from '../file-wire.js';

type Transport = 'rudp' | 'tcp';
const READ_CHUNK_BYTES = 256 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- send-file

export async function sendFileCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('send-file', args, { ...NETWORK_OPTIONS, ...BOOTSTRAP_OPTION, to: { type: 'string' }, transport: { type: 'string' } }, 1);
  const { out, err } = printers(io);
  if (values['help'] === true) {
    io.stdout.write(HELP['send-file']!);
    return EXIT.OK;
  }
  const path = positionals[0];
  if (path === undefined) throw new UsageError('which file? usage: deccom send-file <path> --to <id|host:port>');
  const to = stringValue(values, 'to');
  if (to === undefined) throw new UsageError('--to is required: the receiver\'s host:port or node id (printed by `deccom receive-file`)');
  const transport = (stringValue(values, 'transport') ?? 'rudp') as Transport;
  if (transport !== 'rudp' && transport !== 'tcp') throw new UsageError(`--transport must be rudp or tcp, got '${String(transport)}'`);
  const isAddress = to.includes(':');
  const target = isAddress ? await resolveAddress(parseHostPort(to, '--to')) : undefined;
  if (!isAddress && !/^[0-9a-fA-F]{1,64}$/.test(to)) throw new UsageError(`--to must be host:port or a hex node id (or its first digits), got '${to}'`);
  let bootstrap = await bootstrapValue(values);
  if (bootstrap.length === 0) {
    if (target === undefined) throw new UsageError('--to <id> needs --bootstrap to find the receiver (or give its host:port)');
    bootstrap = [target];
  }
  const host = hostValue(values, target ? [target, ...bootstrap] : bootstrap);
  const port = portValue(values);
  const timeoutMs = timeoutValue(values, 10);
  const noiseMode = noiseModeValue(values);

  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new CliError(EXIT.FILE, `${path} is not a regular file`);
    size = info.size;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(EXIT.FILE, `cannot read ${path}: ${(error as Error).message}`);
  }
  if (transport === 'rudp' && size > MAX_RUDP_FILE_BYTES) {
    throw new CliError(EXIT.FILE, `${path} is ${formatSize(size)}; rudp sends at most ${formatSize(MAX_RUDP_FILE_BYTES)} (the whole file in memory): use --transport tcp`);
  }
  const { identity, note } = identityValue(values);
  if (note) err(note);
  const stackOptions = { identity, host, port, bootstrap, noise: noiseMode };
  const name = basename(path);

  const node = transport === 'rudp' ? rudpNode(stackOptions) : tcpNode(stackOptions);
  // The receiver's confirmation: a datagram (rudp) or a message (tcp).
  let settleAck: (ack: { status: AckStatus; digest: Uint8Array }) => void = () => undefined;
  const acknowledged = new Promise<{ status: AckStatus; digest: Uint8Array }>((resolve) => (settleAck = resolve));
  const onAck = (data: Uint8Array) => {
    const ack = decodeAck(data);
    if (ack) settleAck(ack);
  };
  if (transport === 'rudp') (node as ReturnType<typeof rudpNode>).handle('datagram', onAck);
  else (node as ReturnType<typeof tcpNode>).handle('message', onAck);

  await node.start();
  try {
    await joinNetwork(node, bootstrap, timeoutMs, io.signal);
    const peer = await findReceiver(node, to, target, transport, timeoutMs);
    out(`sending ${name} (${formatSize(size)}) to ${peer.id.short}… at ${at(peer.address)} over ${transport}, Noise ${noiseMode}`);

    const progress = new Progress(io.stderr, 'sending', size);
    const hash = createHash('sha256');
    const startedAt = performance.now();
    try {
      if (transport === 'rudp') {
        let content: Buffer;
        try {
          content = await readFile(path);
        } catch (error) {
          throw new CliError(EXIT.FILE, `cannot read ${path}: ${(error as Error).message}`);
        }
        if (content.byteLength !== size) throw new CliError(EXIT.FILE, `${path} changed size while being read`);
        hash.update(content);
        const header = encodeFileHeader(name, size);
        const message = new Uint8Array(header.byteLength + size + 32);
        message.set(header, 0);
        message.set(content, header.byteLength);
        message.set(hash.copy().digest(), header.byteLength + size);
        await (node as ReturnType<typeof rudpNode>).sendReliable(peer.address, message, {
          signal: io.signal,
          onProgress: (done, total) => progress.update(Math.max(0, Math.round((done / total) * size))),
        });
      } else {
        let readError: Error | undefined;
        const source = async function* (): AsyncGenerator<Uint8Array> {
          yield encodeFileHeader(name, size);
          let sent = 0;
          try {
            for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES })) {
              const bytes = chunk as Buffer;
              if (sent + bytes.byteLength > size) throw new Error('the file grew while being sent');
              hash.update(bytes);
              sent += bytes.byteLength;
              progress.update(sent);
              yield bytes;
            }
            if (sent !== size) throw new Error('the file shrank while being sent');
          } catch (error) {
            readError = error as Error;
            throw error;
          }
          yield new Uint8Array(hash.copy().digest());
        };
        try {
          await (node as ReturnType<typeof tcpNode>).sendStream(peer.id, source(), { timeoutMs, signal: io.signal });
        } catch (error) {
          if (readError) throw new CliError(EXIT.FILE, `cannot read ${path}: ${readError.message}`);
          throw error;
        }
      }
    } catch (error) {
      progress.finish();
      if (error instanceof CliError) throw error;
      if (io.signal.aborted) throw new CliError(EXIT.NETWORK, 'interrupted; the file was not delivered');
      throw new CliError(EXIT.NETWORK, `sending failed: ${(error as Error).message}`);
    }
    const seconds = (performance.now() - startedAt) / 1000;
    progress.update(size);
    progress.finish();
    const digest = new Uint8Array(hash.digest());
    const ackTimeoutMs = Math.max(timeoutMs, 15_000);
    let ackTimer: NodeJS.Timeout | undefined;
    const ack = await Promise.race([acknowledged, new Promise<undefined>((resolve) => (ackTimer = setTimeout(() => resolve(undefined), ackTimeoutMs)))]);
    clearTimeout(ackTimer);
    const rate = `${megabytesPerSecond(size, seconds).toFixed(1)} MB/s`;
    if (ack === undefined) {
      throw new CliError(EXIT.NETWORK, `delivered ${formatSize(size)} in ${seconds.toFixed(2)} s (${rate}), but the receiver did not confirm the SHA-256 within ${ackTimeoutMs / 1000} s`);
    }
    if (ack.status === ACK_STATUS.NOT_SAVED) throw new CliError(EXIT.FILE, 'the receiver could not save the file (see its output)');
    if (ack.status === ACK_STATUS.HASH_DIFFERS || hex(ack.digest) !== hex(digest)) {
      throw new CliError(EXIT.INTEGRITY, `the receiver's SHA-256 ${hex(ack.digest)} differs from ours ${hex(digest)}`);
    }
    out(`sent ${name}: ${size} bytes in ${seconds.toFixed(2)} s, ${rate} over ${transport}; SHA-256 ${hex(digest)} verified by the receiver`);
    return EXIT.OK;
  } finally {
    await node.stop();
  }
}

type SenderNode = ReturnType<typeof rudpNode> | ReturnType<typeof tcpNode>;

/** The receiver's record: by address (a Noise handshake proves its id) or by id (prefix) through the network. */
async function findReceiver(node: SenderNode, to: string, target: Address | undefined, transport: Transport, timeoutMs: number): Promise<Pick<PeerRecord, 'id' | 'address'>> {
  let id: NodeId;
  if (target !== undefined) {
    try {
      id = (await node.secureConnect(target, { timeoutMs })).remoteId;
    } catch (error) {
      throw new CliError(EXIT.NETWORK, `no DecCom node answered a Noise handshake at ${at(target)} within ${timeoutMs / 1000} s: ${(error as Error).message}`);
    }
  } else {
    const matches = matchPeers(node.getPeers(), to).filter((peer) => !peer.id.equals(node.id));
    if (matches.length > 1) throw new UsageError(`${matches.length} known peers have ids starting with ${to}; give more digits`);
    if (matches.length === 1) id = matches[0]!.id;
    else if (to.length === 64) id = NodeId.fromHex(to);
    else throw new CliError(EXIT.NETWORK, `no known peer has an id starting with ${to}; give the full 64-digit id to look it up`);
  }
  if (transport === 'rudp' && target !== undefined) return { id, address: target };
  // TCP needs the record (it carries the TCP port): known already, else a lookup.
  const deadline = Date.now() + Math.min(timeoutMs, 2000);
  while (Date.now() < deadline) {
    const known = node.getPeer(id);
    if (known !== undefined && (transport === 'rudp' || known.tcpPort !== undefined)) return known;
    await sleep(50);
  }
  try {
    const found = await node.findPeer(id, { timeoutMs });
    if (transport === 'tcp' && found.tcpPort === undefined) throw new CliError(EXIT.NETWORK, `${found.id.short}… has no TCP port: is it running \`deccom receive-file\`?`);
    return found;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(EXIT.NETWORK, `could not find ${id.short}… in the network: ${(error as Error).message}`);
  }
}

// ---------------------------------------------------------------- receive-file

interface Received {
  readonly exitCode: ExitCode;
}

export async function receiveFileCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('receive-file', args, { ...NETWORK_OPTIONS, ...BOOTSTRAP_OPTION, out: { type: 'string' }, once: { type: 'boolean' } });
  const { out, err } = printers(io);
  if (values['help'] === true) {
    io.stdout.write(HELP['receive-file']!);
    return EXIT.OK;
  }
  const outText = stringValue(values, 'out');
  if (outText === undefined) throw new UsageError('--out <dir> is required: where received files go');
  const outDir = resolvePath(outText);
  const bootstrap = await bootstrapValue(values);
  const host = hostValue(values, bootstrap);
  const port = portValue(values);
  const timeoutMs = timeoutValue(values, 10);
  const noiseMode = noiseModeValue(values);
  try {
    await mkdir(outDir, { recursive: true });
    await access(outDir, 2 /* W_OK */);
  } catch (error) {
    throw new CliError(EXIT.FILE, `cannot write into ${outDir}: ${(error as Error).message}`);
  }
  const { identity, note } = identityValue(values);
  if (note) err(note);
  const node = receiverNode({ identity, host, port, bootstrap, noise: noiseMode });

  let settleFirst: (result: Received) => void = () => undefined;
  const first = new Promise<Received>((resolve) => (settleFirst = resolve));

  /** Receives one transfer from chunks, saves it, returns the confirmation to send back. */
  const receive = async (chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, sender: string, transport: Transport): Promise<{ ack: Uint8Array; result: Received }> => {
    const partPath = join(outDir, `.deccom-${randomBytes(6).toString('hex')}.part`);
    let handle: FileHandle | undefined;
    let progress: Progress | undefined;
    let header: FileHeader | undefined;
    const startedAt = performance.now();
    const parser = new FileParser(
      async (parsed) => {
        header = parsed;
        handle = await open(partPath, 'wx', 0o644);
        if (transport === 'tcp') progress = new Progress(io.stderr, `receiving ${parsed.name}`, parsed.size);
      },
      async (piece) => {
        await handle!.write(piece);
        progress?.update(parser.contentBytes);
      },
    );
    let saveError: Error | undefined;
    try {
      for await (const chunk of chunks) await parser.push(chunk);
      const { expected, actual } = parser.finish();
      progress?.finish();
      await handle?.close();
      handle = undefined;
      const seconds = (performance.now() - startedAt) / 1000;
      const name = header!.name;
      if (hex(expected) !== hex(actual)) {
        await unlink(partPath).catch(() => undefined);
        err(`received ${name} from ${sender}… over ${transport}, but its SHA-256 ${hex(actual)} differs from the sender's ${hex(expected)}; discarded`);
        return { ack: encodeAck(ACK_STATUS.HASH_DIFFERS, actual), result: { exitCode: EXIT.INTEGRITY } };
      }
      const finalPath = await freePath(outDir, name);
      await rename(partPath, finalPath);
      // rudp hands over whole messages, so only a stream's receiver can time the transfer.
      const timing = transport === 'tcp' ? ` in ${seconds.toFixed(2)} s, ${megabytesPerSecond(header!.size, seconds).toFixed(1)} MB/s` : '';
      out(`received ${name}: ${header!.size} bytes from ${sender}… over ${transport}${timing}; SHA-256 ${hex(actual)} ok -> ${finalPath}`);
      return { ack: encodeAck(ACK_STATUS.INTACT, actual), result: { exitCode: EXIT.OK } };
    } catch (error) {
      progress?.finish();
      saveError = error as Error;
      await handle?.close().catch(() => undefined);
      await unlink(partPath).catch(() => undefined);
      const wireProblem = error instanceof FileWireError;
      err(`${wireProblem ? 'a broken transfer' : 'could not save a file'} from ${sender}… over ${transport}: ${saveError.message}`);
      return { ack: encodeAck(ACK_STATUS.NOT_SAVED, new Uint8Array(32)), result: { exitCode: wireProblem ? EXIT.NETWORK : EXIT.FILE } };
    }
  };

  node.handle('reliable-message', (data, from) => {
    const sender = node.secureSession(from)?.remoteId;
    if (sender === undefined) return; // strict Noise delivers nothing unauthenticated; belt and braces
    void (async () => {
      const { ack, result } = await receive([data], sender.short, 'rudp');
      node.sendDatagram(from, ack);
      settleFirst(result);
    })();
  });
  node.handle('stream', async (source, from) => {
    const { ack, result } = await receive(source, from.short, 'tcp');
    try {
      await node.sendMessage(from, ack, { timeoutMs });
    } catch (error) {
      err(`could not confirm to ${from.short}…: ${(error as Error).message}`);
    }
    settleFirst(result);
  });

  await node.start();
  try {
    const address = node.localAddress();
    out(`id       ${node.id.hex}`);
    out(`address  ${at(address)} (udp; tcp port ${node.localTcpPort()})`);
    out(`saving into ${outDir}`);
    if (bootstrap.length > 0) {
      await joinNetwork(node, bootstrap, timeoutMs, io.signal);
      out(`joined through ${bootstrap.map(at).join(', ')}`);
    }
    out(`send with: deccom send-file <path> --to ${at(address)}   (or --to ${node.id.short} with --bootstrap)`);
    if (values['once'] === true) {
      const result = await Promise.race([first, untilAborted(io.signal).then(() => undefined)]);
      return result?.exitCode ?? EXIT.OK;
    }
    await untilAborted(io.signal);
    return EXIT.OK;
  } finally {
    await node.stop();
  }
}

/** `name`, or `name.1`, `name.2`, ... : never overwrites an existing file. */
async function freePath(dir: string, name: string): Promise<string> {
  for (let i = 0; i < 10_000; i++) {
    const candidate = join(dir, i === 0 ? name : `${name}.${i}`);
    try {
      await access(candidate);
    } catch {
      return candidate;
    }
  }
  throw new Error(`no free name for ${name} in ${dir}`);
}
