/**
 * Registering an installId the manager already knows issues a new credential only with proof: the provider's
 * current credential, or the enrollment token that registered it last (an agent retrying after a lost answer).
 * A Ray task that read the install ID and holds some other enrollment token must not take the provider over.
 */
import { ErrorBody, ProviderSummary, RegisterResponse } from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  ENROLLMENT_TOKEN,
  type HttpResult,
  heartbeatBody,
  registerBody,
  startTestServer,
  type TestServer,
} from './helpers.js';

let server: TestServer;
/** A second, valid enrollment token: another fleet's, or one a task found on another machine. */
let otherToken: string;

beforeEach(async () => {
  server = await startTestServer();
  otherToken = server.store.createEnrollmentToken({ label: 'another fleet' }).token;
});

afterEach(async () => {
  const problems = [...server.openApiProblems];
  await server.close();
  expect(problems, 'responses must match manager/openapi.json').toEqual([]);
});

function registerWith(token: string, overrides: Record<string, unknown> = {}): Promise<HttpResult> {
  return server.call('POST', '/api/register', { token, body: registerBody(overrides), checkRequest: true });
}

async function registered(res: HttpResult): Promise<RegisterResponse> {
  expect(res.status, res.text).toBe(200);
  return RegisterResponse.parse(res.body);
}

function heartbeatStatus(reg: RegisterResponse, credential = reg.credential): Promise<number> {
  return server
    .call('POST', '/api/heartbeat', { token: credential, body: heartbeatBody(reg.providerId) })
    .then((res) => res.status);
}

async function registrations(providerId: string): Promise<number> {
  const res = await server.call('GET', `/api/providers/${providerId}`, { token: ADMIN_TOKEN });
  return ProviderSummary.parse(res.body).registrations;
}

function expectTaken(res: HttpResult): void {
  expect(res.status, res.text).toBe(409);
  const { code, message } = ErrorBody.parse(res.body).error;
  expect(code).toBe('install_id_taken');
  expect(message).toContain('currentCredential');
  expect(message).toContain('the enrollment token that registered it');
}

describe('registering a known installId again', () => {
  it('with the token that registered it and no credential (a retry after a lost answer): same provider', async () => {
    const first = await registered(await registerWith(ENROLLMENT_TOKEN));
    const retry = await registered(await registerWith(ENROLLMENT_TOKEN));
    expect(retry.providerId).toBe(first.providerId);
    expect(await heartbeatStatus(retry)).toBe(200);
  });

  it('with another valid token and no credential: 409 install_id_taken, and nothing changes', async () => {
    const first = await registered(await registerWith(ENROLLMENT_TOKEN));
    expectTaken(await registerWith(otherToken, { hostname: 'attacker' }));
    expect(await heartbeatStatus(first)).toBe(200);
    expect(await registrations(first.providerId)).toBe(1);
    const summary = ProviderSummary.parse(
      (await server.call('GET', `/api/providers/${first.providerId}`, { token: ADMIN_TOKEN })).body,
    );
    expect(summary.hostname).toBe('worker-1.example');
  });

  it('with another token and the current credential: a new credential, and the old one stops working', async () => {
    const first = await registered(await registerWith(ENROLLMENT_TOKEN));
    const rotated = await registered(await registerWith(otherToken, { currentCredential: first.credential }));
    expect(rotated.providerId).toBe(first.providerId);
    expect(rotated.credential).not.toBe(first.credential);
    expect(await heartbeatStatus(first, first.credential)).toBe(401);
    expect(await heartbeatStatus(rotated)).toBe(200);
    // The token that registered it last is now the other one: the first token alone is no proof any more.
    expectTaken(await registerWith(ENROLLMENT_TOKEN));
    expect(await registrations(first.providerId)).toBe(2);
  });

  it('with another token and a wrong or superseded credential: 409', async () => {
    const first = await registered(await registerWith(ENROLLMENT_TOKEN));
    const second = await registered(await registerWith(ENROLLMENT_TOKEN));
    expectTaken(await registerWith(otherToken, { currentCredential: first.credential }));
    expectTaken(await registerWith(otherToken, { currentCredential: 'x'.repeat(43) }));
    expect(await heartbeatStatus(second)).toBe(200);
  });

  it('after a lost answer to a rotation, the retry with the same token and the stale credential gets through', async () => {
    const first = await registered(await registerWith(ENROLLMENT_TOKEN));
    // The rotation's answer never arrived: the agent still holds `first.credential`.
    await registered(await registerWith(otherToken, { currentCredential: first.credential }));
    const retry = await registered(await registerWith(otherToken, { currentCredential: first.credential }));
    expect(retry.providerId).toBe(first.providerId);
    expect(await heartbeatStatus(retry)).toBe(200);
  });

  it('rejects a malformed currentCredential with 400 naming the field', async () => {
    const res = await server.call('POST', '/api/register', {
      token: ENROLLMENT_TOKEN,
      body: registerBody({ currentCredential: 'short' }),
    });
    expect(res.status).toBe(400);
    expect(ErrorBody.parse(res.body).error.message).toMatch(/^currentCredential: /);
  });

  it('logs the refusal without either secret', async () => {
    const first = await registered(await registerWith(ENROLLMENT_TOKEN));
    const wrongCredential = 'stale-credential-SECRET-0123456789abcdefghijkl';
    expectTaken(await registerWith(otherToken, { currentCredential: wrongCredential }));
    await registered(await registerWith(otherToken, { currentCredential: first.credential }));
    const logs = server.logs.text;
    expect(logs).toContain('registration of a known installId refused');
    expect(logs).toContain('"currentCredentialSent":true');
    for (const secret of [ENROLLMENT_TOKEN, otherToken, first.credential, wrongCredential]) {
      expect(logs).not.toContain(secret);
    }
  });
});
