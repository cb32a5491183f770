import { z } from 'zod';

/**
 * The shared pieces of the raw results files (bench/results/SUITE.json): the envelope the runner writes around every
 * suite's data, the machine, and the Latency and Batch shapes several suites use. Each suite's own data schema lives
 * in its folder (bench/suites/NAME/schema.ts); the report checks a file against the envelope and that schema.
 */
const nonNegative = z.number().finite().nonnegative();
const positive = z.number().finite().positive();

export const Machine = z.object({
  date: z.string(),
  nproc: z.number().int().positive(),
  cpuModel: z.string(),
  memoryBytes: positive,
  kernel: z.string().min(1),
  os: z.string(),
  docker: z.string().min(1),
  node: z.string(),
  loadAverage: z.array(nonNegative),
  otherContainers: z.number().int().nonnegative(),
});

export const Profile = z.enum(['full', 'quick', 'smoke']);

/** What the runner writes around a suite's data. */
export const envelope = <T extends z.ZodTypeAny>(suite: string, data: T) =>
  z.object({
    /** The results format; files of an older bench (without it) are listed by the report as to be regenerated. */
    format: z.literal(2),
    suite: z.literal(suite),
    profile: Profile,
    runId: z.string(),
    command: z.string(),
    startedAt: z.string(),
    finishedAt: z.string(),
    machine: Machine,
    settings: z.unknown(),
    data,
  });

export const Latency = z.object({
  n: z.number().int().nonnegative(),
  p50: nonNegative.nullable(),
  p90: nonNegative.nullable(),
  p99: nonNegative.nullable(),
  max: nonNegative.nullable(),
  mean: nonNegative.nullable(),
});

export const Loadgen = z
  .object({
    mode: z.enum(['closed', 'open']),
    connections: z.number().int().positive(),
    rate: positive.nullable(),
    durationS: positive,
    completed: z.number().int().nonnegative(),
    answered: z.number().int().nonnegative(),
    ok: z.number().int().nonnegative(),
    perSecond: nonNegative,
    errors: z.number().int().nonnegative(),
    dropped: z.number().int().nonnegative(),
    latencyMs: Latency,
  })
  .passthrough();

export const Batch = z.object({
  tasks: z.number().int().positive(),
  elapsed: positive,
  perSecond: positive,
  cpuOverWall: nonNegative.optional(),
  cpuPerTask: positive.optional(),
});

const Footprint = z.object({
  seconds: positive,
  cgroupAnonShmemBytes: positive,
  cgroupDockerStatsBytes: positive,
  processRssSumBytes: positive,
  processPssSumBytes: positive,
  processes: positive,
  cgroupCpuSecondsPerMinute: nonNegative,
  agent: z
    .object({ rssBytes: positive, rssAnonBytes: positive, pssBytes: positive, cpuSecondsPerMinute: nonNegative })
    .optional(),
});

// The nodes, manager and image suites' schemas below move into their folders (bench/suites/NAME/schema.ts).
export const Session = z.object({
  kind: z.enum(['agent', 'plain']),
  rep: z.number().int().nonnegative(),
  mode: z.enum(['main', 'busy']),
  position: z.number().int().nonnegative(),
  join: z.object({ aliveSeconds: positive, registeredSeconds: positive.nullable(), contributingSeconds: positive }),
  footprint: z
    .object({ idle: Footprint, polled: Footprint.extend({ pollLatencyMs: z.array(nonNegative).min(1) }).optional() })
    .optional(),
  burst: z.object({ status: Loadgen, healthz: Loadgen }).optional(),
  compute: z
    .object({
      cpu: z.array(Batch).min(1),
      tiny: z.array(Batch).min(1),
      throttling: z.object({ periods: nonNegative, throttled: nonNegative, throttledSeconds: nonNegative }),
    })
    .optional(),
  agentLog: z.array(z.tuple([z.number(), z.string()])).optional(),
  stop: z.object({
    mode: z.enum(['idle', 'busy']),
    drainDeadlineSeconds: nonNegative,
    mainExitSeconds: positive,
    allGoneSeconds: positive,
    busy: z
      .object({
        tasks: z.number().int().positive(),
        taskSeconds: positive,
        signalledAfterStartSeconds: nonNegative,
        completed: z.number().int().nonnegative(),
        failed: z.number().int().nonnegative(),
        errors: z.array(z.string()),
      })
      .optional(),
  }),
});
export type Session = z.infer<typeof Session>;

export const NodesResult = envelope(
  'nodes',
  z.object({
    imageId: z.string(),
    sessions: z.array(Session).min(2),
    probes: z
      .object({
        importRaySeconds: z.array(positive).min(1),
        preflightSeconds: z.array(positive).min(1),
        bareNode: z.object({ rssBytes: positive, rssAnonBytes: positive }),
      })
      .optional(),
  }),
);

const ManagerRun = Loadgen.extend({ endpoint: z.enum(['heartbeat', 'healthz']), managerCpuSeconds: nonNegative });
export const ManagerResult = envelope(
  'manager',
  z
    .array(
      z.object({
        providers: z.number().int().positive(),
        seedSeconds: nonNegative,
        managerRssBytes: positive,
        reps: z.array(z.object({ rep: z.number().int(), runs: z.array(ManagerRun).min(4) })).min(1),
        profile: z
          .object({
            seconds: positive,
            samples: z.number().int(),
            top: z.array(z.object({ name: z.string(), selfPercent: nonNegative })),
            byArea: z.record(z.string(), nonNegative),
          })
          .optional(),
      }),
    )
    .min(1),
);

export const ImageResult = envelope(
  'image',
  z.object({
    image: z.string(),
    imageId: z.string(),
    sizeBytes: positive,
    layers: z.array(z.object({ sizeBytes: nonNegative, createdBy: z.string() })).min(1),
    base: z
      .object({
        image: z.string(),
        sizeBytes: positive,
        largest: z.array(z.object({ path: z.string(), bytes: nonNegative })),
      })
      .nullable(),
    rayVenvLargest: z.array(z.object({ path: z.string(), bytes: nonNegative })),
    nodeBinaryBytes: positive.nullable(),
  }),
);

export type NodesResult = z.infer<typeof NodesResult>;
export type ManagerResult = z.infer<typeof ManagerResult>;
export type ImageResult = z.infer<typeof ImageResult>;

export type Machine = z.infer<typeof Machine>;
export type Latency = z.infer<typeof Latency>;
export type Batch = z.infer<typeof Batch>;
/** A results file as the report reads it: the envelope around data it checks against the suite's own schema. */
export const AnyResult = envelope('any', z.unknown()).extend({ suite: z.string().regex(/^[a-z0-9]+$/) });
export type AnyResult = z.infer<typeof AnyResult>;
