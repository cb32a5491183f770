import { z } from 'zod';

const positive = z.number().finite().positive();

/** One hyperfine run (its JSON export, reduced): wall seconds per run, and the mean user + system CPU seconds. */
export const Timed = z.object({ wallSeconds: z.array(positive).min(1), cpuSeconds: positive });
export type Timed = z.infer<typeof Timed>;

export const PythonData = z.object({
  loops: z.number().int().positive(),
  /** The loop's own CPU time (`time.process_time()` around it), per repetition, in each interpreter. */
  reps: z.array(z.object({ host: positive, image: positive })).min(1),
  versions: z.object({ host: z.string(), image: z.string() }),
  /**
   * Whole commands timed by hyperfine, per repetition (the two arms alternate which goes first): the loop script and
   * `import ray`. Absent in results written before hyperfine was used.
   */
  commands: z
    .array(
      z.object({
        host: z.object({ loop: Timed, importRay: Timed }),
        image: z.object({ loop: Timed, importRay: Timed }),
      }),
    )
    .optional(),
  hyperfine: z.string().optional(),
});
export type PythonData = z.infer<typeof PythonData>;

export interface PythonSettings {
  reps: number;
  loops: number;
  /** Runs of each command per hyperfine invocation (one invocation per arm and repetition). */
  commandRuns: number;
  /** Untimed runs before them (hyperfine --warmup): the page cache holds the files then. */
  warmup: number;
}
