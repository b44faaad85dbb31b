/** `npx -y pnpm@10.34.9 --filter @deccom-examples/private-network start` (after `pnpm build`). */
import { privateNetwork } from './scenario.js';

const report = await privateNetwork((line) => console.log(line));
process.exitCode = report.outsiderAdmittedBy.length === 0 ? 0 : 1;
