import type { Suite } from '../../lib/suite.js';
import { boincDetails } from './details.js';
import { boincFigures } from './figures.js';
import { installBoinc, runBoinc } from './run.js';
import { BoincData, type BoincSettings } from './schema.js';

const PROFILES = {
  full: { reps: 2, settleSeconds: 15, seconds: 60, install: true },
  quick: { reps: 1, settleSeconds: 5, seconds: 10, install: true },
  // CI machines do not get boinc-client installed for a smoke run: the result then says it was skipped.
  smoke: { reps: 1, settleSeconds: 1, seconds: 3, install: false },
} satisfies Record<string, BoincSettings>;

/** Debian's BOINC client idle, in a network namespace of its own: the reference for the agent's idle cost. */
export const suite: Suite<BoincSettings, BoincData> = {
  name: 'boinc',
  inner: true,
  profiles: PROFILES,
  data: BoincData,
  prepare: (profile) => installBoinc(PROFILES[profile]),
  run: runBoinc,
  figuresOf: boincFigures,
  details: boincDetails,
};
