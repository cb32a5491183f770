import type { HistoryDocument, HistoryHour } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import { formatCpu, formatDuration, historyRows, historyTable } from '../../src/history/history-table.js';

const hour = (iso: string, fields: Partial<HistoryHour> = {}): HistoryHour => ({
  hourStart: iso,
  cpuSeconds: 0,
  tasksCompleted: 0,
  contributingSeconds: 0,
  steppedAsideSeconds: 0,
  pausedSeconds: {},
  ...fields,
});

const now = Date.parse('2026-12-02T14:20:00.000Z');
const doc: HistoryDocument = {
  version: 1,
  hours: [
    // Too old for either view.
    hour('2026-10-01T10:00:00.000Z', { cpuSeconds: 99_999, tasksCompleted: 999, contributingSeconds: 3600 }),
    // Yesterday (UTC), outside the last 24 hours but inside the 30 days.
    hour('2026-12-01T10:00:00.000Z', { cpuSeconds: 7200, tasksCompleted: 40, contributingSeconds: 3600 }),
    hour('2026-12-02T13:00:00.000Z', {
      cpuSeconds: 5400,
      tasksCompleted: 12,
      contributingSeconds: 2700,
      steppedAsideSeconds: 300,
      pausedSeconds: { 'on-battery': 600 },
    }),
    hour('2026-12-02T14:00:00.000Z', { cpuSeconds: 42, tasksCompleted: 1, contributingSeconds: 1200 }),
  ],
};

describe('historyTable', () => {
  it('the last 24 hours: one row per hour (empty ones too), aligned, with a totals row', () => {
    const text = historyTable(doc, { view: 'hours', now, timeZone: 'UTC' });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('What this computer gave, the last 24 hours (per hour):');
    expect(lines[1]).toMatch(/^Hour\s+CPU given\s+Tasks\s+Contributing\s+Stepped aside\s+Paused: on battery$/);
    // Header, rule, 24 rows, rule, total.
    expect(lines).toHaveLength(1 + 2 + 24 + 2);
    expect(lines[3]).toMatch(/^Tue 15:00 /); // 23 hours before 14:00 on Wednesday
    expect(lines[25]).toMatch(/^Wed 13:00\s+1\.50 CPU-h\s+12\s+45m\s+5m\s+10m$/);
    expect(lines[26]).toMatch(/^Wed 14:00\s+42 CPU-s\s+1\s+20m\s+—\s+—$/);
    expect(lines[28]).toMatch(/^Total\s+1\.51 CPU-h\s+13\s+1h 05m\s+5m\s+10m$/);
    // Aligned: every line of the table is as wide as the header or narrower, and figures end in the same column.
    const ends = [lines[1], lines[25], lines[26], lines[28]].map((line) => line?.length);
    expect(new Set(ends).size).toBe(1);
    expect(text).not.toContain('99999');
  });

  it('the last 30 days per local day, in the zone asked for', () => {
    const text = historyTable(doc, { view: 'days', now, timeZone: 'UTC' });
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 2 + 30 + 2);
    expect(lines[3]).toMatch(/^Tue 03 Nov /);
    expect(lines[31]).toMatch(/^Tue 01 Dec\s+2\.00 CPU-h\s+40\s+1h 00m\s+—\s+—$/);
    expect(lines[32]).toMatch(/^Wed 02 Dec\s+1\.51 CPU-h\s+13\s+1h 05m\s+5m\s+10m$/);
    expect(lines[34]).toMatch(/^Total\s+3\.51 CPU-h\s+53\s+2h 05m/);
    // In Tokyo (UTC+9), 13:00 and 14:00 UTC are 22:00 and 23:00 on the 2nd, but 10:00 UTC on the 1st is 19:00 there:
    // the same days. In Honolulu (UTC-10) 13:00 UTC on the 2nd is 03:00 on the 2nd and 10:00 on the 1st is 00:00.
    const hawaii = historyRows(doc, { view: 'days', now, timeZone: 'Pacific/Honolulu' });
    expect(hawaii.at(-1)?.label).toBe('Wed 02 Dec');
    expect(hawaii.at(-1)?.tasks).toBe(13);
    expect(hawaii.at(-2)?.tasks).toBe(40);
    // In Kiritimati (UTC+14) 14:00 UTC on the 2nd is already the 3rd: today there is Thursday.
    const line = historyRows(doc, { view: 'days', now, timeZone: 'Pacific/Kiritimati' });
    expect(line.at(-1)).toMatchObject({ label: 'Thu 03 Dec', tasks: 13 });
    expect(line.at(-2)).toMatchObject({ label: 'Wed 02 Dec', tasks: 40 });
  });

  it('days are calendar days across a daylight-saving change: none skipped, none twice', () => {
    // Europe/Berlin went to summer time on 2026-03-29 (a 23-hour day).
    const rows = historyRows(
      { version: 1, hours: [] },
      {
        view: 'days',
        now: Date.parse('2026-03-30T22:30:00.000Z'), // 00:30 on the 31st in Berlin
        timeZone: 'Europe/Berlin',
      },
    );
    const labels = rows.map((row) => row.label);
    expect(new Set(labels).size).toBe(30);
    expect(labels.slice(-4)).toEqual(['Sat 28 Mar', 'Sun 29 Mar', 'Mon 30 Mar', 'Tue 31 Mar']);
  });

  it('an empty history is a sentence, not an empty table', () => {
    expect(historyTable({ version: 1, hours: [] }, { view: 'hours', now, timeZone: 'UTC' })).toBe(
      'No contribution history for the last 24 hours yet: it is recorded while Ray Agent runs.\n',
    );
    // Old hours only: empty for the window asked.
    expect(historyTable({ version: 1, hours: [doc.hours[0] as HistoryHour] }, { view: 'days', now })).toMatch(
      /^No contribution history for the last 30 days yet/,
    );
  });

  it('the hours view keys rows by the UTC hour start, whatever the zone shows', () => {
    const rows = historyRows(doc, { view: 'hours', now: now + 40 * 60_000, timeZone: 'Asia/Kolkata' });
    // 15:00 UTC is the newest hour; 13:00 UTC is 18:30 in Kolkata.
    expect(rows.at(-1)?.label).toBe('Wed 20:30');
    expect(rows.at(-3)).toMatchObject({ label: 'Wed 18:30', tasks: 12 });
  });
});

describe('formatting', () => {
  it('CPU time reads in CPU-seconds, minutes or hours', () => {
    expect(formatCpu(0)).toBe('—');
    expect(formatCpu(45.4)).toBe('45 CPU-s');
    expect(formatCpu(750)).toBe('12.5 CPU-min');
    expect(formatCpu(11_520)).toBe('3.20 CPU-h');
  });
  it('durations read in seconds, minutes, hours or days', () => {
    expect(formatDuration(0)).toBe('—');
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(720)).toBe('12m');
    expect(formatDuration(3 * 3600 + 300)).toBe('3h 05m');
    expect(formatDuration(52 * 3600)).toBe('2d 4h');
  });
});
