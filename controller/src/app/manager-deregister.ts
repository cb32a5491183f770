import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import { DEREGISTER_PATH, DeregisterResponse, ErrorBody } from '@ray-agent/protocol';
import axios from 'axios';

export interface DeregisterOptions {
  /** The manager's base URL or its `.../api/register` URL (as the settings hold it); https:// only. */
  managerUrl: string;
  /** The provider's credential from the agent's state volume. Never logged, never put in a message. */
  credential: string;
  /** PEM of a private CA that signed the manager's certificate, trusted on top of the public roots. */
  caPem?: string | null;
  /** Default 10 s. */
  timeoutMs?: number;
}

export type DeregisterResult =
  | { ok: true; providerId: string }
  /** `alreadyGone`: the manager refused the credential (401): the provider left before, or was revoked or replaced. */
  | { ok: false; alreadyGone: boolean; error: string };

export const DEREGISTER_TIMEOUT_MS = 10_000;

/** The deregistration endpoint of a manager URL, or a sentence saying why the URL cannot be used. */
export function deregisterUrl(managerUrl: string): { url: string } | { error: string } {
  let url: URL;
  try {
    url = new URL(managerUrl.trim());
  } catch {
    return { error: `the manager URL "${managerUrl}" is not a URL (example: https://manager.example.net)` };
  }
  if (url.protocol !== 'https:')
    return { error: `the manager URL ${url.origin} must use https:// (example: https://manager.example.net)` };
  // The same base the agent derives from MANAGER_URL (agent-image/src/config/manager-url.ts).
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/(register|heartbeat)$/, '');
  return { url: `${url.protocol}//${url.host}${path}${DEREGISTER_PATH}` };
}

/**
 * Tells the manager this provider leaves for good (POST /api/deregister with the credential as Bearer). HTTPS with
 * verification always on; a private CA is added to the public roots, never instead of checking.
 */
export async function deregisterProvider(options: DeregisterOptions): Promise<DeregisterResult> {
  const target = deregisterUrl(options.managerUrl);
  if ('error' in target) return { ok: false, alreadyGone: false, error: target.error };
  const httpsAgent = new Agent({
    ...(options.caPem ? { ca: [...rootCertificates, options.caPem] } : {}),
    rejectUnauthorized: true,
    keepAlive: false,
  });
  try {
    const response = await axios.post(target.url, undefined, {
      httpsAgent,
      timeout: options.timeoutMs ?? DEREGISTER_TIMEOUT_MS,
      // No body, so no content type: axios would send a form type, which the manager refuses (415).
      headers: { authorization: `Bearer ${options.credential}`, accept: 'application/json', 'content-type': false },
      validateStatus: () => true,
      maxContentLength: 64 * 1024,
      maxRedirects: 0,
      // A proxy from the environment would see the credential's request; the manager is reached directly.
      proxy: false,
    });
    if (response.status === 200) {
      const parsed = DeregisterResponse.safeParse(response.data);
      if (parsed.success) return { ok: true, providerId: parsed.data.providerId };
      return {
        ok: false,
        alreadyGone: false,
        error: 'the manager answered 200 with a body that is not a deregistration',
      };
    }
    const message = ErrorBody.safeParse(response.data);
    const said = message.success ? `: ${message.data.error.message}` : '';
    if (response.status === 401)
      return { ok: false, alreadyGone: true, error: `the manager refused the credential${said}` };
    if (response.status === 404)
      return { ok: false, alreadyGone: false, error: 'the manager does not know deregistration (an older manager)' };
    const retry = response.headers['retry-after'];
    return {
      ok: false,
      alreadyGone: false,
      error: `the manager answered HTTP ${response.status}${said}${retry ? ` (retry in ${retry} s)` : ''}`,
    };
  } catch (error) {
    return { ok: false, alreadyGone: false, error: networkError(error, target.url, options.timeoutMs) };
  } finally {
    httpsAgent.destroy();
  }
}

function networkError(error: unknown, url: string, timeoutMs: number | undefined): string {
  const origin = new URL(url).origin;
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT')
    return `${origin} did not answer within ${Math.round((timeoutMs ?? DEREGISTER_TIMEOUT_MS) / 1000)} s`;
  const message = error instanceof Error ? error.message : String(error);
  return `${origin} could not be reached (${typeof code === 'string' ? `${code}: ` : ''}${message})`;
}
