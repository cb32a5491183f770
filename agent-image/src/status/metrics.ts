import { AgentState } from '@ray-agent/protocol';
import { Gauge, Registry } from 'prom-client';
import { type RequestDurations, STATUS_DURATION_BUCKETS } from './request-durations.js';
import type { StatusModel } from './status-model.js';

/**
 * Prometheus view of the same status snapshot, computed at scrape time. Loaded on the first scrape only (see
 * status-server.ts): prom-client stays out of an idle agent's heap.
 */
export function createMetrics(model: StatusModel, durations?: RequestDurations): Registry {
  const registry = new Registry();
  if (durations) registry.registerMetric(durationHistogram(durations) as never);
  const gauge = (name: string, help: string, read: (g: Gauge) => void, labelNames: string[] = []) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        read(this);
      },
    });
  gauge(
    'ray_agent_state',
    'Agent state: 1 for the current state, 0 otherwise.',
    (g) => {
      const state = model.current;
      for (const option of AgentState.options) g.set({ state: option }, option === state ? 1 : 0);
    },
    ['state'],
  );
  gauge('ray_agent_running_tasks', 'Ray tasks and actor calls executing on this node.', (g) =>
    g.set(model.runningTasks),
  );
  gauge(
    'ray_agent_running_tasks_by_name',
    'Ray tasks and actor calls executing on this node, by worker title (at most 50 names).',
    (g) => {
      g.reset();
      for (const { name, count } of model.tasksByName) g.set({ name }, count);
    },
    ['name'],
  );
  gauge(
    'ray_agent_tasks_completed_total',
    'Tasks seen finishing on this node since the agent started (a lower bound: sampled every 2-10 s).',
    (g) => g.set(model.tasksCompleted),
  );
  gauge('ray_agent_ray_node_restarts_total', 'Times the Ray node was restarted after it stopped unexpectedly.', (g) =>
    g.set(model.ray.restarts),
  );
  gauge('ray_agent_heartbeat_consecutive_failures', 'Heartbeats failed in a row.', (g) =>
    g.set(model.heartbeat.consecutiveFailures),
  );
  gauge(
    'ray_agent_heartbeat_last_success_timestamp_seconds',
    'Unix time of the last accepted heartbeat (0 = never).',
    (g) => g.set((model.heartbeat.lastSuccessAt?.getTime() ?? 0) / 1000),
  );
  gauge('ray_agent_cpu_limit_cores', 'CPU limit the node runs under.', (g) => g.set(model.limits.cpus));
  gauge('ray_agent_cpu_throttle_cores', 'CPU quota enforced while stepping aside (0 = not throttled).', (g) =>
    g.set(model.limits.throttleCpus ?? 0),
  );
  gauge('ray_agent_memory_limit_bytes', 'Memory limit the node runs under.', (g) => g.set(model.limits.memoryBytes));
  gauge('ray_agent_cpu_usage_percent', 'Container CPU use as a percentage of the CPU limit.', (g) =>
    g.set(model.usage.cpuPercent),
  );
  gauge('ray_agent_memory_usage_bytes', 'Container memory in use.', (g) => g.set(model.usage.memoryBytes));
  gauge('ray_agent_registered', '1 when registered with the manager.', (g) =>
    g.set(model.registration.state === 'registered' ? 1 : 0),
  );
  gauge('ray_agent_tunnel_up', '1 when the WireGuard tunnel to the cluster is up (0 when down or off).', (g) =>
    g.set(model.tunnel?.state === 'up' ? 1 : 0),
  );
  gauge(
    'ray_agent_tunnel_last_handshake_age_seconds',
    'Seconds since the last WireGuard handshake with the gateway (-1 = none).',
    (g) => {
      const at = model.tunnel?.lastHandshakeAt;
      g.set(at ? Math.max(0, (Date.now() - Date.parse(at)) / 1000) : -1);
    },
  );
  gauge('ray_agent_tunnel_received_bytes', 'Bytes received through the tunnel since it was configured.', (g) =>
    g.set(model.tunnel?.rxBytes ?? 0),
  );
  gauge('ray_agent_tunnel_sent_bytes', 'Bytes sent through the tunnel since it was configured.', (g) =>
    g.set(model.tunnel?.txBytes ?? 0),
  );
  gauge('ray_agent_sandbox_ready', "1 when the node runs Ray's gVisor sandboxes (its self-test passed).", (g) =>
    g.set(model.sandbox.state === 'ready' ? 1 : 0),
  );
  gauge('ray_agent_sandbox_slots', 'The gvisor resource the node advertises to Ray (0 = no sandboxes).', (g) =>
    g.set(model.sandbox.slots),
  );
  gauge('ray_agent_sandboxes_running', 'gVisor sandboxes up on this node now.', (g) => g.set(model.sandbox.running));
  return registry;
}

const DURATION = 'ray_agent_status_request_duration_seconds';

/**
 * The status endpoint's own timings as a Prometheus histogram. The server counts into plain buckets (so timing
 * needs no prom-client); this hands those counts to prom-client's formatter in the shape its Histogram.get() has.
 */
function durationHistogram(durations: RequestDurations) {
  return {
    name: DURATION,
    help: 'Time the status endpoint took to answer a request, measured inside the server.',
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    get() {
      const buckets = STATUS_DURATION_BUCKETS.map((le, i) => ({
        metricName: `${DURATION}_bucket`,
        labels: { le },
        value: durations.counts[i] ?? 0,
      }));
      return {
        name: DURATION,
        help: this.help,
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...buckets,
          { metricName: `${DURATION}_bucket`, labels: { le: '+Inf' }, value: durations.count },
          { metricName: `${DURATION}_sum`, labels: {}, value: durations.sum },
          { metricName: `${DURATION}_count`, labels: {}, value: durations.count },
        ],
      };
    },
  };
}
