import {
  type ErrorBody,
  HeartbeatRequest,
  type HeartbeatResponse,
  type ProviderList,
  RegisterRequest,
  type RegisterResponse,
} from '@ray-agent/protocol';
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import { createLogger } from './logger.js';
import type { Store } from './store.js';
import { bearerToken } from './tokens.js';
import { describeIssues, sentence } from './validation.js';

export const DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 10;
export const BODY_LIMIT_BYTES = 64 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** The provider a request was about, once known; logged with the response. */
    providerId: string | null;
  }
}

export interface ServerOptions {
  store: Store;
  /** PEM certificate chain and private key. The manager speaks HTTPS only. */
  tls: { cert: string | Buffer; key: string | Buffer };
  heartbeatIntervalSeconds?: number;
  /** JSON logger; defaults to stdout. Never given a secret. */
  logger?: Logger;
  /** Clock, injectable for tests. */
  now?: () => Date;
}

function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message: sentence(message) } };
}

function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send(errorBody(code, message));
}

/** The manager's HTTPS server, not yet listening. */
export function buildServer(options: ServerOptions) {
  const { store } = options;
  const interval = options.heartbeatIntervalSeconds ?? DEFAULT_HEARTBEAT_INTERVAL_SECONDS;
  const now = options.now ?? (() => new Date());
  const logger = options.logger ?? createLogger();

  const app = Fastify({
    https: { cert: options.tls.cert, key: options.tls.key },
    loggerInstance: logger,
    // Fastify's own per-request lines are replaced by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: false,
    return503OnClosing: true,
  });

  app.decorateRequest('providerId', null);

  // One line per request: method, url, status, providerId and latency; never headers or bodies.
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: request.url.split('?')[0],
        status: reply.statusCode,
        providerId: request.providerId ?? undefined,
        latencyMs: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request',
    );
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 413)
      return sendError(reply, 413, 'payload_too_large', `request body exceeds ${BODY_LIMIT_BYTES} bytes`);
    if (status === 415)
      return sendError(reply, 415, 'unsupported_media_type', 'send the request body as application/json');
    if (status >= 400 && status < 500) return sendError(reply, status, 'invalid_request', err.message);
    request.log.error({ err: { message: err.message, stack: err.stack, code: err.code } }, 'request failed');
    return sendError(reply, 500, 'internal_error', 'internal error; see the manager log');
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`),
  );

  const requireAdmin = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const token = bearerToken(request.headers.authorization);
    if (token !== null && store.checkAdminToken(token)) return true;
    sendError(reply, 401, 'admin_token_rejected', 'an admin token is required: Authorization: Bearer <admin token>');
    return false;
  };

  app.get('/healthz', async () => ({ ok: true }));

  app.post('/api/register', async (request, reply) => {
    const token = bearerToken(request.headers.authorization);
    const tokenId = token === null ? null : store.checkEnrollmentToken(token, now());
    if (tokenId === null) {
      return sendError(
        reply,
        401,
        'enrollment_token_rejected',
        'the enrollment token is missing, unknown, revoked or expired',
      );
    }
    const parsed = RegisterRequest.safeParse(request.body);
    if (!parsed.success) return sendError(reply, 400, 'invalid_request', describeIssues(parsed.error));
    const at = now();
    const result = store.register(parsed.data, tokenId, at);
    request.providerId = result.providerId;
    request.log.info(
      {
        providerId: result.providerId,
        created: result.created,
        hostname: parsed.data.hostname,
        enrollmentTokenId: tokenId,
      },
      result.created ? 'provider registered' : 'provider registered again',
    );
    const body: RegisterResponse = {
      providerId: result.providerId,
      credential: result.credential,
      heartbeatIntervalSeconds: interval,
      serverTime: at.toISOString(),
    };
    return reply.code(200).send(body);
  });

  app.post('/api/heartbeat', async (request, reply) => {
    const credential = bearerToken(request.headers.authorization);
    if (credential === null) {
      return sendError(
        reply,
        401,
        'credential_rejected',
        'a provider credential is required: Authorization: Bearer <credential>',
      );
    }
    const parsed = HeartbeatRequest.safeParse(request.body);
    if (!parsed.success) return sendError(reply, 400, 'invalid_request', describeIssues(parsed.error));
    const hb = parsed.data;
    request.providerId = hb.providerId;
    const check = store.checkCredential(hb.providerId, credential);
    if (check === 'unknown_provider') {
      return sendError(reply, 404, 'unknown_provider', `no provider ${hb.providerId}; register again`);
    }
    if (check === 'rejected') {
      return sendError(reply, 401, 'credential_rejected', `the credential is not the current one for ${hb.providerId}`);
    }
    const at = now();
    if (store.identityInUse(hb, interval, at)) {
      return sendError(
        reply,
        409,
        'identity_in_use',
        `another agent is already running as ${hb.providerId}; stop the copy, or give it its own state volume`,
      );
    }
    store.recordHeartbeat(hb, at);
    const body: HeartbeatResponse = { ok: true, heartbeatIntervalSeconds: interval, serverTime: at.toISOString() };
    return reply.code(200).send(body);
  });

  app.get('/api/providers', async (request, reply) => {
    if (!requireAdmin(request, reply)) return reply;
    const body: ProviderList = { providers: store.listProviders(interval, now()) };
    return reply.code(200).send(body);
  });

  app.get<{ Params: { id: string } }>('/api/providers/:id', async (request, reply) => {
    if (!requireAdmin(request, reply)) return reply;
    const summary = store.getProvider(request.params.id, interval, now());
    if (summary === null) return sendError(reply, 404, 'unknown_provider', `no provider ${request.params.id}`);
    request.providerId = summary.providerId;
    return reply.code(200).send(summary);
  });

  return app;
}

export type ManagerServer = ReturnType<typeof buildServer>;
