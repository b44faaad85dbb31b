/**
 * Runs the built `deccom` (node packages/cli/dist/bin.js) as a child process: collects its
 * output, waits for lines, and kills whatever is still running in afterAll.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
export const built = (): boolean => existsSync(BIN);

export class CliProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;
  private exitCode: number | null | undefined;

  constructor(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8').on('data', (text: string) => (this.stdout += text));
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
    this.child.stdin.on('error', () => undefined); // writing to a process that already left
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': 'exit' can come before the last output on the pipes has been
      // read (seen under load: an exit code with an empty stderr).
      this.child.on('close', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exitCode !== undefined;
  }

  write(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  endInput(): void {
    this.child.stdin.end();
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.hasExited) this.child.kill(signal);
  }

  /** Resolves with the first match of `pattern` in stdout (or stderr with `stream`), bounded by `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this[stream].match(pattern);
      if (match) return match;
      if (this.hasExited) throw new Error(`deccom exited (${this.exitCode}) before printing ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Waits for the exit (bounded), killing the process if it does not leave in time. */
  async exit(timeoutMs = 20_000): Promise<number | null> {
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

const running = new Set<CliProcess>();

/** Runs `deccom args` to its end. */
export async function runCli(args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = new CliProcess(args, options);
  cli.endInput();
  const code = await cli.exit(options.timeoutMs ?? 30_000);
  return { code, stdout: cli.stdout, stderr: cli.stderr };
}

/** For afterAll: kills every child still running, and waits for them. */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const cli of left) cli.signal('SIGKILL');
  await Promise.all(left.map((cli) => cli.exited));
}

/** A UDP port nobody listens on: bound, then released. */
export async function closedUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

