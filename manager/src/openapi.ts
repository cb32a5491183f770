import {
  AgentState,
  DEREGISTER_PATH,
  DeregisterResponse,
  ErrorBody,
  GATEWAY_SYNC_SECONDS,
  GatewaySyncRequest,
  GatewaySyncResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  IDENTITY_LEASE_INTERVALS,
  PROVIDER_PAGE_DEFAULT,
  PROVIDER_PAGE_MAX,
  ProviderHealth,
  ProviderList,
  ProviderSummary,
  RegisterRequest,
  RegisterResponse,
} from '@ray-agent/protocol';
import { z } from 'zod';

type JsonObject = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * JSON Schemas of a set of zod schemas, as OpenAPI components. Requests are described as zod accepts them
 * (unknown properties are ignored), responses as the manager produces them (no other properties).
 */
function componentSchemas(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}` }) as {
    schemas: Record<string, JsonObject>;
  };
  const result: Record<string, JsonObject> = {};
  for (const [id, schema] of Object.entries(out.schemas)) {
    const { $schema: _schema, $id: _id, ...rest } = schema;
    result[id] = rest;
  }
  return result;
}

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('ErrorBody'), description);

/** An error answer that always carries Retry-After: whole seconds to wait before the next attempt. */
const errorWithRetryAfter = (description: string, retryAfter: string) => ({
  ...error(description),
  headers: {
    'Retry-After': { required: true, description: retryAfter, schema: { type: 'integer', minimum: 1 } },
  },
});

const rateLimited = (description: string) =>
  errorWithRetryAfter(
    `${description} (code rate_limited). The limits are options of ray-agent-manager serve.`,
    "Seconds until the limit's window resets.",
  );

const common = {
  '400': error('The body is not a valid document; the message names the field (code invalid_request).'),
  '413': error('The body is larger than 64 KiB (code payload_too_large).'),
  '415': error('The body is not application/json (code unsupported_media_type).'),
  '500': error('Internal error (code internal_error).'),
  '503': error('The manager is shutting down.'),
};

/** The OpenAPI 3.1 document of the manager's API, generated from the protocol's zod schemas. */
export function buildOpenApiDocument(): JsonObject {
  const schemas = {
    ...componentSchemas({ RegisterRequest, HeartbeatRequest, GatewaySyncRequest }, 'input'),
    ...componentSchemas(
      {
        RegisterResponse,
        HeartbeatResponse,
        DeregisterResponse,
        GatewaySyncResponse,
        ProviderSummary,
        ProviderList,
        ProviderHealth,
        AgentState,
        ErrorBody,
      },
      'output',
    ),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'ray-agent manager provider API',
      version: '1',
      description:
        'The server side of the provider API spoken by the ray-agent container: registration with an enrollment ' +
        'token, heartbeats with the issued credential, deregistration when the provider leaves, the WireGuard ' +
        'gateway sync, and the operator listing and revocation. HTTPS only. Every error answer is an ErrorBody. Register and heartbeat answer `cluster`: how ' +
        'to join, over the overlay (only when the manager has a gateway that has synced, and the agent sent its ' +
        'WireGuard key) or directly (`overlay: null`), and the Ray token when the cluster uses one. ' +
        'Generated from the zod schemas in @ray-agent/protocol; do not edit by hand.',
    },
    components: {
      securitySchemes: {
        enrollmentToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'An enrollment token created by the operator.',
        },
        providerCredential: { type: 'http', scheme: 'bearer', description: 'The credential returned by register.' },
        adminToken: { type: 'http', scheme: 'bearer', description: "The operator's admin token." },
        gatewayToken: {
          type: 'http',
          scheme: 'bearer',
          description: "The WireGuard gateway's token (ray-agent-manager serve --gateway-token-file).",
        },
      },
      schemas,
    },
    paths: {
      '/api/register': {
        post: {
          operationId: 'register',
          summary:
            'Register a provider (idempotent per installId); issues a fresh credential. A known installId needs ' +
            'its current credential (currentCredential) or the enrollment token that registered it last. With ' +
            'wireguardPublicKey and a gateway, the provider gets its overlay address: allocated once, kept across ' +
            'registrations; registering without a key forgets the stored key (direct mode).',
          security: [{ enrollmentToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: ref('RegisterRequest') } } },
          responses: {
            '200': json(ref('RegisterResponse'), 'Registered; the same installId always gets the same providerId.'),
            ...common,
            '401': error(
              'The enrollment token is missing, unknown, revoked or expired (code enrollment_token_rejected).',
            ),
            '409': error(
              'The installId is already registered and the request proves no right to it: neither currentCredential ' +
                'is its current credential nor is the enrollment token the one that registered it last ' +
                '(code install_id_taken); or its provider was revoked by the operator: revoked stays revoked, and ' +
                'a machine let in again needs a new state volume (a new installId) (code install_id_taken, the ' +
                'message says so); or another live provider holds wireguardPublicKey (code wireguard_key_in_use). ' +
                'Nothing was changed.',
            ),
            '503': error(
              'The manager is shutting down, or the overlay network has no free address for another provider ' +
                '(code overlay_full; the operator widens --overlay-network or revokes providers).',
            ),
            '429': rateLimited(
              'Too many registrations from this client address, or (once the enrollment token checked out) of this installId',
            ),
          },
        },
      },
      '/api/heartbeat': {
        post: {
          operationId: 'heartbeat',
          summary:
            "Report a provider's state; authorized by the provider's current credential. The boot that sends it " +
            'holds the identity lease while its heartbeats keep coming. A wireguardPublicKey other than the stored ' +
            'one replaces it (key rotation); the answer carries the current cluster access.',
          security: [{ providerCredential: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: ref('HeartbeatRequest') } } },
          responses: {
            '200': json(ref('HeartbeatResponse'), 'Stored.'),
            ...common,
            '401': error(
              'The credential is missing or not the current one of this provider, or the operator revoked the ' +
                'provider, or it deregistered itself (code credential_rejected): the agent leaves the cluster.',
            ),
            '404': error('No such provider; register again (code unknown_provider).'),
            '409': errorWithRetryAfter(
              'Another boot (agent process) of this provider holds its identity lease: its last heartbeat is less ' +
                `than ${IDENTITY_LEASE_INTERVALS} heartbeat intervals old and it did not say stopped (code identity_in_use). ` +
                'Once the lease runs out, the next boot to heartbeat takes the identity over. Or another live ' +
                'provider holds wireguardPublicKey (code wireguard_key_in_use); nothing was stored.',
              "Seconds until the holder's lease runs out, if it sends no heartbeat meanwhile (identity_in_use); " +
                'one heartbeat interval (wireguard_key_in_use).',
            ),
            '429': rateLimited(
              'Too many heartbeats from this client address, or (once the credential checked out) of this provider',
            ),
          },
        },
      },
      [DEREGISTER_PATH]: {
        post: {
          operationId: 'deregister',
          summary:
            'The provider leaves the cluster for good (the person chose "Leave this cluster"); authorized by its ' +
            'current credential alone, no request body. From then on that credential gets 401, the gateway drops ' +
            "the provider's peer on its next sync, and the listing keeps the provider with health left and leftAt. " +
            'Leaving is not revocation: the same installId may register again with a valid enrollment token and ' +
            'comes back as the same provider with a new credential (a machine that left normally brings a new ' +
            'installId anyway, since leaving removes its state volume).',
          security: [{ providerCredential: [] }],
          responses: {
            '200': json(ref('DeregisterResponse'), 'The provider has left.'),
            '401': error(
              'The credential is missing or not the current one of a live provider: unknown, replaced, revoked, or ' +
                'its provider left already (code credential_rejected). A retry after a lost answer gets this: the ' +
                'provider is gone either way.',
            ),
            '429': rateLimited('Too many deregistrations from this client address'),
            '500': common['500'],
            '503': common['503'],
          },
        },
      },
      '/api/gateway/sync': {
        post: {
          operationId: 'gatewaySync',
          summary:
            `The WireGuard gateway reports its key, endpoint, routes and peers (every ${GATEWAY_SYNC_SECONDS} s) and ` +
            'gets the peers to admit: exactly the registered, non-revoked providers with a key, each with its ' +
            'overlay address. Anything else is removed at the gateway.',
          security: [{ gatewayToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: ref('GatewaySyncRequest') } } },
          responses: {
            '200': json(ref('GatewaySyncResponse'), 'Recorded; the peers to admit.'),
            ...common,
            '413': error('The body is larger than 16 MiB (code payload_too_large).'),
            '401': error('The gateway token is missing or wrong (code gateway_token_rejected).'),
            '404': error('This manager runs without a gateway: no --gateway-token-file (code no_gateway).'),
            '429': rateLimited('Too many gateway syncs from this client address'),
          },
        },
      },
      '/api/providers': {
        get: {
          operationId: 'listProviders',
          summary:
            'List providers with their derived health, a page at a time, in registration order (registeredAt, ' +
            "then providerId). Pass the answer's nextAfter as `after` for the next page; null: the last page.",
          security: [{ adminToken: [] }],
          parameters: [
            {
              name: 'limit',
              in: 'query',
              required: false,
              description: `Providers per page, 1 to ${PROVIDER_PAGE_MAX}.`,
              schema: { type: 'integer', minimum: 1, maximum: PROVIDER_PAGE_MAX, default: PROVIDER_PAGE_DEFAULT },
            },
            {
              name: 'after',
              in: 'query',
              required: false,
              description: 'The providerId of the last provider of the previous page (its nextAfter).',
              schema: { type: 'string' },
            },
          ],
          responses: {
            '200': json(ref('ProviderList'), 'One page of providers.'),
            '400': error('limit is not a whole number in range, or after names no provider (code invalid_request).'),
            '401': error('The admin token is missing or wrong (code admin_token_rejected).'),
            '500': common['500'],
            '503': common['503'],
          },
        },
      },
      '/api/providers/{id}': {
        get: {
          operationId: 'getProvider',
          summary: 'One provider with its derived health.',
          security: [{ adminToken: [] }],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': json(ref('ProviderSummary'), 'The provider.'),
            '401': error('The admin token is missing or wrong (code admin_token_rejected).'),
            '404': error('No such provider (code unknown_provider).'),
            '500': common['500'],
            '503': common['503'],
          },
        },
      },
      '/api/providers/{id}/revoke': {
        post: {
          operationId: 'revokeProvider',
          summary:
            'Revoke a provider; revoked stays revoked. Its heartbeats get 401 credential_rejected (the agent ' +
            'leaves the cluster), the gateway drops its peer on its next sync, and its installId cannot register ' +
            'again (409 install_id_taken): a machine let in again needs a new state volume and so gets a new ' +
            'provider id. Revoking twice keeps the first revokedAt. No request body.',
          security: [{ adminToken: [] }],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': json(ref('ProviderSummary'), 'The provider, revoked.'),
            '401': error('The admin token is missing or wrong (code admin_token_rejected).'),
            '404': error('No such provider (code unknown_provider).'),
            '500': common['500'],
            '503': common['503'],
          },
        },
      },
      '/healthz': {
        get: {
          operationId: 'healthz',
          summary: 'Liveness; no authorization.',
          security: [],
          responses: {
            '200': json(
              { type: 'object', properties: { ok: { const: true } }, required: ['ok'], additionalProperties: false },
              'The manager is up.',
            ),
            '503': common['503'],
          },
        },
      },
    },
  };
}

/** The document as written to manager/openapi.json. */
export function renderOpenApiDocument(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}
