#!/usr/bin/env node
/** The `deccom` executable: main() with SIGINT / SIGTERM turned into a clean stop. */
import { main } from './index.js';

const controller = new AbortController();
let signals = 0;
const onSignal = (): void => {
  signals += 1;
  // The first signal stops the node cleanly; a second one (an impatient Ctrl-C) leaves at once.
  if (signals > 1) process.exit(130);
  controller.abort();
};
// A closed pipe (`deccom ... | head`) stops the command like a signal instead of crashing it.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    controller.abort();
  });
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await main(process.argv.slice(2), { signal: controller.signal });
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
process.exitCode = code;
// stdin may still be open (a chat reading a terminal); nothing else holds the event loop.
process.stdin.destroy();
