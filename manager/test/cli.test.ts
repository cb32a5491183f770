import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorBody, GatewaySyncResponse, HeartbeatResponse, ProviderList, RegisterResponse } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatBody, httpsCall, makeTls, registerBody, type TestTls, tempDir, wireguardKey } from './helpers.js';

const MANAGER_DIR = fileURLToPath(new URL('..', import.meta.url));
const BUNDLE = join(MANAGER_DIR, 'dist', 'manager.mjs');

function cli(...args: string[]) {
  const res = spawnSync(process.execPath, [BUNDLE, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

let tmp: ReturnType<typeof tempDir>;
let tls: TestTls;

beforeAll(() => {
  const built = spawnSync(process.execPath, [join(MANAGER_DIR, 'build.mjs')], { encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);
  tmp = tempDir('manager-cli-');
  tls = makeTls(tmp.dir);
});
afterAll(() => tmp.remove());

describe('command line validation', () => {
  const cases: Array<[string[], string]> = [
    [['serve', '--port', '99999'], '--port: must be an integer 1-65535, e.g. --port 8443'],
    [
      ['serve', '--db', '/nonexistent-dir/m.db'],
      '--db: directory /nonexistent-dir does not exist, e.g. --db ./manager.db',
    ],
    [['serve'], '--db: required: the SQLite database file, e.g. --db ./manager.db'],
    [
      ['token', 'create', '--db', 'x.db', '--expires-in-hours', 'soon'],
      '--expires-in-hours: must be a positive number of hours up to 87600, e.g. --expires-in-hours 24',
    ],
    [
      ['token', 'revoke', '--db', '/nonexistent-dir/m.db', '--id', '1'],
      '--db: no database at /nonexistent-dir/m.db (create one with "token create"), e.g. --db ./manager.db',
    ],
  ];
  for (const [args, message] of cases) {
    it(`${args.join(' ')} -> exit 2 with one line`, () => {
      const res = cli(...args);
      expect(res.code).toBe(2);
      expect(res.stderr).toBe(`${message}\n`);
      expect(res.stdout).toBe('');
    });
  }

  it('validates serve options one by one, naming each', () => {
    const db = join(tmp.dir, 'validation.db');
    const base = ['serve', '--db', db, '--cert', tls.certFile, '--key', tls.keyFile];
    expect(cli(...base, '--heartbeat-interval', '0').stderr).toMatch(
      /^--heartbeat-interval: must be an integer 1-3600, e.g. --heartbeat-interval 10\n$/,
    );
    expect(cli(...base.slice(0, 5)).stderr).toMatch(/^--key: required, e.g. --key /);
    expect(cli(...base, '--cert', join(tmp.dir, 'missing.crt')).stderr).toMatch(
      /^--cert: cannot read .*missing\.crt \(ENOENT\), e\.g\. --cert /,
    );
    expect(cli('serve', '--db', db, '--cert', tls.certFile, '--key', tls.caFile).stderr).toMatch(/^--key: /);
    const empty = join(tmp.dir, 'empty-token');
    writeFileSync(empty, '  \n');
    const res = cli(...base, '--admin-token-file', empty);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^--admin-token-file: .* is empty; it must hold one token, e\.g\. --admin-token-file /);
  });

  it('validates the rate-limit options, naming each and what a correct agent needs', () => {
    expect(cli('serve', '--register-limit-per-install', 'lots').stderr).toBe(
      '--register-limit-per-install: must be an integer 0-1000000, e.g. --register-limit-per-install 10\n',
    );
    expect(cli('serve', '--register-limit-per-client', '2').stderr).toBe(
      '--register-limit-per-client: 2 a minute is fewer than a correct agent may need (at least 3; 0 turns the ' +
        'limit off), e.g. --register-limit-per-client 30\n',
    );
    const tooFew = cli('serve', '--heartbeat-interval', '2', '--heartbeat-limit-per-provider', '50');
    expect(tooFew.code).toBe(2);
    expect(tooFew.stderr).toBe(
      '--heartbeat-limit-per-provider: 50 a minute at --heartbeat-interval 2 is fewer than a correct agent may need ' +
        '(at least 60; 0 turns the limit off), e.g. --heartbeat-limit-per-provider 120\n',
    );
    expect(cli('serve', '--heartbeat-limit-per-client', '-1').stderr).toMatch(/^--heartbeat-limit-per-client: must be/);
  });

  it('validates the overlay options, naming each, the problem and an example', () => {
    const db = join(tmp.dir, 'validation.db');
    const base = ['serve', '--db', db, '--cert', tls.certFile, '--key', tls.keyFile];
    expect(cli('serve', '--overlay-network', '100.96.3.4/16').stderr).toBe(
      '--overlay-network: 100.96.3.4/16 has host bits set; the network is 100.96.0.0/16, e.g. --overlay-network 100.96.0.0/16\n',
    );
    expect(cli('serve', '--overlay-network', '100.96.0.0').stderr).toBe(
      '--overlay-network: 100.96.0.0 is not an IPv4 network in CIDR form, e.g. --overlay-network 100.96.0.0/16\n',
    );
    expect(cli('serve', '--overlay-network', '100.96.0.0/31').stderr).toBe(
      '--overlay-network: a /31 has no room for the gateway and a provider (at most /30), e.g. --overlay-network 100.96.0.0/16\n',
    );
    expect(cli('serve', '--overlay-gcs-port', '0').stderr).toBe(
      '--overlay-gcs-port: must be an integer 1-65535, e.g. --overlay-gcs-port 6379\n',
    );
    expect(cli('serve', '--gateway-sync-limit-per-client', '10').stderr).toBe(
      '--gateway-sync-limit-per-client: 10 a minute is fewer than a correct gateway may need (at least 60; 0 turns ' +
        'the limit off), e.g. --gateway-sync-limit-per-client 300\n',
    );
    expect(cli('serve', '--gateway-token-file', join(tmp.dir, 'missing')).stderr).toMatch(
      /^--gateway-token-file: cannot read .*missing \(ENOENT\), e\.g\. --gateway-token-file \/run\/secrets\/gateway-token\n$/,
    );
    const spaced = join(tmp.dir, 'spaced-ray-token');
    writeFileSync(spaced, 'two words-0123456789abcdef\n');
    const res = cli(...base, '--ray-auth-token-file', spaced);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `--ray-auth-token-file: ${spaced} must hold the one token the Ray head was started with (printable ASCII ` +
        'without spaces), e.g. --ray-auth-token-file /run/secrets/ray-auth-token\n',
    );
    expect(res.stderr).not.toContain('two words');
  });

  it('unknown options exit 2', () => {
    const res = cli('serve', '--bogus');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown option '--bogus'");
  });
});

/** A `serve` child process of the built bundle, with its output collected; killed after the file's tests. */
interface Served {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<number | null>;
  base: string;
  /** The "manager listening" line. */
  listening: Record<string, unknown>;
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

async function serve(db: string, ...args: string[]): Promise<Served> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      BUNDLE,
      'serve',
      '--db',
      db,
      '--cert',
      tls.certFile,
      '--key',
      tls.keyFile,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (c: Buffer) => {
    out.stdout += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    out.stderr += c.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!out.stdout.includes('"manager listening"')) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`manager did not start:\n${out.stdout}\n${out.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const listening = JSON.parse(out.stdout.split('\n').find((l) => l.includes('"manager listening"')) ?? '{}');
  return { child, out, exited, base: `https://localhost:${port}`, listening };
}

function post(base: string, path: string, bearer: string, body: unknown) {
  return httpsCall(`${base}${path}`, {
    method: 'POST',
    ca: tls.ca,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('token create, serve, register, SIGTERM', () => {
  it('runs the whole operator flow through the built bundle', async () => {
    const db = join(tmp.dir, 'flow.db');
    const created = cli('token', 'create', '--db', db, '--label', 'ci fleet', '--expires-in-hours', '24');
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(created.stdout).toBe(`${token}\n`);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/^created enrollment token id=1 label="ci fleet" expires=/);

    const listed = cli('token', 'list', '--db', db);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(token);
    expect(JSON.parse(listed.stdout).tokens).toMatchObject([{ id: 1, label: 'ci fleet', status: 'active' }]);

    const adminToken = 'cli-admin-token-0123456789abcdef';
    const adminFile = join(tmp.dir, 'admin-token');
    writeFileSync(adminFile, `${adminToken}\n`);
    const served = await serve(
      db,
      '--heartbeat-interval',
      '7',
      '--admin-token-file',
      adminFile,
      '--register-limit-per-client',
      '100',
      '--heartbeat-limit-per-provider',
      '0',
    );
    const { base, out, child, exited } = served;

    // The limits as given, the others at their defaults (the per-provider heartbeat one off); no gateway.
    expect(served.listening.rateLimits).toEqual({
      registerPerClient: { max: 100, windowSeconds: 60 },
      registerPerInstall: { max: 10, windowSeconds: 3600 },
      heartbeatPerClient: { max: 1200, windowSeconds: 60 },
      heartbeatPerProvider: { max: 0, windowSeconds: 60 },
      gatewaySyncPerClient: { max: 300, windowSeconds: 60 },
    });
    expect(served.listening).toMatchObject({ overlay: null, rayTokenAuth: false });

    const reg = await post(base, '/api/register', token, registerBody());
    expect(reg.status, reg.text).toBe(200);
    const registered = RegisterResponse.parse(reg.body);
    expect(registered.heartbeatIntervalSeconds).toBe(7);

    const list = await httpsCall(`${base}/api/providers`, {
      ca: tls.ca,
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(list.status).toBe(200);
    expect(ProviderList.parse(list.body).providers.map((p) => p.providerId)).toEqual([registered.providerId]);

    // The CLI reads the same database while the server runs (WAL).
    const offline = cli('providers', '--db', db);
    expect(offline.code).toBe(0);
    expect(ProviderList.parse(JSON.parse(offline.stdout)).providers[0]).toMatchObject({
      providerId: registered.providerId,
      health: 'never',
      registrations: 1,
    });

    // Revoking the token takes effect on the running server at once.
    expect(cli('token', 'revoke', '--db', db, '--id', '1').code).toBe(0);
    const rejected = await post(base, '/api/register', token, registerBody());
    expect(rejected.status).toBe(401);
    expect(ErrorBody.parse(rejected.body).error.code).toBe('enrollment_token_rejected');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out.stdout).toContain('"msg":"stopped"');
    for (const secret of [token, adminToken, registered.credential]) {
      expect(out.stdout).not.toContain(secret);
      expect(out.stderr).not.toContain(secret);
    }
    for (const line of out.stdout.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });
});

describe('serve with a gateway and Ray token authentication; providers list and revoke', () => {
  it('hands out the overlay and the Ray token, never logs either token, and revokes from the CLI', async () => {
    const db = join(tmp.dir, 'overlay.db');
    const enrollment = cli('token', 'create', '--db', db).stdout.trim();
    const gatewayToken = 'cli-gateway-token-0123456789abcdef';
    const rayToken = 'cli-ray-auth-token-SECRET-0123456789';
    const gatewayFile = join(tmp.dir, 'gateway-token');
    const rayFile = join(tmp.dir, 'ray-auth-token');
    writeFileSync(gatewayFile, `${gatewayToken}\n`);
    writeFileSync(rayFile, `${rayToken}\n`);
    const served = await serve(
      db,
      '--gateway-token-file',
      gatewayFile,
      '--ray-auth-token-file',
      rayFile,
      '--overlay-network',
      '100.97.0.0/24',
    );
    expect(served.listening).toMatchObject({
      overlay: { network: '100.97.0.0/24', gatewayAddress: '100.97.0.1', gcsAddress: '100.97.0.1:6379' },
      rayTokenAuth: true,
    });

    const key = wireguardKey();
    const reg = RegisterResponse.parse(
      (await post(served.base, '/api/register', enrollment, registerBody({ wireguardPublicKey: key }))).body,
    );
    // The gateway has not synced yet: direct, with the token.
    expect(reg.cluster).toEqual({ overlay: null, rayAuthToken: rayToken });
    const gatewayKey = wireguardKey();
    const syncBody = { publicKey: gatewayKey, endpoint: 'gw.cluster.test:51820', routes: [], peers: [] };
    const first = await post(served.base, '/api/gateway/sync', gatewayToken, syncBody);
    expect(first.status, first.text).toBe(200);
    expect(GatewaySyncResponse.parse(first.body).peers).toEqual([
      { providerId: reg.providerId, publicKey: key, address: '100.97.0.2' },
    ]);
    const tunnel = {
      state: 'up',
      address: '100.97.0.2',
      gatewayEndpoint: 'gw.cluster.test:51820',
      lastHandshakeAt: new Date().toISOString(),
      rxBytes: 1,
      txBytes: 2,
      problem: null,
    };
    const hb = await post(served.base, '/api/heartbeat', reg.credential, heartbeatBody(reg.providerId, { tunnel }));
    expect(HeartbeatResponse.parse(hb.body).cluster?.overlay).toMatchObject({
      address: '100.97.0.2',
      gcsAddress: '100.97.0.1:6379',
      gatewayPublicKey: gatewayKey,
    });

    const listed = cli('providers', 'list', '--db', db);
    expect(listed.code, listed.stderr).toBe(0);
    expect(ProviderList.parse(JSON.parse(listed.stdout)).providers[0]).toMatchObject({
      overlayAddress: '100.97.0.2',
      tunnel: { state: 'up', address: '100.97.0.2' },
      revokedAt: null,
    });

    const revoked = cli('providers', 'revoke', reg.providerId, '--db', db);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stderr).toMatch(new RegExp(`^revoked provider ${reg.providerId} at \\d{4}-`));
    const after = await post(served.base, '/api/gateway/sync', gatewayToken, syncBody);
    expect(GatewaySyncResponse.parse(after.body).peers).toEqual([]);
    const refused = await post(served.base, '/api/heartbeat', reg.credential, heartbeatBody(reg.providerId));
    expect(refused.status).toBe(401);
    expect(ErrorBody.parse(refused.body).error.code).toBe('credential_rejected');
    expect(cli('providers', 'revoke', 'prv-aaaaaaaaaaaa', '--db', db)).toMatchObject({
      code: 1,
      stderr: 'no provider with id prv-aaaaaaaaaaaa (see "providers list")\n',
    });

    served.child.kill('SIGTERM');
    expect(await served.exited).toBe(0);
    for (const secret of [rayToken, gatewayToken, enrollment, reg.credential]) {
      expect(served.out.stdout).not.toContain(secret);
      expect(served.out.stderr).not.toContain(secret);
    }
  });
});
