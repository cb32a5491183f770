import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Bytes of randomness in every secret the manager issues (enrollment tokens, credentials). */
export const SECRET_BYTES = 32;

/** A fresh random secret, base64url without padding (43 characters for 32 bytes). */
export function generateSecret(bytes: number = SECRET_BYTES): string {
  return randomBytes(bytes).toString('base64url');
}

/** SHA-256 of a secret, hex. The only form in which a secret is ever stored. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex SHA-256 hashes. */
export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

/** Constant-time comparison of two secrets in clear (configured ones, never stored): compares their hashes. */
export function secretsEqual(given: string, expected: string): boolean {
  return hashesEqual(hashSecret(given), hashSecret(expected));
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** `prv-` followed by 12 lowercase base32 characters (60 random bits); matches protocol's ProviderId. */
export function generateProviderId(): string {
  const bytes = randomBytes(12);
  let suffix = '';
  for (const byte of bytes) suffix += BASE32[byte & 31];
  return `prv-${suffix}`;
}

/** The secret carried by an `Authorization: Bearer <secret>` header, or null when absent or malformed. */
export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1] ?? null;
}
