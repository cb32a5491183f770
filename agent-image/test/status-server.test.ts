import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { join } from 'node:path';
import { buildServer } from '@ray-agent/manager/server';
import { Store } from '@ray-agent/manager/store';
import { StatusDocument } from '@ray-agent/protocol';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/agent-config.js';
import { formatGcsAddress } from '../src/config/ray-head.js';
import { rayResources } from '../src/limits/ray-resources.js';
import { StatusModel } from '../src/status/status-model.js';
import { buildStatusServer, listeningPort, type StatusServer } from '../src/status/status-server.js';
import { fakeGcs, getLocal, startAgentProcess } from './agent-process.js';
import { makeTls, tempDir } from './helpers.js';

const SECRET_TOKEN = 'PLANTED-enrollment-secret-5f0c1d2e3a4b';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

let app: StatusServer;
let statusReads = 0;
let model: StatusModel;
let port: number;
/** Every answer of this file, so the no-CORS rule is checked on all of them. */
const answers: Answer[] = [];

function call(
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Answer | { error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: { host: `127.0.0.1:${port}`, ...options.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const answer = {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          };
          answers.push(answer);
          resolve(answer);
        });
        res.on('error', (error) => resolve({ error }));
      },
    );
    req.on('error', (error) => resolve({ error }));
    req.end();
  });
}

/** `call` for requests that must get an HTTP answer. */
async function get(path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const answer = await call(path, options);
  if ('error' in answer) throw answer.error;
  return answer;
}

beforeAll(async () => {
  // The model is built as main.ts builds it, from a config that carries a planted token.
  const config = loadConfig({
    RAY_HEAD: 'ray://head.example.net:10001',
    MANAGER_URL: 'https://m.test/api/register',
    AGENT_TOKEN: SECRET_TOKEN,
    CPU_LIMIT: '2',
    MEMORY_LIMIT: '4g',
  });
  const memoryBytes = config.memoryLimit ?? 0;
  const resources = rayResources({ cpus: 2, memoryBytes, source: 'env', shmBytes: 64 * 1024 ** 2 });
  model = new StatusModel('1.2.3-test', formatGcsAddress(config.gcs), config.manager.base, {
    cpus: config.cpuLimit ?? 1,
    memoryBytes,
    objectStoreBytes: resources.objectStoreBytes,
    shmBytes: 64 * 1024 ** 2,
    source: 'env',
  });
  for (const warning of resources.warnings) model.warn(warning);
  model.registration = {
    state: 'registered',
    providerId: 'alices-desktop-7f3a',
    registeredAt: new Date().toISOString(),
  };
  model.ray.state = 'joined';
  model.ray.joinedAt = new Date();
  model.rayError('[2026-05-01 10:00:00,123 E 1 2] (raylet) x.cc:1: something');
  model.runningTasks = 3;
  app = buildStatusServer(model, { onStatusRead: () => statusReads++ });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = listeningPort(app);
});

afterAll(async () => {
  await app.close();
});

beforeEach(() => {
  model.setState('starting');
});

