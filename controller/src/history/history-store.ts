import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  HISTORY_MAX_HOURS,
  HistoryDocument,
  type HistoryHour,
  type PolicyMode,
  type PolicyReason,
} from '@ray-agent/protocol';
import { writeFileAtomic } from '@ray-agent/tunnel/atomic-file';
import { processAlive } from '../app/process-alive.js';

/** One look at the machine, taken by the history loop. Counters are cumulative; the store turns them into deltas. */
export interface HistorySample {
  atMs: number;
  /** The agent container cgroup's cumulative CPU counter (docker stats cpu_usage.total_usage), nanoseconds. */
  cpuUsageNs: number | null;
  containerId: string | null;
  /** The agent's cumulative count of tasks seen finishing since it started (status tasks.completed). */
  tasksCompletedTotal: number | null;
  agentStartedAt: string | null;
  mode: PolicyMode;
  reason: PolicyReason | null;
}

export const HISTORY_FILE = 'history.json';
const HOUR_MS = 3_600_000;
/** Persist at most this often (plus at every hour change and on close): a crash loses at most a minute. */
export const HISTORY_FLUSH_MS = 60_000;
/**
 * Samples further apart than this are a gap (the controller was blocked, or the machine slept): the time between is
 * not counted as anything, and counting starts again from the later sample.
 */
export const HISTORY_MAX_GAP_MS = 5 * 60_000;

const hourStartMs = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;

interface Baseline {
  atMs: number;
  mode: PolicyMode;
  reason: PolicyReason | null;
  cpu: { value: number; containerId: string | null; agentStartedAt: string | null } | null;
  tasks: { value: number; containerId: string | null; agentStartedAt: string | null } | null;
}

/** Two identities differ only when both are known: null means "not seen this time", not "a new one". */
const changed = (a: string | null, b: string | null) => a !== null && b !== null && a !== b;

/**
 * What this computer gave, per hour, in `<dir>/history.json`: bounded to HISTORY_MAX_HOURS, written atomically
 * (old or new file after a crash, never a torn one), at most once a minute. The baseline (the previous sample)
 * lives in memory only, so the time the controller was not running is never counted.
 */
