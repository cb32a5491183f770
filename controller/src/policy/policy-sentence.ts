import {
  type ContributionPolicy,
  type PolicyMode,
  type PolicyReason,
  type PolicySignals,
  type StopMode,
  WEEKDAYS,
  type WeeklyHours,
} from '@ray-agent/protocol';

/** A condition that keeps the node from contributing now, with what its sentence needs. */
export type Blocker =
  | { reason: 'in-use' }
  | { reason: 'outside-schedule' }
  | { reason: 'on-battery' }
  | { reason: 'low-battery'; percent: number; resumePercent: number };

export interface SentenceFacts {
  mode: PolicyMode;
  reason: PolicyReason | null;
  policy: ContributionPolicy;
  signals: PolicySignals;
  stopMode: StopMode | null;
  blockers: Blocker[];
  /** Stepping aside: what is left of the grace period (may be <= 0 only in a race with the clock). */
  graceLeftMs: number | null;
}

export interface WeekHour {
  weekday: number;
  hour: number;
}

/**
 * The first hour after (weekday, hour) whose grid value is `value`, looking at most a week ahead; null if no hour
 * in the week has it (an empty grid has no next start, a full one no end).
 */
export function nextScheduleHour(hours: WeeklyHours, from: WeekHour, value: boolean): WeekHour | null {
  for (let step = 1; step <= 7 * 24; step++) {
    const absolute = from.weekday * 24 + from.hour + step;
    const weekday = Math.floor(absolute / 24) % 7;
    const hour = absolute % 24;
    if (hours[weekday]?.[hour] === value) return { weekday, hour };
  }
  return null;
}

/** "Mon 18:00". */
export function weekHourLabel(at: WeekHour): string {
  const day = WEEKDAYS[at.weekday] ?? '?';
  return `${day[0]?.toUpperCase()}${day.slice(1)} ${String(at.hour).padStart(2, '0')}:00`;
}

/** The view's one sentence: "<Mode>: <why>; <what happens next>". */
export function policySentence(facts: SentenceFacts): string {
  const { policy, signals } = facts;
  switch (facts.mode) {
    case 'off':
      if (facts.stopMode === 'now') return 'Off: stopped by you; turn contributing on to resume';
      if (facts.stopMode === 'after-current') {
        return 'Off: paused by you after the running tasks finish; turn contributing on to resume';
      }
      return 'Off: contributing is switched off';
    case 'draining':
      return facts.reason === 'shutdown'
        ? 'Draining: the computer is shutting down'
        : 'Draining: the computer is going to sleep';
    case 'contributing': {
      const parts: string[] = [];
      if (policy.idle.enabled && signals.idleSeconds !== null) {
        parts.push(`idle for ${Math.floor(signals.idleSeconds / 60)} min`);
      }
      if (policy.schedule.enabled) {
        const end = nextScheduleHour(policy.schedule.hours, signals, false);
        parts.push(end === null ? 'inside the schedule' : `inside the schedule until ${weekHourLabel(end)}`);
      }
      return withNotes(`Contributing: ${parts.length === 0 ? 'at full power' : parts.join(', ')}`, facts);
    }
    case 'stepping-aside': {
      const phrases = facts.blockers.length === 0 ? [] : blockerPhrases(facts);
      const minutes = Math.max(1, Math.ceil((facts.graceLeftMs ?? 0) / 60_000));
      return withNotes(
        `Stepping aside: ${joinAnd(phrases.map((p) => p.what))}; draining in ${minutes} min unless ${joinAnd(
          phrases.map((p) => p.unless),
        )}`,
        facts,
      );
    }
    case 'paused': {
      if (facts.blockers.length === 0) return "Paused: reading the machine's state";
      const phrases = blockerPhrases(facts);
      const resume = phrases.map((p) => (phrases.length === 1 ? p.resume : p.resumeCombined));
      return withNotes(`Paused: ${joinAnd(phrases.map((p) => p.what))}; will resume ${joinAnd(resume)}`, facts);
    }
  }
}

interface Phrases {
  what: string;
  resume: string;
  /** The resume phrase when it is one of several ("from Mon 18:00" rather than "Mon 18:00"). */
  resumeCombined: string;
  unless: string;
}

function blockerPhrases(facts: SentenceFacts): Phrases[] {
  const { policy, signals } = facts;
  const low = facts.blockers.find((b) => b.reason === 'low-battery');
  const onBattery = facts.blockers.some((b) => b.reason === 'on-battery');
  const phrases: Phrases[] = [];
  for (const blocker of facts.blockers) {
    switch (blocker.reason) {
      case 'on-battery': {
        // On battery and below the floor read as one condition: "on battery at 22 %".
        const at = low === undefined ? '' : ` at ${Math.round(low.percent)} %`;
        const until = low === undefined ? '' : ` at ${low.resumePercent} %`;
        const resume = `on AC power${until}`;
        phrases.push({
          what: `on battery${at}`,
          resume,
          resumeCombined: resume,
          unless: low === undefined ? 'it is on AC power again' : `it is on AC power${until}`,
        });
        break;
      }
      case 'low-battery': {
        if (onBattery) break;
        const resume = `at ${blocker.resumePercent} %`;
        phrases.push({
          what: `battery at ${Math.round(blocker.percent)} %`,
          resume,
          resumeCombined: `with the battery at ${blocker.resumePercent} %`,
          unless: `the battery reaches ${blocker.resumePercent} %`,
        });
        break;
      }
      case 'outside-schedule': {
        const start = nextScheduleHour(policy.schedule.hours, signals, true);
        if (start === null) {
          const resume = 'once hours are marked in the schedule';
          phrases.push({
            what: 'the schedule has no hours',
            resume,
            resumeCombined: resume,
            unless: 'hours are marked in the schedule',
          });
        } else {
          const label = weekHourLabel(start);
          phrases.push({
            what: 'outside the schedule',
            resume: label,
            resumeCombined: `from ${label}`,
            unless: 'the schedule allows it again',
          });
        }
        break;
      }
      case 'in-use': {
        const resume = `once it has been idle for ${policy.idle.minutes} min`;
        phrases.push({
          what: 'you are using the computer',
          resume,
          resumeCombined: resume,
          unless: 'it is idle again',
        });
        break;
      }
    }
  }
  return phrases;
}

/** Rules that cannot apply because the machine cannot tell, said once at the end. */
function withNotes(core: string, facts: SentenceFacts): string {
  const notes: string[] = [];
  if (facts.policy.idle.enabled && facts.signals.idleSeconds === null) notes.push('idle time unknown on this machine');
  if (facts.policy.battery.pauseOnBattery && facts.signals.onBattery === null) {
    notes.push('power source unknown on this machine');
  }
  return notes.length === 0 ? core : `${core} (${notes.join(', ')})`;
}

function joinAnd(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
