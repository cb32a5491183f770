import type Dockerode from 'dockerode';
import { describe, expect, test } from 'vitest';
import { rejoinAction } from '../src/container/agent-container.js';
import {
  AGENT_SECCOMP_OPTION,
  type AgentSpec,
  configHash,
  createOptions,
} from '../src/container/agent-container-spec.js';
import { containerDrift } from '../src/container/container-drift.js';
import { TUNNEL_COMMAND, tunnelConfigHash, tunnelCreateOptions } from '../src/container/tunnel-container-spec.js';

const MiB = 1024 ** 2;
const TOKEN = 'rap-unit-token-0123456789abcdef';
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

const spec: AgentSpec = {
  image: 'ray-agent:dev',
  clusterAddress: 'ray://head.lan:10001',
  managerUrl: 'https://manager.lan:8443',
  cpus: 2,
  memoryBytes: 4096 * MiB,
  statusPort: 18765,
  token: TOKEN,
  managerCaPem: CA,
  network: 'rap-net',
  name: 'ray-agent',
};

describe('the tunnel container of the pair', () => {
  const options = tunnelCreateOptions(spec);
  const host = options.HostConfig ?? {};

  test('same image, command tunnel, root with only NET_ADMIN, /dev/net/tun, read-only root, tmpfs /run', () => {
    expect(options.name).toBe('ray-agent-tunnel');
    expect(options.Image).toBe('ray-agent:dev');
    expect(options.Cmd).toEqual([TUNNEL_COMMAND]);
    expect(options.User).toBe('0:0');
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.CapAdd).toEqual(['NET_ADMIN']);
    expect(host.Devices).toEqual([
      { PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' },
    ]);
    expect(host.ReadonlyRootfs).toBe(true);
    expect(Object.keys(host.Tmpfs ?? {})).toEqual(['/run']);
    expect(host.SecurityOpt).toEqual(['no-new-privileges']);
    expect(host.Privileged).toBeUndefined();
    expect(host.RestartPolicy).toEqual({ Name: 'unless-stopped' });
  });

  test('it owns the network: the Docker network and the status port on 127.0.0.1 only', () => {
    expect(host.NetworkMode).toBe('rap-net');
    expect(host.PortBindings).toEqual({ '8765/tcp': [{ HostIp: '127.0.0.1', HostPort: '18765' }] });
    expect(options.ExposedPorts).toEqual({ '8765/tcp': {} });
  });

  test('its volume read-write at TUNNEL_DIR, the state volume read-only', () => {
    expect(host.Mounts).toEqual([
      { Type: 'volume', Source: 'ray-agent-tunnel', Target: '/var/lib/ray-agent-tunnel' },
      { Type: 'volume', Source: 'ray-agent-state', Target: '/var/lib/ray-agent', ReadOnly: true },
    ]);
  });

  test('no secret in its request, and its own labels (managed, instance, role tunnel)', () => {
    const text = JSON.stringify(options);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('BEGIN CERTIFICATE');
    expect(options.Env).toEqual(['TINI_SUBREAPER=1']);
    expect(options.Labels).toMatchObject({
      'io.ray-agent.managed': 'true',
      'io.ray-agent.instance': 'ray-agent',
      'io.ray-agent.role': 'tunnel',
    });
  });

  test("its hash changes with what shapes it (image, port, network), not with the agent's limits or secrets", () => {
    const base = tunnelConfigHash(spec);
    for (const change of [{ image: 'ray-agent:next' }, { statusPort: 18766 }, { network: 'other' }])
      expect(tunnelConfigHash({ ...spec, ...change }), JSON.stringify(change)).not.toBe(base);
    for (const change of [
      { cpus: 3 },
      { memoryBytes: 8192 * MiB },
      { token: `${TOKEN}x` },
      { drainDeadlineSeconds: 9 },
    ])
      expect(tunnelConfigHash({ ...spec, ...change }), JSON.stringify(change)).toBe(base);
  });
});

describe('the agent container of the pair', () => {
  const options = createOptions(spec);
  const host = options.HostConfig ?? {};

  test("joins the tunnel's namespace: no ports, no network of its own", () => {
    expect(host.NetworkMode).toBe('container:ray-agent-tunnel');
    expect(host.PortBindings).toBeUndefined();
    expect(options.ExposedPorts).toBeUndefined();
  });

  test("keeps today's hardening: uid 1000, no capabilities at all, no devices, read-only root", () => {
    expect(options.User).toBe('1000:1000');
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.CapAdd).toBeUndefined();
    expect(host.Devices).toBeUndefined();
    expect(host.ReadonlyRootfs).toBe(true);
    // Beside it only the seccomp profile gVisor's sandboxes need, never unconfined.
    expect(host.SecurityOpt).toEqual(['no-new-privileges', AGENT_SECCOMP_OPTION]);
    expect(host.SecurityOpt?.join(' ')).not.toMatch(/unconfined/);
  });

  test('its state and spill volumes read-write, the tunnel volume read-only', () => {
    expect(host.Mounts).toEqual([
      { Type: 'volume', Source: 'ray-agent-state', Target: '/var/lib/ray-agent' },
      { Type: 'volume', Source: 'ray-agent-spill', Target: '/var/lib/ray-agent-spill' },
      { Type: 'volume', Source: 'ray-agent-tunnel', Target: '/var/lib/ray-agent-tunnel', ReadOnly: true },
    ]);
  });

  test('no secret in Env', () => {
    const env = (options.Env ?? []).join('\n');
    expect(env).not.toContain(TOKEN);
    expect(env).not.toContain('BEGIN CERTIFICATE');
  });

  test('direct mode is the agent alone, as before the pair: its network, its port, its own volumes', () => {
    const direct = createOptions({ ...spec, tunnel: false });
    expect(direct.HostConfig?.NetworkMode).toBe('rap-net');
    expect(direct.HostConfig?.PortBindings).toEqual({ '8765/tcp': [{ HostIp: '127.0.0.1', HostPort: '18765' }] });
    expect(direct.HostConfig?.Mounts).toEqual([
      { Type: 'volume', Source: 'ray-agent-state', Target: '/var/lib/ray-agent' },
      { Type: 'volume', Source: 'ray-agent-spill', Target: '/var/lib/ray-agent-spill' },
    ]);
    expect(configHash({ ...spec, tunnel: false })).not.toBe(configHash(spec));
  });
});

