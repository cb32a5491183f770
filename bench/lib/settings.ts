/** How much each benchmark does. `full` is what docs/BENCHMARKS.md records; `smoke` is what CI runs. */
export interface Settings {
  profile: 'full' | 'quick' | 'smoke';
  nodes: {
    /** Repetition pairs (plain node, agent node), in alternating order. */
    reps: number;
    settleSeconds: number;
    /** Idle footprint window; the agent also gets a window of the same length polled every 2 s. */
    idleSeconds: number;
    pollEverySeconds: number;
    burstRate: number;
    burstSeconds: number;
    cpu: { tasks: number; loops: number; batches: number };
    tiny: { tasks: number; batches: number };
    /** Stops with running tasks: pairs, task length, and the drain deadline both nodes are given. */
    busyStop: { reps: number; taskSeconds: number; drainDeadlineSeconds: number };
    drainDeadlineSeconds: number;
  };
  manager: {
    providers: number[];
    reps: number;
    seconds: number;
    warmupSeconds: number;
    connections: number;
    /** The goal's rate, sent open-loop. */
    rate: number;
    profileSeconds: number;
  };
  boinc: { reps: number; settleSeconds: number; seconds: number; install: boolean };
  /** The task's loop in each node's Python, outside Ray (the interpreters differ). */
  python: { reps: number; loops: number };
  /** Overlay against direct mode: repetition pairs (alternating order), each with two fresh providers per mode. */
  overlay: {
    reps: number;
    /** `loops` of the pure-Python task: about 1 CPU second each at 20 million in the image's Python. */
    cpu: { tasks: number; loops: number; batches: number };
    tiny: { tasks: number; batches: number };
    /** Objects moved from one provider to the other per repetition, each `bytes` large. */
    transfer: { bytes: number; reps: number };
    /** Length of the raw TCP run (iperf3) between the same two providers. */
    tcpSeconds: number;
  };
}

export const PROFILES: Record<Settings['profile'], Settings> = {
  full: {
    profile: 'full',
    nodes: {
      reps: 5,
      settleSeconds: 15,
      idleSeconds: 60,
      pollEverySeconds: 2,
      burstRate: 1000,
      burstSeconds: 10,
      cpu: { tasks: 24, loops: 6_000_000, batches: 2 },
      tiny: { tasks: 2000, batches: 2 },
      busyStop: { reps: 3, taskSeconds: 10, drainDeadlineSeconds: 25 },
      drainDeadlineSeconds: 25,
    },
    manager: {
      providers: [1000, 10_000],
      reps: 5,
      seconds: 5,
      warmupSeconds: 1,
      connections: 16,
      rate: 5000,
      profileSeconds: 5,
    },
    boinc: { reps: 2, settleSeconds: 15, seconds: 60, install: true },
    python: { reps: 7, loops: 6_000_000 },
    overlay: {
      reps: 3,
      cpu: { tasks: 8, loops: 20_000_000, batches: 2 },
      tiny: { tasks: 1000, batches: 2 },
      transfer: { bytes: 64 * 1024 ** 2, reps: 3 },
      tcpSeconds: 3,
    },
  },
  quick: {
    profile: 'quick',
    nodes: {
      reps: 2,
      settleSeconds: 5,
      idleSeconds: 15,
      pollEverySeconds: 2,
      burstRate: 1000,
      burstSeconds: 3,
      cpu: { tasks: 8, loops: 3_000_000, batches: 1 },
      tiny: { tasks: 500, batches: 1 },
      busyStop: { reps: 1, taskSeconds: 6, drainDeadlineSeconds: 15 },
      drainDeadlineSeconds: 25,
    },
    manager: {
      providers: [1000],
      reps: 2,
      seconds: 2,
      warmupSeconds: 0.5,
      connections: 16,
      rate: 5000,
      profileSeconds: 2,
    },
    boinc: { reps: 1, settleSeconds: 5, seconds: 10, install: true },
    python: { reps: 3, loops: 3_000_000 },
    overlay: {
      reps: 2,
      cpu: { tasks: 8, loops: 20_000_000, batches: 1 },
      tiny: { tasks: 500, batches: 1 },
      transfer: { bytes: 64 * 1024 ** 2, reps: 2 },
      tcpSeconds: 2,
    },
  },
  smoke: {
    profile: 'smoke',
    nodes: {
      reps: 1,
      settleSeconds: 2,
      idleSeconds: 4,
      pollEverySeconds: 2,
      burstRate: 200,
      burstSeconds: 1,
      cpu: { tasks: 4, loops: 500_000, batches: 1 },
      tiny: { tasks: 100, batches: 1 },
      busyStop: { reps: 1, taskSeconds: 3, drainDeadlineSeconds: 10 },
      drainDeadlineSeconds: 10,
    },
    manager: {
      providers: [100],
      reps: 1,
      seconds: 1,
      warmupSeconds: 0.2,
      connections: 4,
      rate: 500,
      profileSeconds: 0,
    },
    // CI machines do not get boinc-client installed for a smoke run: the result then says it was skipped.
    boinc: { reps: 1, settleSeconds: 1, seconds: 3, install: false },
    python: { reps: 2, loops: 500_000 },
    overlay: {
      reps: 1,
      cpu: { tasks: 2, loops: 1_000_000, batches: 1 },
      tiny: { tasks: 50, batches: 1 },
      transfer: { bytes: 8 * 1024 ** 2, reps: 1 },
      tcpSeconds: 1,
    },
  },
};
