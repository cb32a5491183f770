import type { Suite } from '../../lib/suite.js';
import { overlayDetails } from './details.js';
import { overlayFigures } from './figures.js';
import { runOverlay } from './run.js';
import { OverlayData, type OverlaySettings } from './schema.js';

/**
 * Overlay against direct mode (issue 9). Not in the loopback-only namespace: it needs Docker networks of its own
 * (providers behind NAT routers, a WireGuard gateway), which it makes and removes (bench/suites/overlay/run.ts).
 */
export const suite: Suite<OverlaySettings, OverlayData> = {
  name: 'overlay',
  inner: false,
  profiles: {
    full: {
      reps: 3,
      cpu: { tasks: 8, loops: 20_000_000, batches: 2 },
      tiny: { tasks: 1000, batches: 2 },
      transfer: { bytes: 64 * 1024 ** 2, reps: 3 },
      tcpSeconds: 3,
    },
    quick: {
      reps: 2,
      cpu: { tasks: 8, loops: 20_000_000, batches: 1 },
      tiny: { tasks: 500, batches: 1 },
      transfer: { bytes: 64 * 1024 ** 2, reps: 2 },
      tcpSeconds: 2,
    },
    // The smallest that still exercises every step: one pair, tiny batches.
    smoke: {
      reps: 1,
      cpu: { tasks: 2, loops: 500_000, batches: 1 },
      tiny: { tasks: 20, batches: 1 },
      transfer: { bytes: 1024 ** 2, reps: 1 },
      tcpSeconds: 1,
    },
  },
  data: OverlayData,
  run: runOverlay,
  figuresOf: overlayFigures,
  details: overlayDetails,
};
