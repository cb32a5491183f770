/**
 * The agent container's interface, written once: what the controller (tray app, CLI, playground) and the agent
 * inside the image both rely on. Exit codes, the stop budget, and (below) the environment and sizing rules.
 */

/** Exit codes a restart policy, the tray app and a person reading `docker ps -a` can act on. */
export const ExitCode = {
  ok: 0,
  /** A forced stop (second signal) or an unexpected failure; a restart brings the same provider back. */
  forced: 1,
  badConfig: 2,
  enrollmentRejected: 3,
  stateDirUnusable: 5,
  /** /tmp (Ray's session files, sockets and logs) is not writable: a read-only root without a tmpfs. */
  tmpUnwritable: 6,
  /** The manager refused registration for another reason than the token: its TLS certificate, a 4xx. */
  registrationFailed: 7,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The agent's slowest stop path, each step bounded by the agent itself: Ray drains for the drain deadline; then
 * `ray start` gets `rayForceStop` more seconds before its process group is killed; then any Ray process left is
 * killed by PID (`leftoverKill`); then the last heartbeat (`finalHeartbeat`). The container's stop timeout adds a
 * margin on top, so Docker's SIGKILL never comes first.
 */
export const STOP_STEPS_SECONDS = { rayForceStop: 5, leftoverKill: 2, finalHeartbeat: 3 } as const;
export const STOP_MARGIN_SECONDS = 5;

/** The most the agent's stop can take after the drain deadline: what `docker stop` must wait beyond it. */
export function agentStopSeconds(drainDeadlineSeconds: number): number {
  const { rayForceStop, leftoverKill, finalHeartbeat } = STOP_STEPS_SECONDS;
  return drainDeadlineSeconds + rayForceStop + leftoverKill + finalHeartbeat;
}

/** The container's stop timeout (`docker run --stop-timeout`, Config.StopTimeout) for a drain deadline. */
export function stopTimeoutSeconds(drainDeadlineSeconds: number): number {
  return agentStopSeconds(drainDeadlineSeconds) + STOP_MARGIN_SECONDS;
}
