/**
 * Podman Desktop's IPC envelope: the main process answers `{result}` or `{error}`, never rejects, so an error crosses
 * the process boundary as plain data (Electron would otherwise prefix and mangle the message); the preload turns
 * `{error}` back into an Error.
 */
export type IpcEnvelope = { result: unknown } | { error: { message: string } };

export function unwrapEnvelope(answer: unknown): unknown {
  if (typeof answer === 'object' && answer !== null) {
    if ('result' in answer) return answer.result;
    if ('error' in answer) {
      const error = answer.error as { message?: unknown } | null;
      throw new Error(typeof error?.message === 'string' ? error.message : 'The Ray Agent main process failed.');
    }
  }
  throw new Error('The Ray Agent main process sent an answer the window does not understand.');
}
