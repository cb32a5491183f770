import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AgentContainer, type AgentSpec, type UpResult } from '../src/container/agent-container.js';
import { resolveDockerEndpointFromProcess } from '../src/engine/docker-endpoint.js';
import { createDockerode } from '../src/engine/docker-engine.js';
import { docker, dockerQuiet, removeByPrefix, runPrefix } from './support/docker-cli.js';
import { freePort } from './support/free-port.js';

/**
 * The tunnel pair on the machine's real engine with the real agent image: both containers made, adopted, replaced
 * and removed together, with Docker's facts (namespaces, capabilities, devices, mounts, ports, labels) and what the
 * running pair shows (the status endpoint through the tunnel's port, the tunnel's key out of the agent's reach).
 * The agent points at names under .invalid (they never resolve), so the manager offers no overlay: tunnel `off`.
 */
const MiB = 1024 ** 2;
const prefix = runPrefix('pair');
const network = `${prefix}-net`;
let dockerode: Dockerode;

interface Inspect {
  Id: string;
  Name: string;
  Config: { Env: string[]; Labels: Record<string, string>; User: string; Cmd: string[] | null; Image: string };
  HostConfig: {
    NetworkMode: string;
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> | null;
    CapAdd: string[] | null;
    CapDrop: string[] | null;
    Devices: Array<{ PathOnHost: string; PathInContainer: string }> | null;
    SecurityOpt: string[] | null;
    ReadonlyRootfs: boolean;
    Privileged: boolean;
    Tmpfs: Record<string, string> | null;
  };
  Mounts: Array<{ Type: string; Name?: string; Destination: string; RW: boolean }>;
  State: { Running: boolean; StartedAt: string };
  RestartCount: number;
}

async function inspect(name: string): Promise<{ json: Inspect; text: string }> {
  const text = await docker(['container', 'inspect', name]);
  return { json: (JSON.parse(text) as Inspect[])[0] as Inspect, text };
}

const newToken = () => `rap-test-token-${randomBytes(16).toString('hex')}`;

function makeSpec(name: string, statusPort: number): AgentSpec {
  return {
    image: 'ray-agent:dev',
    clusterAddress: 'ray://rap-nowhere.invalid:10001',
    managerUrl: 'https://rap-nowhere.invalid',
    cpus: 1,
    memoryBytes: 1024 * MiB,
    statusPort,
    token: newToken(),
    drainDeadlineSeconds: 2,
    network,
    name,
  };
}

/** `up` brings the pair up: the tunnel container stays running (the image's `tunnel` command), the agent joins it. */
async function upPair(agent: AgentContainer, spec: AgentSpec): Promise<UpResult> {
  const result = await agent.up(spec);
  const status = await agent.status();
  expect(status.tunnel?.running).toBe(true);
  expect(status.running).toBe(true);
  return result;
}

/** Everything of this instance the engine holds: containers (by the labels cleanup relies on) and volumes. */
async function leftovers(name: string): Promise<string[]> {
  const containers = await docker([
    'ps',
    '-aq',
    '--filter',
    'label=io.ray-agent.managed=true',
    '--filter',
    `label=io.ray-agent.instance=${name}`,
  ]);
  const volumes = await docker(['volume', 'ls', '-q', '--filter', `label=io.ray-agent.instance=${name}`]);
  return [...containers.split('\n'), ...volumes.split('\n')].filter(Boolean);
}

beforeAll(async () => {
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
  await docker(['network', 'create', network]);
});

afterAll(async () => {
  await removeByPrefix(prefix);
  await dockerQuiet(['network', 'rm', network]);
}, 60_000);

