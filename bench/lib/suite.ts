import type { z } from 'zod';
import type { Figure } from './figure.js';

export type Profile = 'full' | 'quick' | 'smoke';

/** What the runner hands a suite. */
export interface SuiteContext {
  runId: string;
  profile: Profile;
  /** The run's scratch folder (logs, certificates); removed after a successful run unless BENCH_KEEP=1. */
  tmp: string;
  /** The agent image under test, pinned by ID for the whole run. */
  image: string;
  imageId: string;
  /**
   * The container holding the loopback-only network namespace the inner suites run in (`--network
   * container:HOLDER` joins it). Null for suites that run outside it (`inner: false`).
   */
  holder: string | null;
}

/**
 * One benchmark suite, in its own folder `bench/suites/NAME/`. `run` measures and returns raw data (saved as
 * bench/results/NAME.json inside the runner's envelope); `figuresOf` and `details` are pure functions of that data,
 * so the report regenerates from the results files alone.
 */
export interface Suite<S, D> {
  name: string;
  /** Runs in the loopback-only namespace (true) or on networks of its own (false: the overlay). */
  inner: boolean;
  /** How much the suite does per profile; `full` is what docs/BENCHMARKS.md records. */
  profiles: Record<Profile, S>;
  /** The raw data's schema: checked when the report reads a results file and by the CI smoke test. */
  data: z.ZodType<D>;
  /**
   * Optional: what must exist before the run, done by the outer half with the machine's network (the inner half has
   * loopback only), e.g. the host venv from the local Python index.
   */
  prepare?(profile: Profile): Promise<void>;
  run(context: SuiteContext, settings: S): Promise<D>;
  /** The report's figures, each judged by bench/lib/verdict.ts. */
  figuresOf(data: D): Figure[];
  /** Markdown of the suite's detail tables (per-repetition data, breakdowns), generated from the data. */
  details(data: D): string;
}
