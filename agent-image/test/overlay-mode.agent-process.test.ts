/**
 * The running agent (main.ts, as in the image) in overlay mode: a scripted HTTPS manager (real TLS, throwaway CA)
 * answers with a ClusterAccess the test changes, and the test plays the tunnel container (it writes the public key
 * and, following the overlay file the agent writes, the tunnel's report). Ray's CLI and python3 are the fakes of
 * agent-process.ts, which record what Ray is given. Then direct mode, unchanged, for comparison.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  type ClusterAccess,
  ExitCode,
  HeartbeatRequest,
  type OverlayConfig,
  OverlayConfigFile,
  RegisterRequest,
  StatusDocument,
  type TunnelState,
  type TunnelStatusFile,
} from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import { type AgentProcess, fakeGcs, freePort, getLocal, startAgentProcess } from './agent-process.js';
import { makeTls, tempDir, waitFor } from './helpers.js';

const ENROLLMENT_TOKEN = 'enroll_0123456789abcdefghijklmnopqrstuvwxyzAB';
const CREDENTIAL = 'cred_ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxw';
const RAY_TOKEN = 'PLANTED-ray-auth-token-0f1e2d3c4b5a';
const PROVIDER_ID = 'alices-desktop-7f3a';
const mode = (path: string) => statSync(path).mode & 0o777;
const key = () => randomBytes(32).toString('base64');

/** The manager's side of the protocol, scripted: it records every request and answers with `cluster`. */
async function scriptedManager(dir: string) {
  const tls = makeTls(dir);
  const seen = { register: [] as RegisterRequest[], heartbeat: [] as HeartbeatRequest[] };
  const script: { cluster: ClusterAccess | undefined } = { cluster: undefined };
  const server: Server = createServer(
    { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
    (request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      request.on('end', () => {
        const cluster = script.cluster ? { cluster: script.cluster } : {};
        const serverTime = new Date().toISOString();
        let answer: unknown;
        if (request.url === '/api/register') {
          seen.register.push(RegisterRequest.parse(JSON.parse(body)));
          answer = {
            providerId: PROVIDER_ID,
            credential: CREDENTIAL,
            heartbeatIntervalSeconds: 1,
            serverTime,
            ...cluster,
          };
        } else {
          seen.heartbeat.push(HeartbeatRequest.parse(JSON.parse(body)));
          answer = { ok: true, heartbeatIntervalSeconds: 1, serverTime, ...cluster };
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/api/register`;
  return {
    seen,
    script,
    url,
    caFile: tls.caFile,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Stands in for the tunnel container's loop: every 200 ms it reads the overlay file and reports about it. `lag`
 * reports about no config (not applied yet), `staleSeconds` dates the report back.
 */
function tunnelStandIn(stateDir: string, tunnelDir: string) {
  const control = {
    state: 'up' as TunnelState,
    problem: null as string | null,
    lag: false,
    staleSeconds: 0,
    /** The stand-in runs in the test's own network namespace, as a tunnel container shares it with its agent. */
    namespace: readlinkSync('/proc/self/ns/net') as string | null,
  };
  const tick = () => {
    let file: OverlayConfigFile | undefined;
    try {
      file = OverlayConfigFile.parse(JSON.parse(readFileSync(join(stateDir, 'overlay.json'), 'utf8')));
    } catch {
      file = undefined;
    }
    const overlay = file?.overlay ?? null;
    const now = Date.now();
    const status: TunnelStatusFile = {
      schemaVersion: 1,
      report: {
        state: overlay ? control.state : 'off',
        address: overlay?.address ?? null,
        gatewayEndpoint: overlay?.gatewayEndpoint ?? null,
        lastHandshakeAt: overlay ? new Date(now - 3_000).toISOString() : null,
        rxBytes: 4242,
        txBytes: 2121,
        problem: control.problem,
      },
      configWrittenAt: control.lag ? null : (file?.writtenAt ?? null),
      updatedAt: new Date(now - control.staleSeconds * 1000).toISOString(),
      networkNamespace: control.namespace,
    };
    writeFileSync(join(tunnelDir, 'status.json.tmp'), JSON.stringify(status));
    renameSync(join(tunnelDir, 'status.json.tmp'), join(tunnelDir, 'status.json'));
  };
  const timer = setInterval(tick, 200);
  return { control, stop: () => clearInterval(timer) };
}

async function status(agent: AgentProcess): Promise<StatusDocument | undefined> {
  const answer = await getLocal(agent.statusPort, '/status').catch(() => undefined);
  return answer?.status === 200 ? StatusDocument.parse(JSON.parse(answer.body)) : undefined;
}

/** Polls the status until `check` holds; every body read is kept for the leak check. */
async function until(agent: AgentProcess, bodies: string[], check: (s: StatusDocument) => boolean, what: string) {
  let last: StatusDocument | undefined;
  const ok = await pollAsync(async () => {
    last = await status(agent);
    if (last) bodies.push(JSON.stringify(last));
    return last !== undefined && check(last);
  });
  expect(ok, `${what}; last status: ${JSON.stringify(last)}\n${agent.stdout().slice(-3000)}`).toBe(true);
  return last as StatusDocument;
}

async function pollAsync(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return check();
}

/** The manager heard `count` more heartbeats: the agent went round its loops (gate polls each second) meanwhile. */
async function moreHeartbeats(manager: { seen: { heartbeat: unknown[] } }, count: number) {
  const target = manager.seen.heartbeat.length + count;
  expect(await waitFor(() => manager.seen.heartbeat.length >= target, 30_000)).toBe(true);
}

const starts = (agent: AgentProcess) =>
  agent
    .rayRecord()
    .split('\n')
    .filter((line) => line.startsWith('argv: start'));

describe('the running agent in overlay mode', () => {
  it('registers with the key, waits for a fresh `up` tunnel, joins over the overlay with the token file, rejoins for a new address, and after a restart joins over the saved overlay without the manager', async () => {
    const dir = tempDir('overlay-agent-');
    const manager = await scriptedManager(dir);
    const gcs = await fakeGcs();
    const stateDir = join(dir, 'state');
    const tunnelDir = join(dir, 'tunnel');
    mkdirSync(stateDir, { mode: 0o700 });
    mkdirSync(tunnelDir);
    const publicKey = key();
    writeFileSync(join(tunnelDir, 'public.key'), `${publicKey}\n`);
    const overlay: OverlayConfig = {
      address: '100.96.0.7',
      network: '100.96.0.0/16',
      gatewayAddress: '100.96.0.1',
      gatewayPublicKey: key(),
      gatewayEndpoint: 'gateway.cluster.test:51820',
      routes: ['100.96.0.0/16'],
      gcsAddress: `127.0.0.1:${gcs.port}`,
    };
    manager.script.cluster = { overlay, rayAuthToken: RAY_TOKEN };
    const tokenFile = join(dir, 'agent-token');
    writeFileSync(tokenFile, `${ENROLLMENT_TOKEN}\n`);
    const tunnel = tunnelStandIn(stateDir, tunnelDir);
    tunnel.control.lag = true;
    const env = {
      // RAY_HEAD points nowhere: over the overlay the agent must not use it.
      RAY_HEAD: `127.0.0.1:${await freePort()}`,
      MANAGER_URL: manager.url,
      MANAGER_CA_FILE: manager.caFile,
      AGENT_TOKEN_FILE: tokenFile,
      STATE_DIR: stateDir,
      RAY_AGENT_TUNNEL_DIR: tunnelDir,
      CPU_LIMIT: '1',
      MEMORY_LIMIT: '1g',
      DRAIN_DEADLINE: '1',
      LOG_LEVEL: 'debug',
    };
    const bodies: string[] = [];
    const metrics: string[] = [];
    const agents: AgentProcess[] = [];
    try {
      const agent = await startAgentProcess(dir, env);
      agents.push(agent);
      expect(await waitFor(() => manager.seen.register.length > 0, 60_000), agent.stderr()).toBe(true);
      expect(manager.seen.register[0]?.wireguardPublicKey).toBe(publicKey);

      // The access is on the state volume, each part with its mode; the state directory lets the tunnel in.
      const overlayFile = join(stateDir, 'overlay.json');
      const rayTokenFile = join(stateDir, 'secrets', 'ray-auth-token');
      expect(await waitFor(() => existsSync(overlayFile) && existsSync(rayTokenFile))).toBe(true);
      expect(mode(overlayFile)).toBe(0o644);
      expect(mode(rayTokenFile)).toBe(0o600);
      expect(mode(stateDir)).toBe(0o711);
      expect(mode(join(stateDir, 'credentials.json'))).toBe(0o600);
      expect(OverlayConfigFile.parse(JSON.parse(readFileSync(overlayFile, 'utf8'))).overlay).toEqual(overlay);

      // The tunnel has not applied the config yet: Ray waits, and the status says for what.
      let seen = await until(
        agent,
        bodies,
        (s) => s.tunnel?.state === 'starting' && s.lastError?.code === 'tunnel_down',
        'waiting for the tunnel to apply the config',
      );
      expect(seen.lastError?.message).toContain('not applied');
      await moreHeartbeats(manager, 3);
      expect(starts(agent)).toEqual([]);
      // Then it has, but its report is old: the tunnel container may be gone.
      tunnel.control.lag = false;
      tunnel.control.staleSeconds = 60;
      seen = await until(
        agent,
        bodies,
        (s) => s.tunnel?.state === 'error' && s.lastError?.message.includes('stopped reporting') === true,
        'a stale tunnel report',
      );
      await moreHeartbeats(manager, 3);
      expect(starts(agent)).toEqual([]);
      expect(seen.state).toBe('connecting');

      // A fresh `up` about the config written: Ray joins over the overlay.
      tunnel.control.staleSeconds = 0;
      seen = await until(agent, bodies, (s) => s.state === 'contributing', 'contributing over the overlay');
      expect(seen.ray.gcsAddress).toBe(overlay.gcsAddress);
      expect(seen.ray.nodeIp).toBe(overlay.address);
      expect(seen.tunnel).toMatchObject({ state: 'up', address: overlay.address, rxBytes: 4242, txBytes: 2121 });
      expect(starts(agent)).toHaveLength(1);
      expect(starts(agent)[0]).toContain(`--address=${overlay.gcsAddress} `);
      expect(starts(agent)[0]).toContain(`--node-ip-address=${overlay.address}`);
      expect(agent.rayRecord()).toContain(`RAY_AUTH_TOKEN_PATH=${rayTokenFile}\n`);
      expect(agent.rayRecord()).toContain('RAY_AUTH_MODE=token\n');
      const metricsNow = (await getLocal(agent.statusPort, '/metrics')).body;
      metrics.push(metricsNow);
      expect(metricsNow).toMatch(/^ray_agent_tunnel_up 1$/m);
      expect(metricsNow).toMatch(/^ray_agent_tunnel_received_bytes 4242$/m);
      expect(metricsNow).toMatch(/^ray_agent_tunnel_last_handshake_age_seconds \d/m);
      await moreHeartbeats(manager, 1);
      expect(manager.seen.heartbeat.at(-1)).toMatchObject({ wireguardPublicKey: publicKey, tunnel: { state: 'up' } });

      // The tunnel goes down while joined: reconnecting with the tunnel's sentence; up again: contributing.
      tunnel.control.state = 'unreachable';
      tunnel.control.problem = 'no handshake with the gateway since the tunnel was configured; is UDP blocked?';
      seen = await until(agent, bodies, (s) => s.state === 'reconnecting', 'reconnecting while the tunnel is down');
      expect(seen.lastError).toMatchObject({ code: 'tunnel_down' });
      expect(seen.lastError?.message).toContain('is UDP blocked?');
      await moreHeartbeats(manager, 1);
      expect(manager.seen.heartbeat.at(-1)?.tunnel?.state).toBe('unreachable');
      tunnel.control.state = 'up';
      tunnel.control.problem = null;
      seen = await until(agent, bodies, (s) => s.state === 'contributing', 'contributing once the tunnel is up');
      expect(seen.lastError).toBeNull();

      // A new gateway key (the gateway was replaced): the tunnel reconfigures underneath, Ray stays.
      const newKey = key();
      manager.script.cluster = { overlay: { ...overlay, gatewayPublicKey: newKey }, rayAuthToken: RAY_TOKEN };
      expect(await waitFor(() => readFileSync(overlayFile, 'utf8').includes(newKey), 30_000)).toBe(true);
      await moreHeartbeats(manager, 3);
      await until(agent, bodies, (s) => s.state === 'contributing', 'still contributing');
      expect(starts(agent)).toHaveLength(1);

      // A new overlay address: the node drains and joins again, advertising it.
      const moved = { ...overlay, gatewayPublicKey: newKey, address: '100.96.0.8' };
      manager.script.cluster = { overlay: moved, rayAuthToken: RAY_TOKEN };
      expect(await waitFor(() => starts(agent).length === 2, 60_000), agent.stdout().slice(-3000)).toBe(true);
      expect(starts(agent)[1]).toContain('--node-ip-address=100.96.0.8');
      seen = await until(agent, bodies, (s) => s.state === 'contributing' && s.ray.nodeIp === '100.96.0.8', 'rejoined');
      expect(seen.ray.restarts).toBe(0);

      agent.child.kill('SIGTERM');
      expect((await agent.exited).code, agent.stderr()).toBe(0);

      // Restarted with the manager gone: it joins over the overlay it saved (crash-only).
      await manager.close();
      const again = await startAgentProcess(dir, env);
      agents.push(again);
      seen = await until(again, bodies, (s) => s.state === 'contributing', 'contributing without the manager');
      expect(seen.heartbeat.state).toBe('failing');
      expect(starts(again)).toHaveLength(3);
      expect(starts(again)[2]).toContain('--node-ip-address=100.96.0.8');
      expect(starts(again)[2]).toContain(`--address=${overlay.gcsAddress} `);
      // The tunnel container restarted into a new network namespace: this agent, left in the old one, exits for its
      // restart policy to start it inside the new one.
      tunnel.control.namespace = 'net:[4026500001]';
      expect((await again.exited).code, again.stderr()).toBe(ExitCode.tunnelNamespaceGone);
      expect(again.stdout()).toContain('tunnel container that restarted');

      // Ray's token was used, and never shown: not in the logs, the status, the metrics nor Ray's environment.
      const places: Record<string, string> = {
        status: bodies.join('\n'),
        metrics: metrics.join('\n'),
        'agent logs': agents.map((a) => a.stdout() + a.stderr()).join('\n'),
        "Ray's arguments and environment": agent.rayRecord(),
        'heartbeats sent': JSON.stringify(manager.seen.heartbeat),
        'overlay file': readFileSync(overlayFile, 'utf8'),
      };
      const leaks = Object.entries(places)
        .filter(([, text]) => text.includes(RAY_TOKEN) || text.includes(RAY_TOKEN.slice(8, 24)))
        .map(([place]) => place);
      expect(leaks).toEqual([]);
      expect(readFileSync(rayTokenFile, 'utf8').trim()).toBe(RAY_TOKEN);
    } finally {
      tunnel.stop();
      for (const agent of agents) if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
      await Promise.all(agents.map((agent) => agent.exited));
      await manager.close().catch(() => {});
      await new Promise((resolve) => gcs.server.close(resolve));
    }
  }, 240_000);

  it('without a tunnel volume stays in direct mode: no key, no tunnel in heartbeats, RAY_HEAD joined, no overlay file', async () => {
    const dir = tempDir('direct-agent-');
    const manager = await scriptedManager(dir);
    const gcs = await fakeGcs();
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    manager.script.cluster = { overlay: null, rayAuthToken: null };
    const tokenFile = join(dir, 'agent-token');
    writeFileSync(tokenFile, `${ENROLLMENT_TOKEN}\n`);
    const agent = await startAgentProcess(dir, {
      RAY_HEAD: `127.0.0.1:${gcs.port}`,
      MANAGER_URL: manager.url,
      MANAGER_CA_FILE: manager.caFile,
      AGENT_TOKEN_FILE: tokenFile,
      STATE_DIR: stateDir,
      RAY_AGENT_TUNNEL_DIR: join(dir, 'no-tunnel-volume'),
      NODE_IP_ADDRESS: '127.0.0.1',
      CPU_LIMIT: '1',
      MEMORY_LIMIT: '1g',
      DRAIN_DEADLINE: '1',
    });
    const bodies: string[] = [];
    try {
      const seen = await until(agent, bodies, (s) => s.state === 'contributing', 'contributing directly');
      expect(seen.ray.gcsAddress).toBe(`127.0.0.1:${gcs.port}`);
      expect(seen.ray.nodeIp).toBe('127.0.0.1');
      expect(seen.tunnel?.state).toBe('off');
      await moreHeartbeats(manager, 1);
      expect(manager.seen.register[0]?.wireguardPublicKey).toBeUndefined();
      for (const beat of manager.seen.heartbeat) {
        expect(beat.tunnel).toBeUndefined();
        expect(beat.wireguardPublicKey).toBeUndefined();
      }
      expect(starts(agent)).toHaveLength(1);
      expect(starts(agent)[0]).toContain(`--address=127.0.0.1:${gcs.port} `);
      expect(agent.rayRecord()).not.toContain('RAY_AUTH_');
      expect(existsSync(join(stateDir, 'overlay.json'))).toBe(false);
      expect(mode(stateDir)).toBe(0o700);
      agent.child.kill('SIGTERM');
      expect((await agent.exited).code, agent.stderr()).toBe(0);
    } finally {
      if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
      await agent.exited;
      await manager.close();
      await new Promise((resolve) => gcs.server.close(resolve));
    }
  }, 120_000);
});
