import { defaultWeeklyHours, WeeklyHours } from '@ray-agent/protocol';
import { describe, expect, test } from 'vitest';
import { formatSchedule, parseSchedule } from '../../src/policy/schedule-text.js';

const grid = (value: boolean) => Array.from({ length: 7 }, () => Array.from({ length: 24 }, () => value));
/** The marked hours as "day:hour" strings, Sunday = 0, for readable comparisons. */
const marked = (hours: boolean[][]) =>
  hours.flatMap((day, weekday) => day.flatMap((on, hour) => (on ? [`${weekday}:${hour}`] : [])));

describe('parseSchedule', () => {
  test('the default grid reads as "mon-fri 18-08, sat-sun 00-24" (a wrapped range stays on its own day)', () => {
    expect(parseSchedule('mon-fri 18-08, sat-sun 00-24')).toEqual(defaultWeeklyHours());
    expect(formatSchedule(defaultWeeklyHours())).toBe('mon-fri 18-08, sat-sun 00-24');
    const monday = parseSchedule('mon 18-08')[1];
    expect(monday?.map((on, hour) => (on ? hour : -1)).filter((hour) => hour >= 0)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 18, 19, 20, 21, 22, 23,
    ]);
    // Tuesday morning is not Monday's: nothing spills over.
    expect(parseSchedule('mon 18-08')[2]?.some((on) => on)).toBe(false);
  });

  test('always, never, day words, lists, ranges that wrap the week, several ranges a day, "all day", HH:00', () => {
    expect(parseSchedule('always')).toEqual(grid(true));
    expect(parseSchedule('  NEVER ')).toEqual(grid(false));
    expect(parseSchedule('daily 00-24')).toEqual(grid(true));
    expect(parseSchedule('weekdays 09-17')).toEqual(parseSchedule('mon-fri 9-17'));
    expect(parseSchedule('weekends all day')).toEqual(parseSchedule('sat-sun 00-24'));
    expect(parseSchedule('mon-fri 18-08; sat,sun all day')).toEqual(defaultWeeklyHours());
    expect(parseSchedule('sat, sun 00-24, mon-fri 18:00-08:00')).toEqual(defaultWeeklyHours());
    expect(marked(parseSchedule('fri-mon 12-13'))).toEqual(['0:12', '1:12', '5:12', '6:12']);
    expect(marked(parseSchedule('wed 09-11 14-15'))).toEqual(['3:9', '3:10', '3:14']);
    expect(marked(parseSchedule('sun 23-24'))).toEqual(['0:23']);
    expect(marked(parseSchedule('sat 22-00'))).toEqual(['6:22', '6:23']);
    expect(WeeklyHours.safeParse(parseSchedule('mon 1-2')).success).toBe(true);
  });

  test.each([
    ['', /schedule is empty.*e\.g\. "mon-fri 18-08, sat-sun 00-24"/],
    ['mon-fri', /"mon-fri" has no hours after it.*"mon-fri 00-24"/],
    ['18-08', /hours "18-08" come before any day/],
    ['mon 18-18', /"18-18" covers no hours; use "00-24"/],
    ['mon 25-08', /"25-08" has an hour past the day/],
    ['mon 24-08', /"24-08" has an hour past the day/],
    ['mon 8', /"8" is no hour range; write whole hours "HH-HH"/],
    ['mon 8:30-9', /"8:30-9" is no hour range/],
    ['monday 18-08', /"monday" is not a day or an hour range; days are mon, tue/],
    ['mon-funday 1-2', /"mon-funday" is not a day/],
    ['mon 1-2 always', /"always" stands alone/],
  ])('%j is refused, naming the problem and an example', (text, message) => {
    expect(() => parseSchedule(text)).toThrow(message);
  });
});

describe('formatSchedule', () => {
  test('always and never', () => {
    expect(formatSchedule(grid(true))).toBe('always');
    expect(formatSchedule(grid(false))).toBe('never');
  });

  test('groups equal days Monday first, joins a night into one wrapped range', () => {
    expect(formatSchedule(parseSchedule('mon-fri 09-17'))).toBe('mon-fri 09-17');
    expect(formatSchedule(parseSchedule('sun 09-17, mon 09-17'))).toBe('mon 09-17, sun 09-17');
    expect(formatSchedule(parseSchedule('tue 00-08 12-13 20-24'))).toBe('tue 20-08 12-13');
    expect(formatSchedule(parseSchedule('mon 00-24, tue 00-23'))).toBe('mon 00-24, tue 00-23');
  });

  test('round trip: text -> grid -> text -> the same grid, for hand-written and random grids', () => {
    for (const text of ['mon-fri 18-08, sat-sun 00-24', 'wed 01-02 05-07 22-23', 'fri-mon 12-13', 'sun 00-01']) {
      const hours = parseSchedule(text);
      expect(parseSchedule(formatSchedule(hours))).toEqual(hours);
    }
    // A fixed-seed generator: the same grids on every run.
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 300; round++) {
      const density = random();
      const hours = grid(false).map((day) => day.map(() => random() < density));
      expect(parseSchedule(formatSchedule(hours))).toEqual(hours);
    }
  });
});
