import type { Suite } from '../lib/suite.js';
import { suite as boinc } from './boinc/index.js';
import { suite as image } from './image/index.js';
import { suite as limits } from './limits/index.js';
import { suite as manager } from './manager/index.js';
import { suite as nodes } from './nodes/index.js';
import { suite as overlay } from './overlay/index.js';
import { suite as python } from './python/index.js';
import { suite as sandbox } from './sandbox/index.js';

/** Any suite, whatever its settings and data (the registry only passes each suite its own). */
export type AnySuite = Suite<unknown, unknown>;

/**
 * Every suite, in the order they run and the report shows them. The inner ones run in the loopback-only namespace,
 * then the others (the overlay) on networks of their own.
 */
export const SUITES: readonly AnySuite[] = [
  nodes,
  boinc,
  image,
  manager,
  limits,
  python,
  sandbox,
  overlay,
] as readonly AnySuite[];

export function suiteNamed(name: string): AnySuite {
  const suite = SUITES.find((s) => s.name === name);
  if (!suite)
    throw new Error(`unknown suite "${name}": one of ${SUITES.map((s) => s.name).join(', ')} (e.g. --only python)`);
  return suite;
}
