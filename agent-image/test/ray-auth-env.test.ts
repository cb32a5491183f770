/**
 * Ray's token authentication reaches Ray (the node and the preflight's GCS client) only as the token's file:
 * RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH, never the token in a variable every Ray task could read.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { preflightCluster } from '../src/ray/preflight.js';
import { type RayNodeOptions, rayEnvironment } from '../src/supervisor/ray-node.js';
import { rayNodeOptions, tempDir } from './helpers.js';

const TOKEN = 'PLANTED-ray-auth-token-0f1e2d3c4b5a';
const TOKEN_FILE = '/var/lib/ray-agent/secrets/ray-auth-token';

const options = (rayAuthTokenFile?: string): RayNodeOptions => rayNodeOptions({ rayAuthTokenFile: rayAuthTokenFile });

describe("Ray's environment", () => {
  it('names the token file and the mode, and drops a token variable the agent inherited', () => {
    const env = rayEnvironment(options(TOKEN_FILE), { PATH: '/usr/bin', RAY_AUTH_TOKEN: TOKEN });
    expect(env.RAY_AUTH_MODE).toBe('token');
    expect(env.RAY_AUTH_TOKEN_PATH).toBe(TOKEN_FILE);
    expect(env.RAY_AUTH_TOKEN).toBeUndefined();
    expect(Object.values(env).join('\n')).not.toContain(TOKEN);
  });

  it('without a token adds no RAY_AUTH_ variable: a cluster without authentication is joined as before', () => {
    const env = rayEnvironment(options(), { PATH: '/usr/bin' });
    expect(Object.keys(env).filter((name) => name.startsWith('RAY_AUTH'))).toEqual([]);
  });

  it("gives the preflight's GCS client the same two variables", async () => {
    const dir = tempDir('ray-auth-preflight-');
    // python3 stood in for: it answers with what it was given, as cluster_info.py's one JSON line.
    const python = join(dir, 'python');
    writeFileSync(
      python,
      '#!/bin/sh\necho "{\\"status\\":\\"unreachable\\",\\"detail\\":\\"mode=$RAY_AUTH_MODE path=$RAY_AUTH_TOKEN_PATH token=$RAY_AUTH_TOKEN\\",\\"rayVersion\\":null,\\"pythonVersion\\":\\"3.11.2\\"}"\n',
    );
    chmodSync(python, 0o755);
    const withToken = await preflightCluster(python, { host: '127.0.0.1', port: 9 }, 1, TOKEN_FILE);
    expect(withToken).toEqual({ kind: 'unreachable', detail: `mode=token path=${TOKEN_FILE} token=` });
    const without = await preflightCluster(python, { host: '127.0.0.1', port: 9 }, 1);
    expect(without).toEqual({ kind: 'unreachable', detail: 'mode= path= token=' });
  });
});
