// One autocannon run, in its own process (pinned to its own core by the caller, so the generator never takes the
// manager's core), bounded in time:  tsx loadgen.ts '<json LoadSpec>'  ->  one JSON line on stdout.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  path: string;
  connections: number;
  /** Requests per second across all connections (open loop); absent: closed loop. */
  overallRate?: number;
  seconds: number;
  /** JSON array of { authorization, body }, sent round-robin (heartbeats of every provider, shuffled). */
  bodiesFile?: string;
  /**
   * Open loop: autocannon instances started this many equal steps apart within a second, each with its share of
   * the connections and the rate. autocannon's rate limit lets each connection send its whole quota for a second
   * back to back when the second starts (lib/httpClient.js, `reqsMadeThisSecond`); phases spread those bursts over
   * the second. Latency quantiles are the largest of the instances' (a quantile of a mixture is never above the
   * largest of its parts': an upper bound).
   */
  phases?: number;
}

export interface LoadResult {
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  cpuSeconds: number;
}

const bodies: Array<{ authorization: string; body: string }> = [];
let next = 0;

function instance(spec: LoadSpec, connections: number, rate: number | undefined): Promise<autocannon.Result> {
  return autocannon({
    url: spec.url,
    connections,
    duration: spec.seconds,
    ...(rate === undefined ? {} : { overallRate: rate }),
    timeout: 10,
    requests: [
      {
        method: spec.method,
        path: spec.path,
        ...(bodies.length === 0
          ? {}
          : {
              setupRequest: (request) => {
                const item = bodies[next++ % bodies.length] as { authorization: string; body: string };
                return {
                  ...request,
                  headers: { 'content-type': 'application/json', authorization: item.authorization },
                  body: item.body,
                };
              },
            }),
      },
    ],
  });
}

async function main(spec: LoadSpec): Promise<LoadResult> {
  if (spec.bodiesFile) bodies.push(...(JSON.parse(readFileSync(spec.bodiesFile, 'utf8')) as typeof bodies));
  const phases = spec.overallRate === undefined ? 1 : Math.max(1, Math.min(spec.phases ?? 1, spec.connections));
  const cpu0 = process.cpuUsage();
  const results = await Promise.all(
    Array.from({ length: phases }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, (i * 1000) / phases));
      const connections = Math.floor(spec.connections / phases) + (i < spec.connections % phases ? 1 : 0);
      return instance(spec, connections, spec.overallRate === undefined ? undefined : spec.overallRate / phases);
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const sum = (f: (r: autocannon.Result) => number) => results.reduce((total, r) => total + f(r), 0);
  const top = (f: (r: autocannon.Result) => number) => Math.max(...results.map(f));
  return {
    ok: sum((r) => r['2xx']),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    seconds: top((r) => r.duration),
    latencyMs: {
      p50: top((r) => r.latency.p50),
      p90: top((r) => r.latency.p90),
      p99: top((r) => r.latency.p99),
      max: top((r) => r.latency.max),
      mean:
        sum((r) => r.latency.average * r['2xx']) /
        Math.max(
          1,
          sum((r) => r['2xx']),
        ),
    },
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

process.stdout.write(`${JSON.stringify(await main(JSON.parse(process.argv[2] ?? '{}') as LoadSpec))}\n`);
