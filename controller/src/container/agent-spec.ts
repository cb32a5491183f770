import type { Settings } from '@ray-agent/protocol';
import type { AgentSpec } from './agent-container-spec.js';

/** The settings that shape the agent container. */
export type AgentSettings = Pick<
  Settings,
  | 'image'
  | 'clusterAddress'
  | 'managerUrl'
  | 'cpus'
  | 'memoryMiB'
  | 'statusPort'
  | 'network'
  | 'acceptWork'
  | 'sandboxNetwork'
>;

export interface AgentSpecInputs {
  settings: AgentSettings;
  /** The container's name (the controller's instance). */
  name: string;
  /** The playground's own head and manager, used instead of the settings' cluster. */
  cluster?: { clusterAddress: string; managerUrl: string };
  /** Given when the caller has them; they never change which container runs (see configHash). */
  secrets?: { token?: string | null; managerCaPem?: string | null };
  /** For the playground and tests: a Docker network, extra agent variables, another drain deadline. */
  overrides?: { network?: string; extraEnv?: Record<string, string>; drainDeadlineSeconds?: number };
}

const MiB = 1024 ** 2;

/**
 * The one way settings become the agent container's spec, for the tray app, the `ray-agent` CLI and the
 * playground: the same settings give the same container whoever starts it, with or without the token.
 */
export function agentSpecFor(inputs: AgentSpecInputs): AgentSpec {
  const { settings, secrets = {}, overrides = {} } = inputs;
  const cluster = inputs.cluster ?? { clusterAddress: settings.clusterAddress, managerUrl: settings.managerUrl };
  // An empty secret is no secret: never an empty file in the volume.
  const token = secrets.token?.trim() || undefined;
  const managerCaPem = secrets.managerCaPem?.trim() ? secrets.managerCaPem : undefined;
  return {
    image: settings.image,
    clusterAddress: cluster.clusterAddress,
    managerUrl: cluster.managerUrl,
    cpus: settings.cpus,
    memoryBytes: settings.memoryMiB * MiB,
    statusPort: settings.statusPort,
    tunnel: settings.network !== 'direct',
    name: inputs.name,
    acceptWork: settings.acceptWork,
    sandboxNetwork: settings.sandboxNetwork,
    ...(token !== undefined ? { token } : {}),
    ...(managerCaPem !== undefined ? { managerCaPem } : {}),
    ...(overrides.network !== undefined ? { network: overrides.network } : {}),
    ...(overrides.extraEnv !== undefined ? { extraEnv: overrides.extraEnv } : {}),
    ...(overrides.drainDeadlineSeconds !== undefined ? { drainDeadlineSeconds: overrides.drainDeadlineSeconds } : {}),
  };
}