export class HistoryStore {
  readonly file: string;
  /** Set when the file on disk was unreadable and was kept aside: tell the person once. */
  readonly notice: string | null;
  #hours = new Map<number, HistoryHour>();
  #last: Baseline | null = null;
  #dirty = false;
  #lastFlushMs: number | null = null;
  #lastFlushHour: number | null = null;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, HISTORY_FILE);
    this.notice = this.#load();
  }

  /** The kept hours, oldest first, as the schema describes them. */
  document(): HistoryDocument {
    const hours = [...this.#hours.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, hour]) => ({ ...hour, pausedSeconds: { ...hour.pausedSeconds } }));
    return { version: 1, hours };
  }

  record(sample: HistorySample): void {
    const last = this.#last;
    const next: Baseline = {
      atMs: sample.atMs,
      mode: sample.mode,
      reason: sample.reason,
      cpu: last?.cpu ?? null,
      tasks: last?.tasks ?? null,
    };
    const counted = last !== null && sample.atMs > last.atMs && sample.atMs - last.atMs <= HISTORY_MAX_GAP_MS;
    let cpuSeconds = 0;
    let tasks = 0;
    if (sample.cpuUsageNs !== null) {
      const now = { value: sample.cpuUsageNs, containerId: sample.containerId, agentStartedAt: sample.agentStartedAt };
      if (counted) cpuSeconds = counterDelta(next.cpu, now) / 1e9;
      next.cpu = now;
    }
    if (sample.tasksCompletedTotal !== null) {
      const now = {
        value: sample.tasksCompletedTotal,
        containerId: sample.containerId,
        agentStartedAt: sample.agentStartedAt,
      };
      if (counted) tasks = Math.round(counterDelta(next.tasks, now));
      next.tasks = now;
    }
    if (counted && last) this.#attribute(last, sample.atMs, cpuSeconds, tasks);
    this.#last = next;
    this.#maybeFlush(sample.atMs);
  }

  /** Writes now if anything changed since the last write. */
  flush(): void {
    if (!this.#dirty) return;
    writeFileAtomic(this.file, `${JSON.stringify(this.document())}\n`);
    this.#dirty = false;
  }

  close(): void {
    this.flush();
  }

  /** The interval [from.atMs, toMs) ran in from's mode; split it across the hours it spans. */
  #attribute(from: Baseline, toMs: number, cpuSeconds: number, tasks: number): void {
    const spanMs = toMs - from.atMs;
    let start = from.atMs;
    while (start < toMs) {
      const hourMs = hourStartMs(start);
      const end = Math.min(toMs, hourMs + HOUR_MS);
      const share = (end - start) / spanMs;
      const hour = this.#hour(hourMs);
      const seconds = (end - start) / 1000;
      hour.cpuSeconds += cpuSeconds * share;
      if (end === toMs) hour.tasksCompleted += tasks; // whole tasks go to the hour they were seen in
      if (from.mode === 'contributing') hour.contributingSeconds += seconds;
      else if (from.mode === 'stepping-aside') hour.steppedAsideSeconds += seconds;
      else {
        const reason: PolicyReason = from.reason ?? (from.mode === 'off' ? 'off' : 'paused');
        hour.pausedSeconds[reason] = (hour.pausedSeconds[reason] ?? 0) + seconds;
      }
      start = end;
    }
    this.#dirty = true;
    this.#prune(hourStartMs(toMs - 1));
  }

  #hour(hourMs: number): HistoryHour {
    let hour = this.#hours.get(hourMs);
    if (!hour) {
      hour = {
        hourStart: new Date(hourMs).toISOString(),
        cpuSeconds: 0,
        tasksCompleted: 0,
        contributingSeconds: 0,
        steppedAsideSeconds: 0,
        pausedSeconds: {},
      };
      this.#hours.set(hourMs, hour);
    }
    return hour;
  }

  /** Keeps the last HISTORY_MAX_HOURS hours up to the newest one written. */
  #prune(newestHourMs: number): void {
    const oldestKept = newestHourMs - (HISTORY_MAX_HOURS - 1) * HOUR_MS;
    for (const hourMs of this.#hours.keys()) if (hourMs < oldestKept) this.#hours.delete(hourMs);
    // The clock may have jumped back: hours "from the future" still count against the bound.
    const extra = this.#hours.size - HISTORY_MAX_HOURS;
    if (extra > 0)
      for (const hourMs of [...this.#hours.keys()].sort((a, b) => a - b).slice(0, extra)) this.#hours.delete(hourMs);
  }

  #maybeFlush(nowMs: number): void {
    if (!this.#dirty) return;
    const hour = hourStartMs(nowMs);
    const due =
      this.#lastFlushMs === null ||
      nowMs - this.#lastFlushMs >= HISTORY_FLUSH_MS ||
      nowMs < this.#lastFlushMs ||
      hour !== this.#lastFlushHour;
    if (!due) return;
    this.flush();
    this.#lastFlushMs = nowMs;
    this.#lastFlushHour = hour;
  }

  #load(): string | null {
    // A writer killed between creating its temp file and renaming it leaves the temp file behind; the real file is
    // whole (old or new), so the leftover is only litter. A live process's temp file is its write in progress.
    const dir = path.dirname(this.file);
    for (const name of readdirSync(dir)) {
      const pid = Number(name.slice(`${HISTORY_FILE}.tmp-`.length));
      if (name.startsWith(`${HISTORY_FILE}.tmp-`) && !processAlive(pid)) rmSync(path.join(dir, name), { force: true });
    }
    if (!existsSync(this.file)) return null;
    let problem: string;
    try {
      const parsed = HistoryDocument.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
      if (parsed.success) {
        for (const hour of parsed.data.hours) this.#hours.set(Date.parse(hour.hourStart), hour);
        return null;
      }
      const issue = parsed.error.issues[0];
      problem = `${issue?.path.join('.') || 'the document'}: ${issue?.message ?? 'does not match the schema'}`;
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    }
    // Keep the unreadable file for a look later, and start a fresh history rather than refuse to run.
    const keptAt = `${this.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(this.file, keptAt);
    this.#hours.clear();
    return `The contribution history file could not be read (${problem}); it was kept at ${keptAt} and a new history was started.`;
  }
}

/** How far a cumulative counter moved; a reset (it went down, or a new container or agent run) counts from zero. */
function counterDelta(
  before: { value: number; containerId: string | null; agentStartedAt: string | null } | null,
  now: { value: number; containerId: string | null; agentStartedAt: string | null },
): number {
  if (before === null) return 0; // the first sighting is the baseline, not work done since the last sample
  const reset =
    now.value < before.value ||
    changed(before.containerId, now.containerId) ||
    changed(before.agentStartedAt, now.agentStartedAt);
  return Math.max(0, reset ? now.value : now.value - before.value);
}
