import type { HistoryDocument, PolicyReason } from '@ray-agent/protocol';

/**
 * The history page's figures, without DOM: the last 24 hours per hour and the last 30 days per local day. The same
 * windows as `ray-agent history` (controller/src/history/history-table.ts); the window cannot import the controller.
 */
export interface HistoryBucket {
  label: string;
  cpuSeconds: number;
  tasks: number;
  contributingSeconds: number;
  steppedAsideSeconds: number;
  pausedSeconds: Partial<Record<PolicyReason, number>>;
}

const HOUR_MS = 3_600_000;

const empty = (label: string): HistoryBucket => ({
  label,
  cpuSeconds: 0,
  tasks: 0,
  contributingSeconds: 0,
  steppedAsideSeconds: 0,
  pausedSeconds: {},
});

function addHour(bucket: HistoryBucket, hour: HistoryDocument['hours'][number]): void {
  bucket.cpuSeconds += hour.cpuSeconds;
  bucket.tasks += hour.tasksCompleted;
  bucket.contributingSeconds += hour.contributingSeconds;
  bucket.steppedAsideSeconds += hour.steppedAsideSeconds;
  for (const [reason, seconds] of Object.entries(hour.pausedSeconds) as Array<[PolicyReason, number]>) {
    bucket.pausedSeconds[reason] = (bucket.pausedSeconds[reason] ?? 0) + seconds;
  }
}

/** The last 24 hours, oldest first, labelled in local time ("14:00"). */
export function lastHours(doc: HistoryDocument, now: number, count = 24): HistoryBucket[] {
  const newest = Math.floor(now / HOUR_MS) * HOUR_MS;
  const label = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const buckets = new Map<number, HistoryBucket>();
  for (let i = count - 1; i >= 0; i--) buckets.set(newest - i * HOUR_MS, empty(label.format(newest - i * HOUR_MS)));
  for (const hour of doc.hours) {
    const bucket = buckets.get(Date.parse(hour.hourStart));
    if (bucket) addHour(bucket, hour);
  }
  return [...buckets.values()];
}

const dayKey = (ms: number) => {
  const at = new Date(ms);
  return `${at.getFullYear()}-${at.getMonth()}-${at.getDate()}`;
};

/** The last 30 local calendar days, oldest first ("2 Dec"): days are stepped on the calendar, so DST skips none. */
export function lastDays(doc: HistoryDocument, now: number, count = 30): HistoryBucket[] {
  const label = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
  const today = new Date(now);
  const buckets = new Map<string, HistoryBucket>();
  for (let i = count - 1; i >= 0; i--) {
    const day = new Date(today.getFullYear(), today.getMonth(), today.getDate() - i, 12);
    buckets.set(dayKey(day.getTime()), empty(label.format(day)));
  }
  for (const hour of doc.hours) {
    const bucket = buckets.get(dayKey(Date.parse(hour.hourStart)));
    if (bucket) addHour(bucket, hour);
  }
  return [...buckets.values()];
}

export const totalPaused = (bucket: HistoryBucket) =>
  Object.values(bucket.pausedSeconds).reduce((sum, seconds) => sum + seconds, 0);

export function hasAnything(buckets: HistoryBucket[]): boolean {
  return buckets.some(
    (b) =>
      b.cpuSeconds > 0 || b.tasks > 0 || b.contributingSeconds > 0 || b.steppedAsideSeconds > 0 || totalPaused(b) > 0,
  );
}

/** CPU time as a person reads it: "45 CPU-seconds", "12.5 CPU-minutes", "3.2 CPU-hours". */
export function cpuText(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} CPU-seconds`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} CPU-minutes`;
  return `${(seconds / 3600).toFixed(1)} CPU-hours`;
}

/** "3 h 05 min", "12 min", "45 s". */
export function durationText(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}
