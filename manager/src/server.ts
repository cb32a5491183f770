import rateLimit from '@fastify/rate-limit';
import {
  ApiErrorCode,
  DEREGISTER_PATH,
  type DeregisterResponse,
  type ErrorBody,
  GATEWAY_SYNC_SECONDS,
  GatewaySyncRequest,
  type GatewaySyncResponse,
  HeartbeatRequest,
  type HeartbeatResponse,
  type ProviderList,
  ProviderListQuery,
  RegisterRequest,
  type RegisterResponse,
} from '@ray-agent/protocol';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { clusterAccess, type GatewayOptions } from './cluster-access.js';
import { createLogger } from './logger.js';
import { defaultRateLimits, type RateLimit, type RateLimits, windowPhrase } from './rate-limits.js';
import {
  credentialOf,
  InstallIdTakenError,
  OverlayFullError,
  type OverlayPeer,
  ProviderRevokedError,
  type Store,
  WireguardKeyInUseError,
} from './store.js';
import { bearerToken, secretsEqual } from './tokens.js';
import { describeIssues, sentence } from './validation.js';

export const DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 10;
export const BODY_LIMIT_BYTES = 64 * 1024;
/** The gateway reports every peer at once: room for GatewaySyncRequest's 100 000 peers (about 130 bytes each). */
export const GATEWAY_SYNC_BODY_LIMIT_BYTES = 16 * 1024 * 1024;
/** Providers or addresses each limiter tracks: a fleet of this size is counted exactly. */
const RATE_LIMIT_KEYS = 100_000;

declare module 'fastify' {
  interface FastifyRequest {
    /** The provider a request was about, once known; logged with the response. */
    providerId: string | null;
    /** The key of the per-provider (or per-install) limit, set once the request proved its credential or token. */
    limitKey: string | null;
  }
}

