import { randomUUID } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { ProviderId } from '@ray-agent/protocol';
import { z } from 'zod';
import { writeFileAtomic } from './atomic-file.js';

/** What the agent keeps on its state volume: a stable install ID and, once registered, its credentials. */
export const Credentials = z.object({
  version: z.literal(1),
  providerId: ProviderId,
  credential: z.string().min(32).max(256),
  managerBase: z.string(),
  registeredAt: z.iso.datetime(),
});
export type Credentials = z.infer<typeof Credentials>;

export class StateDirError extends Error {
  override name = 'StateDirError';
}

export class CorruptCredentialsError extends Error {
  override name = 'CorruptCredentialsError';
  constructor(readonly keptAt: string) {
    super(`the credentials file was unreadable and is kept at ${keptAt}; remove the state volume to register anew`);
  }
}

export class StateStore {
  readonly installIdPath: string;
  readonly credentialsPath: string;

  constructor(readonly dir: string) {
    this.installIdPath = join(dir, 'install-id');
    this.credentialsPath = join(dir, 'credentials.json');
  }

  /** Checked before the enrollment token is spent: a registration that cannot be saved would be lost. */
  preflight(): void {
    try {
      if (!existsSync(this.dir)) mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      if (!statSync(this.dir).isDirectory())
        throw new StateDirError(
          `${this.dir} is not a directory; mount a writable volume there, e.g. -v ray-agent-state:${this.dir}`,
        );
      accessSync(this.dir, constants.W_OK | constants.R_OK);
      const probe = join(this.dir, `.write-probe-${process.pid}`);
      writeFileAtomic(probe, 'ok');
      rmSync(probe);
    } catch (error) {
      if (error instanceof StateDirError) throw error;
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new StateDirError(
        `the state directory ${this.dir} is not writable (${code}); mount a writable volume there, e.g. -v ray-agent-state:${this.dir}`,
      );
    }
    for (const name of readdirSync(this.dir)) if (name.includes('.tmp-')) rmSync(join(this.dir, name), { force: true });
  }

  /** The install ID is the idempotency key of registration; it is saved before it is first sent. */
  installId(): string {
    if (existsSync(this.installIdPath)) {
      const id = readFileSync(this.installIdPath, 'utf8').trim();
      if (z.uuid().safeParse(id).success) return id;
      this.quarantine(this.installIdPath);
    }
    const id = randomUUID();
    writeFileAtomic(this.installIdPath, `${id}\n`);
    return id;
  }

  loadCredentials(): Credentials | undefined {
    if (!existsSync(this.credentialsPath)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.credentialsPath, 'utf8'));
    } catch {
      parsed = undefined;
    }
    const result = Credentials.safeParse(parsed);
    if (result.success) return result.data;
    throw new CorruptCredentialsError(this.quarantine(this.credentialsPath, 'corrupt'));
  }

  saveCredentials(credentials: Credentials): void {
    writeFileAtomic(this.credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`);
  }

  /** Moves a file aside, bytes intact, so nothing is deleted on a guess. Returns where it went. */
  quarantine(path: string, reason = 'invalid'): string {
    const target = `${path}.${reason}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(path, target);
    return target;
  }
}
