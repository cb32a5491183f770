import { z } from 'zod';
import { Batch } from '../../lib/schema.js';

const positive = z.number().finite().positive();

const OverlayJoin = z.object({
  /** `docker run` (the tunnel's, for the overlay) to the status `contributing`. */
  contributingSeconds: positive,
  /** To the first status with the tunnel `up` (overlay only). */
  tunnelUpSeconds: positive.nullable(),
});

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

export const OverlayData = z.object({
  image: z.string(),
  tcpTool: z.string(),
  sessions: z.array(OverlaySession).min(2),
});
export type OverlayData = z.infer<typeof OverlayData>;

/** Overlay against direct mode: repetition pairs (alternating order), each with two fresh providers per mode. */
export interface OverlaySettings {
  reps: number;
  /** `loops` of the pure-Python task: about 1 CPU second each at 20 million in the image's Python. */
  cpu: { tasks: number; loops: number; batches: number };
  tiny: { tasks: number; batches: number };
  /** Objects moved from one provider to the other per repetition, each `bytes` large. */
  transfer: { bytes: number; reps: number };
  /** Length of the raw TCP run (iperf3) between the same two providers. */
  tcpSeconds: number;
}