export interface ServerOptions {
  store: Store;
  /** PEM certificate chain and private key. The manager speaks HTTPS only. */
  tls: { cert: string | Buffer; key: string | Buffer };
  heartbeatIntervalSeconds?: number;
  /** Request limits; `defaultRateLimits(heartbeatIntervalSeconds)` when not given. */
  rateLimits?: RateLimits;
  /** The overlay's gateway (`serve --gateway-token-file`); absent: no gateway, every provider joins directly. */
  gateway?: GatewayOptions | undefined;
  /** The token the Ray head was started with, handed to providers in ClusterAccess; absent: no Ray token auth. */
  rayAuthToken?: string | undefined;
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

/** The provider's credential (`Authorization: Bearer`), or null once a 401 that says what is missing was sent. */
function providerCredential(request: FastifyRequest, reply: FastifyReply): string | null {
  const credential = bearerToken(request.headers.authorization);
  if (credential === null)
    sendError(
      reply,
      401,
      ApiErrorCode.credentialRejected,
      'a provider credential is required: Authorization: Bearer <credential>',
    );
  return credential;
}

type Limiter = (request: FastifyRequest, reply: FastifyReply) => Promise<boolean>;

/** Route options that apply `check` before anything else of the request is read. */
function limitedBy(check: Limiter) {
  return {
    onRequest: async (request: FastifyRequest, reply: FastifyReply) =>
      (await check(request, reply)) ? reply : undefined,
  };
}

/**
 * A limiter over @fastify/rate-limit's store: true once it has answered 429 rate_limited with Retry-After (whole
 * seconds until the window resets). The plugin's own hook runs one limit per request; a route here has two (per
 * client, then per provider), so each is applied by hand. `key` null means the request is not counted.
 */
function limiter(
  app: Pick<FastifyInstance, 'createRateLimit'>,
  limit: RateLimit,
  /** "registrations from this address": what is counted, and by what. */
  what: { noun: string; scope: string },
  key: ((request: FastifyRequest) => string | null) | undefined,
): Limiter {
  if (limit.max === 0) return async () => false;
  const options = {
    max: limit.max,
    timeWindow: limit.windowSeconds * 1000,
    // Keys kept per limiter (least recently used go first; a hot loop's key never does). The plugin passes this to
    // each limiter's store, though its types only declare it for the plugin as a whole.
    cache: RATE_LIMIT_KEYS,
    ...(key === undefined ? {} : { keyGenerator: (request: FastifyRequest) => key(request) ?? '' }),
  };
  const check = app.createRateLimit(options);
  return async (request, reply) => {
    if (key !== undefined && key(request) === null) return false;
    const result = await check(request);
    if (result.isAllowed || !result.isExceeded) return false;
    const seconds = Math.max(1, result.ttlInSeconds);
    reply.header('retry-after', String(seconds));
    sendError(
      reply,
      429,
      ApiErrorCode.rateLimited,
      `more than ${limit.max} ${what.noun} ${windowPhrase(limit.windowSeconds)} ${what.scope}; retry in ${seconds} s`,
    );
    return true;
  };
}

/** The manager's HTTPS server, not yet listening. */
export function buildServer(options: ServerOptions) {
  const { store } = options;
  const interval = options.heartbeatIntervalSeconds ?? DEFAULT_HEARTBEAT_INTERVAL_SECONDS;
  const now = options.now ?? (() => new Date());
  const logger = options.logger ?? createLogger();
  const limits = options.rateLimits ?? defaultRateLimits(interval);
  const { gateway, rayAuthToken } = options;
  const network = gateway?.network ?? null;
  const access = (peer: OverlayPeer | null) => clusterAccess(gateway, store.getGateway(), peer, rayAuthToken);

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
  app.decorateRequest('limitKey', null);

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
      return sendError(
        reply,
        413,
        ApiErrorCode.payloadTooLarge,
        `request body exceeds ${request.routeOptions.bodyLimit ?? BODY_LIMIT_BYTES} bytes`,
      );
    if (status === 415)
      return sendError(reply, 415, ApiErrorCode.unsupportedMediaType, 'send the request body as application/json');
    if (status >= 400 && status < 500) return sendError(reply, status, ApiErrorCode.invalidRequest, err.message);
    request.log.error({ err: { message: err.message, stack: err.stack, code: err.code } }, 'request failed');
    return sendError(reply, 500, ApiErrorCode.internalError, 'internal error; see the manager log');
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, ApiErrorCode.notFound, `no route ${request.method} ${request.url.split('?')[0] ?? ''}`),
  );

  const requireAdmin = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const token = bearerToken(request.headers.authorization);
    if (token !== null && store.checkAdminToken(token)) return true;
    sendError(
      reply,
      401,
      ApiErrorCode.adminTokenRejected,
      'an admin token is required: Authorization: Bearer <admin token>',
    );
    return false;
  };

  app.get('/healthz', async () => ({ ok: true }));

  // The provider API, in a plugin registered after the rate limiter so that its decorators exist.
  app.register(rateLimit, { global: false });
  const registrations = (scope: string) => ({ noun: 'registrations', scope });
  const heartbeats = (scope: string) => ({ noun: 'heartbeats', scope });
  const syncs = { noun: 'gateway syncs', scope: 'from this address' };
  const deregistrations = { noun: 'deregistrations', scope: 'from this address' };
  const byKey = (request: FastifyRequest) => request.limitKey;
  app.register(async (api) => {
    const limit = {
      registerPerClient: limiter(api, limits.registerPerClient, registrations('from this address'), undefined),
      registerPerInstall: limiter(api, limits.registerPerInstall, registrations('of this installId'), byKey),
      heartbeatPerClient: limiter(api, limits.heartbeatPerClient, heartbeats('from this address'), undefined),
      heartbeatPerProvider: limiter(api, limits.heartbeatPerProvider, heartbeats('of this provider'), byKey),
      gatewaySyncPerClient: limiter(api, limits.gatewaySyncPerClient, syncs, undefined),
      // A provider deregisters once in its life; the per-client limit (heartbeat's figures, its own count) is what
      // keeps a stranger from trying credentials at round-trip speed.
      deregisterPerClient: limiter(api, limits.heartbeatPerClient, deregistrations, undefined),
    };

    api.post('/api/register', limitedBy(limit.registerPerClient), async (request, reply) => {
      const token = bearerToken(request.headers.authorization);
      const tokenId = token === null ? null : store.checkEnrollmentToken(token, now());
      if (tokenId === null) {
        return sendError(
          reply,
          401,
          ApiErrorCode.enrollmentTokenRejected,
          'the enrollment token is missing, unknown, revoked or expired',
        );
      }
      const parsed = RegisterRequest.safeParse(request.body);
      if (!parsed.success) return sendError(reply, 400, ApiErrorCode.invalidRequest, describeIssues(parsed.error));
      request.limitKey = parsed.data.installId;
      if (await limit.registerPerInstall(request, reply)) return reply;
      const at = now();
      let result: ReturnType<Store['register']>;
      try {
        result = store.register(parsed.data, tokenId, at, network);
      } catch (err) {
        if (err instanceof ProviderRevokedError) {
          request.providerId = err.providerId;
          request.log.warn({ providerId: err.providerId }, 'registration of a revoked provider refused');
          return sendError(
            reply,
            409,
            ApiErrorCode.installIdTaken,
            `this machine's provider ${err.providerId} was revoked by the cluster's operator at ${err.revokedAt} ` +
              'and stays revoked; it cannot register again with this identity. Ask the operator: if they let ' +
              "the machine in again, remove the agent's state volume (a new installId) and register with a " +
              'valid enrollment token',
          );
        }
        if (err instanceof WireguardKeyInUseError) return keyInUse(request, reply, err.holderProviderId);
        if (err instanceof OverlayFullError) {
          request.log.error({ network: err.network }, 'registration refused: the overlay network is full');
          return sendError(
            reply,
            503,
            ApiErrorCode.overlayFull,
            `the overlay network ${err.network} has no free address for another provider; the operator must ` +
              'widen --overlay-network or revoke providers that are gone',
          );
        }
        if (!(err instanceof InstallIdTakenError)) throw err;
        request.providerId = err.providerId;
        request.log.warn(
          {
            providerId: err.providerId,
            enrollmentTokenId: tokenId,
            currentCredentialSent: parsed.data.currentCredential !== undefined,
          },
          'registration of a known installId refused: no proof of owning it',
        );
        return sendError(
          reply,
          409,
          ApiErrorCode.installIdTaken,
          'this installId is already registered; to register it again send its current credential as ' +
            'currentCredential, or the enrollment token that registered it; a new machine needs its own state ' +
            'volume (a new installId)',
        );
      }
      request.providerId = result.providerId;
      request.log.info(
        {
          providerId: result.providerId,
          created: result.created,
          hostname: parsed.data.hostname,
          enrollmentTokenId: tokenId,
          overlayAddress: result.peer?.address,
        },
        result.created ? 'provider registered' : 'provider registered again',
      );
      const body: RegisterResponse = {
        providerId: result.providerId,
        credential: result.credential,
        heartbeatIntervalSeconds: interval,
        serverTime: at.toISOString(),
        cluster: access(result.peer),
      };
      return reply.code(200).send(body);
    });

    api.post('/api/heartbeat', limitedBy(limit.heartbeatPerClient), async (request, reply) => {
      const credential = providerCredential(request, reply);
      if (credential === null) return reply;
      const parsed = HeartbeatRequest.safeParse(request.body);
      if (!parsed.success) return sendError(reply, 400, ApiErrorCode.invalidRequest, describeIssues(parsed.error));
      const hb = parsed.data;
      request.providerId = hb.providerId;
      // One SELECT serves the credential check and, in a batched store, the identity lease.
      const view = store.heartbeatView(hb.providerId);
      const check = credentialOf(view, credential);
      if (check === 'unknown_provider') {
        return sendError(reply, 404, ApiErrorCode.unknownProvider, `no provider ${hb.providerId}; register again`);
      }
      if (check === 'rejected') {
        return sendError(
          reply,
          401,
          ApiErrorCode.credentialRejected,
          `the credential is not the current one for ${hb.providerId}`,
        );
      }
      if (typeof check === 'object' && 'leftAt' in check) {
        return sendError(
          reply,
          401,
          ApiErrorCode.credentialRejected,
          `provider ${hb.providerId} left the cluster at ${check.leftAt} (it deregistered itself); ` +
            'to contribute again, join with an enrollment token',
        );
      }
      if (typeof check === 'object') {
        return sendError(
          reply,
          401,
          ApiErrorCode.credentialRejected,
          `provider ${hb.providerId} was revoked by the cluster's operator at ${check.revokedAt}; ` +
            'this machine no longer contributes to the cluster',
        );
      }
      request.limitKey = hb.providerId;
      if (await limit.heartbeatPerProvider(request, reply)) return reply;
      const at = now();
      const outcome = store.acceptHeartbeat(hb, interval, at, network, view);
      if (outcome.kind === 'unknown_provider') {
        return sendError(reply, 404, ApiErrorCode.unknownProvider, `no provider ${hb.providerId}; register again`);
      }
      if (outcome.kind === 'key_in_use') return keyInUse(request, reply, outcome.holderProviderId);
      if (outcome.kind === 'held') {
        request.log.info(
          { providerId: hb.providerId, bootId: hb.bootId, holderBootId: outcome.holderBootId },
          'heartbeat refused: another boot holds the identity',
        );
        reply.header('retry-after', String(outcome.retryAfterSeconds));
        return sendError(
          reply,
          409,
          ApiErrorCode.identityInUse,
          `another agent is running as ${hb.providerId} and heartbeating; retry in ${outcome.retryAfterSeconds} s ` +
            '(it is taken over once that agent misses its heartbeats); if both run, stop the copy or give it its ' +
            'own state volume',
        );
      }
      if (outcome.reason === 'holder_stopped' || outcome.reason === 'lease_expired') {
        request.log.info(
          {
            providerId: hb.providerId,
            bootId: hb.bootId,
            previousBootId: outcome.previousBootId,
            reason: outcome.reason,
          },
          'identity taken over by a new boot',
        );
      }
      if (outcome.keyRotated)
        request.log.info({ providerId: hb.providerId }, 'WireGuard key replaced (the tunnel volume is new)');
      if (outcome.addressMissing)
        request.log.error({ providerId: hb.providerId, network: network?.cidr }, 'no overlay address is free');
      const body: HeartbeatResponse = {
        ok: true,
        heartbeatIntervalSeconds: interval,
        serverTime: at.toISOString(),
        cluster: access(outcome.peer),
      };
      return reply.code(200).send(body);
    });

    // Leaving for good, by the provider's own credential; no body. Unknown, replaced, revoked or already left: all
    // 401, so a retry after a lost answer reads as "already gone" (the caller's goal holds either way).
    api.post(DEREGISTER_PATH, limitedBy(limit.deregisterPerClient), async (request, reply) => {
      const credential = providerCredential(request, reply);
      if (credential === null) return reply;
      const outcome = store.deregister(credential, now());
      if (outcome.kind === 'rejected') {
        if (outcome.reason !== 'unknown') request.providerId = outcome.providerId;
        const why =
          outcome.reason === 'revoked'
            ? `its provider ${outcome.providerId} was revoked by the cluster's operator at ${outcome.revokedAt}`
            : outcome.reason === 'left'
              ? `its provider ${outcome.providerId} left the cluster already at ${outcome.leftAt}`
              : 'it is not the current credential of any provider';
        return sendError(reply, 401, ApiErrorCode.credentialRejected, `the credential was refused: ${why}`);
      }
      request.providerId = outcome.providerId;
      request.log.info({ providerId: outcome.providerId, leftAt: outcome.leftAt }, 'provider left the cluster');
      const body: DeregisterResponse = { ok: true, providerId: outcome.providerId, leftAt: outcome.leftAt };
      return reply.code(200).send(body);
    });

    const syncOptions = { ...limitedBy(limit.gatewaySyncPerClient), bodyLimit: GATEWAY_SYNC_BODY_LIMIT_BYTES };
    api.post('/api/gateway/sync', syncOptions, async (request, reply) => {
      if (gateway === undefined) {
        return sendError(
          reply,
          404,
          ApiErrorCode.noGateway,
          'this manager runs without a gateway (providers join directly); start it with --gateway-token-file',
        );
      }
      const token = bearerToken(request.headers.authorization);
      if (token === null || !secretsEqual(token, gateway.token)) {
        return sendError(
          reply,
          401,
          ApiErrorCode.gatewayTokenRejected,
          'the gateway token is missing or wrong: Authorization: Bearer <the token of --gateway-token-file>',
        );
      }
      const parsed = GatewaySyncRequest.safeParse(request.body);
      if (!parsed.success) return sendError(reply, 400, ApiErrorCode.invalidRequest, describeIssues(parsed.error));
      const at = now();
      const before = store.getGateway();
      const result = store.syncGateway(parsed.data, gateway.network, at);
      if (before?.publicKey !== parsed.data.publicKey || before.endpoint !== parsed.data.endpoint) {
        request.log.info(
          { endpoint: parsed.data.endpoint, routes: parsed.data.routes, first: before === null },
          before === null ? 'gateway synced for the first time' : 'gateway key or endpoint changed',
        );
      }
      if (result.unaddressed.length > 0) {
        request.log.error(
          { network: gateway.network.cidr, providers: result.unaddressed.length },
          'providers left out of the overlay: no overlay address is free',
        );
      }
      const body: GatewaySyncResponse = {
        network: gateway.network.cidr,
        gatewayAddress: gateway.network.gatewayAddress,
        peers: result.peers,
        syncIntervalSeconds: GATEWAY_SYNC_SECONDS,
        serverTime: at.toISOString(),
      };
      return reply.code(200).send(body);
    });
  });

  /** 409 wireguard_key_in_use, with Retry-After one interval (the copy may be gone by then): nothing was stored. */
  function keyInUse(request: FastifyRequest, reply: FastifyReply, holderProviderId: string): FastifyReply {
    request.log.warn(
      { providerId: request.providerId ?? undefined, holderProviderId },
      'WireGuard key refused: another provider holds it',
    );
    reply.header('retry-after', String(interval));
    return sendError(
      reply,
      409,
      ApiErrorCode.wireguardKeyInUse,
      `another provider (${holderProviderId}) holds this WireGuard key: two machines share one tunnel volume; give ` +
        'each machine its own tunnel volume (remove the copied one to make a new key)',
    );
  }

  app.get('/api/providers', async (request, reply) => {
    if (!requireAdmin(request, reply)) return reply;
    const query = ProviderListQuery.safeParse(request.query);
    if (!query.success) return sendError(reply, 400, ApiErrorCode.invalidRequest, describeIssues(query.error));
    const { limit, after } = query.data;
    // One more than the page: whether a next page exists, without a second query.
    const rows = store.listProviders(interval, now(), { limit: limit + 1, after });
    if (rows === null)
      return sendError(
        reply,
        400,
        ApiErrorCode.invalidRequest,
        `after: no provider ${after}; pass the nextAfter of the previous page, e.g. after=<its nextAfter>`,
      );
    const providers = rows.length > limit ? rows.slice(0, limit) : rows;
    const body: ProviderList = {
      providers,
      nextAfter: rows.length > limit ? (providers[providers.length - 1]?.providerId ?? null) : null,
    };
    return reply.code(200).send(body);
  });

  app.get<{ Params: { id: string } }>('/api/providers/:id', async (request, reply) => {
    if (!requireAdmin(request, reply)) return reply;
    const summary = store.getProvider(request.params.id, interval, now());
    if (summary === null)
      return sendError(reply, 404, ApiErrorCode.unknownProvider, `no provider ${request.params.id}`);
    request.providerId = summary.providerId;
    return reply.code(200).send(summary);
  });

  // Revoked stays revoked: heartbeats get 401, the gateway drops the peer on its next sync, the installId cannot
  // register again (409). Letting the machine in again takes a new installId (a new state volume).
  app.post<{ Params: { id: string } }>('/api/providers/:id/revoke', async (request, reply) => {
    if (!requireAdmin(request, reply)) return reply;
    const at = now();
    if (!store.revokeProvider(request.params.id, at))
      return sendError(reply, 404, ApiErrorCode.unknownProvider, `no provider ${request.params.id}`);
    const summary = store.getProvider(request.params.id, interval, at);
    if (summary === null) throw new Error('provider vanished after revoke');
    request.providerId = summary.providerId;
    request.log.warn({ providerId: summary.providerId, revokedAt: summary.revokedAt }, 'provider revoked');
    return reply.code(200).send(summary);
  });

  return app;
}

export type ManagerServer = ReturnType<typeof buildServer>;
