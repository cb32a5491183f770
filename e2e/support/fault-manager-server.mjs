// A manager that misbehaves on purpose, for e2e/faults-manager.test.ts. It runs in a node:22-bookworm-slim
// container on the test's Docker network (see fault-manager.ts) and needs nothing but Node.
//
// HTTPS on 8443 (certificate from the test CA, right host name), 8444 (self-signed), 8445 (test CA, wrong host
// name) and 8446 (test CA, expired); the certificates are read from the directory given as the first argument.
// Requests go to /<scenario>/api/register or /<scenario>/api/heartbeat: each scenario has its own scripted answers,
// so agents under test never share a script. A control API on plain HTTP port 9000 (published on the host's
// loopback only) sets the scripts and returns every request seen, the Authorization header kept only as a hash.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

const certDir = process.argv[2] ?? '/tls';
const LISTENERS = { 8443: 'server', 8444: 'selfsigned', 8445: 'wronghost', 8446: 'expired' };

/** name -> { register: Step[], heartbeat: Step[], registerDefault, heartbeatDefault, clockOffsetSeconds, ... } */
const scenarios = new Map();
const requests = [];
const connections = {};
const tlsErrors = [];

function scenario(name) {
  let found = scenarios.get(name);
  if (!found) {
    found = {
      register: [],
      heartbeat: [],
      registerDefault: { ok: true },
      heartbeatDefault: { ok: true },
      clockOffsetSeconds: 0,
      heartbeatIntervalSeconds: 2,
      registered: 0,
    };
    scenarios.set(name, found);
  }
  return found;
}

/** Deterministic, so a test knows the credential an agent was given without it ever being logged. */
function credentialFor(providerId) {
  return `${providerId}-credential-`.padEnd(48, '0');
}

function answer(step, route, name, state, send) {
  const now = new Date(Date.now() + state.clockOffsetSeconds * 1000);
  const headers = { date: now.toUTCString(), ...(step.headers ?? {}) };
  if (step.hang) return 'hang'; // hold the request: never answer
  if (step.ok) {
    let body;
    if (route === 'register') {
      state.registered += 1;
      const providerId = `${name}-p${state.registered}`;
      body = {
        providerId,
        credential: credentialFor(providerId),
        heartbeatIntervalSeconds: state.heartbeatIntervalSeconds,
        serverTime: now.toISOString(),
      };
    } else {
      body = { ok: true, heartbeatIntervalSeconds: state.heartbeatIntervalSeconds, serverTime: now.toISOString() };
    }
    send(200, { ...headers, 'content-type': 'application/json' }, JSON.stringify(body));
    return { status: 200, providerId: body.providerId };
  }
  if (step.bytes !== undefined) {
    send(step.status, { ...headers, 'content-type': 'application/json' }, Buffer.alloc(step.bytes, 'x'));
  } else if (step.json !== undefined) {
    send(step.status, { ...headers, 'content-type': 'application/json' }, JSON.stringify(step.json));
  } else {
    send(step.status, { ...headers, 'content-type': step.contentType ?? 'text/plain' }, step.text ?? '');
  }
  return { status: step.status };
}

function handle(port, req, res) {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= 1024 * 1024) chunks.push(chunk);
  });
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text.slice(0, 4096);
    }
    const { authorization, ...headers } = req.headers;
    const match = /^\/([a-z0-9-]+)\/api\/(register|heartbeat)$/.exec(req.url ?? '');
    const entry = {
      seq: requests.length + 1,
      at: Date.now(),
      port,
      method: req.method,
      path: req.url,
      scenario: match?.[1] ?? null,
      route: match?.[2] ?? null,
      authorizationSha256: authorization ? createHash('sha256').update(authorization).digest('hex') : null,
      headers,
      body,
      answered: null,
    };
    requests.push(entry);
    const send = (status, responseHeaders, payload) => {
      res.writeHead(status, responseHeaders);
      res.end(payload);
    };
    if (!match || req.method !== 'POST') {
      entry.answered = { status: 404 };
      send(
        404,
        { 'content-type': 'application/json' },
        JSON.stringify({ error: { code: 'not_found', message: 'no route' } }),
      );
      return;
    }
    const [, name, route] = match;
    const state = scenario(name);
    const step = state[route].shift() ?? state[`${route}Default`];
    entry.answered = answer(step, route, name, state, send);
  });
}

for (const [port, file] of Object.entries(LISTENERS)) {
  const server = createHttpsServer(
    { cert: readFileSync(`${certDir}/${file}.pem`), key: readFileSync(`${certDir}/${file}.key`) },
    (req, res) => handle(Number(port), req, res),
  );
  server.on('connection', () => {
    connections[port] = (connections[port] ?? 0) + 1;
  });
  server.on('tlsClientError', (error) => {
    tlsErrors.push({ port: Number(port), at: Date.now(), message: error.message });
  });
  server.listen(Number(port), '0.0.0.0');
}

createHttpServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const reply = (status, value) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(value === undefined ? '' : JSON.stringify(value));
    };
    const put = /^\/scenarios\/([a-z0-9-]+)$/.exec(req.url ?? '');
    if (req.method === 'PUT' && put) {
      const state = scenario(put[1]);
      const config = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      for (const key of Object.keys(config)) state[key] = config[key];
      return reply(200, { ok: true });
    }
    if (req.method === 'GET' && req.url === '/requests') return reply(200, requests);
    if (req.method === 'GET' && req.url === '/connections') return reply(200, { connections, tlsErrors });
    if (req.method === 'GET' && req.url === '/healthz') return reply(200, { ok: true });
    return reply(404, { error: 'no such control route' });
  });
}).listen(9000, '0.0.0.0');
