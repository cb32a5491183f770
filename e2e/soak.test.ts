import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { StatusDocument } from '@ray-agent/protocol';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Agent0, containerExit, TestCluster } from './support/cluster.js';
import { killRaylet, savedProviderId, secondsSince } from './support/faults.js';
import { docker, waitFor } from './support/run.js';

/**
 * Issue 4's soak: a bounded chaos run. Two agent containers contribute to a real Ray head while a driver keeps
 * submitting real tasks (with max_retries, so the cluster itself retries what a lost node took down). At seeded
 * random times the test restarts the head, stops and starts the manager, SIGKILLs a raylet, or SIGTERMs an agent
 * container and starts it again. Afterwards it counts: providers registered (must equal agents), credentials lost
 * (0), task results lost (0: every submitted task eventually returned its correct result), and the time to recover
 * after each fault. SOAK_MINUTES sets the chaos time (default 3), SOAK_SEED replays a run.
 */
const CHAOS_MS = Number(process.env.SOAK_MINUTES ?? '3') * 60_000;
const SEED = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const AGENTS = 2;
/** Tasks kept outstanding: 4 slots (2 agents x 1 CPU, 0.5 CPU a task) plus a queue, so a lost node leaves work. */
const IN_FLIGHT = 6;
const RETRIES = 20;
/** A task's result: i * i + SALT, so a result from another task (or run) is caught. */
const SALT = SEED % 100_003;
/** Longest a fault may take to recover from before the run counts as failed. */
const RECOVERY_LIMIT_MS = 180_000;

type FaultKind = 'head-restart' | 'manager-stop-start' | 'raylet-kill' | 'agent-sigterm-restart';
const FAULT_KINDS: FaultKind[] = ['head-restart', 'manager-stop-start', 'raylet-kill', 'agent-sigterm-restart'];

interface FaultRecord {
  kind: FaultKind;
  target: string;
  /** Seconds into the chaos phase. */
  at: number;
  /** Fault injected -> every affected agent contributing (or heartbeating, for the manager) again. */
  recoverySeconds: number;
  detail: string;
}

/** mulberry32: a small seeded generator, so a failing run can be replayed with SOAK_SEED. */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = rng(SEED);
const between = (low: number, high: number) => low + random() * (high - low);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const cluster = new TestCluster();
const agents: Agent0[] = [];
const providerIds: string[] = [];
const faults: FaultRecord[] = [];

/** The workload's books: what was submitted, what came back, and why tasks had to be submitted again. */
const books = {
  /** i -> seconds the task sleeps. */
  submitted: new Map<number, number>(),
  results: new Map<number, number>(),
  wrong: 0,
  /** Driver sessions started; each is one Ray job fed tasks over its stdin. */
  sessions: 0,
  /** Sessions that ended without being asked to (the head restarted under them). */
  sessionsLost: 0,
  /** Tasks the test submitted again because their driver was lost with the head. */
  resubmittedAfterLostDriver: 0,
  /** Tasks Ray gave up on after its retries, by error class (the test submitted them again). */
  rayErrors: new Map<string, number>(),
  /** The longest time with tasks owed and no result arriving. */
  longestGapMs: 0,
  lastResultAt: 0,
};

const count = (map: Map<string, number>, key: string, by = 1) => map.set(key, (map.get(key) ?? 0) + by);

/**
 * One driver on the head: a Ray job that runs the tasks it is sent on stdin (JSON lines `{"submit": [[i, s]]}`)
 * and prints each result as it ends. Closing stdin lets it finish what it has and exit. The head restarting kills
 * it (or leaves it with LocalRayletDiedError), which the workload treats as a lost driver.
 */
