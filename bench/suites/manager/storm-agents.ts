// N agents' real heartbeat loops (agent-image's runHeartbeats, ManagerClient and Backoff: the schedule and the
// retry rule the agent ships), in one process that the caller pins to the load core. Each agent has its own
// HTTPS client, so its own TLS connection, as N machines would.
//
//   tsx storm-agents.ts '<json StormSpec>'
//   stdin lines:  mark (count what follows as the storm), stop
//   stdout lines: {"event":"healthy"} once every agent had a heartbeat accepted;
//                 {"event":"recovered", ...} once every agent had one accepted after `mark`.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { HeartbeatRequest } from '@ray-agent/protocol';
import { parseManagerUrl } from '../../../agent-image/src/config/manager-url.js';
import { createLogger } from '../../../agent-image/src/log.js';
import { runHeartbeats } from '../../../agent-image/src/manager/heartbeat-loop.js';
import { ManagerClient, ManagerError } from '../../../agent-image/src/manager/manager-client.js';
import { StatusModel } from '../../../agent-image/src/status/status-model.js';
import { typicalHeartbeat } from './heartbeat-body.js';

export interface StormSpec {
  url: string;
  caFile: string;
  /** JSON array of { providerId, credential, bootId }. */
  agentsFile: string;
  intervalSeconds: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as StormSpec;
const endpoints = parseManagerUrl(spec.url, false);
if (typeof endpoints === 'string') throw new Error(`url ${endpoints}`);
const agents = JSON.parse(readFileSync(spec.agentsFile, 'utf8')) as Array<{
  providerId: string;
  credential: string;
  bootId: string;
}>;
const log = createLogger('silent');
const stop = new AbortController();
const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

let markAt: number | null = null;
const failures: Record<string, number> = {};
const everOk = new Uint8Array(agents.length);
let okCount = 0;
const okAfterMark: Array<number | null> = agents.map(() => null);
let recovered = 0;
const ended: Record<string, number> = {};

/** Counts each failed attempt by kind, as the agent classifies it. */
class CountingClient extends ManagerClient {
  override async heartbeat(body: HeartbeatRequest, credential: string, signal?: AbortSignal) {
    try {
      return await super.heartbeat(body, credential, signal);
    } catch (error) {
      if (markAt !== null && error instanceof ManagerError) {
        const kind = error.kind === 'http' ? `http ${error.status}` : error.kind;
        failures[kind] = (failures[kind] ?? 0) + 1;
      }
      throw error;
    }
  }
}

function accepted(i: number): void {
  if (!everOk[i]) {
    everOk[i] = 1;
    if (++okCount === agents.length) emit({ event: 'healthy', agents: agents.length });
  }
  if (markAt !== null && okAfterMark[i] === null) {
    okAfterMark[i] = Date.now();
    if (++recovered === agents.length) {
      const times = (okAfterMark as number[]).slice().sort((a, b) => a - b);
      emit({ event: 'recovered', lastAt: times[times.length - 1], times, failures, ended });
    }
  }
}

const limits: ConstructorParameters<typeof StatusModel>[3] = {
  cpus: 1,
  memoryBytes: 1024 ** 3,
  objectStoreBytes: 300 * 1024 ** 2,
  shmBytes: null,
  source: 'host',
};
const models = agents.map(() => new StatusModel('bench', '127.0.0.1:6379', spec.url, limits));
const loops = agents.map(async (agent, i) => {
  // Spread over one interval, as a fleet that started at different times is.
  await new Promise((resolve) => setTimeout(resolve, Math.random() * spec.intervalSeconds * 1000));
  const client = new CountingClient(endpoints, { caFile: spec.caFile });
  const model = models[i] as StatusModel;
  const outcome = await runHeartbeats(
    client,
    model,
    () => ({ providerId: agent.providerId, credential: agent.credential }),
    typicalHeartbeat,
    agent.bootId,
    log,
    stop.signal,
    undefined,
    (ok) => {
      if (ok) accepted(i);
    },
  );
  if (!stop.signal.aborted) ended[outcome.kind] = (ended[outcome.kind] ?? 0) + 1;
  await client.close();
});

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'mark') {
    markAt = Date.now();
    // Agents in good standing at the kill: the last attempt of each was accepted.
    emit({ event: 'marked', healthy: models.filter((m) => m.heartbeat.state === 'healthy').length });
  } else if (line === 'stop') {
    stop.abort();
    void Promise.allSettled(loops).then(() => process.exit(0));
  }
});
