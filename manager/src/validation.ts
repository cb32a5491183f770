import type { z } from 'zod';

/** Longest message the protocol's ErrorBody allows. */
export const MAX_MESSAGE = 500;

/** Clamps a message to what ErrorBody allows. */
export function sentence(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 3)}...`;
}

/** `limits.cpus`, `recentErrors[2]`, or `body` for the document itself. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? 'body' : out;
}

/** One line naming each failing field: `cpuCores: Too small: expected number to be >0; hostname: ...`. */
export function describeIssues(error: z.ZodError): string {
  return sentence(error.issues.map((issue) => `${fieldPath(issue.path)}: ${issue.message}`).join('; '));
}