const DRIVER = `
import json, queue, sys, threading, time, ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=0.5, max_retries=${RETRIES})
def work(i, seconds):
    time.sleep(seconds)
    return {"i": i, "r": i * i + ${SALT}, "node": ray.get_runtime_context().get_node_id()}
commands = queue.Queue()
def read():
    for line in sys.stdin:
        commands.put(json.loads(line))
    commands.put({"end": True})
threading.Thread(target=read, daemon=True).start()
refs, ending = {}, False
print(json.dumps({"ready": True}), flush=True)
while not (ending and not refs):
    while not commands.empty():
        command = commands.get()
        ending = ending or bool(command.get("end"))
        for i, seconds in command.get("submit", []):
            refs[work.remote(i, seconds)] = i
    if not refs:
        time.sleep(0.1)
        continue
    done, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
    for ref in done:
        i = refs.pop(ref)
        try:
            print(json.dumps(ray.get(ref)), flush=True)
        except Exception as error:
            print(json.dumps({"i": i, "error": type(error).__name__}), flush=True)
print(json.dumps({"done": True}), flush=True)
`;

/**
 * Keeps IN_FLIGHT tasks outstanding on one driver session at a time until `stop()`; then lets the session finish
 * what it owes. A lost session's unanswered tasks go to the next one. Returns when nothing is owed or the final
 * deadline passes.
 */
async function workload(stop: () => boolean, finalDeadline: () => number): Promise<void> {
  let next = 0;
  const owed = () => [...books.submitted.keys()].filter((i) => !books.results.has(i));
  while (true) {
    if (stop() && (owed().length === 0 || Date.now() > finalDeadline())) return;
    books.sessions += 1;
    const child = spawn('docker', ['exec', '-i', cluster.head, 'python3', '-c', DRIVER], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    child.stdin.on('error', () => {}); // the driver may die before we stop writing
    const outstanding = new Set<number>();
    let finished = false;
    let broken = false;
    let ending = false;
    let lastProgress = Date.now();
    const send = (tasks: Array<[number, number]>) => {
      for (const [i] of tasks) outstanding.add(i);
      if (tasks.length && child.stdin.writable) child.stdin.write(`${JSON.stringify({ submit: tasks })}\n`);
    };
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const answer = JSON.parse(line) as { i?: number; r?: number; error?: string; done?: boolean };
      if (answer.done) finished = true;
      if (answer.i === undefined) return;
      const i = answer.i;
      lastProgress = Date.now();
      outstanding.delete(i);
      if (answer.error !== undefined) {
        // The head's raylet is gone: this driver is lost; the next session takes over what it owed.
        if (answer.error === 'LocalRayletDiedError') broken = true;
        else {
          count(books.rayErrors, answer.error);
          send([[i, books.submitted.get(i) ?? 1]]);
        }
        return;
      }
      if (answer.r !== i * i + SALT) books.wrong += 1;
      else {
        books.results.set(i, answer.r);
        const now = Date.now();
        if (books.lastResultAt) books.longestGapMs = Math.max(books.longestGapMs, now - books.lastResultAt);
        books.lastResultAt = now;
      }
    });
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    // What earlier sessions still owe goes first (stdin buffers it while the driver connects).
    send(owed().map((i) => [i, books.submitted.get(i) ?? 1]));
    const feeder = setInterval(() => {
      if (broken || Date.now() - lastProgress > 120_000) {
        child.kill('SIGKILL'); // a driver that makes no progress for 2 minutes is abandoned too
        return;
      }
      if (!stop()) {
        const fresh: Array<[number, number]> = [];
        while (outstanding.size + fresh.length < IN_FLIGHT) {
          const seconds = Math.round(between(0.5, 3) * 10) / 10;
          books.submitted.set(next, seconds);
          fresh.push([next, seconds]);
          next += 1;
        }
        send(fresh);
      } else if (!ending && (outstanding.size === 0 || Date.now() > finalDeadline())) {
        ending = true;
        child.stdin.end();
      }
    }, 250);
    await closed;
    clearInterval(feeder);
    if (!finished) {
      books.sessionsLost += 1;
      books.resubmittedAfterLostDriver += owed().length;
      await sleep(2_000); // the head is restarting: give it a moment before the next ray.init
    }
  }
}

const contributing = (s: StatusDocument) => s.state === 'contributing' && s.ray.state === 'joined';

async function allContributing(timeoutMs: number): Promise<StatusDocument[]> {
  return Promise.all(agents.map((agent) => agent.waitForStatus('contributing', contributing, timeoutMs)));
}

