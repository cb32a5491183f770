import { fmt } from '../../lib/format.js';
import type { SandboxData } from './schema.js';

export function sandboxDetails(data: SandboxData): string {
  const rows = [
    '| Rep. (first) | Start s: sandbox / actor | Loop wall s (user, sys): sandbox / task | dd wall s (user, sys): sandbox / task | Round trip s: sandbox / task |',
    '|---|---|---|---|---|',
  ];
  const t = (x: { wall: number; user: number; sys: number }) => `${fmt(x.wall)} (${fmt(x.user)}, ${fmt(x.sys)})`;
  for (const [i, rep] of data.reps.entries())
    rows.push(
      `| ${i + 1} (${rep.first}) | ${fmt(rep.start.sandbox)} / ${fmt(rep.start.actor)} | ${t(rep.loop.sandbox)} / ${t(rep.loop.task)} | ${t(rep.syscalls.sandbox)} / ${t(rep.syscalls.task)} | ${fmt(rep.roundTrip.sandbox)} / ${fmt(rep.roundTrip.task)} |`,
    );
  return `${rows.join('\n')}\n\nOne agent node (the controller's recipe, ${data.cpus} CPU). The agent's own self-test at start: kernel ${data.selfTest.kernel}, first sandbox in ${fmt(data.selfTest.startSeconds)} s (image extraction included). Commands are timed by busybox \`time\` where they ran (10 ms steps).`;
}
