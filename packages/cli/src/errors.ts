/**
 * Exit codes of the `deccom` command, and the error that carries one. Every failure the
 * CLI expects ends as a CliError: main() prints its message on stderr and returns its code.
 */

/** Documented exit codes (packages/cli/README.md lists them). */
export const EXIT = {
  /** Done (or stopped cleanly by SIGINT / SIGTERM). */
  OK: 0,
  /** An unexpected error (a bug: please report it with the message). */
  FAILURE: 1,
  /** Bad command line: unknown command or flag, missing or malformed value. */
  USAGE: 2,
  /** Network: no bootstrap node answered, a peer was not found, did not answer or did not confirm. */
  NETWORK: 3,
  /** Files: the input cannot be read, the output directory cannot be written, a bad identity file. */
  FILE: 4,
  /** Integrity: the SHA-256 of a received file differs from the sender's. */
  INTEGRITY: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An expected failure with the exit code it ends the command with. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A bad command line (exit code 2). */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(EXIT.USAGE, message);
    this.name = 'UsageError';
  }
}