/** What `docker inspect` shows of a container made from these options (the fields drift reads). */
function inspected(options: Dockerode.ContainerCreateOptions): Dockerode.ContainerInspectInfo {
  const host = options.HostConfig ?? {};
  return {
    Config: { Image: options.Image, User: options.User, Env: options.Env, Labels: options.Labels },
    HostConfig: host,
    Mounts: (host.Mounts ?? []).map((mount) => ({
      Type: mount.Type,
      Name: mount.Source,
      Source: `/var/lib/docker/volumes/${mount.Source}/_data`,
      Destination: mount.Target,
      RW: mount.ReadOnly !== true,
    })),
  } as unknown as Dockerode.ContainerInspectInfo;
}

describe('drift of the pair', () => {
  test('what the controller itself gives the tunnel (root, NET_ADMIN, /dev/net/tun, its mounts) is not drift', () => {
    expect(containerDrift(inspected(tunnelCreateOptions(spec)), spec, 'tunnel')).toEqual([]);
    expect(containerDrift(inspected(createOptions(spec)), spec)).toEqual([]);
  });

  test('the same on the agent is drift, and so is a tunnel with more than its recipe', () => {
    const agent = inspected(createOptions(spec));
    agent.HostConfig.CapAdd = ['NET_ADMIN'];
    agent.HostConfig.Devices = [
      { PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' },
    ];
    expect(containerDrift(agent, spec).map((item) => item.kind)).toEqual(['capabilities', 'devices']);

    const tunnel = inspected(tunnelCreateOptions(spec));
    tunnel.HostConfig.CapAdd = ['NET_ADMIN', 'SYS_ADMIN'];
    const rw = tunnel.Mounts.find((mount) => mount.Destination === '/var/lib/ray-agent');
    if (rw) rw.RW = true;
    const drift = containerDrift(tunnel, spec, 'tunnel');
    expect(drift.map((item) => item.detail)).toEqual([
      'it mounts ray-agent-state at /var/lib/ray-agent writable',
      'it adds capabilities SYS_ADMIN',
    ]);
  });
});

describe("drift of the agent's seccomp profile", () => {
  test("the sandbox contract's profile is the agent's own; another profile, or none at all, is drift", () => {
    const agent = inspected(createOptions(spec));
    expect(agent.HostConfig.SecurityOpt).toContain(AGENT_SECCOMP_OPTION);
    const widened = JSON.parse(AGENT_SECCOMP_OPTION.slice('seccomp='.length)) as { defaultAction: string };
    widened.defaultAction = 'SCMP_ACT_ALLOW';
    agent.HostConfig.SecurityOpt = ['no-new-privileges', `seccomp=${JSON.stringify(widened)}`];
    expect(containerDrift(agent, spec).map((item) => item.detail)).toEqual([
      "it runs under a seccomp profile that is not Ray Agent's",
    ]);
    agent.HostConfig.SecurityOpt = ['no-new-privileges', 'seccomp=unconfined'];
    expect(containerDrift(agent, spec).map((item) => item.detail)).toEqual([
      'it turns off confinement: seccomp=unconfined',
    ]);
  });
});

describe('rejoinAction: the agent follows its tunnel into a new namespace', () => {
  const NEVER = '0001-01-01T00:00:00Z';
  const box = (id: string, state: { Running: boolean; Restarting?: boolean; StartedAt: string }, mode = '') =>
    ({
      Id: id,
      Name: `/${id}`,
      HostConfig: { NetworkMode: mode },
      State: { Restarting: false, ...state },
    }) as unknown as Dockerode.ContainerInspectInfo;
  const tunnel = box('t1', { Running: true, StartedAt: '2026-12-01T10:00:05Z' });
  const agentAt = (startedAt: string, running = true, mode = 'container:t1') =>
    box('a1', { Running: running, StartedAt: startedAt }, mode);

  test('a tunnel that started after the agent: restart the agent', () => {
    expect(rejoinAction(agentAt('2026-12-01T10:00:00Z'), tunnel)).toBe('restart');
  });

  test('an agent started after its tunnel: nothing', () => {
    expect(rejoinAction(agentAt('2026-12-01T10:00:09Z'), tunnel)).toBeNull();
  });

  test('an agent that never started (its tunnel was down): start it; one someone stopped: leave it', () => {
    expect(rejoinAction(agentAt(NEVER, false), tunnel)).toBe('start');
    expect(rejoinAction(agentAt('2026-12-01T09:00:00Z', false), tunnel)).toBeNull();
  });

  test("a tunnel that is down, or an agent in another container's namespace: nothing", () => {
    const down = box('t1', { Running: false, StartedAt: '2026-12-01T10:00:05Z' });
    expect(rejoinAction(agentAt('2026-12-01T10:00:00Z'), down)).toBeNull();
    expect(rejoinAction(agentAt('2026-12-01T10:00:00Z', true, 'container:other'), tunnel)).toBeNull();
    expect(rejoinAction(null, tunnel)).toBeNull();
  });
});
