import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '@ray-agent/tunnel/atomic-file';
import { z } from 'zod';

/** `<stateDir>/update-state.json`: what the image update loop must remember across a crash. */
export const UPDATE_STATE_FILE = 'update-state.json';
/** Rejected digests kept (oldest dropped first): a registry publishes far fewer broken images than this. */
export const MAX_REJECTED = 50;

const Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex>, e.g. sha256:ab12…');

export const UpdateSwitch = z.object({
  /**
   * switching: the configured tag may already name the new image and its container may be (being) replaced;
   * rolling-back: the new image failed, the previous one goes back under the tag.
   */
  phase: z.enum(['switching', 'rolling-back']),
  /** The configured tag, e.g. 127.0.0.1:5000/ray-agent:stable. */
  image: z.string().min(1),
  digest: Digest,
  newImageId: z.string().min(1),
  previousImageId: z.string().min(1),
  startedAt: z.iso.datetime(),
  /** Why it is rolled back (for the notification after a restart); null while switching. */
  reason: z.string().nullable(),
});
export type UpdateSwitch = z.infer<typeof UpdateSwitch>;

export const RejectedImage = z.object({
  image: z.string().min(1),
  digest: Digest,
  at: z.iso.datetime(),
  reason: z.string(),
});
export type RejectedImage = z.infer<typeof RejectedImage>;

export const UpdateState = z.object({
  version: z.literal(1),
  rejected: z.array(RejectedImage),
  switch: UpdateSwitch.nullable(),
});
export type UpdateState = z.infer<typeof UpdateState>;

export const EMPTY_UPDATE_STATE: UpdateState = { version: 1, rejected: [], switch: null };

export interface UpdateStateLoad {
  state: UpdateState;
  /** Set when the file was unreadable: it was kept aside as `<file>.corrupt-<time>` and the state starts empty. */
  notice: string | null;
}

/**
 * The update loop's state, one small JSON file written atomically (temp file, fsync, rename, fsync of the
 * directory): after a kill at any instant it is the old state or the new one.
 */
export class UpdateStateStore {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, UPDATE_STATE_FILE);
  }

  load(): UpdateStateLoad {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        return { state: structuredClone(EMPTY_UPDATE_STATE), notice: null };
      throw error;
    }
    let problem: string;
    try {
      const parsed = UpdateState.safeParse(JSON.parse(text));
      if (parsed.success) return { state: parsed.data, notice: null };
      problem = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'file'}: ${issue.message}`).join('; ');
    } catch (error) {
      problem = `not JSON (${(error as Error).message})`;
    }
    // Kept, not wiped: a person (or a bug report) can read what it said.
    const keptAt = `${this.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(this.file, keptAt);
    return {
      state: structuredClone(EMPTY_UPDATE_STATE),
      notice: `the image update state ${this.file} was unreadable (${problem}); kept as ${keptAt}, starting afresh`,
    };
  }

  save(state: UpdateState): void {
    const checked = UpdateState.parse({ ...state, rejected: state.rejected.slice(-MAX_REJECTED) });
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, `${JSON.stringify(checked, null, 2)}\n`);
  }
}
