import type { LimitsData } from './schema.js';

const MiB = 1024 ** 2;
const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join(
    '\n',
  );

export function details(data: LimitsData): string {
  const parts: string[] = [];
  if (data.memory.length > 0)
    parts.push(
      '**Memory: a task allocating more than the limit** (per trial)\n\n' +
        table(
          [
            'limit MiB',
            'task MiB',
            'task ended',
            'kernel OOM kills',
            'OOMKilled',
            'restarts',
            'peak MiB',
            'host kept MiB',
            'follow-up',
            'agent',
          ],
          data.memory.map((t) => [
            f(t.limitBytes / MiB, 0),
            f(t.taskMiB, 0),
            `${t.outcome}${t.error ? ` (${t.error.replace(/\|/g, '/').slice(0, 80)})` : ''}`,
            String(t.kernelOomKills),
            String(t.oomKilled),
            String(t.restarts),
            f(t.peakBytes / MiB, 0),
            `${f(t.hostKeptBytes / MiB, 0)} of ${f(t.hostHeldBytes / MiB, 0)}`,
            t.followUpRan
              ? `ran after ${f(t.followUpSeconds)} s${t.followUpSameNode ? '' : ' (new node)'}`
              : 'did not run',
            t.agentState,
          ]),
        ),
    );
  if (data.spill.length > 0)
    parts.push(
      '**Spilling** (objects held beyond the object store)\n\n' +
        table(
          [
            'limit MiB',
            'object store MiB',
            'put MiB',
            'put s',
            'on the spill volume MiB',
            '/tmp (tmpfs) MiB',
            'intact',
          ],
          data.spill.map((t) => [
            f(t.limitBytes / MiB, 0),
            f(t.objectStoreBytes / MiB, 0),
            f(t.putBytes / MiB, 0),
            f(t.putSeconds),
            f(t.spilledBytes / MiB, 0),
            f(t.tmpBytes / MiB, 0),
            `${t.intact}/${t.objects}`,
          ]),
        ) +
        data.spill
          .filter((t) => t.failure !== null)
          .map((t) => `\n\nReading back under ${f(t.limitBytes / MiB, 0)} MiB failed: ${t.failure}`)
          .join(''),
    );
  if (data.cpu.length > 0)
    parts.push(
      `**CPU windows** (8 quarter-CPU spinning tasks; host wake-up by ${data.wakeTool})\n\n` +
        table(
          [
            '--cpus',
            'window s',
            'cores used',
            'throttled / periods',
            'throttled s',
            'wake p99 µs (idle)',
            'wake max µs (idle)',
          ],
          data.cpu.map((w) => [
            String(w.limit),
            f(w.seconds),
            f(w.cores, 3),
            `${w.throttled} / ${w.periods}`,
            f(w.throttledSeconds, 2),
            `${f(w.wakeP99, 0)} (${f(w.idleWakeP99, 0)})`,
            `${f(w.wakeMax, 0)} (${f(w.idleWakeMax, 0)})`,
          ]),
        ),
    );
  if (data.scale.length > 0)
    parts.push(
      '**Scale of work**\n\n' +
        table(
          ['tiny tasks', 'completed', 's', 'large object MiB', 'ok', 's', 'actors', 's', 'max_calls=1 tasks', 's'],
          data.scale.map((s) => [
            String(s.tinyTasks),
            String(s.tinyCompleted),
            f(s.tinySeconds),
            f(s.largeBytes / MiB, 0),
            String(s.largeOk),
            f(s.largeSeconds),
            String(s.actors),
            f(s.actorSeconds),
            String(s.onceTasks),
            f(s.onceSeconds),
          ]),
        ),
    );
  return parts.join('\n\n');
}
