/** `npx -y pnpm@10.34.9 --filter @deccom-examples/nat-traversal start` (after `pnpm build`). */
import { natTraversal } from './scenario.js';

const results = await natTraversal((line) => console.log(line));
process.exitCode = results.every((result) => result.answered === result.holepunch) ? 0 : 1;
