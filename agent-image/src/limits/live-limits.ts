import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LIVE_LIMITS_FILE, LiveLimits } from '@ray-agent/protocol';
import { writeFileAtomic } from '@ray-agent/tunnel/atomic-file';
import type { LimitRequest } from './effective-limits.js';

/** LIVE_LIMITS_FILE's place in this agent's state directory (tests run with a STATE_DIR of their own). */
export function liveLimitsPath(stateDir: string): string {
  return join(stateDir, basename(LIVE_LIMITS_FILE));
}

export type LiveLimitsRead =
  | { kind: 'none' }
  | { kind: 'ok'; limits: LiveLimits }
  | { kind: 'invalid'; warning: string };

export function readLiveLimits(path: string): LiveLimitsRead {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    return { kind: 'invalid', warning: `${path} cannot be read (${(error as Error).message}); it is ignored` };
  }
  let parsed: ReturnType<typeof LiveLimits.safeParse>;
  try {
    parsed = LiveLimits.safeParse(JSON.parse(text));
  } catch {
    return { kind: 'invalid', warning: `${path} is not JSON; it is ignored and the limits come from the environment` };
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || '(root)';
    return {
      kind: 'invalid',
      warning: `${path}: ${field}: ${issue?.message ?? 'invalid'}; it is ignored and the limits come from the environment`,
    };
  }
  return { kind: 'ok', limits: parsed.data };
}

/** The one atomic writer: after kill -9 at any instant the file holds the old offer or the new one. */
export function writeLiveLimits(path: string, limits: LiveLimits): void {
  writeFileAtomic(path, `${JSON.stringify(limits)}\n`);
}

// A quota over its period is not an exact decimal (1.9999999 for 2): compare with some room.
const CPU_EPSILON = 1e-3;

/**
 * What Ray is sized by at start. The saved offer outranks CPU_LIMIT/MEMORY_LIMIT (the controller changed it live
 * since the container was made), and a CPU quota equal to the saved throttle is the controller stepping aside,
 * not the limit: an agent restarted while throttled still gives Ray the whole offer.
 */
export function startupRequest(
  env: LimitRequest,
  live: LiveLimits | undefined,
  cgroupCpus: number | undefined,
): { request: LimitRequest; cgroupCpus: number | undefined } {
  if (!live) return { request: env, cgroupCpus };
  const throttled =
    live.throttleCpus !== null && cgroupCpus !== undefined && Math.abs(cgroupCpus - live.throttleCpus) < CPU_EPSILON;
  return {
    request: { cpus: live.cpus, memoryBytes: live.memoryBytes },
    cgroupCpus: throttled ? undefined : cgroupCpus,
  };
}
