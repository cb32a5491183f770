import type { RegisterRequest } from '@ray-agent/protocol';
import type { Logger } from '../log.js';
import type { Credentials, StateStore } from '../state/state-store.js';
import { Backoff, sleep } from '../supervisor/backoff.js';
import { type ManagerClient, ManagerError } from './manager-client.js';

export class EnrollmentRejectedError extends Error {
  override name = 'EnrollmentRejectedError';
}

/**
 * Registers until it works or cannot work. The install ID is the idempotency key, so a retry after a lost
 * response gets the same provider back. The credentials are saved atomically before they are used.
 */
export async function register(
  client: ManagerClient,
  store: StateStore,
  body: RegisterRequest,
  token: string,
  managerBase: string,
  log: Logger,
  signal: AbortSignal,
  onRetry: (error: ManagerError, waitMs: number) => void,
  backoff = new Backoff(1_000, 300_000),
): Promise<Credentials | undefined> {
  while (!signal.aborted) {
    try {
      const { body: answer } = await client.register(body, token, signal);
      const credentials: Credentials = {
        version: 1,
        providerId: answer.providerId,
        credential: answer.credential,
        managerBase,
        registeredAt: new Date().toISOString(),
      };
      store.saveCredentials(credentials);
      log.info({ providerId: answer.providerId, attempts: backoff.attempts + 1 }, 'registered with the manager');
      return credentials;
    } catch (error) {
      if (signal.aborted) return undefined;
      if (!(error instanceof ManagerError)) throw error;
      if (error.kind === 'http' && (error.status === 401 || error.status === 403))
        throw new EnrollmentRejectedError(
          `the manager rejected the enrollment token (${error.status}): ${error.message}; get a new token from the cluster's operator`,
        );
      if (!error.retryable) throw error;
      const wait = Math.min(300_000, Math.max(backoff.next(), error.retryAfterMs ?? 0));
      if (backoff.attempts === 1)
        log.warn({ err: error.message, status: error.status }, 'registration failed; retrying');
      onRetry(error, wait);
      await sleep(wait, signal);
    }
  }
  return undefined;
}
