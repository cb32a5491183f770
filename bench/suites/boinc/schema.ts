import { z } from 'zod';

const positive = z.number().finite().positive();

export const BoincData = z.object({
  skipped: z.string().nullable(),
  version: z.string().nullable(),
  command: z.string().nullable(),
  /** How we know it reached nothing: what its network namespace held at the end of each run. */
  isolation: z
    .object({ interfaces: z.array(z.string()), tcpSockets: z.number().int(), udpSockets: z.number().int() })
    .nullable(),
  reps: z.array(
    z.object({
      seconds: positive,
      rssBytes: positive,
      pssBytes: positive,
      cpuSecondsPerMinute: z.number().finite().nonnegative(),
    }),
  ),
});
export type BoincData = z.infer<typeof BoincData>;

export interface BoincSettings {
  reps: number;
  settleSeconds: number;
  seconds: number;
  /** Install Debian's boinc-client when it is missing (the outer half does, with the network). */
  install: boolean;
}
