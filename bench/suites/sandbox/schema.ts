import { z } from 'zod';

const seconds = z.number().finite().nonnegative();

/** One command timed by busybox `time -f "%e %U %S"` where it ran: wall, user and system seconds (10 ms steps). */
export const Timed = z.object({ wall: seconds, user: seconds, sys: seconds });
export type Timed = z.infer<typeof Timed>;

/** The same measurement inside a gVisor sandbox and as an ordinary Ray task on the same node. */
const Pair = <T extends z.ZodTypeAny>(of: T) => z.object({ sandbox: of, task: of });

export const SandboxRep = z.object({
  /** Which arm ran first in this repetition (they alternate). */
  first: z.enum(['sandbox', 'task']),
  /** Create to the first command answered: a sandbox (`sandbox.create`, then `exec true`); an actor, then a call. */
  start: z.object({ sandbox: seconds, actor: seconds }),
  /** The CPU-bound loop (busybox awk), timed by busybox where it ran. */
  loop: Pair(Timed),
  /** A system-call-bound copy (busybox dd, 512-byte blocks), timed the same way. */
  syscalls: Pair(Timed),
  /** One call that does nothing (`exec true`; a task returning), measured at the driver. */
  roundTrip: Pair(seconds),
});
export type SandboxRep = z.infer<typeof SandboxRep>;

export const SandboxData = z.object({
  loops: z.number().int().positive(),
  blocks: z.number().int().positive(),
  cpus: z.number().positive(),
  /** What the agent's self-test reported when the node joined: gVisor's kernel and its first sandbox's start. */
  selfTest: z.object({ kernel: z.string(), startSeconds: seconds }),
  reps: z.array(SandboxRep).min(1),
});
export type SandboxData = z.infer<typeof SandboxData>;

export interface SandboxSettings {
  reps: number;
  /** Iterations of the awk loop: about 1 s per million on this machine's cores. */
  loops: number;
  /** 512-byte blocks dd copies from /dev/zero to /dev/null: two system calls each. */
  blocks: number;
}
