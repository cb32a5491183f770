import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WireguardKey } from '@ray-agent/protocol';
import { writeFileAtomic } from './atomic-file.js';

export interface KeyPair {
  privateKey: WireguardKey;
  publicKey: WireguardKey;
}

/** WireGuard keys are X25519 keys: `wg genkey` prints the raw 32 private bytes in base64, `wg pubkey` the public. */
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  return { privateKey: rawBase64(privateKey, 'd'), publicKey: rawBase64(createPublicKey(privateKey), 'x') };
}

/** PKCS#8 DER of an X25519 private key is this header followed by the 32 raw bytes (RFC 8410). */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** What `wg pubkey` prints for this private key. */
export function publicKeyOf(privateKey: WireguardKey): WireguardKey {
  const der = Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey, 'base64')]);
  return rawBase64(createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })), 'x');
}

function rawBase64(key: KeyObject, field: 'd' | 'x'): WireguardKey {
  const value = key.export({ format: 'jwk' })[field];
  if (typeof value !== 'string') throw new Error(`the X25519 key has no ${field}`);
  return Buffer.from(value, 'base64url').toString('base64');
}

export interface KeyFiles {
  privateKeyFile: string;
  publicKeyFile: string;
}

/**
 * The key pair in its files: the existing one when its private key is valid (a key survives restarts, so the manager and
 * the other end keep knowing it), else a new one. The private key is 0600 and never leaves the directory; the public
 * key (0644) is rewritten from it, so a lost or stale public.key cannot disagree with the private key.
 */
export function ensureKeyPair({ privateKeyFile, publicKeyFile }: KeyFiles): KeyPair & { created: boolean } {
  const existing = readKey(privateKeyFile);
  const pair = existing ? { privateKey: existing, publicKey: publicKeyOf(existing) } : generateKeyPair();
  if (!existing) writeFileAtomic(privateKeyFile, `${pair.privateKey}\n`, 0o600);
  if (readKey(publicKeyFile) !== pair.publicKey) writeFileAtomic(publicKeyFile, `${pair.publicKey}\n`, 0o644);
  return { ...pair, created: !existing };
}

function readKey(path: string): WireguardKey | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = WireguardKey.safeParse(text);
  return parsed.success ? parsed.data : undefined;
}
