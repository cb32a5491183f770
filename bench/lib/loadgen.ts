import { join } from 'node:path';
import { BENCH_DIR, mustRun } from './util.js';

export interface LoadgenSpec {
  origin: string;
  ca?: string;
  connections: number;
  mode: 'closed' | 'open';
  rate?: number;
  maxQueued?: number;
  durationS: number;
  warmupS: number;
  method: 'GET' | 'POST';
  path: string;
  requestsFile?: string;
}

export interface LoadgenLatency {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export interface LoadgenResult {
  mode: 'closed' | 'open';
  connections: number;
  rate: number | null;
  durationS: number;
  completed: number;
  /** Every answer, warm-up and stragglers included (for CPU per request). */
  answered: number;
  ok: number;
  perSecond: number;
  errors: number;
  firstError: string | null;
  dropped: number;
  statusCounts: Record<string, number>;
  latencyMs: LoadgenLatency;
  sendLatencyMs: LoadgenLatency;
  generatorCpuSeconds: number;
}

/** Runs bench/lib/loadgen.mjs in its own Node.js process and returns its figures. */
export async function runLoadgen(spec: LoadgenSpec): Promise<LoadgenResult> {
  const out = await mustRun(process.execPath, [join(BENCH_DIR, 'lib', 'loadgen.mjs'), JSON.stringify(spec)], {
    timeoutMs: (spec.warmupS + spec.durationS + 60) * 1000,
  });
  return JSON.parse(out.split('\n').pop() ?? '') as LoadgenResult;
}
