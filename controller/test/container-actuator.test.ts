import { describe, expect, test } from 'vitest';
import type { AgentContainer, AgentSpec } from '../src/container/agent-container.js';
import { AgentControlError } from '../src/container/agent-control.js';
import type { LiveLimitsRequest } from '../src/container/live-limits.js';
import { containerActuator, NotConfiguredError } from '../src/policy/container-actuator.js';

/**
 * The actuator's decisions, over a RECORDING STAND-IN for AgentContainer (the real one needs Docker; the actuator
 * against the real engine, a real agent and real Ray tasks is e2e/policy-throttle.test.ts). The stand-in keeps a
 * tiny model of the container (exists, running, the limits the kernel holds) so idempotence can be checked.
 */
const GiB = 1024 ** 3;
const spec: AgentSpec = {
  image: 'ray-agent:dev',
  clusterAddress: 'ray://head.invalid:10001',
  managerUrl: 'https://manager.invalid',
  cpus: 2,
  memoryBytes: 4 * GiB,
  statusPort: 8765,
  drainDeadlineSeconds: 7,
};

class StandInAgent {
  calls: string[] = [];
  exists = true;
  running = true;
  limits: LiveLimitsRequest = { cpus: 2, memoryBytes: 4 * GiB, throttleCpus: null };
  controlFails: AgentControlError | null = null;
  upFails: Error | null = null;

  async applyLimits(limits: LiveLimitsRequest) {
    if (!this.exists) return null;
    if (JSON.stringify(limits) === JSON.stringify(this.limits)) return null;
    this.limits = limits;
    this.calls.push(`limits ${limits.throttleCpus ?? 'full'}`);
    return { nanoCpus: 0, memoryBytes: 0, reply: null, rayCpus: 2, resizedLive: true, warning: null };
  }
  async up(given: AgentSpec) {
    this.calls.push(`up ${given.cpus}`);
    if (this.upFails) throw this.upFails;
    this.exists = true;
    this.running = true;
    return { outcome: 'adopted', id: 'x', secretsDelivered: false, warnings: [] };
  }
  async down(options: { timeoutSeconds?: number } = {}) {
    this.calls.push(`down${options.timeoutSeconds === undefined ? '' : ` t=${options.timeoutSeconds}`}`);
    this.running = false;
    return { existed: this.exists, wasRunning: true, removed: false };
  }
  async status() {
    return { exists: this.exists, running: this.running, restarting: false };
  }
  async signal(signal: string) {
    if (!this.running) return false;
    this.calls.push(`kill ${signal}`);
    return true;
  }
  async control(request: { command: string; deadlineSeconds?: number; reason?: string }) {
    this.calls.push(`control ${request.command} ${request.deadlineSeconds} ${request.reason}`);
    if (this.controlFails) throw this.controlFails;
    return { ok: true, message: 'drained', tasksLeft: 0 };
  }
  async drainDeadlineSeconds() {
    return this.exists ? 11 : null;
  }
}

/** null: no cluster configured. */
function setup(given: AgentSpec | null = spec) {
  const agent = new StandInAgent();
  const actuator = containerActuator({ agent: agent as unknown as AgentContainer, spec: () => given ?? undefined });
  return { agent, actuator };
}

