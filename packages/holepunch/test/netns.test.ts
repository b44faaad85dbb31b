/**
 * Real NATs: runs scripts/netns/holepunch-nat.sh, which builds two private networks
 * behind their own iptables MASQUERADE routers plus a public segment holding the
 * introducer, runs real nodes in them, and reports UDP punching, TCP punching and relay.
 * Skipped, loudly, where the machine cannot do it (not root, no namespaces, no
 * iptables); the in-memory NAT suite (simulator.test.ts) runs everywhere.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = new URL('../../../', import.meta.url).pathname;
const script = join(repo, 'scripts/netns/holepunch-nat.sh');
const packages = ['core', 'udp', 'kademlia', 'tcp', 'holepunch'];

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The script runs the built packages: rebuild any whose dist/ is older than its src/. */
function ensureBuilt(): string | undefined {
  for (const name of packages) {
    const dir = join(repo, 'packages', name);
    const built = join(dir, 'dist/index.js');
    if (existsSync(built) && statSync(built).mtimeMs >= newestSource(join(dir, 'src'))) continue;
    // tsc emits even when another package's sources are mid-edit and do not type-check;
    // only a missing output is fatal here (typecheck is its own CI step).
    const result = spawnSync(join(repo, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, encoding: 'utf8' });
    if (!existsSync(built)) return `could not build packages/${name}: ${result.stdout}${result.stderr}`;
  }
  return undefined;
}

const why = (): string | undefined => {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root (network namespaces and iptables)';
  return undefined;
};

describe('hole punching through real Linux NATs (network namespaces, iptables MASQUERADE)', () => {
  const reason = why();
  it.skipIf(reason !== undefined)(`UDP and TCP punching succeed, and the relay carries traffic when punching is impossible${reason ? ` [SKIPPED: ${reason}]` : ''}`, (context) => {
    const buildError = ensureBuilt();
    expect(buildError).toBeUndefined();
    const run = spawnSync('bash', [script, 'all'], { encoding: 'utf8', timeout: 240_000 });
    if (run.status === 77) {
      // The machine refused (no namespaces, no iptables): say so loudly and skip.
      process.stderr.write(`\n*** holepunch real-NAT test SKIPPED: ${run.stderr.trim()} ***\n\n`);
      context.skip(run.stderr.trim());
      return;
    }
    const lines = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { scenario: string; privateUnreachable?: boolean; result?: Record<string, any>; error?: string });
    const byScenario = new Map(lines.map((line) => [line.scenario, line]));
    const punch = byScenario.get('punch');
    const relay = byScenario.get('relay');
    const context_ = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    expect(punch, context_).toBeDefined();
    expect(relay, context_).toBeDefined();
    expect(punch!.privateUnreachable, context_).toBe(true);
    expect(punch!.result?.['udp']?.mechanism, context_).toBe('punched-udp');
    expect(punch!.result?.['udpEcho'], context_).toBe(true);
    expect(punch!.result?.['tcp']?.mechanism, context_).toBe('punched-tcp');
    expect(punch!.result?.['tcpEcho'], context_).toBe(true);
    expect(relay!.privateUnreachable, context_).toBe(true);
    expect(relay!.result?.['udp']?.mechanism, context_).toBe('relayed');
    expect(relay!.result?.['udpEcho'], context_).toBe(true);
    expect(run.status, context_).toBe(0);
  }, 300_000);
});