describe('the tunnel pair on the real engine', () => {
  const name = `${prefix}-a`;
  const tunnel = `${name}-tunnel`;
  let spec: AgentSpec;
  let agent: AgentContainer;
  let ids: { agent: string; tunnel: string };

  beforeAll(async () => {
    spec = makeSpec(name, await freePort());
    agent = new AgentContainer(dockerode, { name });
  });

  test('up() creates both: the tunnel owns the network, the port and NET_ADMIN; the agent joins it with nothing', async () => {
    expect((await upPair(agent, spec)).outcome).toBe('created');

    const t = await inspect(tunnel);
    expect(t.json.Config.Image).toBe('ray-agent:dev');
    expect(t.json.Config.Cmd).toEqual(['tunnel']);
    expect(t.json.Config.User).toBe('0:0');
    expect(t.json.Config.Labels).toMatchObject({
      'io.ray-agent.managed': 'true',
      'io.ray-agent.role': 'tunnel',
      'io.ray-agent.instance': name,
    });
    expect(t.json.HostConfig.CapDrop).toEqual(['ALL']);
    expect(t.json.HostConfig.CapAdd).toEqual(['NET_ADMIN']);
    expect(t.json.HostConfig.Devices).toEqual([
      expect.objectContaining({ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun' }),
    ]);
    expect(t.json.HostConfig.ReadonlyRootfs).toBe(true);
    expect(t.json.HostConfig.Privileged).toBe(false);
    expect(Object.keys(t.json.HostConfig.Tmpfs ?? {})).toEqual(['/run']);
    expect(t.json.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    expect(t.json.HostConfig.NetworkMode).toBe(network);
    expect(t.json.HostConfig.PortBindings).toEqual({
      '8765/tcp': [{ HostIp: '127.0.0.1', HostPort: String(spec.statusPort) }],
    });
    expect(t.json.Mounts).toHaveLength(2);
    expect(t.json.Mounts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Name: `${name}-tunnel`, Destination: '/var/lib/ray-agent-tunnel', RW: true }),
        expect.objectContaining({ Name: `${name}-state`, Destination: '/var/lib/ray-agent', RW: false }),
      ]),
    );

    const a = await inspect(name);
    // Docker stores the ID the tunnel's name resolved to.
    expect(a.json.HostConfig.NetworkMode).toBe(`container:${t.json.Id}`);
    expect(a.json.HostConfig.PortBindings ?? {}).toEqual({});
    expect(a.json.HostConfig.CapAdd ?? []).toEqual([]);
    expect(a.json.HostConfig.CapDrop).toEqual(['ALL']);
    expect(a.json.HostConfig.Devices ?? []).toEqual([]);
    expect(a.json.HostConfig.ReadonlyRootfs).toBe(true);
    expect(a.json.Config.User).toBe('1000:1000');
    expect(a.json.Mounts).toHaveLength(3);
    expect(a.json.Mounts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Name: `${name}-state`, Destination: '/var/lib/ray-agent', RW: true }),
        expect.objectContaining({ Name: `${name}-spill`, Destination: '/var/lib/ray-agent-spill', RW: true }),
        expect.objectContaining({ Name: `${name}-tunnel`, Destination: '/var/lib/ray-agent-tunnel', RW: false }),
      ]),
    );
    // No secret in either container's configuration.
    expect(a.text).not.toContain(spec.token);
    expect(t.text).not.toContain(spec.token);
    expect(a.json.Config.Env.some((entry) => /TOKEN=|PRIVATE/.test(entry))).toBe(false);

    const status = await agent.status();
    expect(status).toMatchObject({ exists: true, id: a.json.Id, paired: true, hostStatusPort: spec.statusPort });
    expect(status.tunnel?.id).toBe(t.json.Id);
    expect(await agent.drift(spec)).toEqual([]);
    ids = { agent: a.json.Id, tunnel: t.json.Id };
  }, 60_000);

  test("the agent answers through the tunnel's port, and cannot read the tunnel's private key", async () => {
    // The agent listens in the namespace it shares; the port is published by the tunnel container.
    let state: string | undefined;
    const deadline = Date.now() + 60_000;
    while (state === undefined) {
      try {
        const response = await fetch(`http://127.0.0.1:${spec.statusPort}/status`, {
          signal: AbortSignal.timeout(2_000),
        });
        if (response.ok) state = ((await response.json()) as { state: string }).state;
      } catch {
        // not listening yet
      }
      if (state === undefined) {
        if (Date.now() > deadline)
          throw new Error(
            `the status endpoint never answered on the tunnel's port: ${await docker(['ps', '-a', '--filter', `name=${name}`, '--format', '{{.Names}} {{.Status}}'])}\n${await docker(['logs', '--tail', '5', tunnel])}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    expect(['starting', 'connecting']).toContain(state);
    // The agent's uid reads the public key and the status, not the private key (0600 root).
    expect(await docker(['exec', name, 'cat', '/var/lib/ray-agent-tunnel/public.key'])).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    await expect(docker(['exec', name, 'cat', '/var/lib/ray-agent-tunnel/private.key'])).rejects.toThrow(
      'Permission denied',
    );
    // Nor can it change the network it shares: no NET_ADMIN in the agent.
    await expect(docker(['exec', name, 'sh', '-c', 'grep CapEff /proc/self/status'])).resolves.toMatch(
      /CapEff:\s+0000000000000000/,
    );
  }, 90_000);

  test('a second controller adopts the pair: the same two containers', async () => {
    const result = await upPair(new AgentContainer(createDockerode(resolveDockerEndpointFromProcess()), { name }), {
      ...spec,
    });
    expect(result).toMatchObject({ outcome: 'adopted', id: ids.agent, secretsDelivered: false });
    expect((await inspect(name)).json.Id).toBe(ids.agent);
    expect((await inspect(tunnel)).json.Id).toBe(ids.tunnel);
  }, 60_000);

  test("a change of the agent's own recipe (its drain deadline) replaces only the agent, in the same tunnel", async () => {
    spec = { ...spec, drainDeadlineSeconds: (spec.drainDeadlineSeconds ?? 25) + 1 };
    await upPair(agent, spec);
    const a = await inspect(name);
    expect(a.json.Id).not.toBe(ids.agent);
    expect((await inspect(tunnel)).json.Id).toBe(ids.tunnel);
    expect(a.json.HostConfig.NetworkMode).toBe(`container:${ids.tunnel}`);
    ids = { ...ids, agent: a.json.Id };
  }, 60_000);

  test("a change of the tunnel's recipe (the status port) recreates both: the agent joins the new tunnel", async () => {
    spec = { ...spec, statusPort: await freePort() };
    await upPair(agent, spec);
    const t = await inspect(tunnel);
    const a = await inspect(name);
    expect(t.json.Id).not.toBe(ids.tunnel);
    expect(a.json.Id).not.toBe(ids.agent);
    expect(a.json.HostConfig.NetworkMode).toBe(`container:${t.json.Id}`);
    expect(t.json.HostConfig.PortBindings?.['8765/tcp']?.[0]?.HostPort).toBe(String(spec.statusPort));
    await expect(docker(['container', 'inspect', ids.tunnel])).rejects.toThrow('No such container');
    ids = { agent: a.json.Id, tunnel: t.json.Id };
  }, 60_000);

  test('a tunnel container removed by hand is made anew, and the agent with it: its namespace went too', async () => {
    await docker(['rm', '-f', tunnel]);
    await upPair(agent, spec);
    const t = await inspect(tunnel);
    const a = await inspect(name);
    expect(a.json.Id).not.toBe(ids.agent);
    expect(a.json.HostConfig.NetworkMode).toBe(`container:${t.json.Id}`);
  }, 60_000);

  test('a tunnel container restarted under the running agent: rejoinTunnel() restarts the agent into its new namespace', async () => {
    const before = await inspect(name);
    await docker(['restart', '-t', '2', tunnel]);
    const restartedAt = Date.parse((await inspect(tunnel)).json.State.StartedAt);
    const rejoined = await agent.rejoinTunnel();
    // The agent may notice first (it samples every 2 s): it exits with tunnelNamespaceGone and its restart policy
    // starts it in the new namespace. Either way it ends up running there, started after its tunnel.
    await expect
      .poll(
        async () => {
          const a = (await inspect(name)).json;
          return a.State.Running && Date.parse(a.State.StartedAt) > restartedAt;
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe(true);
    if (!rejoined) expect((await inspect(name)).json.RestartCount).toBeGreaterThan(before.json.RestartCount);
    // Once is enough: the agent now started after its tunnel.
    expect(await agent.rejoinTunnel()).toBe(false);
    // Back on the network: the status endpoint answers through the tunnel's port again.
    await expect
      .poll(
        async () => {
          try {
            return (await fetch(`http://127.0.0.1:${spec.statusPort}/status`, { signal: AbortSignal.timeout(2_000) }))
              .status;
          } catch {
            return 0;
          }
        },
        { timeout: 60_000, interval: 250 },
      )
      .toBe(200);
  }, 90_000);

  test('down({removeState}) removes both containers and both volumes: nothing of the instance is left', async () => {
    expect(await agent.down({ removeState: true })).toMatchObject({ existed: true, removed: true });
    expect(await leftovers(name)).toEqual([]);
    expect((await agent.status()).exists).toBe(false);
  }, 60_000);
});

