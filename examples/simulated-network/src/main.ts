/**
 * `npx -y pnpm@10.34.9 --filter @deccom-examples/simulated-network start [size] [lookups]`
 * (after `pnpm build`): a simulated Kademlia network, 1,000 nodes by default.
 */
import { simulatedNetwork } from './scenario.js';

const [sizeArgument, lookupsArgument] = process.argv.slice(2);
const size = Number(sizeArgument ?? process.env['NODES'] ?? 1_000);
const lookups = Number(lookupsArgument ?? process.env['LOOKUPS'] ?? 500);
if (!Number.isInteger(size) || size < 2 || !Number.isInteger(lookups) || lookups < 1) {
  console.error('usage: main.js [nodes >= 2] [lookups >= 1]');
  process.exit(2);
}
const report = await simulatedNetwork((line) => console.log(line), { size, lookups });
process.exitCode = report.found === report.lookups ? 0 : 1;
