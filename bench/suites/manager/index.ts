import type { Suite } from '../../lib/suite.js';
import { managerDetails } from './details.js';
import { managerFigures } from './figures.js';
import { runManager } from './run.js';
import { ManagerData, type ManagerSettings } from './schema.js';

const PROFILES = {
  full: {
    providers: 100_000,
    reps: 5,
    seconds: 10,
    closedConnections: 100,
    openConnections: 1_000,
    rate: 10_000,
    listingWalks: 1,
    stormAgents: 10_000,
    stormReps: 2,
    stormTimeoutSeconds: 120,
    profileSeconds: 6,
  },
  quick: {
    providers: 20_000,
    reps: 2,
    seconds: 5,
    closedConnections: 100,
    openConnections: 1_000,
    rate: 10_000,
    listingWalks: 1,
    stormAgents: 2_000,
    stormReps: 1,
    stormTimeoutSeconds: 90,
    profileSeconds: 4,
  },
  // Seconds, small N: proves the suite works, measures nothing the goals could judge.
  smoke: {
    providers: 2_000,
    reps: 2,
    seconds: 2,
    closedConnections: 20,
    openConnections: 50,
    rate: 500,
    listingWalks: 1,
    stormAgents: 100,
    stormReps: 1,
    stormTimeoutSeconds: 60,
    profileSeconds: 2,
  },
} satisfies Record<string, ManagerSettings>;

/** The reference manager under load: heartbeats (closed and open loop, autocannon), the listing, a reconnect storm. */
export const suite: Suite<ManagerSettings, ManagerData> = {
  name: 'manager',
  inner: true,
  profiles: PROFILES,
  data: ManagerData,
  run: runManager,
  figuresOf: managerFigures,
  details: managerDetails,
};
