import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { createSecureContext, rootCertificates } from 'node:tls';
import {
  ErrorBody,
  type HeartbeatRequest,
  HeartbeatResponse,
  type RegisterRequest,
  RegisterResponse,
} from '@ray-agent/protocol';
import type { z } from 'zod';
import type { ManagerEndpoints } from '../config/manager-url.js';

export type FailureKind = 'network' | 'timeout' | 'tls' | 'http' | 'invalid_response';

/**
 * One failed call, classified once for the whole agent: network trouble, timeouts, 408/429/5xx and undecodable
 * bodies are worth retrying; other 4xx and certificate failures are not, because retrying cannot fix them.
 */
export class ManagerError extends Error {
  override name = 'ManagerError';
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly status?: number,
    readonly code?: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  get retryable(): boolean {
    if (this.kind === 'tls') return false;
    if (this.kind !== 'http') return true;
    const status = this.status ?? 0;
    return status === 408 || status === 429 || status >= 500;
  }
}

const MAX_BODY = 64 * 1024;
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

export interface ManagerClientOptions {
  caFile?: string | undefined;
  timeoutMs?: number;
}

/**
 * The manager's two calls over node:https with a keep-alive agent. (undici did this before; it held about 8 MiB of
 * the idle agent's heap, and its HTTP parser is WebAssembly, which V8's lite mode turns off.)
 */
export class ManagerClient {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(
    private readonly endpoints: ManagerEndpoints,
    options: ManagerClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    // Verification stays on; a private CA is added to, never replaces, the public roots.
    const ca = options.caFile ? [...rootCertificates, readFileSync(options.caFile, 'utf8')] : undefined;
    // One secure context for every connection: parsing ~140 root certificates again at each reconnect costs tens
    // of milliseconds of CPU. Sessions are resumed from the agent's cache.
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 2,
      rejectUnauthorized: true,
      ...(ca ? { secureContext: createSecureContext({ ca }) } : {}),
    });
  }

  register(body: RegisterRequest, token: string, signal?: AbortSignal) {
    return this.post(this.endpoints.register, body, token, RegisterResponse, signal);
  }

  heartbeat(body: HeartbeatRequest, credential: string, signal?: AbortSignal) {
    return this.post(this.endpoints.heartbeat, body, credential, HeartbeatResponse, signal);
  }

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }

  private async post<T extends z.ZodType>(
    url: string,
    body: unknown,
    bearer: string,
    schema: T,
    signal?: AbortSignal,
  ): Promise<{ body: z.infer<T>; date: Date | undefined }> {
    let response: IncomingMessage;
    // One timer for the whole call (connect, headers, body), as the person's stop signal also ends it.
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const payload = JSON.stringify(body);
    try {
      response = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(url, {
          method: 'POST',
          agent: this.agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            authorization: `Bearer ${bearer}`,
            accept: 'application/json',
          },
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        req.once('response', resolve);
        req.once('error', reject);
        req.end(payload);
      });
    } catch (error) {
      throw classify(error, timeout.aborted);
    }
    const statusCode = response.statusCode ?? 0;
    let text: string | undefined;
    try {
      text = await readLimited(response);
    } catch (error) {
      // The headers came but the body did not (connection reset, body timeout, the abort timer mid-body): the
      // same network trouble as before the headers, so the same retryable classification.
      throw classify(error, timeout.aborted, statusCode);
    }
    const date = parseDate(response.headers.date);
    if (text === undefined)
      throw new ManagerError('invalid_response', `the manager sent more than ${MAX_BODY} bytes`, statusCode);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (statusCode >= 200 && statusCode < 300) {
      const parsed = schema.safeParse(json);
      if (!parsed.success)
        throw new ManagerError(
          'invalid_response',
          `the manager answered ${statusCode} with an unexpected body: ${excerpt(text)}`,
          statusCode,
        );
      return { body: parsed.data, date };
    }
    const error = ErrorBody.safeParse(json);
    const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
    if (!error.success) {
      // A proxy's HTML page is not the manager speaking: treat it as retryable, whatever its status.
      const kind = statusCode >= 400 && statusCode < 500 && json !== undefined ? 'http' : 'invalid_response';
      throw new ManagerError(
        kind,
        `the manager answered ${statusCode}: ${excerpt(text)}`,
        statusCode,
        undefined,
        retryAfterMs,
      );
    }
    throw new ManagerError('http', error.data.error.message, statusCode, error.data.error.code, retryAfterMs);
  }
}

function classify(error: unknown, timedOut: boolean, status?: number): ManagerError {
  const code = causeCode(error);
  // Mid-body, the status line is a fact worth logging, but the failure is the transport's, not an HTTP answer.
  const during = status === undefined ? '' : ` while it was sending its ${status} answer`;
  if (code && TLS_CODES.has(code))
    return new ManagerError(
      'tls',
      `the manager's TLS certificate was refused (${code}); set MANAGER_CA_FILE if it uses a private CA`,
      undefined,
      code,
    );
  if (timedOut)
    return new ManagerError(
      'timeout',
      status === undefined ? 'the manager did not answer in time' : `the manager stalled${during}`,
      undefined,
      code ?? 'TIMEOUT',
    );
  const detail =
    code === 'ENOTFOUND' || code === 'EAI_AGAIN'
      ? "the manager's host name was not found"
      : code === 'ECONNREFUSED'
        ? 'the manager refused the connection'
        : status !== undefined
          ? `the connection to the manager broke${during} (${code ?? (error as Error).message})`
          : `the manager could not be reached (${code ?? (error as Error).message})`;
  return new ManagerError('network', detail, undefined, code);
}

function causeCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'ABORT_ERR') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy?: () => void }): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY) {
      body.destroy?.();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat || '(empty body)';
}

function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function parseDate(value: string | string[] | undefined): Date | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const at = text ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? undefined : new Date(at);
}
