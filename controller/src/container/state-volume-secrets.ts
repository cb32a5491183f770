import { createHash } from 'node:crypto';
import { AGENT_UID, CA_FILE, SECRETS_DIR, STATE_DIR, TOKEN_FILE } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { tarFiles } from '../engine/tar.js';
import type { AgentSpec } from './agent-container-spec.js';

/**
 * The secrets the controller delivers into the agent's state volume (the enrollment token, a private CA), each
 * delivered once. The agent removes the token file after its first registration (a Ray task runs as the agent's
 * user and could read it), so the file's absence says nothing; `delivered.json` beside it records digests of what
 * was delivered, so the same token is not written back on every start and a new one is written exactly once.
 * The digests are salted with a fixed label and the token is 256 random bits: they give a reader nothing usable.
 */
export const DELIVERED_FILE = `${SECRETS_DIR}/delivered.json`;

export interface SecretDigests {
  token?: string;
  managerCa?: string;
}

/** The secrets of a spec that are not yet in the volume, as `spec` fields; {} when there is nothing to write. */
export type SecretsToWrite = Pick<AgentSpec, 'token' | 'managerCaPem'>;

const digest = (kind: string, value: string) =>
  createHash('sha256').update(`ray-agent delivered ${kind}\0${value}`).digest('hex');

export function secretDigests(spec: SecretsToWrite): SecretDigests {
  return {
    ...(spec.token !== undefined ? { token: digest('enrollment token', spec.token) } : {}),
    ...(spec.managerCaPem !== undefined ? { managerCa: digest('manager CA', spec.managerCaPem) } : {}),
  };
}

/** What of the spec's secrets differs from what was delivered. A secret the spec does not give is left alone. */
export function secretsToWrite(spec: SecretsToWrite, delivered: SecretDigests): SecretsToWrite {
  const given = secretDigests(spec);
  return {
    ...(given.token !== undefined && given.token !== delivered.token ? { token: spec.token } : {}),
    ...(given.managerCa !== undefined && given.managerCa !== delivered.managerCa
      ? { managerCaPem: spec.managerCaPem }
      : {}),
  };
}

/** Path inside the archive, which is put at STATE_DIR. */
const inVolume = (file: string) => file.slice(STATE_DIR.length + 1);

/**
 * The tar for `putArchive` at STATE_DIR: `secrets/` (0700) and only the secrets given (0600), owned by the agent's
 * uid, plus the updated record of what was delivered. Never an empty secret file: the agent would read an empty
 * token as a bad one.
 */
export function secretsArchive(write: SecretsToWrite, delivered: SecretDigests): Buffer {
  const owner = { uid: AGENT_UID, gid: AGENT_UID };
  const files = [];
  if (write.token !== undefined) files.push({ name: inVolume(TOKEN_FILE), content: write.token });
  if (write.managerCaPem !== undefined) files.push({ name: inVolume(CA_FILE), content: write.managerCaPem });
  const record: SecretDigests = { ...delivered, ...secretDigests(write) };
  return tarFiles([
    { name: `${inVolume(SECRETS_DIR)}/`, directory: true, mode: 0o700, ...owner },
    ...files.map((file) => ({ ...file, mode: 0o600, ...owner })),
    { name: inVolume(DELIVERED_FILE), content: `${JSON.stringify(record)}\n`, mode: 0o600, ...owner },
  ]);
}

/** What the state volume says was delivered; {} for a new volume or an unreadable record (then all is rewritten). */
export async function readDelivered(container: Dockerode.Container): Promise<SecretDigests> {
  let archive: Buffer;
  try {
    const stream = await container.getArchive({ path: DELIVERED_FILE });
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    archive = Buffer.concat(chunks);
  } catch (error) {
    if ((error as { statusCode?: unknown }).statusCode === 404) return {};
    throw error;
  }
  const text = firstFileOf(archive);
  if (text === null) return {};
  try {
    const data = JSON.parse(text) as Record<string, unknown>;
    const hex = (value: unknown) => (typeof value === 'string' && /^[0-9a-f]{64}$/.test(value) ? value : undefined);
    const token = hex(data.token);
    const managerCa = hex(data.managerCa);
    return { ...(token ? { token } : {}), ...(managerCa ? { managerCa } : {}) };
  } catch {
    return {};
  }
}

/** The content of the first regular file in a tar (Docker's archive of one path), skipping pax headers. */
export function firstFileOf(archive: Buffer): string | null {
  for (let offset = 0; offset + 512 <= archive.length; ) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) return null;
    const size = Number.parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const body = offset + 512;
    if (type === '0' || type === '\0') return archive.subarray(body, body + size).toString('utf8');
    offset = body + Math.ceil(size / 512) * 512;
  }
  return null;
}
