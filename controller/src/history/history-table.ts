import { type HistoryDocument, type HistoryHour, POLICY_REASON_LABELS, type PolicyReason } from '@ray-agent/protocol';

export interface HistoryTableOptions {
  /** hours: the last 24 hours, one row each; days: the last 30 days, one row each (local days of timeZone). */
  view: 'hours' | 'days';
  now: number;
  /** An IANA zone ("Europe/Berlin"); the machine's own when left out. */
  timeZone?: string;
}

const HOUR_MS = 3_600_000;
export const HISTORY_TABLE_HOURS = 24;
export const HISTORY_TABLE_DAYS = 30;

const REASON_ORDER = Object.keys(POLICY_REASON_LABELS) as PolicyReason[];

export interface HistoryRow {
  label: string;
  cpuSeconds: number;
  tasks: number;
  contributing: number;
  steppedAside: number;
  paused: Partial<Record<PolicyReason, number>>;
}

const emptyRow = (label: string): HistoryRow => ({
  label,
  cpuSeconds: 0,
  tasks: 0,
  contributing: 0,
  steppedAside: 0,
  paused: {},
});

function add(row: HistoryRow, hour: HistoryHour): void {
  row.cpuSeconds += hour.cpuSeconds;
  row.tasks += hour.tasksCompleted;
  row.contributing += hour.contributingSeconds;
  row.steppedAside += hour.steppedAsideSeconds;
  for (const [reason, seconds] of Object.entries(hour.pausedSeconds) as Array<[PolicyReason, number]>) {
    row.paused[reason] = (row.paused[reason] ?? 0) + seconds;
  }
}

/** CPU time as a person reads it: "45 CPU-s", "12.5 CPU-min", "3.20 CPU-h". */
export function formatCpu(seconds: number): string {
  if (seconds < 0.5) return '—';
  if (seconds < 60) return `${Math.round(seconds)} CPU-s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} CPU-min`;
  return `${(seconds / 3600).toFixed(2)} CPU-h`;
}

/** A duration: "45s", "12m", "3h 05m", "2d 4h". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s === 0) return '—';
  if (s < 60) return `${s}s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** The local calendar date of an instant in a zone, as YYYY-MM-DD. */
function dayKey(ms: number, timeZone: string | undefined): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
}

/** Calendar arithmetic on a YYYY-MM-DD key: independent of any zone's daylight-saving shifts. */
function shiftDay(key: string, days: number): string {
  const [y, m, d] = key.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** The rows of a view, oldest first: every hour or day of the window, empty ones too. */
export function historyRows(doc: HistoryDocument, options: HistoryTableOptions): HistoryRow[] {
  const { timeZone } = options;
  if (options.view === 'hours') {
    const newest = Math.floor(options.now / HOUR_MS) * HOUR_MS;
    const label = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    const rows = new Map<number, HistoryRow>();
    for (let i = HISTORY_TABLE_HOURS - 1; i >= 0; i--) {
      const start = newest - i * HOUR_MS;
      rows.set(start, emptyRow(label.format(start)));
    }
    for (const hour of doc.hours) {
      const row = rows.get(Date.parse(hour.hourStart));
      if (row) add(row, hour);
    }
    return [...rows.values()];
  }
  const today = dayKey(options.now, timeZone);
  const label = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short', day: '2-digit', month: 'short' });
  const rows = new Map<string, HistoryRow>();
  for (let i = HISTORY_TABLE_DAYS - 1; i >= 0; i--) {
    const key = shiftDay(today, -i);
    // The key is a calendar date; format it at UTC noon so no zone moves it to another day.
    rows.set(key, emptyRow(label.format(Date.parse(`${key}T12:00:00Z`))));
  }
  for (const hour of doc.hours) {
    const row = rows.get(dayKey(Date.parse(hour.hourStart), timeZone));
    if (row) add(row, hour);
  }
  return [...rows.values()];
}

/**
 * `ray-agent history`: what this computer gave, per hour over the last 24 hours or per day over the last 30 days,
 * in aligned columns with a totals row. One "Paused: <reason>" column per reason that occurs in the window.
 */
export function historyTable(doc: HistoryDocument, options: HistoryTableOptions): string {
  const rows = historyRows(doc, options);
  const total = emptyRow('Total');
  for (const row of rows) {
    add(total, {
      hourStart: '',
      cpuSeconds: row.cpuSeconds,
      tasksCompleted: row.tasks,
      contributingSeconds: row.contributing,
      steppedAsideSeconds: row.steppedAside,
      pausedSeconds: row.paused,
    });
  }
  const span = options.view === 'hours' ? 'the last 24 hours' : 'the last 30 days';
  const counted = total.contributing + total.steppedAside + Object.values(total.paused).reduce((a, b) => a + b, 0);
  if (counted === 0 && total.cpuSeconds === 0 && total.tasks === 0) {
    return `No contribution history for ${span} yet: it is recorded while Ray Agent runs.\n`;
  }
  const reasons = REASON_ORDER.filter((reason) => (total.paused[reason] ?? 0) > 0);
  const header = [
    options.view === 'hours' ? 'Hour' : 'Day',
    'CPU given',
    'Tasks',
    'Contributing',
    'Stepped aside',
    ...reasons.map((reason) => `Paused: ${POLICY_REASON_LABELS[reason]}`),
  ];
  const cells = (row: HistoryRow) => [
    row.label,
    formatCpu(row.cpuSeconds),
    row.tasks === 0 ? '—' : String(row.tasks),
    formatDuration(row.contributing),
    formatDuration(row.steppedAside),
    ...reasons.map((reason) => formatDuration(row.paused[reason] ?? 0)),
  ];
  const table = [header, ...rows.map(cells), cells(total)];
  const widths = header.map((_, column) => Math.max(...table.map((line) => (line[column] ?? '').length)));
  // The label column reads left to right; figures line up on the right.
  const render = (line: string[]) =>
    line
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '─'.repeat(width)).join('  ');
  const lines = [
    `What this computer gave, ${span}${options.view === 'hours' ? ' (per hour)' : ' (per day)'}:`,
    render(header),
    rule,
    ...rows.map((row) => render(cells(row))),
    rule,
    render(cells(total)),
  ];
  return `${lines.join('\n')}\n`;
}
