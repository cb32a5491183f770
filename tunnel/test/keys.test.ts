import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WireguardKey } from '@ray-agent/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureKeyPair, generateKeyPair, publicKeyOf } from '../src/keys.js';

const wgPubkey = (privateKey: string) =>
  execFileSync('wg', ['pubkey'], { input: `${privateKey}\n`, encoding: 'utf8' }).trim();
const hasWg = (() => {
  try {
    execFileSync('wg', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('WireGuard keys', () => {
  const dirs: string[] = [];
  const dir = () => {
    const made = mkdtempSync(join(tmpdir(), 'tunnel-keys-'));
    dirs.push(made);
    return { privateKeyFile: join(made, 'private.key'), publicKeyFile: join(made, 'public.key') };
  };
  afterEach(() => {
    for (const made of dirs.splice(0)) rmSync(made, { recursive: true, force: true });
  });

  it.skipIf(!hasWg)('a generated pair is what `wg pubkey` derives, in the protocol format', () => {
    for (let i = 0; i < 5; i += 1) {
      const pair = generateKeyPair();
      expect(WireguardKey.parse(pair.privateKey)).toBe(pair.privateKey);
      expect(WireguardKey.parse(pair.publicKey)).toBe(pair.publicKey);
      expect(wgPubkey(pair.privateKey)).toBe(pair.publicKey);
    }
  });

  it.skipIf(!hasWg)('the public key of a `wg genkey` private key matches `wg pubkey`', () => {
    const privateKey = execFileSync('wg', ['genkey'], { encoding: 'utf8' }).trim();
    expect(publicKeyOf(privateKey)).toBe(wgPubkey(privateKey));
  });

  it('writes the private key 0600 and the public key 0644, and reuses them after a restart', () => {
    const files = dir();
    const first = ensureKeyPair(files);
    expect(first.created).toBe(true);
    expect(statSync(files.privateKeyFile).mode & 0o777).toBe(0o600);
    expect(statSync(files.publicKeyFile).mode & 0o777).toBe(0o644);
    expect(readFileSync(files.publicKeyFile, 'utf8').trim()).toBe(first.publicKey);
    const again = ensureKeyPair(files);
    expect(again).toEqual({ ...first, created: false });
  });

  it('rewrites a public key that disagrees with the private key', () => {
    const files = dir();
    const first = ensureKeyPair(files);
    writeFileSync(files.publicKeyFile, `${generateKeyPair().publicKey}\n`);
    expect(ensureKeyPair(files).publicKey).toBe(first.publicKey);
    expect(readFileSync(files.publicKeyFile, 'utf8').trim()).toBe(first.publicKey);
  });
});