describe('containerActuator', () => {
  test('throttled: the kernel limit drops to cpus * fraction in place, the offer stays; twice changes nothing', async () => {
    const { agent, actuator } = setup();
    await actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
    expect(agent.limits).toEqual({ cpus: 2, memoryBytes: 4 * GiB, throttleCpus: 0.2 });
    await actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
    expect(agent.calls).toEqual(['limits 0.2']);
  });

  test("throttled never goes below Docker's 0.01 CPUs, and refuses a fraction outside (0, 1]", async () => {
    const { agent, actuator } = setup({ ...spec, cpus: 0.05 });
    await actuator.apply({ kind: 'throttled', cpuFraction: 0.01 });
    expect(agent.limits.throttleCpus).toBe(0.01);
    await expect(actuator.apply({ kind: 'throttled', cpuFraction: 0 })).rejects.toThrow(/cpuFraction .*e\.g\. 0\.1/);
    await expect(actuator.apply({ kind: 'throttled', cpuFraction: 1.5 })).rejects.toThrow(/cpuFraction/);
  });

  test('throttled leaves a stopped container stopped', async () => {
    const { agent, actuator } = setup();
    agent.running = false;
    await actuator.apply({ kind: 'throttled', cpuFraction: 0.5 });
    expect(agent.running).toBe(false);
    expect(agent.calls).toEqual(['limits 1']);
  });

  test('full on a container changed by hand: up() refuses it and its limits are not touched', async () => {
    const { agent, actuator } = setup();
    agent.limits = { cpus: 1, memoryBytes: GiB, throttleCpus: null };
    agent.upFails = new Error('the agent container was changed outside this app');
    await expect(actuator.apply({ kind: 'full' })).rejects.toThrow(/changed outside/);
    expect(agent.calls).toEqual(['up 2']);
    expect(agent.limits).toEqual({ cpus: 1, memoryBytes: GiB, throttleCpus: null });
  });

  test('full after throttled: the throttle is lifted and up() keeps it running; full again changes no limit', async () => {
    const { agent, actuator } = setup();
    await actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
    await actuator.apply({ kind: 'full' });
    expect(agent.limits.throttleCpus).toBeNull();
    expect(agent.calls).toEqual(['limits 0.2', 'up 2', 'limits full']);
    await actuator.apply({ kind: 'full' });
    expect(agent.calls.slice(3)).toEqual(['up 2']);
  });

  test('full without a configured cluster throws a clear error and touches nothing', async () => {
    const { agent, actuator } = setup(null);
    await expect(actuator.apply({ kind: 'full' })).rejects.toThrow(NotConfiguredError);
    await expect(actuator.apply({ kind: 'full' })).rejects.toThrow(/no cluster is configured/);
    await actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
    expect(agent.calls).toEqual([]);
  });

  test("stopped/drain: Ray's drain with the given deadline, then a graceful stop; again: only the (no-op) stop", async () => {
    const { agent, actuator } = setup();
    await actuator.apply({ kind: 'stopped', stop: { how: 'drain', deadlineSeconds: 30, reason: 'pause' } });
    expect(agent.calls).toEqual(['control drain 30 pause', 'down']);
    await actuator.apply({ kind: 'stopped', stop: { how: 'drain', deadlineSeconds: 30, reason: 'pause' } });
    expect(agent.calls).toEqual(['control drain 30 pause', 'down', 'down']);
  });

  test("stopped/drain with a null deadline: the spec's drain deadline, else the container's own", async () => {
    const { agent, actuator } = setup();
    await actuator.apply({ kind: 'stopped', stop: { how: 'drain', deadlineSeconds: null, reason: 'suspend' } });
    expect(agent.calls[0]).toBe('control drain 7 suspend');
    const bare = setup(null);
    await bare.actuator.apply({ kind: 'stopped', stop: { how: 'drain', deadlineSeconds: null, reason: 'leave' } });
    expect(bare.agent.calls[0]).toBe('control drain 11 leave');
  });

  test('stopped/drain on an older image (no control bundle): the stop itself drains', async () => {
    const { agent, actuator } = setup();
    agent.controlFails = new AgentControlError('no-bundle', 'no bundle');
    await actuator.apply({ kind: 'stopped', stop: { how: 'drain', deadlineSeconds: 30, reason: 'policy' } });
    expect(agent.calls).toEqual(['control drain 30 policy', 'down']);
  });

  test("stopped/now: two SIGTERMs (the agent's stop-now), then a stop bounded by a zero drain's timeout", async () => {
    const { agent, actuator } = setup();
    await actuator.apply({ kind: 'stopped', stop: { how: 'now' } });
    expect(agent.calls).toEqual(['kill SIGTERM', 'kill SIGTERM', 'down t=15']);
  });

  test('targets overtaken before their turn are skipped: the newest target is what the container matches', async () => {
    const { agent, actuator } = setup();
    const running = actuator.apply({ kind: 'stopped', stop: { how: 'drain', deadlineSeconds: 5, reason: 'pause' } });
    // Three targets at once: only the newest is applied.
    const overtaken = actuator.apply({ kind: 'throttled', cpuFraction: 0.5 });
    const newest = actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
    await Promise.all([running, overtaken, newest]);
    expect(agent.calls).toEqual(['limits 0.2']);
  });
});
