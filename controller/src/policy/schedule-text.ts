import { WEEKDAYS, type WeeklyHours } from '@ray-agent/protocol';

/**
 * The weekly hour grid as a person types it on the command line:
 *
 *   "mon-fri 18-08, sat-sun 00-24"     "mon,wed,fri 09-12 14-17; sun all day"     "always"     "never"
 *
 * - Groups: day names followed by hour ranges. Commas, semicolons and spaces all separate; a day name after hours
 *   starts the next group ("sat, sun 00-24" is one group for both days).
 * - Days: mon tue wed thu fri sat sun, ranges counted forward through the week ("mon-fri", "sat-sun", "fri-mon"),
 *   and "daily", "weekdays" (mon-fri), "weekends" (sat-sun).
 * - Hours: "HH-HH" from the start hour up to, not including, the end hour, on the named days; "00-24" or "all day"
 *   is the whole day; "18:00-08:00" is read as "18-08". A range whose end comes before its start does NOT spill
 *   into the next day: on each named day it covers the start to midnight and midnight to the end, so
 *   "mon-fri 18-08" marks Monday to Friday 00:00-08:00 and 18:00-24:00 (their evenings and early mornings), and
 *   every day stays independent of its neighbours.
 * - "always": every hour; "never": none. Case and extra spaces do not matter.
 *
 * `formatSchedule` writes the same language back, Monday first, with days of equal hours grouped into ranges, so
 * `parseSchedule(formatSchedule(hours))` gives `hours` again.
 */

const EXAMPLE = 'e.g. "mon-fri 18-08, sat-sun 00-24"';
/** Monday-first order, as people read a week; values are `WEEKDAYS` (Sunday = 0) indices. */
const WEEK_ORDER = [1, 2, 3, 4, 5, 6, 0] as const;
const DAY_WORDS: Readonly<Record<string, readonly number[]>> = {
  daily: WEEK_ORDER,
  weekdays: [1, 2, 3, 4, 5],
  weekends: [6, 0],
};

export function parseSchedule(text: string): WeeklyHours {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === '') throw new Error(`schedule is empty; give days and hours, ${EXAMPLE}, or "always" or "never"`);
  if (trimmed === 'always') return emptyGrid(true);
  if (trimmed === 'never') return emptyGrid(false);

  const tokens = trimmed.split(/[\s,;]+/).filter((token) => token !== '');
  const grid = emptyGrid(false);
  let days: number[] = [];
  let hoursSeen = false;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] as string;
    if (token === 'always' || token === 'never') {
      throw new Error(`schedule: "${token}" stands alone; write just "${token}", or days and hours, ${EXAMPLE}`);
    }
    let hours: readonly number[] | null;
    if (token === 'all' && tokens[index + 1] === 'day') {
      index++;
      hours = range(0, 24);
    } else {
      hours = parseHours(token);
    }
    if (hours === null) {
      const named = parseDays(token);
      if (hoursSeen || days.length === 0) {
        days = [];
        hoursSeen = false;
      }
      days.push(...named);
      continue;
    }
    if (days.length === 0) {
      throw new Error(`schedule: hours "${token}" come before any day; name the days first, ${EXAMPLE}`);
    }
    for (const day of days) for (const hour of hours) (grid[day] as boolean[])[hour] = true;
    hoursSeen = true;
  }
  if (!hoursSeen) {
    const last = tokens[tokens.length - 1];
    throw new Error(`schedule: "${last}" has no hours after it; add them, e.g. "${last} 00-24" or "${last} all day"`);
  }
  return grid;
}

export function formatSchedule(hours: WeeklyHours): string {
  const all = hours.flat();
  if (all.every((hour) => hour)) return 'always';
  if (all.every((hour) => !hour)) return 'never';
  const specs = WEEK_ORDER.map((day) => daySpec(hours[day] ?? []));
  const groups: string[] = [];
  for (let start = 0; start < WEEK_ORDER.length; ) {
    let end = start;
    while (end + 1 < WEEK_ORDER.length && specs[end + 1] === specs[start]) end++;
    if (specs[start] !== '') {
      const first = WEEKDAYS[WEEK_ORDER[start] as number];
      const last = WEEKDAYS[WEEK_ORDER[end] as number];
      groups.push(`${start === end ? first : `${first}-${last}`} ${specs[start]}`);
    }
    start = end + 1;
  }
  return groups.join(', ');
}

/** One day's marked hours as ranges; a morning run from 00 and an evening run to 24 become one "18-08". */
function daySpec(day: readonly boolean[]): string {
  const runs: Array<[number, number]> = [];
  for (let hour = 0; hour < 24; hour++) {
    if (!day[hour]) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === hour) last[1] = hour + 1;
    else runs.push([hour, hour + 1]);
  }
  const first = runs[0];
  const final = runs[runs.length - 1];
  if (runs.length >= 2 && first !== undefined && final !== undefined && first[0] === 0 && final[1] === 24) {
    runs.shift();
    runs.pop();
    runs.unshift([final[0], first[1]]);
  }
  return runs.map(([from, to]) => `${pad(from)}-${pad(to)}`).join(' ');
}

/** "18-08", "9-17", "18:00-08:00" -> the day's hours it covers; null when the token is no hour range. */
function parseHours(token: string): number[] | null {
  const match = /^(\d{1,2})(?::00)?-(\d{1,2})(?::00)?$/.exec(token);
  if (!match) {
    if (/^[\d:]+(-[\d:]*)?$/.test(token)) {
      throw new Error(`schedule: "${token}" is no hour range; write whole hours "HH-HH", ${EXAMPLE}`);
    }
    return null;
  }
  const from = Number(match[1]);
  const to = Number(match[2]);
  if (from > 23 || to > 24) {
    throw new Error(`schedule: "${token}" has an hour past the day; hours run 00-24, ${EXAMPLE}`);
  }
  if (from === to) {
    throw new Error(`schedule: "${token}" covers no hours; use "00-24" for the whole day, ${EXAMPLE}`);
  }
  return from < to ? range(from, to) : [...range(0, to), ...range(from, 24)];
}

function parseDays(token: string): readonly number[] {
  const word = DAY_WORDS[token];
  if (word !== undefined) return word;
  const [from, to, extra] = token.split('-');
  if (extra !== undefined || from === undefined) throw notADay(token);
  const start = dayIndex(from, token);
  if (to === undefined) return [start];
  const end = dayIndex(to, token);
  const days: number[] = [start];
  for (let day = start; day !== end; ) {
    day = (day + 1) % 7;
    days.push(day);
  }
  return days;
}

function dayIndex(name: string, token: string): number {
  const index = (WEEKDAYS as readonly string[]).indexOf(name);
  if (index < 0) throw notADay(token);
  return index;
}

function notADay(token: string): Error {
  return new Error(
    `schedule: "${token}" is not a day or an hour range; days are mon, tue, wed, thu, fri, sat, sun (or ranges such as mon-fri), hours HH-HH, ${EXAMPLE}`,
  );
}

function emptyGrid(value: boolean): boolean[][] {
  return Array.from({ length: 7 }, () => Array.from({ length: 24 }, () => value));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_unused, index) => from + index);
}

function pad(hour: number): string {
  return String(hour).padStart(2, '0');
}
