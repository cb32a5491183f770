import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ApiErrorCode, ErrorBody, type GatewaySyncRequest, GatewaySyncResponse } from '@ray-agent/protocol';
import { Agent, request } from 'undici';

export const GATEWAY_SYNC_PATH = '/api/gateway/sync';

/** A sync that failed; `message` is a sentence naming the fix, never holding the token. */
export class GatewaySyncError extends Error {
  override name = 'GatewaySyncError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 10_000;
const MAX_BODY = 16 * 1024 * 1024;

/** POST /api/gateway/sync over HTTPS. Certificate verification is always on; a private CA is added to the public roots. */
export class GatewayClient {
  private readonly dispatcher: Agent;
  private readonly url: string;

  constructor(
    manager: URL,
    private readonly token: string,
    caFile?: string,
  ) {
    this.url = new URL(GATEWAY_SYNC_PATH, manager).toString();
    const ca = caFile ? [...rootCertificates, readFileSync(caFile, 'utf8')] : undefined;
    this.dispatcher = new Agent({
      connect: { ...(ca ? { ca } : {}), rejectUnauthorized: true, timeout: TIMEOUT_MS },
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
  }

  async sync(body: GatewaySyncRequest): Promise<GatewaySyncResponse> {
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(this.url, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          authorization: `Bearer ${this.token}`,
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new GatewaySyncError(`the manager at ${this.url} could not be reached (${causeOf(error)})`);
    }
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      throw new GatewaySyncError(`the manager's answer broke off (${causeOf(error)})`, response.statusCode);
    }
    if (text.length > MAX_BODY) throw new GatewaySyncError('the manager sent an oversized answer', response.statusCode);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (response.statusCode === 200) {
      const parsed = GatewaySyncResponse.safeParse(json);
      if (parsed.success) return parsed.data;
      throw new GatewaySyncError(
        `the manager answered with an unexpected body: ${parsed.error.issues[0]?.message}`,
        200,
      );
    }
    const error = ErrorBody.safeParse(json);
    const code = error.success ? error.data.error.code : undefined;
    if (code === ApiErrorCode.gatewayTokenRejected)
      throw new GatewaySyncError(
        'the manager rejected the gateway token: --token-file must hold the token the manager was started with (serve --gateway-token-file)',
        response.statusCode,
      );
    if (code === ApiErrorCode.noGateway)
      throw new GatewaySyncError(
        'the manager runs without a gateway: start it with serve --gateway-token-file',
        response.statusCode,
      );
    const said = error.success ? error.data.error.message : text.replace(/\s+/g, ' ').slice(0, 200);
    throw new GatewaySyncError(`the manager answered ${response.statusCode}: ${said}`, response.statusCode);
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

function causeOf(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_SOCKET') {
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code))
        return `${code}: its TLS certificate was refused; give --manager-ca-file for a private CA`;
      return code;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return error instanceof Error ? error.message : String(error);
}
