import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type GatewayPeer, type GatewaySyncRequest, GatewaySyncRequest as SyncRequest } from '@ray-agent/protocol';

/**
 * A stand-in for the manager's POST /api/gateway/sync over real TLS: it answers with the peers the test sets, checks
 * the Bearer token and the request body with the protocol's schema, and keeps what the gateway reported.
 */
export class StandInManager {
  peers: GatewayPeer[] = [];
  /** When set, every sync gets this status (a manager that is restarting or broken). */
  failWith: number | undefined;
  requests: GatewaySyncRequest[] = [];
  failedRequests = 0;
  private server: Server | undefined;

  constructor(
    private readonly tls: { certFile: string; keyFile: string },
    private readonly token: string,
  ) {}

  async start(): Promise<URL> {
    this.server = createServer(
      { cert: readFileSync(this.tls.certFile), key: readFileSync(this.tls.keyFile) },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const send = (status: number, body: unknown) => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(body));
          };
          if (req.method !== 'POST' || req.url !== '/api/gateway/sync')
            return send(404, { error: { code: 'not_found', message: 'no such route' } });
          if (req.headers.authorization !== `Bearer ${this.token}`)
            return send(401, { error: { code: 'gateway_token_rejected', message: 'wrong gateway token' } });
          if (this.failWith !== undefined) {
            this.failedRequests += 1;
            return send(this.failWith, { error: { code: 'unavailable', message: 'the manager is restarting' } });
          }
          const parsed = SyncRequest.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          if (!parsed.success) return send(400, { error: { code: 'invalid_request', message: parsed.error.message } });
          this.requests.push(parsed.data);
          send(200, {
            network: '100.96.0.0/16',
            gatewayAddress: '100.96.0.1',
            peers: this.peers,
            syncIntervalSeconds: 1,
            serverTime: new Date().toISOString(),
          });
        });
      },
    );
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  get lastRequest(): GatewaySyncRequest | undefined {
    return this.requests[this.requests.length - 1];
  }

  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
