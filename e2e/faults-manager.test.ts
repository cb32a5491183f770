import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_ENV, agentStopSeconds, type StatusDocument } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AGENT_IMAGE, type Agent0, containerExit, HARDENED, TestCluster } from './support/cluster.js';
import {
  bearerHash,
  credentialFor,
  errorStep,
  FAULT_PORTS,
  FaultManager,
  makeFaultCerts,
  type SeenRequest,
} from './support/fault-manager.js';
import { docker, run, waitFor } from './support/run.js';
import { seedStateVolume, stateFilesIn, stateFilesOf } from './support/state-volume.js';
import { makePki, writeSecret } from './support/tls.js';

/**
 * Issue 4, manager and network faults and bad persisted state, end to end: the real agent container (hardened
 * flags) against a manager that misbehaves on purpose (fault-manager-server.mjs in a Node container on the same
 * private network, scripted per scenario) and, for the heartbeat cases, a real Ray head it joins. Each test asserts
 * what the person sees (status document, exit code, log line) and what is kept (state volume bytes, requests the
 * manager received).
 */
const cluster = new TestCluster();
const faultName = `fault-manager-${cluster.id}`;
let fault: FaultManager;
let pkiDir: string;
let rayAgent: Agent0;
let rayAgentStartedAt = 0;
const extraVolumes = new Set<string>();
/** Figures measured in this run, printed at the end for docs/RELIABILITY.md. */
const figures: string[] = [];

/** Agents that never need a Ray node point at a port that refuses, on a container of this test. */
const noHead = () => ({ RAY_HEAD: `${faultName}:6379` });
/**
 * No DNS server outside the test: Docker's resolver answers container names itself and forwards other names to
 * the container's own loopback, where nothing answers; one 1 s try makes that a quick local lookup failure.
 */
const LOCAL_DNS = ['--dns=127.0.0.1', '--dns-opt=timeout:1', '--dns-opt=attempts:1'];
const SMALL = ['--cpus=1', '--memory=2g', ...LOCAL_DNS];
const RESTARTING = [...SMALL, '--restart=unless-stopped'];

function agentName(scenario: string): string {
  return `fm-${cluster.id}-${scenario}`;
}

function startAgent(
  scenario: string,
  options: { env?: Record<string, string>; flags?: string[]; volume?: string; name?: string } = {},
): Promise<Agent0> {
  return cluster.startAgent({
    name: options.name ?? agentName(scenario),
    env: { MANAGER_URL: fault.url(scenario), ...noHead(), ...options.env },
    flags: options.flags ?? SMALL,
    ...(options.volume ? { volume: options.volume } : {}),
  });
}

/** Polls the status often: some of these agents exit two seconds after they fail. */
const FAST_POLL_MS = 100;
/** The agent's per-request timeout (ManagerClient): a manager that never answers is given up after it. */
const REQUEST_TIMEOUT_S = 10;
/** The most a stop of an agent with the default drain deadline may take: what its stop timeout is made from. */
const STOP_BUDGET_S = agentStopSeconds(AGENT_ENV.DRAIN_DEADLINE.default);

async function inspect(name: string): Promise<{ running: boolean; restarts: number; finishedAt: number }> {
  const [info] = JSON.parse(await docker('inspect', name));
  return { running: info.State.Running, restarts: info.RestartCount, finishedAt: Date.parse(info.State.FinishedAt) };
}

async function logLines(name: string): Promise<string[]> {
  const result = await run('docker', ['logs', name]);
  return `${result.stdout}${result.stderr}`.split('\n').filter(Boolean);
}

function levelOf(line: string): number | undefined {
  try {
    return (JSON.parse(line) as { level?: number }).level;
  } catch {
    return undefined;
  }
}

