/** Where a command reads and writes, so main() runs the same in a process or in a test. */

export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface CliIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** Aborted on SIGINT / SIGTERM (bin.ts): long-running commands stop cleanly and return 0. */
  readonly signal: AbortSignal;
}

export function defaultIo(signal: AbortSignal = new AbortController().signal): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, signal };
}

/** Line printers on an io's streams. */
export function printers(io: CliIo): { out: (line: string) => void; err: (line: string) => void } {
  return {
    out: (line) => io.stdout.write(`${line}\n`),
    err: (line) => io.stderr.write(`${line}\n`),
  };
}
