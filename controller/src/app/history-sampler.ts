import type { PolicyView } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { containerCpuUsage } from '../history/history-loop.js';
import type { HistorySample } from '../history/history-store.js';
import type { AgentFacts } from './view-model.js';

export interface HistorySamplerDeps {
  docker: Dockerode;
  agentName: string;
  /** The agent's last status document, as the app's status poll read it. */
  agent: () => AgentFacts | undefined;
  /** The policy's state now; null before its first decision. */
  policy: () => PolicyView | null;
}

/**
 * One history sample from what the app already knows: the container's CPU counter (read here, from the engine),
 * the agent's count of finished tasks and the policy's mode. A policy that has not decided yet counts as paused.
 */
export function historySampler(deps: HistorySamplerDeps): () => Promise<Omit<HistorySample, 'atMs'>> {
  return async () => {
    const cpu = await containerCpuUsage(deps.docker, deps.agentName).catch(() => null);
    const facts = deps.agent();
    const status = facts?.kind === 'ok' ? facts.status : undefined;
    const policy = deps.policy();
    return {
      cpuUsageNs: cpu?.usageNs ?? null,
      containerId: cpu?.id ?? null,
      tasksCompletedTotal: status?.tasks.completed ?? null,
      agentStartedAt: status?.agent.startedAt ?? null,
      mode: policy?.mode ?? 'paused',
      reason: policy?.reason ?? null,
    };
  };
}
