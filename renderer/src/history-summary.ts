import type { HistoryDocument } from '@ray-agent/protocol';
import { POLICY_REASON_LABELS } from '@ray-agent/protocol';
import { cpuText, durationText, type HistoryBucket, totalPaused } from './history-data.js';

export interface ViewSpec {
  id: string;
  title: string;
  per: 'hour' | 'day';
  unit: 'minutes' | 'hours';
  buckets: (doc: HistoryDocument, now: number) => HistoryBucket[];
}

/** One sentence for the view: what was given, and how the time was spent. */
export function cpuTimeSummary(buckets: HistoryBucket[]): string {
  const sum = (pick: (b: HistoryBucket) => number) => buckets.reduce((total, b) => total + pick(b), 0);
  const cpu = sum((b) => b.cpuSeconds);
  const tasks = sum((b) => b.tasks);
  const contributing = sum((b) => b.contributingSeconds);
  const aside = sum((b) => b.steppedAsideSeconds);
  const paused = sum(totalPaused);
  const counted = contributing + aside + paused;
  const share = counted > 0 ? Math.round((contributing / counted) * 100) : 0;
  return (
    `${cpuText(cpu)} given, ${tasks.toLocaleString('en')} ${tasks === 1 ? 'task' : 'tasks'} completed; ` +
    `contributing ${durationText(contributing)} (${share}% of the time recorded), stepped aside ` +
    `${durationText(aside)}, paused ${durationText(paused)}.`
  );
}

/** The figures as a real table: the charts' accessible equivalent. */
export function renderTable(view: ViewSpec, buckets: HistoryBucket[]): HTMLTableElement {
  const table = document.createElement('table');
  table.dataset.testid = `history-${view.id}-table`;
  const caption = document.createElement('caption');
  caption.textContent = `${view.title}, per ${view.per}`;
  const head = document.createElement('thead');
  const columns = [
    view.per === 'hour' ? 'Hour' : 'Day',
    'CPU given',
    'Tasks completed',
    'Contributing',
    'Stepped aside',
    'Paused',
  ];
  const headRow = document.createElement('tr');
  for (const name of columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = name;
    headRow.append(th);
  }
  head.append(headRow);
  const body = document.createElement('tbody');
  for (const bucket of buckets) {
    const row = document.createElement('tr');
    const label = document.createElement('th');
    label.scope = 'row';
    label.textContent = bucket.label;
    const reasons = Object.entries(bucket.pausedSeconds)
      .filter(([, seconds]) => seconds > 0)
      .map(
        ([reason, seconds]) =>
          `${POLICY_REASON_LABELS[reason as keyof typeof POLICY_REASON_LABELS]} ${durationText(seconds)}`,
      );
    const cells = [
      bucket.cpuSeconds > 0 ? cpuText(bucket.cpuSeconds) : '—',
      String(bucket.tasks),
      durationText(bucket.contributingSeconds),
      durationText(bucket.steppedAsideSeconds),
      reasons.length > 0 ? reasons.join(', ') : '—',
    ];
    row.append(label);
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      row.append(td);
    }
    body.append(row);
  }
  table.append(caption, head, body);
  return table;
}
