import { z } from 'zod';
import { PolicyReason } from './policy.js';

/**
 * What this computer gave, per hour, kept on the person's machine only (the controller's history store). Bounded:
 * the last HISTORY_MAX_HOURS hours; older hours are dropped.
 */
export const HISTORY_MAX_HOURS = 31 * 24;

export const HistoryHour = z.object({
  /** The hour's start, UTC, on the hour: 2026-12-02T14:00:00.000Z. */
  hourStart: z.iso.datetime(),
  /** CPU time the agent's container used (its cgroup's counter), in seconds. */
  cpuSeconds: z.number().nonnegative(),
  /** Ray tasks that finished on this node. */
  tasksCompleted: z.number().int().nonnegative(),
  /** Seconds at full power, and stepped aside (throttled). */
  contributingSeconds: z.number().nonnegative(),
  steppedAsideSeconds: z.number().nonnegative(),
  /** Seconds not contributing, by reason. */
  pausedSeconds: z.partialRecord(PolicyReason, z.number().nonnegative()),
});
export type HistoryHour = z.infer<typeof HistoryHour>;

export const HistoryDocument = z.object({
  version: z.literal(1),
  hours: z.array(HistoryHour).max(HISTORY_MAX_HOURS),
});
export type HistoryDocument = z.infer<typeof HistoryDocument>;
