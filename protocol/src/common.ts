import { z } from 'zod';

/** ISO-8601 UTC timestamp, as produced by `Date.prototype.toISOString()`. */
export const Timestamp = z.iso.datetime();

/** A short human sentence; bounded so a misbehaving peer cannot bloat a document. */
export const Sentence = z.string().max(500);

export const Versions = z.object({
  agent: z.string().min(1).max(64),
  ray: z.string().min(1).max(64),
  python: z.string().min(1).max(64),
});
export type Versions = z.infer<typeof Versions>;

export const Limits = z.object({
  cpus: z.number().positive().max(4096),
  memoryBytes: z.number().int().positive(),
});
export type Limits = z.infer<typeof Limits>;

/** Error body used by every non-2xx answer of the manager API. */
export const ErrorBody = z.object({
  error: z.object({ code: z.string().min(1).max(64), message: Sentence }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
