import { createHash } from 'node:crypto';
import { AGENT_ENV, CONTAINER_STATUS_PORT, STATE_DIR, TUNNEL_DIR } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import {
  type AgentSpec,
  LABEL_CONFIG_HASH,
  LABEL_INSTANCE,
  LABEL_MANAGED,
  LABEL_ROLE,
  specName,
  stateVolumeName,
  statusPortBindings,
  tunnelName,
  tunnelVolumeName,
} from './agent-container-spec.js';

/**
 * The tunnel container: the agent's twin from the same image (command `tunnel`), which owns the network namespace
 * the agent joins. It alone holds NET_ADMIN and /dev/net/tun for the WireGuard interface; it carries the Docker
 * network attachment and publishes the agent's status port, since ports belong to the namespace's owner.
 */
export const TUNNEL_ROLE = 'tunnel';
export const TUNNEL_VOLUME_ROLE = 'tunnel-state';
/** The image's command that runs the tunnel loop instead of the agent. */
export const TUNNEL_COMMAND = 'tunnel';
/** Bumped when the recipe below changes, so existing tunnel containers (and the agents in them) are recreated. */
const TUNNEL_RECIPE_VERSION = 1;
const MiB = 1024 ** 2;
/**
 * wireguard-go and the tunnel loop (node) need little; a bound keeps a runaway tunnel from eating the memory the
 * person gave the agent. Threads count against PidsLimit.
 */
const TUNNEL_MEMORY_BYTES = 256 * MiB;
const TUNNEL_NANO_CPUS = 0.5e9;
const TUNNEL_PIDS_LIMIT = 256;
/** The tunnel has nothing to drain; it stops after the agent did. */
export const TUNNEL_STOP_SECONDS = 10;

/** What shapes the tunnel container: its image, the Docker network it attaches to and the status port it publishes. */
export function tunnelConfigHash(spec: AgentSpec): string {
  const canonical = {
    recipe: TUNNEL_RECIPE_VERSION,
    image: spec.image,
    statusPort: spec.statusPort,
    network: spec.network ?? null,
    name: specName(spec),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

export function tunnelLabels(spec: AgentSpec): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_ROLE]: TUNNEL_ROLE,
    [LABEL_INSTANCE]: specName(spec),
    [LABEL_CONFIG_HASH]: tunnelConfigHash(spec),
  };
}

/** The tunnel container as the controller creates it. No secret reaches it: its key is made inside its volume. */
export function tunnelCreateOptions(spec: AgentSpec): Dockerode.ContainerCreateOptions {
  const name = specName(spec);
  const hostConfig: Dockerode.HostConfig = {
    NanoCpus: TUNNEL_NANO_CPUS,
    Memory: TUNNEL_MEMORY_BYTES,
    MemorySwap: TUNNEL_MEMORY_BYTES,
    PortBindings: statusPortBindings(spec),
    Mounts: [
      { Type: 'volume', Source: tunnelVolumeName(name), Target: TUNNEL_DIR },
      // It reads the overlay the agent asks for (OVERLAY_CONFIG_FILE) and nothing else of the agent's state.
      { Type: 'volume', Source: stateVolumeName(name), Target: STATE_DIR, ReadOnly: true },
    ],
    Tmpfs: { '/run': 'rw,nosuid,nodev,noexec,size=16m' },
    ReadonlyRootfs: true,
    CapDrop: ['ALL'],
    CapAdd: ['NET_ADMIN'],
    Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
    SecurityOpt: ['no-new-privileges'],
    Init: true,
    RestartPolicy: { Name: 'unless-stopped' },
    PidsLimit: TUNNEL_PIDS_LIMIT,
  };
  if (spec.network !== undefined) hostConfig.NetworkMode = spec.network;
  return {
    name: tunnelName(name),
    Image: spec.image,
    Cmd: [TUNNEL_COMMAND],
    Env: [`${AGENT_ENV.TINI_SUBREAPER.name}=1`],
    Labels: tunnelLabels(spec),
    ExposedPorts: { [`${CONTAINER_STATUS_PORT}/tcp`]: {} },
    // Root for the WireGuard interface and its private key (0600 root, out of reach of the agent's uid); with
    // every capability but NET_ADMIN dropped, root here cannot read the agent's secrets (no DAC_OVERRIDE).
    User: '0:0',
    // The image's HEALTHCHECK asks the agent's status endpoint, which answers in this namespace too: off here, so
    // the tunnel's health is its own status file, not the agent's.
    Healthcheck: { Test: ['NONE'] },
    StopTimeout: TUNNEL_STOP_SECONDS,
    HostConfig: hostConfig,
  };
}
