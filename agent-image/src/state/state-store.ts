import { randomUUID } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { ProviderId } from '@ray-agent/protocol';
import { writeFileAtomic } from '@ray-agent/tunnel/atomic-file';
import { z } from 'zod';

/** Moved-aside files kept per file and reason: enough to debug a re-registration loop, too few to fill a volume. */
export const QUARANTINE_KEEP = 5;

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

export interface StateStoreOptions {
  /** AGENT_TOKEN_FILE: once credentials are saved it is removed when it lies on the state volume. */
  enrollmentTokenFile?: string | undefined;
  /** Told (once) when the token file has to stay where Ray tasks can read it: a status warning. */
  onTokenFileKept?: (warning: string) => void;
}

/** What became of the enrollment token file after registration. */
export type TokenFileOutcome =
  | { kind: 'none' }
  | { kind: 'removed'; path: string }
  | { kind: 'kept'; path: string; warning: string };

export class StateStore {
  readonly installIdPath: string;
  readonly credentialsPath: string;
  private tokenKeptWarned = false;

  constructor(
    readonly dir: string,
    private readonly options: StateStoreOptions = {},
  ) {
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

  /**
   * Moves a file aside, bytes intact, so nothing is deleted on a guess. Returns where it went. Only the newest
   * QUARANTINE_KEEP per file and reason are kept: the rename comes first and the pruning after it, so a crash in
   * between leaves one too many (pruned next time), never the newest one lost.
   */
  quarantine(path: string, reason = 'invalid'): string {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    // Two in one millisecond must not overwrite each other, and a later one sorts after an earlier one.
    const sameStamp = `${basename(path)}.${reason}-${stamp}`;
    const taken = readdirSync(dirname(path))
      .filter((name) => name === sameStamp || name.startsWith(`${sameStamp}-`))
      .map((name) => Number(name.slice(sameStamp.length + 1) || 0))
      .filter(Number.isInteger);
    const target = `${path}.${reason}-${stamp}${taken.length ? `-${Math.max(...taken) + 1}` : ''}`;
    renameSync(path, target);
    this.pruneQuarantine(path, reason, target);
    fsyncDir(dirname(path));
    return target;
  }

  private pruneQuarantine(path: string, reason: string, newest: string): void {
    const prefix = `${basename(path)}.${reason}-`;
    const pattern = /^(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z)(?:-(\d+))?$/;
    const older = readdirSync(dirname(path))
      .filter((name) => name.startsWith(prefix) && name !== basename(newest))
      .flatMap((name) => {
        const match = pattern.exec(name.slice(prefix.length));
        return match ? [{ name, stamp: match[1] ?? '', n: Number(match[2] ?? 0) }] : [];
      })
      // Oldest first. The one just made is kept whatever its stamp says (the clock may have stepped back).
      .sort((a, b) => (a.stamp === b.stamp ? a.n - b.n : a.stamp < b.stamp ? -1 : 1));
    for (const file of older.slice(0, Math.max(0, older.length - (QUARANTINE_KEEP - 1))))
      rmSync(join(dirname(path), file.name), { force: true });
  }

  /**
   * Called once credentials are saved: Ray tasks run as the agent's user, so a token file they can read would let
   * any task enroll more providers. The token stays in this process's memory for a re-registration. A file outside
   * the state volume (a host bind mount) is the person's to remove; one that cannot be removed is reported.
   */
  forgetEnrollmentToken(): TokenFileOutcome {
    const file = this.options.enrollmentTokenFile;
    if (file === undefined || !existsSync(file)) return { kind: 'none' };
    const path = resolve(file);
    if (!isInside(path, this.dir))
      return this.tokenKept(
        path,
        `the enrollment token file ${path} is still readable by Ray tasks on this node; now that the agent is registered, remove it from the host (or stop mounting it)`,
      );
    try {
      unlinkSync(path);
      fsyncDir(dirname(path));
      return { kind: 'removed', path };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      if (code === 'ENOENT') return { kind: 'none' };
      return this.tokenKept(
        path,
        `the enrollment token file ${path} could not be removed (${code}) and is still readable by Ray tasks on this node; now that the agent is registered, remove it from the host (or stop mounting it)`,
      );
    }
  }

  private tokenKept(path: string, warning: string): TokenFileOutcome {
    if (!this.tokenKeptWarned) this.options.onTokenFileKept?.(warning);
    this.tokenKeptWarned = true;
    return { kind: 'kept', path, warning };
  }
}

/** Whether `path` lies inside `dir`, both with symbolic links resolved (a link must not smuggle a file in or out). */
function isInside(path: string, dir: string): boolean {
  try {
    const real = join(realpathSync(dirname(path)), basename(path));
    const root = realpathSync(dir);
    return real.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);
  } catch {
    return false;
  }
}

/** Makes a rename or unlink in `dir` durable. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
