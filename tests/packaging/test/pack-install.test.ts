// The published tarballs work on their own: pack @deccom/core, @deccom/udp and
// @deccom/kademlia as `pnpm publish` would, npm-install ONLY those tarballs into a fresh
// project outside the workspace, and run two nodes there that find each other through
// Kademlia on 127.0.0.1. Catches what workspace tests cannot: a file missing from `files`,
// an exports map pointing nowhere, a `workspace:` range left in a tarball, a runtime
// dependency that is only satisfied by the monorepo's node_modules.
// Needs the npm registry for @noble/* (the only third-party dependencies) and built dist/.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packPackages, ROOT, type PackedPackage } from '../../../scripts/pack-packages.mjs';

const PACKAGES = ['@deccom/core', '@deccom/udp', '@deccom/kademlia'];
const INSTALL_TIMEOUT_MS = 240_000;
const RUN_TIMEOUT_MS = 60_000;

// Two nodes on loopback: the second joins through the first; each finds the other by id,
// then a datagram goes through Kademlia's application-data path. Bounded retries while the
// join settles; a watchdog ends the process if anything hangs.
const TWO_NODES = `
import { createNode, Identity } from '@deccom/core';
import { MemoryNetwork } from '@deccom/core/testing';
import { udp } from '@deccom/udp';
import { kademlia } from '@deccom/kademlia';
import { buildNetwork } from '@deccom/kademlia/simulation';

const watchdog = setTimeout(() => { console.error('watchdog: no result in 30 s'); process.exit(3); }, 30_000);
const seed = createNode({ identity: Identity.generate(), layers: [udp({ host: '127.0.0.1' }), kademlia()] });
await seed.start();
const joiner = createNode({
  identity: Identity.generate(),
  layers: [udp({ host: '127.0.0.1' }), kademlia({ bootstrap: [seed.localAddress()] })],
});
await joiner.start();

async function find(node, id) {
  let lastError;
  for (let attempt = 0; attempt < 50; attempt += 1) {
    try {
      return await node.findPeer(id, { timeoutMs: 2_000 });
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw lastError;
}
const seedFound = await find(joiner, seed.id);
const joinerFound = await find(seed, joiner.id);
const received = new Promise((resolve) => {
  seed.handle('datagram', (data, from) => resolve({ text: new TextDecoder().decode(data), port: from.port }));
});
joiner.sendDatagram(seedFound.address, new TextEncoder().encode('hello from the tarballs'));
const datagram = await received;
console.log(JSON.stringify({
  seed: { id: seed.id.hex, port: seed.localAddress().port },
  joiner: { id: joiner.id.hex, port: joiner.localAddress().port },
  joinerFoundSeed: { id: seedFound.id.hex, host: seedFound.address.host, port: seedFound.address.port },
  seedFoundJoiner: { id: joinerFound.id.hex, host: joinerFound.address.host, port: joinerFound.address.port },
  datagram,
  subpaths: { memoryNetwork: typeof MemoryNetwork, buildNetwork: typeof buildNetwork },
}));
await joiner.stop();
await seed.stop();
clearTimeout(watchdog);
`;

interface RunOutput {
  seed: { id: string; port: number };
  joiner: { id: string; port: number };
  joinerFoundSeed: { id: string; host: string; port: number };
  seedFoundJoiner: { id: string; host: string; port: number };
  datagram: { text: string; port: number };
  subpaths: { memoryNetwork: string; buildNetwork: string };
}

function run(command: string, args: string[], cwd: string, timeout: number) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, npm_config_update_notifier: 'false', NODE_OPTIONS: '' },
  });
  if (result.error) throw result.error;
  return result;
}

describe('packed tarballs installed outside the workspace', () => {
  let workDir: string;
  let project: string;
  let packed: PackedPackage[];
  let packInstallMs = 0;

  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'deccom-pack-install-'));
    expect(workDir.startsWith(ROOT)).toBe(false);
    const started = Date.now();
    packed = packPackages(join(workDir, 'tarballs'), PACKAGES);
    project = join(workDir, 'app');
    // npm refuses an empty directory without package.json; a minimal ESM project.
    rmSync(project, { recursive: true, force: true });
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'deccom-consumer', private: true, type: 'module' }, null, 2));
    const install = run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...packed.map((pkg) => pkg.tarball)],
      project,
      INSTALL_TIMEOUT_MS,
    );
    if (install.status !== 0) throw new Error(`npm install failed (${install.status}):\n${install.stdout}\n${install.stderr}`);
    packInstallMs = Date.now() - started;
  }, INSTALL_TIMEOUT_MS + 60_000);

  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('packs with real versions in place of workspace: ranges', () => {
    expect(packed.map((pkg) => pkg.name)).toEqual([...PACKAGES].sort());
    for (const pkg of packed) {
      const manifest = JSON.parse(readFileSync(join(project, 'node_modules', pkg.name, 'package.json'), 'utf8'));
      expect(manifest.version).toBe(pkg.version);
      for (const range of Object.values<string>(manifest.dependencies ?? {})) expect(range).not.toMatch(/^workspace:/);
      expect(existsSync(join(project, 'node_modules', pkg.name, 'LICENSE'))).toBe(true);
      expect(existsSync(join(project, 'node_modules', pkg.name, 'README.md'))).toBe(true);
    }
  });

  it('installs nothing but the three packages and @noble/*', () => {
    const installed: string[] = [];
    const modules = join(project, 'node_modules');
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      if (entry.startsWith('@')) for (const scoped of readdirSync(join(modules, entry))) installed.push(`${entry}/${scoped}`);
      else installed.push(entry);
    }
    const foreign = installed.filter((name) => !PACKAGES.includes(name) && !name.startsWith('@noble/'));
    expect(foreign).toEqual([]);
    for (const name of PACKAGES) expect(installed).toContain(name);
    console.log(`pack + npm install of ${PACKAGES.join(', ')}: ${packInstallMs} ms; installed: ${installed.join(', ')}`);
  });

  it('two nodes from the tarballs find each other through Kademlia on 127.0.0.1', () => {
    writeFileSync(join(project, 'two-nodes.mjs'), TWO_NODES);
    const result = run(process.execPath, ['two-nodes.mjs'], project, RUN_TIMEOUT_MS);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const output = JSON.parse(lines[lines.length - 1] ?? '') as RunOutput;
    expect(output.seed.id).toMatch(/^[0-9a-f]{64}$/);
    expect(output.joiner.id).not.toBe(output.seed.id);
    expect(output.joinerFoundSeed).toEqual({ id: output.seed.id, host: '127.0.0.1', port: output.seed.port });
    expect(output.seedFoundJoiner).toEqual({ id: output.joiner.id, host: '127.0.0.1', port: output.joiner.port });
    expect(output.datagram).toEqual({ text: 'hello from the tarballs', port: output.joiner.port });
    expect(output.subpaths).toEqual({ memoryNetwork: 'function', buildNetwork: 'function' });
  }, RUN_TIMEOUT_MS + 10_000);
});
