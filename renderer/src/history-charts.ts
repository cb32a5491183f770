import type { PolicyReason } from '@ray-agent/protocol';
import { POLICY_REASON_LABELS } from '@ray-agent/protocol';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartDataset,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { cpuText, durationText, type HistoryBucket } from './history-data.js';

/**
 * Chart.js, registered piece by piece so the bundle carries only bar and line charts. It draws on a canvas and sets
 * sizes through the CSSOM (allowed by the page's style-src 'self'); it injects no stylesheet and evaluates no code.
 */
Chart.register(
  BarController,
  BarElement,
  LineController,
  LineElement,
  PointElement,
  CategoryScale,
  LinearScale,
  Legend,
  Tooltip,
);

const SERIES = {
  cpu: '#1f78d1',
  tasks: '#e8590c',
  contributing: '#2f9e44',
  steppedAside: '#f2b600',
};
/** Pause reasons in greys and muted hues, so "not contributing" reads as one family of colours. */
const PAUSE_COLOURS: Record<PolicyReason, string> = {
  'in-use': '#868e96',
  'outside-schedule': '#adb5bd',
  'on-battery': '#9775fa',
  'low-battery': '#d0bfff',
  suspend: '#495057',
  shutdown: '#343a40',
  // The person's own choices in warm tones: told apart from what the policy decided.
  paused: '#ffc078',
  off: '#ffa8a8',
};

function themeColours(): { text: string; grid: string } {
  const style = getComputedStyle(document.documentElement);
  return {
    text: style.getPropertyValue('--muted').trim() || '#5b636e',
    grid: style.getPropertyValue('--line').trim() || '#d8dce2',
  };
}

function scale(title: string, colours: { text: string; grid: string }, extra: Record<string, unknown> = {}) {
  return {
    beginAtZero: true,
    title: { display: true, text: title, color: colours.text },
    ticks: { color: colours.text },
    grid: { color: colours.grid },
    ...extra,
  };
}

/** CPU given (bars, left axis) and tasks completed (a line, right axis). Units follow the window's size. */
export function cpuTasksChart(canvas: HTMLCanvasElement, buckets: HistoryBucket[], unit: 'minutes' | 'hours'): Chart {
  const colours = themeColours();
  const divisor = unit === 'hours' ? 3600 : 60;
  const cpu: ChartDataset<'bar', number[]> = {
    type: 'bar',
    label: `CPU given (CPU-${unit})`,
    data: buckets.map((b) => b.cpuSeconds / divisor),
    backgroundColor: SERIES.cpu,
    yAxisID: 'y',
    order: 2,
  };
  const tasks: ChartDataset<'line', number[]> = {
    type: 'line',
    label: 'Tasks completed',
    data: buckets.map((b) => b.tasks),
    borderColor: SERIES.tasks,
    backgroundColor: SERIES.tasks,
    pointRadius: 2,
    yAxisID: 'y1',
    order: 1,
  };
  return new Chart(canvas, {
    type: 'bar',
    data: { labels: buckets.map((b) => b.label), datasets: [cpu, tasks as unknown as ChartDataset<'bar', number[]>] },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: scale('', colours, { title: { display: false }, grid: { display: false } }),
        y: scale(`CPU-${unit}`, colours),
        y1: scale('Tasks', colours, {
          position: 'right',
          grid: { drawOnChartArea: false },
          ticks: { color: colours.text, precision: 0 },
        }),
      },
      plugins: {
        // In dataset order (CPU first), not drawing order (the line is drawn last, on top of the bars).
        legend: { labels: { color: colours.text, sort: (a, b) => (a.datasetIndex ?? 0) - (b.datasetIndex ?? 0) } },
        tooltip: {
          itemSort: (a, b) => a.datasetIndex - b.datasetIndex,
          callbacks: {
            label: (item) =>
              item.datasetIndex === 0
                ? `CPU given: ${cpuText(buckets[item.dataIndex]?.cpuSeconds ?? 0)}`
                : `Tasks completed: ${buckets[item.dataIndex]?.tasks ?? 0}`,
          },
        },
      },
    },
  });
}

/** Time contributing, stepped aside and paused (one band per reason that occurs), stacked. */
export function timeChart(canvas: HTMLCanvasElement, buckets: HistoryBucket[], unit: 'minutes' | 'hours'): Chart {
  const colours = themeColours();
  const divisor = unit === 'hours' ? 3600 : 60;
  const reasons = (Object.keys(POLICY_REASON_LABELS) as PolicyReason[]).filter((reason) =>
    buckets.some((b) => (b.pausedSeconds[reason] ?? 0) > 0),
  );
  const band = (
    label: string,
    colour: string,
    seconds: (b: HistoryBucket) => number,
  ): ChartDataset<'bar', number[]> => ({
    label,
    data: buckets.map((b) => seconds(b) / divisor),
    backgroundColor: colour,
    stack: 'time',
  });
  const datasets = [
    band('Contributing', SERIES.contributing, (b) => b.contributingSeconds),
    band('Stepped aside', SERIES.steppedAside, (b) => b.steppedAsideSeconds),
    ...reasons.map((reason) =>
      band(`Paused: ${POLICY_REASON_LABELS[reason]}`, PAUSE_COLOURS[reason], (b) => b.pausedSeconds[reason] ?? 0),
    ),
  ];
  return new Chart(canvas, {
    type: 'bar',
    data: { labels: buckets.map((b) => b.label), datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: scale('', colours, { stacked: true, title: { display: false }, grid: { display: false } }),
        y: scale(unit, colours, { stacked: true, max: unit === 'hours' ? 24 : 60 }),
      },
      plugins: {
        legend: { labels: { color: colours.text } },
        tooltip: {
          callbacks: { label: (item) => `${item.dataset.label}: ${durationText((item.parsed.y ?? 0) * divisor)}` },
        },
      },
    },
  });
}