describe('the pair in direct mode, and switching', () => {
  test('network direct removes the tunnel container and runs the agent alone with the port; back to overlay makes the pair', async () => {
    const name = `${prefix}-b`;
    const agent = new AgentContainer(dockerode, { name });
    const spec = makeSpec(name, await freePort());
    try {
      await upPair(agent, spec);
      expect((await inspect(`${name}-tunnel`)).json.Config.Labels['io.ray-agent.role']).toBe('tunnel');

      const direct = await agent.up({ ...spec, tunnel: false });
      expect(direct.outcome).toBe('replaced');
      await expect(docker(['container', 'inspect', `${name}-tunnel`])).rejects.toThrow('No such container');
      const a = await inspect(name);
      expect(a.json.HostConfig.NetworkMode).toBe(network);
      expect(a.json.HostConfig.PortBindings?.['8765/tcp']).toEqual([
        { HostIp: '127.0.0.1', HostPort: String(spec.statusPort) },
      ]);
      expect((await agent.status()).paired).toBe(false);

      await upPair(agent, spec);
      expect((await inspect(name)).json.HostConfig.NetworkMode).toBe(
        `container:${(await inspect(`${name}-tunnel`)).json.Id}`,
      );
    } finally {
      await agent.down({ removeState: true, timeoutSeconds: 5 });
    }
    expect(await leftovers(name)).toEqual([]);
  }, 120_000);

  test('a status port another program holds fails clearly and leaves neither container behind', async () => {
    const name = `${prefix}-busy`;
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const agent = new AgentContainer(dockerode, { name });
      await expect(agent.up(makeSpec(name, port))).rejects.toThrow(
        `the status port ${port} on 127.0.0.1 is taken by another program`,
      );
      const left = await docker(['ps', '-aq', '--filter', `label=io.ray-agent.instance=${name}`]);
      expect(left).toBe('');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 60_000);
});
