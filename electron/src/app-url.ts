/**
 * The window loads one page: `file://…/renderer/dist/index.html`. Anything else (another file, another scheme, a
 * frame from elsewhere) is foreign: no navigation to it, no IPC from it.
 */
export function isAppPage(candidate: string | null | undefined, appPage: string): boolean {
  if (!candidate) return false;
  let url: URL;
  let own: URL;
  try {
    url = new URL(candidate);
    own = new URL(appPage);
  } catch {
    return false;
  }
  // The query and fragment may carry in-page state; the scheme, host and path must be ours exactly.
  return url.protocol === own.protocol && url.host === own.host && url.pathname === own.pathname;
}
