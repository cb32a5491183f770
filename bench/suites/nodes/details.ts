import type { Arm, NodesData, Pair } from './schema.js';

const MiB = 1024 ** 2;
const f = (value: number | undefined | null, digits = 2) =>
  value === undefined || value === null ? '–' : value.toFixed(digits);
const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined);
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
const table = (head: string[], rows: string[]) => [row(head), row(head.map(() => '---')), ...rows].join('\n');

const first = (p: Pair) => (p.agent.position === 0 ? 'agent' : 'plain');
const perSecond = (arm: Arm, kind: 'cpu' | 'tiny') => mean((arm.compute?.[kind] ?? []).map((b) => b.perSecond));

/** The nodes suite's detail tables, generated from the data alone. */
export function details(data: NodesData): string {
  const main = data.pairs.filter((p) => p.mode === 'main');
  const busy = data.pairs.filter((p) => p.mode === 'busy');
  const parts: string[] = [];
  parts.push(
    `Seed ${data.seed} (arm order, window order, round order). Both arms: ${data.shape.cpus} CPUs, ${data.shape.memoryBytes / MiB} MiB, CPUs ${data.shape.cpuset ?? 'not pinned'}.`,
  );
  parts.push(
    table(
      [
        'pair',
        'first',
        'rounds (first arm)',
        'join agent / plain, s',
        'CPU-bound agent / plain, tasks/s',
        'tiny agent / plain, tasks/s',
        'throttled s agent / plain',
        'idle stop agent / plain, s',
      ],
      main.map((p) =>
        row([
          p.rep + 1,
          first(p),
          p.roundOrder.join(', '),
          `${f(p.agent.join.contributingSeconds)} / ${f(p.plain.join.contributingSeconds)}`,
          `${f(perSecond(p.agent, 'cpu'), 3)} / ${f(perSecond(p.plain, 'cpu'), 3)}`,
          `${f(perSecond(p.agent, 'tiny'), 0)} / ${f(perSecond(p.plain, 'tiny'), 0)}`,
          `${f(p.agent.compute?.throttling.throttledSeconds)} / ${f(p.plain.compute?.throttling.throttledSeconds)}`,
          `${f(p.agent.stop.allGoneSeconds)} / ${f(p.plain.stop.allGoneSeconds)}`,
        ]),
      ),
    ),
  );
  if (busy.length)
    parts.push(
      table(
        [
          'busy pair',
          'first',
          'join agent / plain, s',
          'remaining task s agent / plain',
          'stop agent / plain, s',
          'tasks done agent / plain',
        ],
        busy.map((p) =>
          row([
            p.rep + 1,
            first(p),
            `${f(p.agent.join.contributingSeconds)} / ${f(p.plain.join.contributingSeconds)}`,
            `${f(p.agent.stop.busy?.remainingSeconds)} / ${f(p.plain.stop.busy?.remainingSeconds)}`,
            `${f(p.agent.stop.allGoneSeconds)} / ${f(p.plain.stop.allGoneSeconds)}`,
            `${p.agent.stop.busy?.completed ?? '–'}/${p.agent.stop.busy?.tasks ?? '–'} / ${p.plain.stop.busy?.completed ?? '–'}/${p.plain.stop.busy?.tasks ?? '–'}`,
          ]),
        ),
      ),
    );
  parts.push(
    table(
      [
        'pair',
        'first window',
        'settle s agent / plain',
        'docker stats MiB agent / plain',
        'anon+shmem MiB agent / plain',
        'PSS sum MiB agent / plain',
        'processes agent / plain',
        'agent RSS / anon / PSS MiB',
        'agent CPU % idle / polled',
      ],
      main.map((p) =>
        row([
          p.rep + 1,
          p.firstWindow ?? '–',
          `${f(p.agent.settle?.seconds, 0)} / ${f(p.plain.settle?.seconds, 0)}`,
          `${f((p.agent.idle?.cgroupDockerStatsBytes ?? Number.NaN) / MiB, 1)} / ${f((p.plain.idle?.cgroupDockerStatsBytes ?? Number.NaN) / MiB, 1)}`,
          `${f((p.agent.idle?.cgroupAnonShmemBytes ?? Number.NaN) / MiB, 1)} / ${f((p.plain.idle?.cgroupAnonShmemBytes ?? Number.NaN) / MiB, 1)}`,
          `${f((p.agent.idle?.processPssSumBytes ?? Number.NaN) / MiB, 1)} / ${f((p.plain.idle?.processPssSumBytes ?? Number.NaN) / MiB, 1)}`,
          `${p.agent.idle?.processes ?? '–'} / ${p.plain.idle?.processes ?? '–'}`,
          p.agent.idle?.agent
            ? `${f(p.agent.idle.agent.rssBytes / MiB, 1)} / ${f(p.agent.idle.agent.rssAnonBytes / MiB, 1)} / ${f(p.agent.idle.agent.pssBytes / MiB, 1)}`
            : '–',
          `${f(p.agent.idle?.agent?.cpuPercent, 3)} / ${f(p.agent.polled?.agent?.cpuPercent, 3)}`,
        ]),
      ),
    ),
  );
  parts.push(
    `Bare \`node\` in the same image: RSS ${data.bareNode.rssBytes.map((b) => f(b / MiB, 1)).join(', ')} MiB, anonymous ${data.bareNode.rssAnonBytes.map((b) => f(b / MiB, 1)).join(', ')} MiB.`,
  );
  parts.push(
    table(
      ['pair', 'requests', 'non-2xx', 'errors', 'client p99 ms', 'server count', 'server ≤ 1 ms', 'server ≤ 2 ms'],
      main.map((p) => {
        const s = p.agent.status;
        return row([
          p.rep + 1,
          s?.requests ?? '–',
          s?.non2xx ?? '–',
          s?.errors ?? '–',
          f(s?.clientP99Ms),
          s?.server?.count ?? 'no metric',
          s?.server ? `${f((100 * s.server.within1ms) / s.server.count, 2)} %` : '–',
          s?.server ? `${f((100 * s.server.within2ms) / s.server.count, 2)} %` : '–',
        ]);
      }),
    ),
  );
  const log = main[0]?.agent.agentLog ?? [];
  if (log.length)
    parts.push(
      `The agent's start-up steps, pair 1 (seconds after create + start; plain joined in ${f(main[0]?.plain.join.aliveSeconds)} s):\n\n${table(
        ['s', 'agent log'],
        log.slice(0, 25).map(([at, message]) => row([f(at), message.replace(/\|/g, '\\|')])),
      )}`,
    );
  const asks = main[0] ? [main[0].agent.rayStart, main[0].plain.rayStart] : [];
  if (asks.some(Boolean))
    parts.push(`\`ray start\`, pair 1:\n\n- agent: \`${asks[0] ?? '–'}\`\n- plain: \`${asks[1] ?? '–'}\``);
  return parts.join('\n\n');
}
