import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { x25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import {
  coreCrypto,
  fromHex,
  Identity,
  IdentityError,
  nobleCrypto,
  nodeCoreCrypto,
  NodeId,
  toHex,
  utf8Encode,
  type CoreCrypto,
} from '../src/index.js';

const VECTORS = new URL('../../../../shared/vectors/wycheproof/ed25519_test.json', import.meta.url);

interface WycheproofGroup {
  publicKey: { pk: string };
  tests: { tcId: number; msg: string; sig: string; result: 'valid' | 'invalid' | 'acceptable' }[];
}

const paths: [string, CoreCrypto][] = [['noble', nobleCrypto]];
const nodePath = nodeCoreCrypto();
if (nodePath) paths.push(['node', nodePath]);

describe('node ids', () => {
  it('is SHA-256 of the public identity', () => {
    const alice = Identity.fromString('alice');
    expect(alice.id.hex).toBe(toHex(nobleSha256(utf8Encode('alice'))));
    expect(NodeId.ofString('alice').equals(alice.id)).toBe(true);
    const ed = Identity.fromSeed(new Uint8Array(32).fill(1));
    expect(ed.id.hex).toBe(toHex(nobleSha256(ed.public.bytes)));
    expect(NodeId.fromHex(ed.id.hex).equals(ed.id)).toBe(true);
    expect(() => NodeId.fromHex('zz')).toThrow(/64 hex characters/);
    expect(() => new NodeId(new Uint8Array(3))).toThrow(/expected 32 bytes/);
  });

  it('gives string identities no signing ability, with a typed error', () => {
    const bob = Identity.fromString('bob');
    expect(bob.canSign).toBe(false);
    expect(() => bob.sign(Uint8Array.of(1))).toThrow(IdentityError);
    expect(bob.public.verify(Uint8Array.of(1), new Uint8Array(64))).toBe(false);
  });
});

describe.each(paths)('Ed25519 on the %s path', (_name, crypto) => {
  it('signs and verifies, and both paths agree byte for byte', () => {
    const seed = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    // RFC 8032 section 7.1, test 1.
    expect(toHex(crypto.ed25519PublicKey(seed))).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const signature = crypto.ed25519Sign(seed, new Uint8Array(0));
    expect(toHex(signature)).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    expect(crypto.ed25519Verify(crypto.ed25519PublicKey(seed), new Uint8Array(0), signature)).toBe(true);
  });

  it('passes the Wycheproof Ed25519 vectors', () => {
    if (!existsSync(VECTORS)) {
      console.warn(`Wycheproof vectors not found at ${VECTORS.pathname}: skipped`);
      return;
    }
    const suite = JSON.parse(readFileSync(VECTORS, 'utf8')) as { testGroups: WycheproofGroup[] };
    let checked = 0;
    for (const group of suite.testGroups) {
      for (const test of group.tests) {
        const ok = crypto.ed25519Verify(fromHex(group.publicKey.pk), fromHex(test.msg), fromHex(test.sig));
        expect(ok, `tcId ${test.tcId}`).toBe(test.result === 'valid');
        checked++;
      }
    }
    expect(checked).toBe(151);
  });
});

describe('Ed25519 to X25519', () => {
  it('maps both halves consistently, so two identities agree on a shared secret', () => {
    const a = Identity.fromSeed(new Uint8Array(32).fill(3));
    const b = Identity.fromSeed(new Uint8Array(32).fill(4));
    const ab = x25519.getSharedSecret(a.x25519Secret(), b.public.toX25519());
    const ba = x25519.getSharedSecret(b.x25519Secret(), a.public.toX25519());
    expect(toHex(ab)).toBe(toHex(ba));
    expect(toHex(x25519.getPublicKey(a.x25519Secret()))).toBe(toHex(a.public.toX25519()));
  });

  it('uses node:crypto by default where the platform has it', () => {
    expect(coreCrypto().name).toBe(nodePath ? 'node' : 'noble');
    expect(toHex(coreCrypto().sha256(utf8Encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
