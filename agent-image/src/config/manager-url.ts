/**
 * MANAGER_URL may be the manager's base URL or, as deployment docs write it, the full `.../api/register` URL.
 * Both endpoints are derived from one base. Plain HTTP is accepted only for a loopback manager behind an explicit
 * flag, so a typo can never send the enrollment token in clear text.
 */
export interface ManagerEndpoints {
  base: string;
  register: string;
  heartbeat: string;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export function parseManagerUrl(text: string, allowLoopbackHttp: boolean): ManagerEndpoints | string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return 'is not a URL';
  }
  if (url.username || url.password) return 'must not contain a user name or password; use AGENT_TOKEN_FILE';
  if (url.search || url.hash) return 'must not have a query or fragment';
  if (url.protocol === 'http:') {
    if (!allowLoopbackHttp)
      return 'must use https:// (plain http only for a loopback manager with MANAGER_ALLOW_HTTP=1)';
    if (!LOOPBACK.has(url.hostname)) return 'may use http:// only for a loopback host (localhost, 127.0.0.1)';
  } else if (url.protocol !== 'https:') {
    return 'must use https://';
  }
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/(register|heartbeat)$/, '');
  const base = `${url.protocol}//${url.host}${path}`;
  return { base, register: `${base}/api/register`, heartbeat: `${base}/api/heartbeat` };
}
