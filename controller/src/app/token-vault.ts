import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { EnrollmentToken, type TokenState } from '@ray-agent/protocol';
import { writeFileAtomic } from '@ray-agent/tunnel/atomic-file';

/**
 * Encrypts with the operating system's secret store. Electron's `safeStorage` fits it (macOS Keychain, Windows
 * DPAPI, Linux libsecret/KWallet); `backend()` is `safeStorage.getSelectedStorageBackend()` on Linux.
 */
export interface SecretCodec {
  isEncryptionAvailable(): boolean;
  backend(): string;
  encrypt(text: string): Buffer;
  decrypt(buf: Buffer): string;
}

export const TOKEN_FILE = 'token.enc';

export const NO_SECURE_STORAGE =
  'No secure storage (OS keychain) is available on this system, so the token cannot be stored safely. Install and unlock a keyring (e.g. GNOME Keyring or KWallet) and try again, or use the ray-agent CLI with AGENT_TOKEN_FILE.';

/**
 * Backends that do not protect the token: Chromium's `basic_text` encrypts with a password hardcoded in Chromium
 * itself; `plain_text` does not encrypt. `unknown` is what Electron reports before the app is ready.
 */
const INSECURE_BACKENDS = new Set(['basic_text', 'plain_text', 'unknown']);

export type SetTokenResult = { ok: true } | { ok: false; error: string };

/** The enrollment token, encrypted by the OS keychain, base64 in `<dir>/token.enc` (mode 0600, written atomically). */
export class TokenVault {
  readonly file: string;
  readonly #codec: SecretCodec;

  constructor(dir: string, codec: SecretCodec) {
    this.file = path.join(dir, TOKEN_FILE);
    this.#codec = codec;
  }

  /** Why a token cannot be stored here, or null. */
  unavailableReason(): string | null {
    try {
      if (!this.#codec.isEncryptionAvailable()) return NO_SECURE_STORAGE;
      return INSECURE_BACKENDS.has(this.#codec.backend()) ? NO_SECURE_STORAGE : null;
    } catch {
      return NO_SECURE_STORAGE;
    }
  }

  state(): TokenState {
    return { stored: this.#readFile() !== null, unavailableReason: this.unavailableReason() };
  }

  /** Validates and stores the token. Messages name the problem and never repeat the token. */
  set(raw: string): SetTokenResult {
    if (typeof raw !== 'string') return { ok: false, error: 'The enrollment token must be text.' };
    const parsed = EnrollmentToken.safeParse(raw);
    if (!parsed.success) {
      return { ok: false, error: `The enrollment token ${parsed.error.issues[0]?.message ?? 'is not valid'}.` };
    }
    const reason = this.unavailableReason();
    if (reason) return { ok: false, error: reason };
    let sealed: Buffer;
    try {
      sealed = this.#codec.encrypt(parsed.data);
    } catch (error) {
      return { ok: false, error: `The OS keychain could not encrypt the token: ${messageOf(error)}` };
    }
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, `${sealed.toString('base64')}\n`, 0o600);
    return { ok: true };
  }

  /** The token, or null when none is stored. Throws a sentence when the stored one cannot be decrypted. */
  get(): string | null {
    const text = this.#readFile();
    if (text === null) return null;
    const sealed = Buffer.from(text.trim(), 'base64');
    try {
      return this.#codec.decrypt(sealed);
    } catch (error) {
      throw new Error(
        `The stored enrollment token could not be decrypted (${messageOf(error)}); enter the token again in Settings.`,
      );
    }
  }

  /** Forget the token (it is needed only until the first registration). */
  clear(): void {
    rmSync(this.file, { force: true });
  }

  #readFile(): string | null {
    try {
      return readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
