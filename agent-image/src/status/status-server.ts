import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { RequestDurations } from './request-durations.js';
import type { StatusModel } from './status-model.js';

/**
 * The read-only status endpoint for the tray app. Bound inside the container and published on the host's
 * loopback only; because a loopback publish can still be reached by a web page through DNS rebinding, every
 * request must name a loopback host and must not come from a browser context (no Origin/Referer).
 *
 * Plain node:http: three read-only routes do not need a framework, and fastify's schemas and router were the
 * largest part of the idle agent's heap.
 */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
};
const JSON_TYPE = 'application/json; charset=utf-8';

export function hostIsLoopback(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return LOOPBACK_HOSTS.has(name.toLowerCase());
}

export interface StatusServerOptions {
  /** The Prometheus registry, built on the first scrape: prom-client is not loaded while nobody scrapes. */
  metrics?: () => Promise<Registry>;
  /** Told of every /status request: the supervisor samples more often while someone watches. */
  onStatusRead?: () => void;
  durations?: RequestDurations;
}

export interface StatusServer {
  readonly server: Server;
  readonly durations: RequestDurations;
  listen(options: { host: string; port: number }): Promise<void>;
  close(): Promise<void>;
}

export function buildStatusServer(model: StatusModel, options: StatusServerOptions = {}): StatusServer {
  const durations = options.durations ?? new RequestDurations();
  let registry: Promise<Registry> | undefined;
  const metrics =
    options.metrics ?? (() => import('./metrics.js').then(({ createMetrics }) => createMetrics(model, durations)));
  let closing = false;

  interface Answer {
    code: number;
    body: string;
    type?: string;
    headers?: Record<string, string>;
  }
  const json = (code: number, value: unknown, headers?: Record<string, string>): Answer => ({
    code,
    body: JSON.stringify(value),
    ...(headers ? { headers } : {}),
  });

  const answer = (req: IncomingMessage): Answer | Promise<Answer> => {
    if (closing) return json(503, { error: 'the agent is stopping' }, { connection: 'close' });
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return json(405, { error: 'only GET and HEAD are allowed' }, { allow: 'GET, HEAD' });
    const fetchSite = req.headers['sec-fetch-site'];
    if (!hostIsLoopback(req.headers.host)) return json(403, { error: 'host not allowed' });
    if (
      req.headers.origin !== undefined ||
      req.headers.referer !== undefined ||
      (fetchSite !== undefined && fetchSite !== 'none')
    )
      return json(403, { error: 'browser requests are not allowed' });
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/status') {
      options.onStatusRead?.();
      return json(200, model.snapshot());
    }
    if (path === '/healthz') {
      const state = model.current;
      return json(state === 'error' ? 503 : 200, { ok: state !== 'error', state });
    }
    if (path === '/metrics') {
      registry ??= metrics();
      return registry
        .then(async (r) => ({ code: 200, body: await r.metrics(), type: r.contentType }))
        .catch((error: Error) => json(500, { error: `metrics failed: ${error.message}` }));
    }
    return json(404, { error: 'not found' });
  };

  const send = (req: IncomingMessage, res: ServerResponse, { code, body, type, headers }: Answer): void => {
    res.writeHead(code, {
      ...SECURITY_HEADERS,
      ...headers,
      'content-type': type ?? JSON_TYPE,
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    res.once('finish', () => durations.observe(Number(process.hrtime.bigint() - started) / 1e9));
    const reply = answer(req);
    if (reply instanceof Promise) void reply.then((done) => send(req, res, done));
    else send(req, res, reply);
  };

  const server = createServer(
    {
      maxHeaderSize: 8 * 1024,
      requestTimeout: 5_000,
      headersTimeout: 5_000,
      keepAliveTimeout: 5_000,
      // Node checks the two timeouts above only this often (default 30 s): a slow client would be held 30 s.
      connectionsCheckingInterval: 1_000,
    },
    handle,
  );
  return {
    server,
    durations,
    listen: ({ host, port }) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    close: () =>
      new Promise((resolve) => {
        closing = true;
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** The port the server listens on (for tests that listen on port 0). */
export function listeningPort(server: StatusServer): number {
  return (server.server.address() as AddressInfo).port;
}
