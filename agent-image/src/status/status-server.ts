import { createServer } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { StatusModel } from './status-model.js';

/**
 * The read-only status endpoint for the tray app. Bound inside the container and published on the host's
 * loopback only; because a loopback publish can still be reached by a web page through DNS rebinding, every
 * request must name a loopback host and must not come from a browser context (no Origin/Referer).
 */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
};

export function hostIsLoopback(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return LOOPBACK_HOSTS.has(name.toLowerCase());
}

export function buildStatusServer(model: StatusModel, metrics: Registry): FastifyInstance {
  const app = Fastify({
    logger: false,
    serverFactory: (handler) =>
      createServer(
        {
          maxHeaderSize: 8 * 1024,
          requestTimeout: 5_000,
          headersTimeout: 5_000,
          keepAliveTimeout: 5_000,
          // Node checks the two timeouts above only this often (default 30 s): a slow client would be held 30 s.
          connectionsCheckingInterval: 1_000,
        },
        handler,
      ),
    bodyLimit: 1024,
    return503OnClosing: true,
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return reply.code(405).header('allow', 'GET, HEAD').send({ error: 'only GET and HEAD are allowed' });
    }
    const fetchSite = request.headers['sec-fetch-site'];
    if (!hostIsLoopback(request.headers.host)) return reply.code(403).send({ error: 'host not allowed' });
    if (
      request.headers.origin !== undefined ||
      request.headers.referer !== undefined ||
      (fetchSite !== undefined && fetchSite !== 'none')
    ) {
      return reply.code(403).send({ error: 'browser requests are not allowed' });
    }
  });

  app.get('/status', async () => model.snapshot());
  app.get('/healthz', async (_request, reply) => {
    const state = model.current;
    return reply.code(state === 'error' ? 503 : 200).send({ ok: state !== 'error', state });
  });
  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.contentType);
    return metrics.metrics();
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));
  return app;
}