async function injectFault(kind: FaultKind, chaosStart: number): Promise<FaultRecord> {
  const at = Math.round((Date.now() - chaosStart) / 1000);
  const before = await Promise.all(agents.map((agent) => agent.status()));
  const started = Date.now();
  switch (kind) {
    case 'head-restart': {
      await docker('restart', '-t', '2', cluster.head);
      // Without GCS fault tolerance the restarted head is a new cluster: each agent must join it afresh.
      await Promise.all(
        agents.map((agent, index) =>
          agent.waitForStatus(
            'rejoined the new head',
            (s) => contributing(s) && s.ray.restarts > (before[index]?.ray.restarts ?? 0),
            RECOVERY_LIMIT_MS,
          ),
        ),
      );
      return { kind, target: cluster.head, at, recoverySeconds: secondsSince(started), detail: 'both agents rejoined' };
    }
    case 'manager-stop-start': {
      const outageMs = Math.round(between(5_000, 25_000));
      await docker('stop', cluster.manager);
      await sleep(outageMs);
      // Ray kept running throughout: both agents still contributing, heartbeats failing (waited for: under the
      // chaos load a heartbeat can come later than the outage's first seconds).
      const during = await Promise.all(
        agents.map((agent) =>
          agent.waitForStatus('a failed heartbeat', (s) => s.heartbeat.consecutiveFailures >= 1, RECOVERY_LIMIT_MS),
        ),
      );
      for (const s of during) expect(contributing(s)).toBe(true);
      await docker('start', cluster.manager);
      await cluster.managerStarted();
      const back = Date.now();
      await Promise.all(
        agents.map((agent) =>
          agent.waitForStatus('heartbeats healthy', (s) => s.heartbeat.state === 'healthy', RECOVERY_LIMIT_MS),
        ),
      );
      return {
        kind,
        target: cluster.manager,
        at,
        recoverySeconds: secondsSince(back),
        detail: `down ${Math.round((back - started) / 1000)} s, agents stayed contributing; recovery = manager back -> heartbeats healthy`,
      };
    }
    case 'raylet-kill': {
      const index = Math.floor(random() * agents.length);
      const agent = agents[index] as Agent0;
      await killRaylet(agent.name);
      await agent.waitForStatus(
        'rejoined after the raylet kill',
        (s) => contributing(s) && s.ray.restarts > (before[index]?.ray.restarts ?? 0),
        RECOVERY_LIMIT_MS,
      );
      return { kind, target: agent.name, at, recoverySeconds: secondsSince(started), detail: 'node restarted' };
    }
    case 'agent-sigterm-restart': {
      const agent = pick(agents);
      const exited = containerExit(agent.name, 120_000);
      await docker('kill', '--signal=SIGTERM', agent.name);
      const code = await exited;
      const stopSeconds = secondsSince(started);
      expect(code, `${agent.name} exit code after SIGTERM`).toBe(0);
      await docker('start', agent.name);
      await agent.restarted();
      await agent.waitForStatus('contributing after restart', contributing, RECOVERY_LIMIT_MS);
      return {
        kind,
        target: agent.name,
        at,
        recoverySeconds: secondsSince(started),
        detail: `exit 0 after ${stopSeconds} s, started again`,
      };
    }
  }
}

beforeAll(async () => {
  console.warn(`soak seed: ${SEED} (replay with SOAK_SEED=${SEED}), chaos ${CHAOS_MS / 60_000} min`);
  await cluster.start();
  for (let k = 0; k < AGENTS; k += 1)
    agents.push(
      await cluster.startAgent({
        name: `soak${k}-${cluster.id}`,
        env: { DRAIN_DEADLINE: '5' },
        flags: ['--cpus=1', '--memory=2g'],
      }),
    );
  for (const status of await allContributing(180_000)) providerIds.push(status.registration.providerId ?? '');
});

afterAll(async () => {
  await cluster.stop();
});

