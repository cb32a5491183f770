import { StatusDocument } from '@ray-agent/protocol';
import axios, { type AxiosInstance } from 'axios';
import type { AgentFacts } from './view-model.js';

/**
 * Reads the agent's loopback status endpoint. A wrong or missing document is classified (unreachable or
 * outdated), never shown as a stale "all good".
 */
export class StatusPoller {
  private readonly http: AxiosInstance;

  constructor(port: number, timeoutMs = 2_000) {
    this.http = axios.create({
      baseURL: `http://127.0.0.1:${port}`,
      timeout: timeoutMs,
      // The agent refuses browser-like requests; a plain request with a loopback Host is what it expects.
      headers: { accept: 'application/json' },
      validateStatus: () => true,
      maxContentLength: 256 * 1024,
      proxy: false,
    });
  }

  async read(): Promise<AgentFacts> {
    try {
      const response = await this.http.get('/status');
      if (response.status !== 200) return { kind: 'unreachable', error: `HTTP ${response.status}` };
      const parsed = StatusDocument.safeParse(response.data);
      if (parsed.success) return { kind: 'ok', status: parsed.data };
      const version = (response.data as { schemaVersion?: unknown } | undefined)?.schemaVersion;
      return version !== 1
        ? { kind: 'outdated', schemaVersion: version }
        : { kind: 'unreachable', error: 'the status document did not validate' };
    } catch (error) {
      const code = (error as { code?: string }).code;
      return { kind: 'unreachable', error: code ?? (error as Error).message };
    }
  }
}
