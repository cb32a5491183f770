import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument, renderOpenApiDocument } from '../src/openapi.js';
import { OPENAPI_FILE, validateAgainstOpenApi } from '../src/openapi-check.js';
import { heartbeatBody, registerBody } from './helpers.js';

describe('manager/openapi.json', () => {
  it('is exactly what the generator produces (run `npm run openapi -w manager` after changing the schemas)', () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(renderOpenApiDocument());
  });

  it('is OpenAPI 3.1 with the protocol schemas as components and every route', () => {
    const doc = buildOpenApiDocument() as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/deregister',
        '/api/gateway/sync',
        '/api/heartbeat',
        '/api/providers',
        '/api/providers/{id}',
        '/api/providers/{id}/revoke',
        '/api/register',
        '/healthz',
      ].sort(),
    );
    for (const name of [
      'RegisterRequest',
      'RegisterResponse',
      'HeartbeatRequest',
      'HeartbeatResponse',
      'ProviderSummary',
      'ProviderList',
      'ErrorBody',
      'GatewaySyncRequest',
      'GatewaySyncResponse',
    ]) {
      expect(doc.components.schemas).toHaveProperty(name);
    }
    expect(JSON.stringify(doc)).not.toContain('"$schema"');
  });
});

describe('the documented answers', () => {
  type Responses = Record<string, { headers?: Record<string, { required?: boolean }> }>;
  const doc = buildOpenApiDocument() as { paths: Record<string, { post: { responses: Responses } }> };

  it('include 409 and 429 for register and heartbeat, with Retry-After where the manager always sends it', () => {
    const register = doc.paths['/api/register']?.post.responses ?? {};
    const heartbeat = doc.paths['/api/heartbeat']?.post.responses ?? {};
    expect(JSON.stringify(register['409'])).toContain('install_id_taken');
    expect(JSON.stringify(heartbeat['409'])).toContain('identity_in_use');
    expect(heartbeat['409']?.headers?.['Retry-After']?.required).toBe(true);
    for (const responses of [register, heartbeat]) {
      expect(JSON.stringify(responses['429'])).toContain('rate_limited');
      expect(responses['429']?.headers?.['Retry-After']?.required).toBe(true);
    }
  });

  it('describe currentCredential in RegisterRequest', () => {
    const schemas = (buildOpenApiDocument() as { components: { schemas: Record<string, unknown> } }).components.schemas;
    expect(schemas.RegisterRequest).toMatchObject({
      properties: { currentCredential: { type: 'string', minLength: 32, maxLength: 256 } },
    });
  });
});

describe('validateAgainstOpenApi', () => {
  it('checks documented response headers when given', () => {
    const body = { error: { code: 'identity_in_use', message: 'another agent' } };
    expect(validateAgainstOpenApi('/api/heartbeat', 'POST', 'response', 409, body, { 'retry-after': '7' })).toEqual([]);
    expect(validateAgainstOpenApi('/api/heartbeat', 'POST', 'response', 409, body, {})).toEqual([
      'POST /api/heartbeat 409 response: header Retry-After is missing',
    ]);
    expect(validateAgainstOpenApi('/api/heartbeat', 'POST', 'response', 409, body, { 'retry-after': '0' })[0]).toMatch(
      /header Retry-After "0" does not match/,
    );
    expect(
      validateAgainstOpenApi('/api/register', 'POST', 'response', 429, body, { 'retry-after': 'soon' })[0],
    ).toMatch(/header Retry-After "soon" does not match/);
  });

  it('accepts valid requests and finds problems in invalid ones', () => {
    expect(validateAgainstOpenApi('/api/register', 'POST', 'request', undefined, registerBody())).toEqual([]);
    expect(validateAgainstOpenApi('/api/heartbeat', 'post', 'request', undefined, heartbeatBody('prv-abc'))).toEqual(
      [],
    );
    const problems = validateAgainstOpenApi(
      '/api/register',
      'POST',
      'request',
      undefined,
      registerBody({ cpuCores: 0 }),
    );
    expect(problems.join('\n')).toContain('/cpuCores');
    expect(
      validateAgainstOpenApi(
        '/api/heartbeat',
        'POST',
        'request',
        undefined,
        heartbeatBody('prv-abc', { sentAt: 'yesterday' }),
      ),
    ).not.toEqual([]);
  });

  it('checks responses by status, including undocumented ones and extra properties', () => {
    const ok = { ok: true, heartbeatIntervalSeconds: 10, serverTime: new Date().toISOString() };
    expect(validateAgainstOpenApi('/api/heartbeat', 'POST', 'response', 200, ok)).toEqual([]);
    expect(validateAgainstOpenApi('/api/heartbeat', 'POST', 'response', 200, { ...ok, extra: 1 })).not.toEqual([]);
    expect(validateAgainstOpenApi('/api/heartbeat', 'POST', 'response', 418, ok)[0]).toMatch(/not documented/);
    const err = { error: { code: 'unknown_provider', message: 'no provider' } };
    expect(validateAgainstOpenApi('/api/providers/prv-abcdefabcdef', 'GET', 'response', 404, err)).toEqual([]);
    expect(validateAgainstOpenApi('/api/providers', 'DELETE', 'response', 200, {})[0]).toMatch(/no DELETE/);
    expect(validateAgainstOpenApi('/elsewhere', 'GET', 'response', 200, {})[0]).toMatch(/no path/);
    expect(validateAgainstOpenApi('/api/register', 'POST', 'response', undefined, {})[0]).toMatch(/status/);
  });
});
