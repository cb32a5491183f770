import { readFileSync } from 'node:fs';
import { type OverlayConfig, OverlayConfigFile } from '@ray-agent/protocol';

export interface OverlayConfigRead {
  /** The file's text, to notice a change; null when there is none. */
  raw: string | null;
  overlay: OverlayConfig | null;
  writtenAt: string | null;
  /** Why the file cannot be used; null when absent (direct mode until the agent writes one) or valid. */
  problem: string | null;
}

/** The agent's OverlayConfigFile, checked with the protocol's schema; anything unusable means no interface. */
export function readOverlayConfig(path: string): OverlayConfigRead {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { raw: null, overlay: null, writtenAt: null, problem: null };
    return {
      raw: null,
      overlay: null,
      writtenAt: null,
      problem:
        `cannot read the overlay config ${path} (${code}): mount the agent's state volume read-only into the tunnel ` +
        'container; the agent keeps that directory at mode 0711 and the file at 0644',
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = undefined;
  }
  const parsed = OverlayConfigFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? `${issue.path.join('.') || 'the file'}: ${issue.message}` : 'not JSON';
    return {
      raw,
      overlay: null,
      writtenAt: null,
      problem:
        `the overlay config ${path} is not valid (${where}); the agent rewrites it from the manager's answer at its ` +
        'next heartbeat: restart the agent container if it stays so',
    };
  }
  return { raw, overlay: parsed.data.overlay, writtenAt: parsed.data.writtenAt, problem: null };
}
