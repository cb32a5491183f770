import type { ClusterAccess, RegisterRequest } from '@ray-agent/protocol';
import type { Logger } from '../log.js';
import type { Credentials, StateStore, TokenFileOutcome } from '../state/state-store.js';
import { Backoff, sleep } from '../supervisor/backoff.js';
import { type ManagerClient, ManagerError } from './manager-client.js';

export class EnrollmentRejectedError extends Error {
  override name = 'EnrollmentRejectedError';
}

/** The manager knows this install ID as a provider and this agent could not prove it is that provider. */
export class InstallIdTakenError extends Error {
  override name = 'InstallIdTakenError';
  constructor(installId: string, managerMessage: string) {
    super(
      `the manager refused to hand provider install ID ${installId} to this agent (${managerMessage}): it has no current credential for that provider and its enrollment token is not the one that registered it. If this state volume was copied from another machine, give this agent its own state volume; if not, ask the cluster's operator to remove the provider, then start again`,
    );
  }
}

export interface RegisterOptions {
  /**
   * The credentials this agent holds, when it registers again (after `unknown_provider`): their credential is the
   * proof that lets the manager rotate the credential of a known install ID. Sent only to the manager that issued
   * it: another manager must not learn it.
   */
  current?: Pick<Credentials, 'credential' | 'managerBase'> | undefined;
  /** The way into the cluster the answer carries (undefined from a manager before the overlay); after the save. */
  onCluster?: (cluster: ClusterAccess | undefined) => void;
}

/**
 * Registers until it works or cannot work. The install ID is the idempotency key, so a retry after a lost
 * response gets the same provider back. The credentials are saved atomically before they are used; then the
 * enrollment token file is removed from the state volume (Ray tasks could read it there).
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
  options: RegisterOptions = {},
): Promise<Credentials | undefined> {
  const proof = options.current?.managerBase === managerBase ? options.current.credential : undefined;
  const request: RegisterRequest = proof ? { ...body, currentCredential: proof } : body;
  while (!signal.aborted) {
    try {
      const { body: answer } = await client.register(request, token, signal);
      const credentials: Credentials = {
        version: 1,
        providerId: answer.providerId,
        credential: answer.credential,
        managerBase,
        registeredAt: new Date().toISOString(),
      };
      store.saveCredentials(credentials);
      options.onCluster?.(answer.cluster);
      log.info({ providerId: answer.providerId, attempts: backoff.attempts + 1 }, 'registered with the manager');
      logTokenFile(store.forgetEnrollmentToken(), log);
      return credentials;
    } catch (error) {
      if (signal.aborted) return undefined;
      if (!(error instanceof ManagerError)) throw error;
      if (error.kind === 'http' && (error.status === 401 || error.status === 403))
        throw new EnrollmentRejectedError(
          `the manager rejected the enrollment token (${error.status}): ${error.message}; get a new token from the cluster's operator`,
        );
      if (error.kind === 'http' && error.status === 409 && error.code === 'install_id_taken')
        throw new InstallIdTakenError(body.installId, error.message);
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

/** One line for what became of the enrollment token file; the token itself never appears. */
export function logTokenFile(outcome: TokenFileOutcome, log: Logger): void {
  if (outcome.kind === 'removed')
    log.info(
      { file: outcome.path },
      'removed the enrollment token file: the agent is registered and Ray tasks must not read it',
    );
  else if (outcome.kind === 'kept') log.warn({ file: outcome.path }, outcome.warning);
}
