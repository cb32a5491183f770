import { z } from 'zod';

/**
 * The raw results files (bench/results/SUITE.json), checked when the report reads them and by the CI smoke test.
 * Only what the report uses is spelled out; the rest passes through.
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

const envelope = <T extends z.ZodTypeAny>(suite: string, data: T) =>
  z.object({
    suite: z.literal(suite),
    profile: z.enum(['full', 'quick', 'smoke']),
    runId: z.string(),
    command: z.string(),
    startedAt: z.string(),
    finishedAt: z.string(),
    machine: Machine,
    settings: z.unknown(),
    data,
  });

const Latency = z.object({
  n: z.number().int().nonnegative(),
  p50: nonNegative.nullable(),
  p90: nonNegative.nullable(),
  p99: nonNegative.nullable(),
  max: nonNegative.nullable(),
  mean: nonNegative.nullable(),
});

const Loadgen = z
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

const Batch = z.object({
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

export const BoincResult = envelope(
  'boinc',
  z.object({
    skipped: z.string().nullable(),
    version: z.string().nullable(),
    command: z.string().nullable(),
    isolation: z
      .object({ interfaces: z.array(z.string()), tcpSockets: z.number().int(), udpSockets: z.number().int() })
      .nullable(),
    reps: z.array(
      z.object({ seconds: positive, rssBytes: positive, pssBytes: positive, cpuSecondsPerMinute: nonNegative }),
    ),
  }),
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

export const PythonResult = envelope(
  'python',
  z.object({
    loops: z.number().int().positive(),
    reps: z.array(z.object({ host: positive, image: positive })).min(1),
    versions: z.object({ host: z.string(), image: z.string() }),
  }),
);

const OverlayJoin = z.object({ contributingSeconds: positive, tunnelUpSeconds: positive.nullable() });
export const OverlaySession = z.object({
  mode: z.enum(['overlay', 'direct']),
  rep: z.number().int().nonnegative(),
  position: z.number().int().nonnegative(),
  joins: z.array(OverlayJoin).min(1),
  cpu: z.array(Batch.extend({ cpuPerTask: positive })).min(1),
  tiny: z.array(Batch).min(1),
  transfer: z.object({ bytes: positive, mbPerSecond: z.array(positive).min(1) }),
  tcp: z.object({ seconds: positive, mbPerSecond: positive, retransmits: z.number().int().nonnegative().nullable() }),
});
export type OverlaySession = z.infer<typeof OverlaySession>;

export const OverlayResult = envelope(
  'overlay',
  z.object({ image: z.string(), tcpTool: z.string(), sessions: z.array(OverlaySession).min(2) }),
);

export const RESULT_SCHEMAS = {
  nodes: NodesResult,
  manager: ManagerResult,
  boinc: BoincResult,
  image: ImageResult,
  python: PythonResult,
  overlay: OverlayResult,
};
export type NodesResult = z.infer<typeof NodesResult>;
export type ManagerResult = z.infer<typeof ManagerResult>;
export type BoincResult = z.infer<typeof BoincResult>;
export type ImageResult = z.infer<typeof ImageResult>;
export type PythonResult = z.infer<typeof PythonResult>;
export type OverlayResult = z.infer<typeof OverlayResult>;
