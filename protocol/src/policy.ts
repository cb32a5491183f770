import { z } from 'zod';
import { Sentence } from './common.js';

/**
 * When this computer contributes, and how it steps aside when the person needs it. Stored inside the settings; the
 * policy engine (controller/src/policy) turns it and the machine's signals (idle time, power, clock) into a decision.
 * Conditions combine with AND: "only while idle" and "on a schedule" both on means idle *and* inside the schedule.
 */

/** Days in `Date.prototype.getDay()` order: index 0 is Sunday. */
export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** One row per weekday (Sunday first), 24 hours each: true means "may contribute in this local hour". */
export const WeeklyHours = z
  .array(z.array(z.boolean()).length(24, 'must have 24 hours per day, e.g. [true, true, …]'))
  .length(7, 'must have 7 days, Sunday first');
export type WeeklyHours = z.infer<typeof WeeklyHours>;

export const POLICY_LIMITS = {
  idleMinutes: { min: 1, max: 240, default: 5 },
  graceMinutes: { min: 0, max: 240, default: 5 },
  /** Share of the CPU limit kept while stepping aside: low enough to be unnoticed, above zero so tasks live on. */
  throttlePercent: { min: 1, max: 100, default: 10 },
  minBatteryPercent: { min: 0, max: 100, default: 30 },
  /** Battery must climb this far above the minimum before contributing resumes, so it does not flap at the line. */
  batteryHysteresisPercent: 5,
  /** The drain deadline Ray's libraries get when the machine is about to sleep or shut down. */
  goingAwayDrainSeconds: { min: 0, max: 600, default: 20 },
} as const;

const int = (field: string, range: { min: number; max: number }, unit: string, example: number) =>
  z
    .number({ error: () => `${field} must be a number of ${unit}, e.g. ${example}` })
    .int(`${field} must be a whole number of ${unit}, e.g. ${example}`)
    .min(range.min, `${field} must be ${range.min}-${range.max} ${unit}, e.g. ${example}`)
    .max(range.max, `${field} must be ${range.min}-${range.max} ${unit}, e.g. ${example}`);

export const ContributionPolicy = z.object({
  /** Contribute only after the computer has had no input for `minutes`. */
  idle: z.object({
    enabled: z.boolean(),
    minutes: int('idle minutes', POLICY_LIMITS.idleMinutes, 'minutes', POLICY_LIMITS.idleMinutes.default),
  }),
  /** Contribute only in the marked local hours. */
  schedule: z.object({ enabled: z.boolean(), hours: WeeklyHours }),
  /** Not on battery; and never below `minPercent` (0 turns the floor off). */
  battery: z.object({
    pauseOnBattery: z.boolean(),
    minPercent: int(
      'battery floor',
      POLICY_LIMITS.minBatteryPercent,
      'percent',
      POLICY_LIMITS.minBatteryPercent.default,
    ),
  }),
  /** While stepping aside the container keeps this share of its CPU limit; tasks run on, slowly. */
  throttlePercent: int('throttle', POLICY_LIMITS.throttlePercent, 'percent', POLICY_LIMITS.throttlePercent.default),
  /** Stepped aside this long: the node drains (running tasks finish) and stops. 0 drains at once. */
  graceMinutes: int('grace period', POLICY_LIMITS.graceMinutes, 'minutes', POLICY_LIMITS.graceMinutes.default),
  /** Drain deadline on sleep, shutdown or log-out. */
  goingAwayDrainSeconds: int(
    'drain deadline',
    POLICY_LIMITS.goingAwayDrainSeconds,
    'seconds',
    POLICY_LIMITS.goingAwayDrainSeconds.default,
  ),
});
export type ContributionPolicy = z.infer<typeof ContributionPolicy>;

/** Evenings and nights on weekdays (18:00-08:00), all day at weekends: a sensible grid to start editing from. */
export function defaultWeeklyHours(): WeeklyHours {
  return WEEKDAYS.map((_day, index) =>
    Array.from({ length: 24 }, (_hour, hour) => index === 0 || index === 6 || hour >= 18 || hour < 8),
  );
}

export const DEFAULT_POLICY: ContributionPolicy = {
  idle: { enabled: false, minutes: POLICY_LIMITS.idleMinutes.default },
  schedule: { enabled: false, hours: defaultWeeklyHours() },
  battery: { pauseOnBattery: true, minPercent: POLICY_LIMITS.minBatteryPercent.default },
  throttlePercent: POLICY_LIMITS.throttlePercent.default,
  graceMinutes: POLICY_LIMITS.graceMinutes.default,
  goingAwayDrainSeconds: POLICY_LIMITS.goingAwayDrainSeconds.default,
};

/**
 * What the machine tells the policy, sampled by the shell (Electron's powerMonitor, systeminformation) or by
 * `ray-agent run` on a machine without a desktop. `null` means "this machine cannot tell": the rule that needs it
 * does not apply, and the policy's sentence says so.
 */
export interface PolicySignals {
  /** Milliseconds since the epoch. */
  nowMs: number;
  /** Local weekday (0 = Sunday) and hour of `nowMs`. */
  weekday: number;
  hour: number;
  idleSeconds: number | null;
  onBattery: boolean | null;
  batteryPercent: number | null;
  /** The OS announced sleep, shutdown or log-out: drain now, with the going-away deadline. */
  goingAway: 'suspend' | 'shutdown' | null;
}

/** Why the node is not contributing at full power. */
export const PolicyReason = z.enum([
  'in-use', // input within the idle window
  'outside-schedule',
  'on-battery',
  'low-battery',
  'suspend', // the machine is going to sleep
  'shutdown', // shutdown or log-out
  'paused', // the person chose "Pause after current tasks" or "Stop now"
  'off', // contributing is switched off
]);
export type PolicyReason = z.infer<typeof PolicyReason>;

/** The words the window and the CLI use for each reason, in a table or a chart legend. */
export const POLICY_REASON_LABELS: Readonly<Record<PolicyReason, string>> = {
  'in-use': 'in use',
  'outside-schedule': 'outside schedule',
  'on-battery': 'on battery',
  'low-battery': 'low battery',
  suspend: 'asleep',
  shutdown: 'shut down',
  paused: 'paused by you',
  off: 'switched off',
};

/**
 * contributing: full limits. stepping-aside: CPU throttled, tasks run on slowly, grace period running.
 * draining: no new tasks, running ones finish up to a deadline. paused: stopped by the policy, resumes by itself.
 * off: not contributing by the person's choice.
 */
export const PolicyMode = z.enum(['contributing', 'stepping-aside', 'draining', 'paused', 'off']);
export type PolicyMode = z.infer<typeof PolicyMode>;

/** The policy's state as the window, the tray and the CLI show it. */
export const PolicyView = z.object({
  mode: PolicyMode,
  reason: PolicyReason.nullable(),
  /** One sentence: "Paused: on battery; will resume on AC power". */
  sentence: Sentence,
  since: z.iso.datetime(),
});
export type PolicyView = z.infer<typeof PolicyView>;

/** The person's manual stop from the tray: drain and let running tasks finish, or stop at once. */
export const StopMode = z.enum(['after-current', 'now']);
export type StopMode = z.infer<typeof StopMode>;
