import { SPILL_DIR, TUNNEL_DIR } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import {
  AGENT_SECCOMP_OPTION,
  type AgentSpec,
  CONTAINER_STATUS_PORT,
  STATE_DIR,
  specName,
  spillVolumeName,
  stateVolumeName,
  tunnelVolumeName,
} from './agent-container-spec.js';

/** One difference between the existing container and what `up` would create that a person must confirm. */
export interface DriftItem {
  kind:
    | 'image'
    | 'docker-socket'
    | 'mount'
    | 'privileged'
    | 'capabilities'
    | 'security-options'
    | 'port'
    | 'secret-env'
    | 'host-namespace'
    | 'devices'
    | 'user'
    | 'writable-root';
  /** One sentence, never carrying a secret's value. */
  detail: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|PRIVATE_?KEY/i;
const DOCKER_SOCKET = /docker\.sock|docker_engine|containerd\.sock|podman\.sock/i;

/** Which of the pair is checked: what the controller itself gives that container is not drift. */
export type DriftRole = 'agent' | 'tunnel';

interface Expected {
  mounts: Array<{ volume: string; destination: string; readOnly: boolean }>;
  capAdd: string[];
  devices: string[];
  root: boolean;
  /** The seccomp option the controller gives this container; undefined: Docker's default profile. */
  seccomp: string | undefined;
}

function expected(spec: AgentSpec, role: DriftRole): Expected {
  const name = specName(spec);
  const state = stateVolumeName(name);
  const tunnel = tunnelVolumeName(name);
  if (role === 'tunnel')
    return {
      mounts: [
        { volume: tunnel, destination: TUNNEL_DIR, readOnly: false },
        { volume: state, destination: STATE_DIR, readOnly: true },
      ],
      capAdd: ['NET_ADMIN'],
      devices: ['/dev/net/tun'],
      root: true,
      seccomp: undefined,
    };
  // The tunnel volume is ours in either mode: an agent of the pair that is switched to direct is replaced, not drift.
  return {
    mounts: [
      { volume: state, destination: STATE_DIR, readOnly: false },
      { volume: spillVolumeName(name), destination: SPILL_DIR, readOnly: false },
      { volume: tunnel, destination: TUNNEL_DIR, readOnly: true },
    ],
    capAdd: [],
    devices: [],
    root: false,
    seccomp: AGENT_SECCOMP_OPTION,
  };
}

const normalCap = (cap: string) => cap.toUpperCase().replace(/^CAP_/, '');

/**
 * What someone changed by hand (or what a container under our labels does that ours never would): extra mounts,
 * a Docker socket, privileges, ports open beyond loopback, secrets in the environment, another image.
 * An untouched container gives [].
 */
export function containerDrift(
  inspect: Dockerode.ContainerInspectInfo,
  spec: AgentSpec,
  role: DriftRole = 'agent',
): DriftItem[] {
  const drift: DriftItem[] = [];
  const host = inspect.HostConfig;
  const config = inspect.Config;
  const want = expected(spec, role);

  if (config.Image !== spec.image)
    drift.push({ kind: 'image', detail: `it runs the image ${config.Image}, not ${spec.image}` });

  for (const mount of inspect.Mounts ?? []) {
    const source = mount.Source ?? '';
    const name = (mount as { Name?: string }).Name ?? '';
    if (DOCKER_SOCKET.test(source) || DOCKER_SOCKET.test(mount.Destination)) {
      drift.push({
        kind: 'docker-socket',
        detail: `it mounts the container engine's socket ${source} at ${mount.Destination}: full control of this computer`,
      });
    } else {
      const ours = want.mounts.find((item) => mount.Type === 'volume' && name === item.volume);
      if (ours === undefined || mount.Destination !== ours.destination)
        drift.push({
          kind: 'mount',
          detail: `it mounts ${mount.Type} ${mount.Type === 'volume' ? name : source} at ${mount.Destination}`,
        });
      else if (ours.readOnly && mount.RW)
        drift.push({ kind: 'mount', detail: `it mounts ${name} at ${mount.Destination} writable` });
    }
  }

  if (host.Privileged === true) drift.push({ kind: 'privileged', detail: 'it runs privileged' });
  const added = ((host.CapAdd ?? []) as string[]).filter((cap) => !want.capAdd.includes(normalCap(cap)));
  if (added.length > 0) drift.push({ kind: 'capabilities', detail: `it adds capabilities ${added.join(', ')}` });
  if (!((host.CapDrop ?? []) as string[]).some((cap) => cap.toUpperCase() === 'ALL'))
    drift.push({ kind: 'capabilities', detail: "it keeps Docker's default capabilities (no --cap-drop ALL)" });
  const securityOpt: string[] = host.SecurityOpt ?? [];
  if (!securityOpt.some((opt) => /^no-new-privileges(:true|=true)?$/.test(opt)))
    drift.push({ kind: 'security-options', detail: 'it lets processes gain privileges (no no-new-privileges)' });
  const unconfined = securityOpt.filter((opt) => /unconfined/i.test(opt));
  if (unconfined.length > 0)
    drift.push({ kind: 'security-options', detail: `it turns off confinement: ${unconfined.join(', ')}` });
  else if (securityOpt.some((opt) => /^seccomp[=:]/.test(opt) && opt !== want.seccomp))
    drift.push({ kind: 'security-options', detail: "it runs under a seccomp profile that is not Ray Agent's" });
  if (host.ReadonlyRootfs !== true) drift.push({ kind: 'writable-root', detail: 'its root file system is writable' });

  const user = config.User ?? '';
  if (
    !want.root &&
    (user === '' || user === 'root' || user === '0' || user.startsWith('0:') || user.startsWith('root:'))
  )
    drift.push({ kind: 'user', detail: 'it runs as root' });

  for (const [key, label] of [
    ['NetworkMode', 'network'],
    ['PidMode', 'process'],
    ['IpcMode', 'IPC'],
    ['UTSMode', 'UTS'],
    ['UsernsMode', 'user'],
  ] as const) {
    const mode = (host as Record<string, unknown>)[key];
    if (mode === 'host' && !(key === 'NetworkMode' && spec.network === 'host'))
      drift.push({ kind: 'host-namespace', detail: `it shares the computer's ${label} namespace` });
  }
  const devices = ((host.Devices ?? []) as Array<{ PathOnHost?: string; PathInContainer?: string }>).filter(
    (device) => !(want.devices.includes(device.PathOnHost ?? '') && device.PathInContainer === device.PathOnHost),
  );
  if (devices.length > 0)
    drift.push({ kind: 'devices', detail: `it has devices ${devices.map((device) => device.PathOnHost).join(', ')}` });

  const ourPort = `${CONTAINER_STATUS_PORT}/tcp`;
  for (const [port, bindings] of Object.entries(host.PortBindings ?? {})) {
    for (const binding of (bindings ?? []) as Array<{ HostIp?: string; HostPort?: string }>) {
      const ip = binding.HostIp ?? '';
      if (!LOOPBACK.has(ip))
        drift.push({
          kind: 'port',
          detail: `it publishes ${port} on ${ip === '' ? 'every network interface' : ip}:${binding.HostPort ?? ''}`,
        });
      else if (port !== ourPort)
        drift.push({ kind: 'port', detail: `it also publishes ${port} on ${ip}:${binding.HostPort ?? ''}` });
    }
  }
  if (host.PublishAllPorts === true)
    drift.push({ kind: 'port', detail: 'it publishes every exposed port on every network interface' });

  for (const entry of config.Env ?? []) {
    const eq = entry.indexOf('=');
    const key = eq < 0 ? entry : entry.slice(0, eq);
    const value = eq < 0 ? '' : entry.slice(eq + 1);
    // A variable the person configured in extraEnv is part of what up creates, not drift.
    if (spec.extraEnv?.[key] === value) continue;
    const byName = SECRET_NAME.test(key) && !key.endsWith('_FILE') && value !== '';
    const byValue = spec.token !== undefined && spec.token !== '' && value.includes(spec.token);
    if (byName || byValue)
      drift.push({
        kind: 'secret-env',
        detail: `its environment variable ${key} holds a secret, which anyone who can run docker inspect can read`,
      });
  }
  return drift;
}
