import type { StatusView } from '@ray-agent/protocol';
import { InvalidArgumentError } from 'commander';

/** How the CLI prints the agent's view, and its small argument parsers. */
const MiB = 1024 ** 2;

/** `ray-agent status` (and `up`, `join`) as text. */
export function describeView(view: StatusView): string {
  const lines = [view.headline];
  if (view.detail) lines.push(`  ${view.detail}`);
  lines.push(
    `  registration: ${view.registration.state}${view.registration.providerId ? ` (${view.registration.providerId})` : ''}`,
  );
  lines.push(
    `  heartbeat: ${view.heartbeat.healthy ? 'healthy' : view.heartbeat.failingSince ? `failing since ${view.heartbeat.failingSince}` : 'not yet'}`,
  );
  lines.push(`  running tasks: ${view.runningTasks}`);
  if (view.tunnel) lines.push(`  ${view.tunnel.line.replace(/^Tunnel: /, 'tunnel: ')}`);
  if (view.sandbox) lines.push(`  sandboxes: ${view.sandbox.line}`);
  if (view.limits)
    lines.push(`  limits: ${cpuLimitText(view.limits)}, ${Math.round(view.limits.memoryBytes / MiB)} MiB`);
  return lines.join('\n');
}

/** "2 CPUs", or "Ray uses 2 of 2.5 CPUs" when Ray schedules fewer whole CPUs than the container has. */
export function cpuLimitText(limits: { cpus: number; rayCpus?: number | undefined }): string {
  const cpus = (n: number) => `${n} ${n === 1 ? 'CPU' : 'CPUs'}`;
  return limits.rayCpus !== undefined && limits.rayCpus < limits.cpus
    ? `Ray uses ${limits.rayCpus} of ${cpus(limits.cpus)}`
    : cpus(limits.cpus);
}

export function positiveInt(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError('must be a whole number, e.g. 100');
  return number;
}
