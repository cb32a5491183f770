import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SecretCodec } from '../../src/app/token-vault.js';

/**
 * A test codec standing in for the OS keychain (Electron's safeStorage cannot run here): AES-256-GCM with a random
 * key held in memory, so the bytes on disk are real ciphertext. `calls` records what the vault asked of it.
 */
export function testKeychainCodec(backend = 'gnome_libsecret'): SecretCodec & { calls: string[] } {
  const key = randomBytes(32);
  const calls: string[] = [];
  return {
    calls,
    isEncryptionAvailable: () => true,
    backend: () => backend,
    encrypt(text) {
      calls.push('encrypt');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]);
    },
    decrypt(buf) {
      calls.push('decrypt');
      const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, 12));
      decipher.setAuthTag(buf.subarray(12, 28));
      return Buffer.concat([decipher.update(buf.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}
