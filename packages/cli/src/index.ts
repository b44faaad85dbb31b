/**
 * `@deccom/cli`: the `deccom` command. Run DecCom nodes from a shell: a bootstrap node,
 * an encrypted chat (by id or topic), file transfers over reliable UDP or TCP with a
 * progress bar and a SHA-256 check, status and stack diagrams.
 *
 * ```sh
 * npx deccom bootstrap --port 7000
 * npx deccom chat --bootstrap 127.0.0.1:7000 --name alice
 * ```
 *
 * The same entry point runs in-process:
 *
 * ```ts
 * import { main } from '@deccom/cli';
 * const code = await main(['describe', '--stack', 'chat']); // prints the diagram, returns 0
 * ```
 */
import { readFileSync } from 'node:fs';
import { CliError, EXIT, UsageError } from './errors.js';
import { HELP } from './help.js';
import { defaultIo, type CliIo } from './io.js';
import { bootstrapCommand } from './commands/bootstrap.js';
import { chatCommand } from './commands/chat.js';
import { receiveFileCommand, sendFileCommand } from './commands/transfer.js';
import { describeCommand } from './commands/describe.js';
import { statusCommand } from './commands/status.js';

export { CliError, UsageError, EXIT, type ExitCode } from './errors.js';
export { progressBar, Progress, megabytesPerSecond, formatSize, type ProgressStream } from './progress.js';
export type { CliIo, OutputStream } from './io.js';

type Command = (args: readonly string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  bootstrap: bootstrapCommand,
  chat: chatCommand,
  'send-file': sendFileCommand,
  'receive-file': receiveFileCommand,
  status: statusCommand,
  describe: describeCommand,
};

function version(): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return manifest.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Runs `deccom` with `argv` (the arguments after the program name) and resolves with the
 * exit code. Never throws: expected failures print a message on stderr.
 */
export async function main(argv: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const full: CliIo = { ...defaultIo(), ...io };
  const [command, ...rest] = argv;
  if (command === undefined) {
    full.stderr.write(HELP['main']!);
    return EXIT.USAGE;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    if (topic !== undefined && HELP[topic] === undefined) {
      full.stderr.write(`deccom: unknown command '${topic}'\n`);
      return EXIT.USAGE;
    }
    full.stdout.write(HELP[topic ?? 'main']!);
    return EXIT.OK;
  }
  if (command === '--version' || command === '-v') {
    full.stdout.write(`${version()}\n`);
    return EXIT.OK;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    full.stderr.write(`deccom: unknown command '${command}' (commands: ${Object.keys(COMMANDS).join(', ')}); run 'deccom --help'\n`);
    return EXIT.USAGE;
  }
  try {
    return await run(rest, full);
  } catch (error) {
    if (error instanceof UsageError) {
      full.stderr.write(`deccom ${command}: ${error.message}\nRun 'deccom ${command} --help' for usage.\n`);
      return error.exitCode;
    }
    if (error instanceof CliError) {
      full.stderr.write(`deccom ${command}: ${error.message}\n`);
      return error.exitCode;
    }
    const detail = error instanceof Error ? (process.env['DECCOM_DEBUG'] ? (error.stack ?? error.message) : `${error.name}: ${error.message}`) : String(error);
    full.stderr.write(`deccom ${command}: unexpected error: ${detail}\n`);
    return EXIT.FAILURE;
  }
}