/** SIGTERM, then how long until the container had exited (by Docker's clock of the exit), and its code. */
async function sigtermExit(name: string): Promise<{ code: number; seconds: number }> {
  const sentAt = Date.now();
  await docker('kill', '--signal=SIGTERM', name);
  const code = await containerExit(name, 30_000);
  return { code, seconds: ((await inspect(name)).finishedAt - sentAt) / 1000 };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function stopAll(...names: string[]): Promise<void> {
  await Promise.all(names.map((name) => run('docker', ['stop', '-t', '5', name])));
}

function credentialsJson(providerId: string, managerBase: string): string {
  const credentials = {
    version: 1,
    providerId,
    credential: credentialFor(providerId),
    managerBase,
    registeredAt: '2026-05-01T10:00:00.000Z',
  };
  return `${JSON.stringify(credentials, null, 2)}\n`;
}

const byName = (files: Array<{ name: string }>) => files.map((file) => file.name);

/** Command lines of every process in a container, read from /proc by the image's Node (no procps there). */
async function processes(container: string): Promise<string[]> {
  const script = `const fs = require('fs');
for (const pid of fs.readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name))) {
  try { console.log(fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split(String.fromCharCode(0)).join(' ').trim()); } catch {}
}`;
  return (await docker('exec', container, 'node', '-e', script)).split('\n').filter(Boolean);
}

beforeAll(async () => {
  await docker('network', 'create', cluster.network);
  pkiDir = mkdtempSync(join(tmpdir(), 'ray-agent-faults-'));
  cluster.pki = await makePki([faultName, 'localhost', '127.0.0.1'], { dir: pkiDir });
  writeSecret(pkiDir, 'enrollment-token', cluster.enrollmentToken);
  await makeFaultCerts(cluster.pki, faultName);
  fault = new FaultManager(faultName, cluster.network, cluster.pki);
  await cluster.track(faultName);
  await Promise.all([fault.start(), cluster.startHead()]);
  // The one agent with a Ray node joins while the quicker cases run; the heartbeat cases use it last.
  rayAgentStartedAt = Date.now();
  rayAgent = await cluster.startAgent({
    name: agentName('with-ray'),
    env: { MANAGER_URL: fault.url('with-ray') },
    flags: ['--cpus=2', '--memory=4g', ...LOCAL_DNS, '--restart=unless-stopped'],
  });
});

afterAll(async () => {
  console.warn(`figures measured:\n${figures.map((line) => `  ${line}`).join('\n')}`);
  await cluster.stop();
  if (extraVolumes.size) await run('docker', ['volume', 'rm', '-f', ...extraVolumes]);
  rmSync(pkiDir, { recursive: true, force: true });
});

describe('bad state on the volume: refused or kept aside before the manager hears anything', () => {
  test('15: a state directory that is missing on a read-only root, or a read-only volume, exits 5 naming the fix', async () => {
    const readOnlyVolume = `fm-${cluster.id}-ro-state`;
    extraVolumes.add(readOnlyVolume);
    await docker('volume', 'create', readOnlyVolume);
    const cases: Array<[string, string[], string]> = [
      ['missing on a read-only root', ['-e', 'STATE_DIR=/srv/ray-agent-state'], '/srv/ray-agent-state'],
      ['a read-only volume', ['-v', `${readOnlyVolume}:/var/lib/ray-agent:ro`], '/var/lib/ray-agent'],
    ];
    for (const [index, [what, flags, dir]] of cases.entries()) {
      const name = agentName(`state-dir-${index}`);
      await cluster.track(name);
      await docker(
        'run',
        '-d',
        '--name',
        name,
        '--network',
        cluster.network,
        ...LOCAL_DNS,
        ...HARDENED,
        '-v',
        `${pkiDir}:/certs:ro`,
        '-e',
        `RAY_HEAD=${faultName}:6379`,
        '-e',
        `MANAGER_URL=${fault.url('state-dir')}`,
        '-e',
        'MANAGER_CA_FILE=/certs/ca.pem',
        '-e',
        'AGENT_TOKEN_FILE=/certs/enrollment-token',
        ...flags,
        AGENT_IMAGE,
      );
      // The container's own output only (a foreground `docker run` would mix in the CLI's warnings).
      const code = await containerExit(name, 60_000);
      const result = await run('docker', ['logs', name]);
      expect(code, what).toBe(5);
      expect(result.stdout, what).toBe('');
      const lines = result.stderr.trim().split('\n');
      expect(lines, what).toHaveLength(1);
      const escaped = dir.replace(/\//g, '\\/');
      expect(lines[0], what).toMatch(
        new RegExp(
          `^ray-agent: STATE_DIR: the state directory ${escaped} is not writable \\((EROFS|EACCES|ENOENT)\\); mount a writable volume there, e\\.g\\. -v ray-agent-state:${escaped}$`,
        ),
      );
      figures.push(`15 (${what}): exit ${code}, "${lines[0]}"`);
    }
    // The token was never used: the manager, reachable on the same network, saw nothing.
    expect(await fault.requests('state-dir')).toEqual([]);
  });

  test('14: garbage or truncated credentials are kept aside byte for byte, status says so, no register call', async () => {
    const truncated = credentialsJson('corrupt-p1', fault.url('corrupt-truncated').replace('/api/register', ''));
    const kinds: Array<[string, Buffer]> = [
      ['corrupt-garbage', Buffer.concat([Buffer.from([0, 0xff, 0xfe]), randomBytes(509)])],
      ['corrupt-truncated', Buffer.from(truncated.slice(0, Math.floor(truncated.length / 2)))],
    ];
    const agents = await Promise.all(
      kinds.map(async ([scenario, bytes]) => {
        const volume = `${agentName(scenario)}-state`;
        await seedStateVolume(volume, { 'credentials.json': bytes });
        return startAgent(scenario, { volume, flags: RESTARTING });
      }),
    );
    for (const [index, agent] of agents.entries()) {
      const [scenario, bytes] = kinds[index] ?? ['', Buffer.alloc(0)];
      const status = await agent.waitForStatus(
        'credentials_corrupt',
        (s) => s.lastError?.code === 'credentials_corrupt',
        60_000,
        FAST_POLL_MS,
      );
      expect(status.state).toBe('error');
      expect(status.registration.state).toBe('needs_reregistration');
      const files = await stateFilesOf(agent.name);
      expect(byName(files)).toHaveLength(2);
      const kept = files.find((file) => /^credentials\.json\.corrupt-\d{4}-\d\d-\d\dT[\d-]+Z$/.test(file.name));
      expect(kept?.bytes.equals(bytes), scenario).toBe(true);
      expect(kept?.mode).toBe(0o600);
      expect(byName(files)).toContain('install-id');
      expect(status.lastError?.message).toContain(`/var/lib/ray-agent/${kept?.name}`);
    }
    await sleep(6_000); // a window in which a silent re-registration or a restart loop would show
    for (const [index, agent] of agents.entries()) {
      const scenario = kinds[index]?.[0] ?? '';
      expect(await fault.requests(scenario)).toEqual([]);
      expect(await inspect(agent.name)).toMatchObject({ running: true, restarts: 0 });
      expect((await agent.status()).lastError?.code).toBe('credentials_corrupt');
    }
    // A stop is a clean exit, not a failure a restart policy would repeat.
    expect((await Promise.all(agents.map((agent) => sigtermExit(agent.name)))).map((end) => end.code)).toEqual([0, 0]);
    figures.push(
      '14: 2 corrupt files kept aside byte-identical; 0 register calls over 6 s; restarts 0; exit 0 on stop',
    );
  });
});

describe('registration faults', () => {
  test('6: a rejected enrollment token: one request, exit 3, one clear error line, the token never printed', async () => {
    await fault.script('token-rejected', {
      registerDefault: errorStep(
        401,
        'enrollment_token_rejected',
        'the enrollment token is missing, unknown, revoked or expired',
      ),
    });
    const agent = await startAgent('token-rejected');
    const status = await agent.waitForStatus(
      'enrollment_rejected',
      (s) => s.lastError?.code === 'enrollment_rejected',
      60_000,
      FAST_POLL_MS,
    );
    expect(status.state).toBe('error');
    expect(status.registration.state).toBe('rejected');
    expect(status.lastError?.message).toMatch(
      /^the manager rejected the enrollment token \(401\): .+; get a new token from the cluster's operator$/,
    );
    expect(JSON.stringify(status)).not.toContain(cluster.enrollmentToken);
    expect(await containerExit(agent.name, 30_000)).toBe(3);

    const requests = await fault.requests('token-rejected');
    expect(requests).toHaveLength(1); // no retry loop
    // The token did go out (so "never printed" below is not vacuous) and only in the Authorization header.
    expect(requests[0]?.authorizationSha256).toBe(bearerHash(cluster.enrollmentToken));
    expect(JSON.stringify(requests[0]?.body)).not.toContain(cluster.enrollmentToken);

    const lines = await logLines(agent.name);
    expect(lines.join('\n')).not.toContain(cluster.enrollmentToken);
    const errors = lines.filter((line) => (levelOf(line) ?? 0) >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/rejected the enrollment token \(401\)/);
    expect(byName(await stateFilesIn(agent.volume))).toEqual(['install-id']);
    const exitedAfter = ((await inspect(agent.name)).finishedAt - (requests[0]?.at ?? 0)) / 1000;
    figures.push(
      `6: 1 register request, exit 3 ${exitedAfter.toFixed(1)} s after it, 1 error line, token in logs/status 0 times`,
    );
  });

  test('10: self-signed, wrong-host and expired certificates are refused by name, before any request; with the CA, the same server works', async () => {
    const refused: Array<{ scenario: string; port: number; ca: string; code: string }> = [
      { scenario: 'tls-self-signed', port: FAULT_PORTS.selfSigned, ca: '', code: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
      {
        scenario: 'tls-wrong-host',
        port: FAULT_PORTS.wrongHost,
        ca: '/certs/ca.pem',
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      },
      { scenario: 'tls-expired', port: FAULT_PORTS.expired, ca: '/certs/ca.pem', code: 'CERT_HAS_EXPIRED' },
    ];
    const before = await fault.connections();
    const [trusted, ...agents] = await Promise.all([
      startAgent('tls-self-signed-trusted', {
        env: {
          MANAGER_URL: fault.url('tls-self-signed-trusted', FAULT_PORTS.selfSigned),
          MANAGER_CA_FILE: '/certs/selfsigned.pem',
        },
      }),
      ...refused.map((c) =>
        startAgent(c.scenario, { env: { MANAGER_URL: fault.url(c.scenario, c.port), MANAGER_CA_FILE: c.ca } }),
      ),
    ]);
    // Read every status at once: each of these agents exits two seconds after it fails.
    const statuses = await Promise.all(
      agents.map((agent) =>
        agent.waitForStatus('TLS refused', (s) => s.lastError?.code === 'registration_failed', 60_000, FAST_POLL_MS),
      ),
    );
    for (const [index, agent] of agents.entries()) {
      const c = refused[index];
      const status = statuses[index];
      if (!c || !status || !trusted) throw new Error('no case');
      expect(status.lastError?.message).toBe(
        `the manager's TLS certificate was refused (${c.code}); set MANAGER_CA_FILE if it uses a private CA`,
      );
      expect(status.registration.state).toBe('rejected');
      // 7: registration refused for another reason than the token (3 is kept for a rejected token).
      expect(await containerExit(agent.name, 30_000)).toBe(7);
      expect((await logLines(agent.name)).some((line) => line.includes(c.code) && levelOf(line) === 50)).toBe(true);
      expect(byName(await stateFilesIn(agent.volume))).toEqual(['install-id']);
    }
    const works = await (trusted as Agent0).waitForStatus(
      'registered and heartbeating through the self-signed certificate it trusts',
      (s) => s.registration.state === 'registered' && s.heartbeat.state === 'healthy',
      60_000,
      FAST_POLL_MS,
    );
    expect(works.registration.providerId).toBe('tls-self-signed-trusted-p1');

    const after = await fault.connections();
    for (const c of refused) {
      // The agent did connect (the handshake failed on its side) and no HTTP request ever arrived.
      expect(after.connections[c.port] ?? 0).toBeGreaterThan(before.connections[c.port] ?? 0);
      expect(await fault.requests(c.scenario)).toEqual([]);
      expect(after.tlsErrors.some((error) => error.port === c.port)).toBe(true);
    }
    const trustedRequests = await fault.requests('tls-self-signed-trusted');
    expect(trustedRequests.filter((r) => r.route === 'register' && r.port === FAULT_PORTS.selfSigned)).toHaveLength(1);
    await stopAll((trusted as Agent0).name);
    figures.push(
      `10: ${refused.map((c) => c.code).join(', ')}: each refused, exit 3, 0 HTTP requests; with MANAGER_CA_FILE the self-signed server registered and heartbeat`,
    );
  });

  test('3: name not found, connection refused, a server that never answers: manager unreachable, credentials untouched, SIGTERM exits fast', async () => {
    await fault.script('hang', { registerDefault: { hang: true } });
    // A manager that asks for 300 s of patience: a stop must end that wait, not sit it out.
    await fault.script('retry-later', {
      registerDefault: {
        status: 503,
        json: { error: { code: 'unavailable', message: 'the manager is busy' } },
        headers: { 'retry-after': '300' },
      },
    });
    const keptBase = `https://${faultName}:8999/kept`;
    const keptBytes = credentialsJson('kept-p1', keptBase);
    const keptVolume = `${agentName('kept')}-state`;
    await seedStateVolume(keptVolume, { 'credentials.json': keptBytes });
    const [nxdomain, refused, hang, kept, patient] = await Promise.all([
      startAgent('nxdomain', { env: { MANAGER_URL: 'https://manager.invalid:8443/api/register' } }),
      startAgent('refused', { env: { MANAGER_URL: `https://${faultName}:8999/refused/api/register` } }),
      startAgent('hang'),
      startAgent('kept', {
        volume: keptVolume,
        env: { MANAGER_URL: `${keptBase}/api/register`, AGENT_TOKEN_FILE: '' },
      }),
      startAgent('retry-later'),
    ]);
    if (!nxdomain || !refused || !hang || !kept || !patient) throw new Error('agents did not start');

    const unreachable = (s: StatusDocument) => s.lastError?.code === 'manager_unreachable';
    const nx = await nxdomain.waitForStatus('manager unreachable (name)', unreachable, 60_000, FAST_POLL_MS);
    expect(nx.lastError?.message).toMatch(
      /^registration failed, retrying in \d+ s: the manager's host name was not found$/,
    );
    const rf = await refused.waitForStatus('manager unreachable (refused)', unreachable, 60_000, FAST_POLL_MS);
    expect(rf.lastError?.message).toMatch(
      /^registration failed, retrying in \d+ s: the manager refused the connection$/,
    );
    for (const status of [nx, rf]) {
      expect(status.state).toBe('connecting');
      expect(status.registration.state).toBe('registering');
    }

    // The hung request is given up after the agent's 10 s per-request timeout, then retried after a short backoff.
    const hung = await waitFor(
      'two hung register requests',
      async () => {
        const seen = await fault.requests('hang', 'register');
        return seen.length >= 2 ? seen : undefined;
      },
      120_000,
    );
    const gapSeconds = ((hung[1]?.at ?? 0) - (hung[0]?.at ?? 0)) / 1000;
    // Never before the timeout; the upper bound only tells a 10 s timeout from none (undici's own is 300 s).
    expect(gapSeconds).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_S - 0.5);
    expect(gapSeconds).toBeLessThan(3 * REQUEST_TIMEOUT_S);
    const hs = await hang.waitForStatus('manager unreachable (timeout)', unreachable, 60_000, FAST_POLL_MS);
    expect(hs.lastError?.message).toMatch(
      /^registration failed, retrying in \d+ s: the manager did not answer in time$/,
    );

    // With saved credentials, heartbeats to a manager that refuses fail and back off; the credentials stay as they were.
    const ks = await kept.waitForStatus(
      'heartbeats failing',
      (s) => s.heartbeat.consecutiveFailures >= 3,
      60_000,
      FAST_POLL_MS,
    );
    expect(ks.heartbeat.state).toBe('failing');
    // (lastError holds the latest of two faults here, the refusing Ray head or the manager: read the log instead.)
    const warned = (await logLines(kept.name)).filter((line) => line.includes('"msg":"heartbeat failed"'));
    expect(warned[0]).toContain('"err":"the manager refused the connection"');
    expect(ks.registration).toMatchObject({ state: 'registered', providerId: 'kept-p1' });
    const nextInSeconds =
      (Date.parse(ks.heartbeat.nextAttemptAt ?? '') - Date.parse(ks.heartbeat.lastAttemptAt ?? '')) / 1000;
    expect(nextInSeconds).toBeLessThanOrEqual(300);
    const keptFiles = await stateFilesOf(kept.name);
    expect(byName(keptFiles)).toEqual(['credentials.json', 'install-id']);
    expect(keptFiles[0]?.bytes.toString('utf8')).toBe(keptBytes);

    for (const agent of [nxdomain, refused, hang])
      expect(byName(await stateFilesOf(agent.name)), agent.name).toEqual(['install-id']);

    // Retry-After honoured: one register request, and the status names the 300 s wait.
    const ps = await patient.waitForStatus('waiting out Retry-After', unreachable, 60_000, FAST_POLL_MS);
    expect(ps.lastError?.message).toMatch(/^registration failed, retrying in 300 s: /);
    expect(await fault.requests('retry-later', 'register')).toHaveLength(1);

    // SIGTERM while waiting out a backoff (or a hung request) must not wait for it: exit 0 within the agent's stop
    // budget (what its container's stop timeout is made from), far less than the 300 s Retry-After.
    const ends: string[] = [];
    for (const agent of [nxdomain, refused, hang, kept, patient]) {
      const end = await sigtermExit(agent.name);
      expect(end.code, agent.name).toBe(0);
      expect(end.seconds, agent.name).toBeLessThan(STOP_BUDGET_S);
      ends.push(`${agent.name.replace(`fm-${cluster.id}-`, '')} ${end.seconds.toFixed(2)} s`);
    }
    expect(await fault.requests('retry-later', 'register')).toHaveLength(1);
    const keptAfter = await stateFilesIn(keptVolume);
    expect(keptAfter.find((f) => f.name === 'credentials.json')).toMatchObject({
      ino: keptFiles[0]?.ino,
      mtimeMs: keptFiles[0]?.mtimeMs,
    });
    expect(keptAfter[0]?.bytes.toString('utf8')).toBe(keptBytes);
    figures.push(
      `3: hung request given up after ${gapSeconds.toFixed(1)} s (gap between register requests); kept credentials unchanged after ${ks.heartbeat.consecutiveFailures} failed heartbeats; SIGTERM to exit: ${ends.join(', ')}`,
    );
  });
});

describe('heartbeat faults', () => {
  test('8 (no token): the manager forgets a provider whose agent has no token: credentials kept aside, a clear error, no loop', async () => {
    const first = await startAgent('no-token');
    const registered = await first.waitForStatus(
      'registered and heartbeating',
      (s) => s.heartbeat.state === 'healthy',
      60_000,
      FAST_POLL_MS,
    );
    expect(registered.registration.providerId).toBe('no-token-p1');
    const saved = (await stateFilesOf(first.name)).find((file) => file.name === 'credentials.json');
    await docker('rm', '-f', first.name);

    await fault.script('no-token', {
      heartbeatDefault: errorStep(404, 'unknown_provider', 'no provider no-token-p1; register again'),
    });
    const before = (await fault.requests('no-token')).length;
    const again = await startAgent('no-token', {
      name: `${first.name}-again`,
      volume: first.volume,
      env: { AGENT_TOKEN_FILE: '' },
      flags: RESTARTING,
    });
    const status = await again.waitForStatus('no_token', (s) => s.lastError?.code === 'no_token', 60_000, FAST_POLL_MS);
    expect(status.state).toBe('error');
    expect(status.registration.state).toBe('needs_reregistration');
    expect(status.lastError?.message).toMatch(/set AGENT_TOKEN_FILE to a token from the manager/);
    await sleep(8_000); // a loop would show as more heartbeats or register calls, or restarts
    const later = (await fault.requests('no-token')).slice(before);
    expect(later.map((r) => [r.route, (r.answered as { status: number }).status])).toEqual([['heartbeat', 404]]);
    expect(await inspect(again.name)).toMatchObject({ running: true, restarts: 0 });
    expect((await again.status()).lastError?.code).toBe('no_token');
    const files = await stateFilesOf(again.name);
    expect(files.find((file) => file.name === 'credentials.json')).toBeUndefined();
    const kept = files.filter((file) => /^credentials\.json\.unknown-provider-/.test(file.name));
    expect(kept).toHaveLength(1);
    expect(saved && kept[0]?.bytes.equals(saved.bytes)).toBe(true);
    await stopAll(again.name);
    figures.push(
      '8 (no token): 1 heartbeat (404), 0 register calls and 0 restarts over 8 s; old credentials kept aside byte-identical',
    );
  });

  test('8 (storm): a manager that registers the agent and forgets it at every heartbeat: re-registrations back off', async () => {
    await fault.script('storm', {
      heartbeatDefault: errorStep(404, 'unknown_provider', 'no such provider; register again'),
    });
    const agent = await startAgent('storm');
    // storm-p2 or later: the fault manager numbers the providers it registers.
    await agent.waitForStatus(
      'registered at least twice',
      (s) => Number(/^storm-p(\d+)$/.exec(s.registration.providerId ?? '')?.[1] ?? 0) >= 2,
      60_000,
    );
    const from = Date.now();
    const windowMs = 20_000;
    await sleep(windowMs);
    const registers = (await fault.requests('storm', 'register')).filter((r) => r.at >= from && r.at < from + windowMs);
    // Without a backoff the agent re-registers at round-trip speed (hundreds in 20 s); with it, a handful.
    expect(registers.length).toBeLessThanOrEqual(8);
    expect(registers.length).toBeGreaterThanOrEqual(1); // it keeps trying: the manager may come to its senses
    expect(await inspect(agent.name)).toMatchObject({ running: true, restarts: 0 });
    // The credentials it kept aside stay bounded however long the storm lasts.
    const kept = (await stateFilesOf(agent.name)).filter((f) => /^credentials\.json\.unknown-provider-/.test(f.name));
    expect(kept.length).toBeLessThanOrEqual(5);
    figures.push(
      `8 (storm): ${registers.length} register calls in ${windowMs / 1000} s against a manager that forgets every provider (backoff); ${kept.length} old credential files kept`,
    );
    await stopAll(agent.name);
  });

  describe('on a joined Ray node', () => {
    let providerId: string;

    beforeAll(async () => {
      const status = await rayAgent.waitForStatus(
        'contributing',
        (s) => s.state === 'contributing' && s.heartbeat.state === 'healthy',
        240_000,
      );
      providerId = status.registration.providerId ?? '';
      const joinSeconds = (Date.parse(status.ray.joinedAt ?? '') - rayAgentStartedAt) / 1000;
      figures.push(
        `(the agent on the Ray head joined ${joinSeconds.toFixed(0)} s after docker run, beside the other cases)`,
      );
    });

    test('11: the manager clock 2 h ahead, then 2 h behind: skew shown, heartbeats keep working', async () => {
      expect(providerId).toBe('with-ray-p1');
      const measured: number[] = [];
      for (const offset of [7200, -7200]) {
        await fault.script('with-ray', { clockOffsetSeconds: offset });
        const from = (await fault.requests('with-ray', 'heartbeat')).length;
        const answered = await waitFor(
          'three heartbeats answered with the new clock',
          async () => {
            const seen = await fault.requests('with-ray', 'heartbeat');
            return seen.length >= from + 3 ? seen : undefined;
          },
          60_000,
        );
        const status = await rayAgent.status();
        const skew = status.heartbeat.serverClockSkewSeconds ?? 0;
        // The skew is measured to within a heartbeat's round trip: far closer than the 2 h it must tell apart.
        expect(Math.abs(skew - offset)).toBeLessThan(60);
        expect(status.heartbeat.state).toBe('healthy');
        expect(status.heartbeat.consecutiveFailures).toBe(0);
        // A heartbeat answered with the shifted clock succeeded (agent and fault manager share the host's clock).
        expect(Date.parse(status.heartbeat.lastSuccessAt ?? '')).toBeGreaterThan(answered[from]?.at ?? Infinity);
        // Nothing is decided by the manager's clock: still registered, still contributing, no error.
        expect(status.state).toBe('contributing');
        expect(status.registration).toMatchObject({ state: 'registered', providerId });
        expect(status.lastError).toBeNull();
        measured.push(skew);
      }
      await fault.script('with-ray', { clockOffsetSeconds: 0 });
      figures.push(
        `11: serverClockSkewSeconds ${measured.join(' and ')} for +7200/-7200 s; heartbeats healthy throughout`,
      );
    });

    test('8: the manager forgets the provider: old credentials kept aside, registered again, Ray rejoined with the new ID', async () => {
      const before = await stateFilesOf(rayAgent.name);
      const oldCredentials = before.find((file) => file.name === 'credentials.json');
      expect(JSON.parse(oldCredentials?.bytes.toString('utf8') ?? '{}').providerId).toBe(providerId);
      const scriptedAt = Date.now();
      await fault.script('with-ray', {
        heartbeat: [errorStep(404, 'unknown_provider', `no provider ${providerId}; register again`)],
      });
      // Joined again after the fault: the node that carried the old ID has been replaced.
      const status = await rayAgent.waitForStatus(
        'registered again and contributing on a new node',
        (s) =>
          s.registration.providerId === 'with-ray-p2' &&
          s.state === 'contributing' &&
          s.ray.state === 'joined' &&
          Date.parse(s.ray.joinedAt ?? '') > scriptedAt,
        180_000,
      );
      expect(status.registration.state).toBe('registered');
      const lost = (await fault.requests('with-ray', 'heartbeat')).find(
        (r) => (r.answered as { status: number } | null)?.status === 404,
      );
      const rejoinSeconds = (Date.parse(status.ray.joinedAt ?? '') - (lost?.at ?? 0)) / 1000;

      const files = await stateFilesOf(rayAgent.name);
      const kept = files.filter((file) => /^credentials\.json\.unknown-provider-/.test(file.name));
      expect(kept).toHaveLength(1);
      expect(oldCredentials && kept[0]?.bytes.equals(oldCredentials.bytes)).toBe(true);
      const current = JSON.parse(
        files.find((file) => file.name === 'credentials.json')?.bytes.toString('utf8') ?? '{}',
      );
      expect(current).toMatchObject({ providerId: 'with-ray-p2', credential: credentialFor('with-ray-p2') });

      const registers = await fault.requests('with-ray', 'register');
      expect(registers).toHaveLength(2);
      const installIds = registers.map((r) => (r.body as { installId: string }).installId);
      expect(installIds[1]).toBe(installIds[0]); // the same install ID: the manager's idempotency key
      // Heartbeats now carry the new identity, authorized by the new credential.
      const latest = await waitFor(
        'a heartbeat as with-ray-p2',
        async () =>
          (await fault.requests('with-ray', 'heartbeat')).find(
            (r: SeenRequest) => (r.body as { providerId?: string }).providerId === 'with-ray-p2',
          ),
        30_000,
      );
      expect(latest.authorizationSha256).toBe(bearerHash(credentialFor('with-ray-p2')));
      const labelled = (await processes(rayAgent.name)).filter((line) => line.includes('ray-agent/provider-id='));
      expect(labelled.some((line) => /provider-id=with-ray-p2(\s|$)/.test(line))).toBe(true);
      expect(labelled.filter((line) => new RegExp(`provider-id=${providerId}(\\s|$)`).test(line))).toEqual([]);
      providerId = 'with-ray-p2';
      figures.push(
        `8: 404 to re-registered and Ray rejoined as with-ray-p2 in ${rejoinSeconds.toFixed(1)} s; 2 register calls, same install ID; old credentials kept byte-identical`,
      );
    });

    test('7: a revoked credential: Ray stopped, needs re-registration, credentials kept, no restart storm', async () => {
      const joined = await rayAgent.status();
      expect(joined).toMatchObject({ state: 'contributing', ray: { state: 'joined' } }); // work to stop
      expect((await processes(rayAgent.name)).some((line) => line.includes('raylet'))).toBe(true);
      const before = (await stateFilesOf(rayAgent.name)).find((file) => file.name === 'credentials.json');
      await fault.script('with-ray', {
        heartbeatDefault: errorStep(
          401,
          'credential_rejected',
          `the credential is not the current one for ${providerId}`,
        ),
      });
      const status = await rayAgent.waitForStatus(
        'left the cluster',
        (s) => s.registration.state === 'needs_reregistration' && s.ray.state === 'stopped' && s.state === 'error',
        90_000,
      );
      const stoppedAt = Date.now();
      expect(status.lastError?.code).toBe('credential_rejected');
      expect(status.heartbeat.state).toBe('stopped');
      expect(status.tasks.running).toBe(0);
      const rejected = (await fault.requests('with-ray', 'heartbeat')).filter(
        (r) => (r.answered as { status: number } | null)?.status === 401,
      );
      const leftSeconds = (stoppedAt - (rejected[0]?.at ?? 0)) / 1000;
      // No Ray process is left in the container.
      const ray = (await processes(rayAgent.name)).filter((line) =>
        /raylet|gcs_server|ray\/_private|ray\/dashboard|ray start/.test(line),
      );
      expect(ray).toEqual([]);

      await sleep(10_000); // a window in which a restart storm or a heartbeat loop would show
      expect(await inspect(rayAgent.name)).toMatchObject({ running: true, restarts: 0 });
      const heartbeats = await fault.requests('with-ray', 'heartbeat');
      expect(heartbeats.filter((r) => (r.answered as { status: number } | null)?.status === 401)).toHaveLength(1);
      expect(heartbeats.at(-1)?.seq).toBe(rejected.at(-1)?.seq); // nothing after the 401
      const after = (await stateFilesOf(rayAgent.name)).find((file) => file.name === 'credentials.json');
      expect(before && after?.bytes.equals(before.bytes)).toBe(true);
      expect(after?.ino).toBe(before?.ino);
      const still = await rayAgent.status();
      expect(still).toMatchObject({
        state: 'error',
        ray: { state: 'stopped' },
        registration: { state: 'needs_reregistration' },
      });
      figures.push(
        `7: Ray stopped ${leftSeconds.toFixed(1)} s after the 401 (seen by status polling); 1 heartbeat after it (the 401), restarts 0 over 10 s; credentials file same bytes and inode`,
      );
    });
  });
});
