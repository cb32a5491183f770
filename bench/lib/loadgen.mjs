// An HTTP load generator, run as its own process (so the bench's event loop never limits or skews it) and bounded
// in time. Plain .mjs so that it starts with bare `node`, inside the bench's network namespace or out of it.
//
//   node loadgen.mjs '<json spec>'   ->   one JSON document on stdout
//
// spec: { origin, ca?, connections, mode: 'closed' | 'open', durationS, warmupS, rate? (open), maxQueued? (open),
//         method, path, host?, requestsFile? (JSON array of { authorization, body }, used round-robin) }
//
// closed: `connections` clients each send the next request when the last answered (the most the server sustains).
// open: requests are sent at `rate`/s on a fixed schedule whatever the answers do; latency is taken from the
// scheduled send time, so a server that falls behind shows it in the latency (no coordinated omission).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

const spec = JSON.parse(process.argv[2]);
const requests = spec.requestsFile ? JSON.parse(readFileSync(spec.requestsFile, 'utf8')) : [{}];
const pool = new Pool(spec.origin, {
  connections: spec.connections,
  pipelining: 1,
  keepAliveTimeout: 30_000,
  connect: spec.ca ? { ca: readFileSync(spec.ca, 'utf8') } : undefined,
});

const latencies = [];
const sendLatencies = [];
const statusCounts = {};
let errors = 0;
let firstError;
let completed = 0;
let answered = 0;
let dropped = 0;
let next = 0;
let inFlight = 0;

const start = performance.now();
const measureFrom = start + spec.warmupS * 1000;
const end = measureFrom + spec.durationS * 1000;

async function one(scheduledAt) {
  const item = requests[next++ % requests.length];
  const sentAt = performance.now();
  const headers = { ...(spec.host ? { host: spec.host } : {}) };
  if (item.authorization) headers.authorization = item.authorization;
  if (item.body) headers['content-type'] = 'application/json';
  inFlight++;
  try {
    const response = await pool.request({ method: spec.method, path: spec.path, headers, body: item.body });
    await response.body.dump();
    const doneAt = performance.now();
    answered++;
    if (sentAt >= measureFrom && doneAt <= end) {
      completed++;
      latencies.push(doneAt - (scheduledAt ?? sentAt));
      sendLatencies.push(doneAt - sentAt);
      statusCounts[response.statusCode] = (statusCounts[response.statusCode] ?? 0) + 1;
    }
  } catch (error) {
    if (sentAt >= measureFrom) errors++;
    firstError ??= String(error?.message ?? error);
  } finally {
    inFlight--;
  }
}

async function closedLoop() {
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (performance.now() < end) await one(undefined);
    }),
  );
}

async function openLoop() {
  const interval = 1000 / spec.rate;
  const maxQueued = spec.maxQueued ?? Math.max(100, spec.rate);
  const pending = new Set();
  let i = 0;
  while (true) {
    const now = performance.now();
    if (now >= end) break;
    // Send every request whose time has come; a timer wakes us about every millisecond.
    for (let at = start + i * interval; at <= now && at < end; at = start + ++i * interval) {
      if (inFlight >= maxQueued) {
        if (at >= measureFrom) dropped++;
        continue;
      }
      const p = one(at).finally(() => pending.delete(p));
      pending.add(p);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

function describe(values) {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    n: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
    mean: sorted.length ? sum / sorted.length : null,
  };
}

const cpuBefore = process.cpuUsage();
await (spec.mode === 'open' ? openLoop() : closedLoop());
const cpu = process.cpuUsage(cpuBefore);
await pool.close();
const ok = statusCounts[200] ?? 0;
process.stdout.write(
  `${JSON.stringify({
    mode: spec.mode,
    connections: spec.connections,
    rate: spec.rate ?? null,
    durationS: spec.durationS,
    completed,
    answered,
    ok,
    perSecond: ok / spec.durationS,
    errors,
    firstError: firstError ?? null,
    dropped,
    statusCounts,
    latencyMs: describe(latencies),
    sendLatencyMs: describe(sendLatencies),
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  })}\n`,
);
