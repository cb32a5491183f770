import type { Profile } from '../../lib/suite.js';

export interface NodesSettings {
  /** Main pairs (agent and plain alive together): join, idle windows, status load, compute rounds, idle stop. */
  reps: number;
  /** Longest wait for a node's CPU use to stop falling before its idle windows. */
  settleMaxSeconds: number;
  idleSeconds: number;
  pollEverySeconds: number;
  /** GET /status requests per pair (the goal needs ≥ 10,000) and the load's connections. */
  statusRequests: number;
  statusConnections: number;
  /** Compute rounds per pair: each runs one CPU-bound and one tiny batch on each arm, in a random order. */
  rounds: number;
  cpu: { tasks: number; loops: number };
  tiny: { tasks: number };
  /** Stops with running tasks: pairs, task length. */
  busyStop: { reps: number; taskSeconds: number; drainDeadlineSeconds: number };
  drainDeadlineSeconds: number;
  cpus: number;
  memoryGiB: number;
  /** Seed of the random orders; null takes one from the clock (it is recorded either way). */
  seed: number | null;
}

const base = { pollEverySeconds: 2, statusRequests: 10_000, statusConnections: 4, cpus: 2, memoryGiB: 4, seed: null };

// full: about 2 min per main pair and 40 s per busy pair on a 2-core machine; 6 + 3 pairs stay under 20 min.
export const PROFILES: Record<Profile, NodesSettings> = {
  full: {
    ...base,
    reps: 6,
    settleMaxSeconds: 40,
    idleSeconds: 30,
    rounds: 4,
    cpu: { tasks: 8, loops: 3_000_000 },
    tiny: { tasks: 1000 },
    busyStop: { reps: 3, taskSeconds: 8, drainDeadlineSeconds: 25 },
    drainDeadlineSeconds: 25,
  },
  quick: {
    ...base,
    reps: 2,
    settleMaxSeconds: 20,
    idleSeconds: 10,
    rounds: 2,
    cpu: { tasks: 4, loops: 2_000_000 },
    tiny: { tasks: 500 },
    busyStop: { reps: 1, taskSeconds: 6, drainDeadlineSeconds: 15 },
    drainDeadlineSeconds: 25,
  },
  smoke: {
    ...base,
    reps: 1,
    settleMaxSeconds: 8,
    idleSeconds: 3,
    rounds: 1,
    cpu: { tasks: 2, loops: 500_000 },
    tiny: { tasks: 100 },
    busyStop: { reps: 1, taskSeconds: 3, drainDeadlineSeconds: 10 },
    drainDeadlineSeconds: 10,
  },
};