describe('status endpoint', () => {
  it('serves /status as a StatusDocument', async () => {
    const answer = await get('/status');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const parsed = StatusDocument.safeParse(JSON.parse(answer.body));
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data?.state).toBe('starting');
    expect(parsed.data?.tasks.running).toBe(3);
    expect(parsed.data?.ray.gcsAddress).toBe('head.example.net:6379');
    expect(parsed.data?.registration.providerId).toBe('alices-desktop-7f3a');
    expect(parsed.data?.warnings.some((w) => w.includes('--shm-size='))).toBe(true);
  });

  it.each(['localhost', `localhost:8765`, '127.0.0.1', 'LOCALHOST:1', '[::1]:8765'])(
    'accepts Host %s',
    async (host) => {
      expect((await get('/healthz', { headers: { host } })).status).toBe(200);
    },
  );

  it.each([
    'evil.example',
    'evil.example:8765',
    '127.0.0.1.evil.example',
    'localhost.evil.example',
    '10.0.0.5:8765',
    '0.0.0.0:8765',
  ])('refuses Host %s (DNS rebinding)', async (host) => {
    const answer = await get('/status', { headers: { host } });
    expect(answer.status).toBe(403);
    expect(answer.body).not.toContain('gcsAddress');
  });

  it.each<[string, Record<string, string>]>([
    ['Origin', { origin: 'http://127.0.0.1:8765' }],
    ['Origin: null', { origin: 'null' }],
    ['Origin of another site', { origin: 'https://evil.example' }],
    ['Referer', { referer: 'http://127.0.0.1:8765/' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
    ['Sec-Fetch-Site: same-origin', { 'sec-fetch-site': 'same-origin' }],
  ])('refuses a browser request carrying %s', async (_name, headers) => {
    for (const path of ['/status', '/metrics', '/healthz']) {
      const answer = await get(path, { headers });
      expect(answer.status).toBe(403);
      expect(answer.body).toMatch(/browser requests are not allowed/);
    }
  });

  it('accepts Sec-Fetch-Site: none (a person typing the URL)', async () => {
    expect((await get('/status', { headers: { 'sec-fetch-site': 'none' } })).status).toBe(200);
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])('answers %s with 405', async (method) => {
    for (const path of ['/status', '/metrics', '/nowhere']) {
      const answer = await get(path, {
        method,
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
      });
      expect(answer.status).toBe(405);
      expect(answer.headers.allow).toBe('GET, HEAD');
    }
  });

  it('answers HEAD like GET, without a body', async () => {
    const answer = await get('/status', { method: 'HEAD' });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('');
  });

  it('sends the security headers on every answer', async () => {
    const cases = [
      await get('/status'),
      await get('/metrics'),
      await get('/nowhere'),
      await get('/status', { headers: { host: 'evil.example' } }),
      await get('/status', { method: 'POST' }),
    ];
    expect(cases.map((answer) => answer.status)).toEqual([200, 200, 404, 403, 405]);
    for (const answer of cases) {
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['content-security-policy']).toMatch(/default-src 'none'/);
      expect(answer.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
      expect(answer.headers['cache-control']).toBe('no-store');
      expect(answer.headers['x-frame-options']).toBe('DENY');
    }
  });

  it('serves Prometheus metrics', async () => {
    const answer = await get('/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/plain/);
    expect(answer.body).toMatch(/^ray_agent_running_tasks 3$/m);
    expect(answer.body).toMatch(/^ray_agent_state\{state="starting"\} 1$/m);
    expect(answer.body).toMatch(/^ray_agent_state\{state="contributing"\} 0$/m);
    expect(answer.body).toMatch(/^ray_agent_registered 1$/m);
    model.setState('contributing');
    const later = await get('/metrics');
    expect(later.body).toMatch(/^ray_agent_state\{state="contributing"\} 1$/m);
    expect(later.body).toMatch(/^ray_agent_state\{state="starting"\} 0$/m);
  });

  it('times every request inside the server: ray_agent_status_request_duration_seconds', async () => {
    const histogram = async () => {
      const body = (await get('/metrics')).body;
      const count = Number(/^ray_agent_status_request_duration_seconds_count (\d+)$/m.exec(body)?.[1]);
      return { body, count };
    };
    const before = await histogram();
    for (let i = 0; i < 5; i += 1) await get('/status');
    await get('/nowhere');
    const after = await histogram();
    // The five reads, the 404 and the first scrape itself (timed once its answer was sent).
    expect(after.count - before.count).toBe(7);
    expect(after.body).toMatch(/^# TYPE ray_agent_status_request_duration_seconds histogram$/m);
    for (const le of ['0.0005', '0.001', '0.002', '0.005', '\\+Inf'])
      expect(after.body).toMatch(
        new RegExp(`^ray_agent_status_request_duration_seconds_bucket\\{le="${le}"\\} \\d+$`, 'm'),
      );
    const inf = Number(/_bucket\{le="\+Inf"\} (\d+)$/m.exec(after.body)?.[1]);
    expect(inf).toBe(after.count);
    expect(Number(/_sum ([\d.e-]+)$/m.exec(after.body)?.[1])).toBeGreaterThan(0);
  });

  it('tells the supervisor of each /status read (it samples faster while watched), and of no other request', async () => {
    const before = statusReads;
    await get('/status');
    await get('/healthz');
    await get('/metrics');
    await get('/status', { headers: { host: 'evil.example' } });
    expect(statusReads - before).toBe(1);
  });

  it('reports health, and 503 once the agent is in error', async () => {
    const healthy = await get('/healthz');
    expect(healthy.status).toBe(200);
    expect(JSON.parse(healthy.body)).toEqual({ ok: true, state: 'starting' });
    model.setState('error');
    const broken = await get('/healthz');
    expect(broken.status).toBe(503);
    expect(JSON.parse(broken.body)).toEqual({ ok: false, state: 'error' });
  });

  it('refuses request headers over 8 KiB', async () => {
    const fits = await call('/healthz', { headers: { 'x-padding': 'a'.repeat(4 * 1024) } });
    expect('status' in fits && fits.status).toBe(200);
    const tooBig = await call('/healthz', { headers: { 'x-padding': 'a'.repeat(9 * 1024) } });
    if ('status' in tooBig) expect(tooBig.status).toBe(431);
    else expect(tooBig.error.code ?? tooBig.error.message).toMatch(/ECONNRESET|EPIPE|socket hang up/);
  });

  it('cuts off a slow client (headers sent byte by byte) and a silent one at the 5 s request timeout', async () => {
    const slowClient = (dribble: boolean) =>
      new Promise<{ seconds: number; answer: string; bytesSent: number }>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        const started = Date.now();
        const text = `GET /status HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: ${'a'.repeat(500)}`;
        let sent = 0;
        let answer = '';
        // One byte every 200 ms: 5 bytes a second, never finishing the headers within the timeout.
        const timer = dribble
          ? setInterval(() => {
              if (!socket.destroyed && sent < text.length) socket.write(text.charAt(sent++));
            }, 200)
          : undefined;
        socket.on('data', (chunk: Buffer) => {
          answer += chunk.toString('latin1');
        });
        socket.on('error', () => {});
        socket.on('close', () => {
          clearInterval(timer);
          resolve({ seconds: (Date.now() - started) / 1000, answer, bytesSent: sent });
        });
      });
    const [slow, silent] = await Promise.all([slowClient(true), slowClient(false)]);
    for (const client of [slow, silent]) {
      // Cut off by the server, never before the 5 s timeout. The upper bound only tells "cut off at the timeout"
      // (checked every second) from "held until Node's own check", 30 s after the server started: room for a
      // loaded machine, where the figure (5-7.5 s) can stretch.
      expect(client.seconds).toBeGreaterThanOrEqual(5);
      expect(client.seconds).toBeLessThan(20);
      expect(client.answer).toMatch(/^(HTTP\/1\.1 408 Request Timeout\r\n|$)/);
      expect(client.answer).not.toContain('gcsAddress');
    }
    expect(slow.bytesSent).toBeGreaterThan(20);
    console.warn(
      `[figure] slow and silent clients cut off after ${slow.seconds.toFixed(1)} s and ${silent.seconds.toFixed(1)} s`,
    );
  }, 60_000);

  it('never sends an access-control-* header', () => {
    expect(answers.length).toBeGreaterThan(40);
    for (const answer of answers)
      expect(Object.keys(answer.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);
  });
});

describe('the running agent: main.ts against the real manager over TLS, Ray and python3 stood in for', () => {
  it('never shows the enrollment token or the provider credential: not in /status, /metrics, /healthz, its logs, nor what Ray is given', async () => {
    const dir = tempDir('status-secrets-');
    const tls = makeTls(dir);
    const store = new Store(join(dir, 'manager.db'));
    const { token } = store.createEnrollmentToken({ label: 'status-secrets' });
    let registerCalls = 0;
    let heartbeatCalls = 0;
    const manager = buildServer({
      store,
      tls: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
      heartbeatIntervalSeconds: 1,
      logger: pino({ level: 'silent' }),
    });
    // The first registration and the second heartbeat fail: their error paths (log lines, status messages) are
    // where a secret carried by a request would show. Retry-After keeps the failing heartbeat in the status 3 s.
    const busy = { error: { code: 'unavailable', message: 'the manager is busy' } };
    manager.addHook('onRequest', async (request, reply) => {
      if (request.url === '/api/register' && ++registerCalls === 1) return reply.code(503).send(busy);
      if (request.url === '/api/heartbeat' && ++heartbeatCalls === 2)
        return reply.code(503).header('retry-after', '3').send(busy);
    });
    await manager.listen({ host: '127.0.0.1', port: 0 });
    const gcs = await fakeGcs();
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    const tokenFile = join(dir, 'agent-token');
    writeFileSync(tokenFile, `${token}\n`);
    const agent = await startAgentProcess(dir, {
      RAY_HEAD: `127.0.0.1:${gcs.port}`,
      MANAGER_URL: `https://127.0.0.1:${(manager.server.address() as AddressInfo).port}/api/register`,
      MANAGER_CA_FILE: tls.caFile,
      AGENT_TOKEN_FILE: tokenFile,
      STATE_DIR: stateDir,
      CPU_LIMIT: '1',
      MEMORY_LIMIT: '1g',
      NODE_IP_ADDRESS: '127.0.0.1',
      DRAIN_DEADLINE: '1',
      LOG_LEVEL: 'debug',
    });
    const bodies = { '/status': [] as string[], '/metrics': [] as string[], '/healthz': [] as string[] };
    try {
      // Read the endpoint all along, through registration, the failures and contributing, until heartbeats
      // came back after the failed one. The deadline bounds the wait only.
      let status: StatusDocument | undefined;
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline && agent.child.exitCode === null) {
        for (const [path, seen] of Object.entries(bodies)) {
          const answer = await getLocal(agent.statusPort, path).catch(() => undefined);
          if (answer) seen.push(answer.body);
        }
        const last = bodies['/status'].at(-1);
        status = last ? StatusDocument.parse(JSON.parse(last)) : undefined;
        if (status?.state === 'contributing' && status.heartbeat.state === 'healthy' && heartbeatCalls >= 4) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status, agent.stderr()).toMatchObject({ state: 'contributing', heartbeat: { state: 'healthy' } });
      const providerId = status?.registration.providerId ?? '';
      expect(store.listProviders(1).map((p) => p.providerId)).toEqual([providerId]);
      const { credential } = JSON.parse(readFileSync(join(stateDir, 'credentials.json'), 'utf8')) as {
        credential: string;
      };
      expect(credential.length).toBeGreaterThanOrEqual(32);

      agent.child.kill('SIGTERM');
      expect((await agent.exited).code, agent.stderr()).toBe(0);

      const places: Record<string, string> = {
        ...Object.fromEntries(Object.entries(bodies).map(([path, seen]) => [path, seen.join('\n')])),
        'the agent log (stdout)': agent.stdout(),
        'the agent log (stderr)': agent.stderr(),
        "Ray's arguments and environment": agent.rayRecord(),
      };
      // Whole and in part (a truncated or sliced secret is still a leak).
      const secrets: Array<[string, string]> = [
        ['the enrollment token', token],
        ['part of the enrollment token', token.slice(8, 24)],
        ['the provider credential', credential],
        ['part of the provider credential', credential.slice(8, 24)],
      ];
      const leaks = Object.entries(places).flatMap(([place, text]) =>
        secrets.filter(([, secret]) => text.includes(secret)).map(([what]) => `${what} in ${place}`),
      );
      expect(leaks).toEqual([]);

      // Not vacuous: the secrets were used, and every place held what a leak would sit beside.
      expect(registerCalls).toBe(2);
      expect(bodies['/status'].length).toBeGreaterThan(5);
      expect(places['/status']).toContain(providerId);
      expect(places['/status']).toContain('"code":"heartbeat_failing"');
      expect(places['/metrics']).toMatch(/^ray_agent_registered 1$/m);
      for (const line of ['registration failed; retrying', 'registered with the manager', 'heartbeat failed'])
        expect(agent.stdout()).toContain(line);
      expect(agent.stdout()).toContain('stopped cleanly');
      expect(agent.rayRecord()).toMatch(/^argv: start --address=127\.0\.0\.1:\d+ --block /m);
      expect(agent.rayRecord()).toContain(`provider-id=${providerId}`);
    } finally {
      if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
      await agent.exited;
      await manager.close();
      store.close();
      await new Promise((resolve) => gcs.server.close(resolve));
    }
  }, 120_000);
});
