import { readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  OVERLAY_CONFIG_FILE,
  RAY_AUTH_TOKEN_FILE,
  STATE_DIR,
  TUNNEL_DIR,
  TUNNEL_PUBLIC_KEY_FILE,
  TUNNEL_STATUS_FILE,
  TunnelStatusFile,
  WireguardKey,
} from '@ray-agent/protocol';

/** The files the agent shares with its tunnel container, placed under this agent's two mount points. */
export interface OverlayPaths {
  tunnelDir: string;
  publicKeyFile: string;
  statusFile: string;
  overlayConfigFile: string;
  rayAuthTokenFile: string;
}

/** The contract's paths, moved with STATE_DIR and the tunnel volume's mount point (tests mount them elsewhere). */
export function overlayPaths(stateDir: string, tunnelDir: string = TUNNEL_DIR): OverlayPaths {
  return {
    tunnelDir,
    publicKeyFile: join(tunnelDir, relative(TUNNEL_DIR, TUNNEL_PUBLIC_KEY_FILE)),
    statusFile: join(tunnelDir, relative(TUNNEL_DIR, TUNNEL_STATUS_FILE)),
    overlayConfigFile: join(stateDir, relative(STATE_DIR, OVERLAY_CONFIG_FILE)),
    rayAuthTokenFile: join(stateDir, relative(STATE_DIR, RAY_AUTH_TOKEN_FILE)),
  };
}

/** Overlay capable: the tunnel container's volume is mounted, so a tunnel container runs beside this agent. */
export function overlayCapable(paths: OverlayPaths): boolean {
  try {
    return statSync(paths.tunnelDir).isDirectory();
  } catch {
    return false;
  }
}

export type Read<T> = { ok: true; value: T } | { ok: false; problem: string };

/** The tunnel container's public key, as it published it. */
export function readPublicKey(file: string): Read<WireguardKey> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (error) {
    return {
      ok: false,
      problem: `the tunnel container has not published its public key in ${file} yet (${code(error)})`,
    };
  }
  const key = WireguardKey.safeParse(text);
  return key.success
    ? { ok: true, value: key.data }
    : { ok: false, problem: `${file} does not hold a WireGuard public key (${key.error.issues[0]?.message})` };
}

/** The tunnel container's last report. */
export function readTunnelStatus(file: string): Read<TunnelStatusFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const why = error instanceof SyntaxError ? 'not JSON' : code(error);
    return { ok: false, problem: `the tunnel container has not reported in ${file} yet (${why})` };
  }
  const status = TunnelStatusFile.safeParse(parsed);
  return status.success
    ? { ok: true, value: status.data }
    : {
        ok: false,
        problem: `${file} is not a tunnel status the agent understands; is the tunnel container the same image version?`,
      };
}

function code(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}
