import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NO_SECURE_STORAGE, TokenVault } from '../src/app/token-vault.js';
import { testKeychainCodec } from './support/test-keychain-codec.js';

const TOKEN = 'rat_3f9c2a7e4b1d8c6f0a5e9b2d7c4f1a8e';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'token-vault-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('TokenVault with a test codec standing in for the OS keychain', () => {
  it('stores the token encrypted, base64, mode 0600, and reads it back', () => {
    const vault = new TokenVault(dir, testKeychainCodec());
    expect(vault.state()).toEqual({ stored: false, unavailableReason: null });
    expect(vault.get()).toBeNull();
    expect(vault.set(`  ${TOKEN}\n`)).toEqual({ ok: true });
    expect(vault.state()).toEqual({ stored: true, unavailableReason: null });
    expect(vault.get()).toBe(TOKEN);

    const file = path.join(dir, 'token.enc');
    // Windows has no POSIX modes (DPAPI protects the bytes there); everywhere else the file is the user's alone.
    if (process.platform !== 'win32') expect(statSync(file).mode & 0o777).toBe(0o600);
    const bytes = readFileSync(file);
    expect(bytes.toString('utf8')).toMatch(/^[A-Za-z0-9+/]+=*\n$/);
    // The plaintext never reaches the disk, in any encoding.
    expect(bytes.includes(Buffer.from(TOKEN))).toBe(false);
    expect(bytes.includes(Buffer.from(Buffer.from(TOKEN).toString('base64').slice(0, 16)))).toBe(false);
    // No temp file left behind by the atomic write.
    expect(readdirSync(dir)).toEqual(['token.enc']);
  });

  it.skipIf(process.platform === 'win32')(
    'replacing the token keeps mode 0600 even over a file someone loosened',
    () => {
      const vault = new TokenVault(dir, testKeychainCodec());
      writeFileSync(path.join(dir, 'token.enc'), 'old\n', { mode: 0o644 });
      expect(vault.set(TOKEN)).toEqual({ ok: true });
      expect(statSync(path.join(dir, 'token.enc')).mode & 0o777).toBe(0o600);
      expect(vault.get()).toBe(TOKEN);
    },
  );

  it('clear() forgets the token', () => {
    const vault = new TokenVault(dir, testKeychainCodec());
    vault.set(TOKEN);
    vault.clear();
    expect(vault.state().stored).toBe(false);
    expect(vault.get()).toBeNull();
  });

  it('a token file from another keychain (or tampered) fails with a sentence, not the token', () => {
    new TokenVault(dir, testKeychainCodec()).set(TOKEN);
    const other = new TokenVault(dir, testKeychainCodec());
    expect(() => other.get()).toThrow(/^The stored enrollment token could not be decrypted .*enter the token again/);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['inner whitespace', 'rat_3f9c2a7e4b1d 8c6f0a5e9b2d7c4f', /contains spaces, line breaks or control characters/],
    ['a line break inside', 'rat_3f9c2a7e4b1d\n8c6f0a5e9b2d7c4f', /contains spaces, line breaks or control characters/],
    [
      'a control character',
      'rat_3f9c2a7e4b1d\u00078c6f0a5e9b2d7c4f',
      /contains spaces, line breaks or control characters/,
    ],
    ['non-ASCII', 'rat_3f9c2a7e4b1dé8c6f0a5e9b2d7c4f', /contains spaces, line breaks or control characters/],
    ['too short', 'rat_3f9c', /is too short: paste the whole token/],
    ['only whitespace', ' \n\t ', /is too short/],
    ['huge', `rat_${'a'.repeat(100_000)}`, /is too long: paste only the token/],
  ];
  for (const [what, input, message] of bad) {
    it(`refuses ${what} with a message that names the problem and does not echo the token`, () => {
      const codec = testKeychainCodec();
      const vault = new TokenVault(dir, codec);
      const result = vault.set(input);
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error).toMatch(/^The enrollment token /);
      expect(result.error).toMatch(message);
      expect(result.error).not.toContain(input.trim().slice(0, 8) || '\u0000');
      expect(codec.calls).toEqual([]);
      expect(readdirSync(dir)).toEqual([]);
    });
  }
});

describe('TokenVault refuses without secure storage (codecs standing in for the OS keychain)', () => {
  for (const backend of ['basic_text', 'plain_text']) {
    it(`backend ${backend}: refused with the explanation, nothing written`, () => {
      const codec = testKeychainCodec(backend);
      const vault = new TokenVault(dir, codec);
      expect(vault.state()).toEqual({ stored: false, unavailableReason: NO_SECURE_STORAGE });
      expect(vault.set(TOKEN)).toEqual({ ok: false, error: NO_SECURE_STORAGE });
      expect(codec.calls).toEqual([]);
      expect(readdirSync(dir)).toEqual([]);
    });
  }

  it('encryption unavailable: refused; the explanation points to a keyring and to the CLI', () => {
    const codec = { ...testKeychainCodec(), isEncryptionAvailable: () => false };
    const vault = new TokenVault(dir, codec);
    const result = vault.set(TOKEN);
    expect(result).toEqual({ ok: false, error: NO_SECURE_STORAGE });
    expect(NO_SECURE_STORAGE).toContain('GNOME Keyring or KWallet');
    expect(NO_SECURE_STORAGE).toContain('AGENT_TOKEN_FILE');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a codec that throws while encrypting: a sentence, nothing written', () => {
    const codec = {
      ...testKeychainCodec(),
      encrypt: () => {
        throw new Error('keyring is locked');
      },
    };
    const result = new TokenVault(dir, codec).set(TOKEN);
    expect(result).toEqual({ ok: false, error: 'The OS keychain could not encrypt the token: keyring is locked' });
    expect(readdirSync(dir)).toEqual([]);
  });
});