test(
  'soak: head restarts, manager outages, raylet kills and SIGTERMs while tasks run lose no provider, credential or task result',
  async () => {
    const credentialsAtStart = await Promise.all(agents.map((agent) => savedProviderId(agent.volume)));
    expect(credentialsAtStart).toEqual(providerIds);

    const chaosStart = Date.now();
    let chaosOver = false;
    let finalDeadline = Number.POSITIVE_INFINITY;
    const work = workload(
      () => chaosOver,
      () => finalDeadline,
    );
    // Each kind once first (in a seeded order), then seeded random kinds, until the chaos time is used up.
    const order = [...FAULT_KINDS].sort(() => random() - 0.5);
    while (Date.now() - chaosStart < CHAOS_MS || order.length > 0) {
      await sleep(between(3_000, 12_000));
      const kind = order.shift() ?? pick(FAULT_KINDS);
      const record = await injectFault(kind, chaosStart);
      faults.push(record);
      console.warn(
        `[fault] t+${record.at}s ${record.kind} on ${record.target}: recovered in ${record.recoverySeconds} s (${record.detail}); results so far ${books.results.size}/${books.submitted.size}`,
      );
      await allContributing(RECOVERY_LIMIT_MS);
    }
    chaosOver = true;
    const chaosSeconds = secondsSince(chaosStart);
    finalDeadline = Date.now() + 150_000;
    await work;

    const providers = await waitFor('the manager to list the providers', () => cluster.providers(), 30_000);
    const credentialsAtEnd = await Promise.all(agents.map((agent) => savedProviderId(agent.volume)));
    const lost = [...books.submitted.keys()].filter((i) => !books.results.has(i));
    const rayErrors = [...books.rayErrors].map(([name, n]) => `${name} x${n}`).join(', ') || 'none';
    const recoveries = FAULT_KINDS.map((kind) => {
      const times = faults.filter((f) => f.kind === kind).map((f) => f.recoverySeconds);
      return `${kind}: n=${times.length}, ${times.length ? `max ${Math.max(...times)} s, times ${times.join('/')} s` : '-'}`;
    });
    console.warn(
      [
        `soak report (seed ${SEED}, chaos ${chaosSeconds} s, ${faults.length} faults):`,
        `  providers at the manager: ${providers.length} (agents: ${AGENTS}); registrations ${providers.map((p) => p.registrations).join('/')}`,
        `  credentials lost: ${credentialsAtEnd.filter((id, k) => id !== credentialsAtStart[k]).length}`,
        `  tasks: ${books.submitted.size} submitted, ${books.results.size} correct results, ${books.wrong} wrong, ${lost.length} lost`,
        `  driver sessions: ${books.sessions}, lost with the head: ${books.sessionsLost} (${books.resubmittedAfterLostDriver} tasks submitted again); tasks Ray gave up on after ${RETRIES} retries: ${rayErrors}`,
        `  longest time with tasks owed and no result: ${(books.longestGapMs / 1000).toFixed(1)} s`,
        ...recoveries.map((line) => `  recovery ${line}`),
      ].join('\n'),
    );

    // Every kind of fault happened, and each was recovered from (injectFault waits for it, within the limit).
    expect(new Set(faults.map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
    for (const fault of faults) expect(fault.recoverySeconds).toBeLessThan(RECOVERY_LIMIT_MS / 1000);
    // Providers: exactly the two agents, each registered once.
    expect(providers.map((p) => p.providerId).sort()).toEqual([...providerIds].sort());
    for (const provider of providers) expect(provider.registrations).toBe(1);
    // Credentials: each volume still holds the provider it started with.
    expect(credentialsAtEnd).toEqual(credentialsAtStart);
    // Task results: every task submitted came back with its own correct result.
    expect(books.wrong).toBe(0);
    // Ray's own retries covered every node the faults took down: no task needed the test to resubmit it.
    expect([...books.rayErrors]).toEqual([]);
    expect(lost).toEqual([]);
    expect(books.results.size).toBe(books.submitted.size);
    expect(books.submitted.size).toBeGreaterThan(20);
  },
  CHAOS_MS + 600_000,
);
