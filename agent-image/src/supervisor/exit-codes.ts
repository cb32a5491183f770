/** Exit codes a restart policy or the tray app can act on. */
export const ExitCode = {
  ok: 0,
  forced: 1,
  badConfig: 2,
  enrollmentRejected: 3,
  stateDirUnusable: 5,
  /** /tmp (Ray's session files, sockets and logs) is not writable: a read-only root without a tmpfs. */
  tmpUnwritable: 6,
  /** The manager refused registration for another reason than the token: its TLS certificate, a 4xx. */
  registrationFailed: 7,
} as const;
