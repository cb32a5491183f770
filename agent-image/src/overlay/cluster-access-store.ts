import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { type ClusterAccess, type OverlayConfig, OverlayConfigFile, RayAuthToken } from '@ray-agent/protocol';
import { writeFileAtomic } from '@ray-agent/tunnel/atomic-file';
import type { OverlayPaths } from './tunnel-files.js';

/** What the last ClusterAccess written changed. */
export interface AccessChange {
  overlay: boolean;
  token: boolean;
}

/**
 * The manager's last ClusterAccess, kept on the state volume so a restarted agent whose manager cannot be reached
 * still joins over the overlay it had (crash-only): the overlay in OVERLAY_CONFIG_FILE (0644, the tunnel container
 * reads it as another user), Ray's token in RAY_AUTH_TOKEN_FILE (0600). Each is rewritten only when it changed, so
 * the overlay file's `writtenAt` names one configuration and the tunnel's report can say which one it is about.
 */
export class ClusterAccessStore {
  private overlay: OverlayConfig | null = null;
  private token: string | null = null;
  private writtenAt: string | null = null;
  private known = false;

  /** `tunnel`: a tunnel container runs beside this agent; without one no overlay file is written or used. */
  constructor(
    private readonly paths: OverlayPaths,
    private readonly tunnel: boolean,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The saved access, or undefined when the manager never gave one. Unreadable files are reported, not used. */
  load(): { access: ClusterAccess | undefined; problems: string[] } {
    const problems: string[] = [];
    const { overlayConfigFile, rayAuthTokenFile } = this.paths;
    if (this.tunnel && existsSync(overlayConfigFile)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(overlayConfigFile, 'utf8'));
      } catch {
        parsed = undefined;
      }
      const file = OverlayConfigFile.safeParse(parsed);
      if (file.success) {
        this.overlay = file.data.overlay;
        this.writtenAt = file.data.writtenAt;
        this.known = true;
      } else problems.push(`${overlayConfigFile} is unreadable; it is written again from the manager's next answer`);
    }
    if (existsSync(rayAuthTokenFile)) {
      const token = RayAuthToken.safeParse(readFileSync(rayAuthTokenFile, 'utf8').trim());
      // The token itself is never echoed: only where it is.
      if (token.success) {
        this.token = token.data;
        this.known = true;
      } else
        problems.push(
          `${rayAuthTokenFile} does not hold a Ray token; it is written again from the manager's next answer`,
        );
    }
    return { access: this.access(), problems };
  }

  /** The access in force, or undefined before the manager ever answered with one. */
  access(): ClusterAccess | undefined {
    return this.known ? { overlay: this.overlay, rayAuthToken: this.token } : undefined;
  }

  /** The `writtenAt` of the overlay file in force: the tunnel's report must be about this one. */
  get configWrittenAt(): string | null {
    return this.writtenAt;
  }

  /** Keeps a ClusterAccess from the manager. An overlay without a tunnel container to bring it up is not kept. */
  save(access: ClusterAccess): AccessChange {
    const overlay = this.tunnel ? access.overlay : null;
    const change: AccessChange = {
      overlay: !isDeepStrictEqual(overlay, this.overlay) || (this.tunnel && this.writtenAt === null),
      token: access.rayAuthToken !== this.token,
    };
    if (change.overlay && this.tunnel) {
      const file: OverlayConfigFile = { schemaVersion: 1, overlay, writtenAt: this.now().toISOString() };
      writeFileAtomic(this.paths.overlayConfigFile, `${JSON.stringify(file, null, 2)}\n`, 0o644);
      this.writtenAt = file.writtenAt;
    }
    if (change.token) this.saveToken(access.rayAuthToken);
    this.overlay = overlay;
    this.token = access.rayAuthToken;
    this.known = true;
    return change;
  }

  private saveToken(token: string | null): void {
    const file = this.paths.rayAuthTokenFile;
    if (token === null) {
      rmSync(file, { force: true });
      return;
    }
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, `${token}\n`, 0o600);
  }
}

/**
 * The tunnel container runs as root without DAC_OVERRIDE: it can read the 0644 overlay file only if it may pass
 * through the state directory. 0711 lets it pass without listing; the credentials in it stay 0600.
 */
export function letTunnelIntoStateDir(stateDir: string): boolean {
  const mode = statSync(stateDir).mode & 0o777;
  if (mode !== 0o700) return false;
  chmodSync(stateDir, 0o711);
  return true;
}
