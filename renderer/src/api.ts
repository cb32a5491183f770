import type { RayAgentApi } from '@ray-agent/protocol';

declare global {
  interface Window {
    /** Set by the preload (Electron) or by the test bridge; the page's only way out. */
    rayAgent?: RayAgentApi;
  }
}

export function rayAgentApi(): RayAgentApi | null {
  return window.rayAgent ?? null;
}
