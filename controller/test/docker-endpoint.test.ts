import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { DockerEndpointError, type EndpointInput, resolveDockerEndpoint } from '../src/engine/docker-endpoint.js';

const homes: string[] = [];

function tempHome(): string {
  const home = mkdtempSync(path.join(tmpdir(), 'rap-endpoint-'));
  homes.push(home);
  return home;
}

afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

/** The real file system under a temp HOME. */
function input(home: string, env: Record<string, string> = {}, platform: NodeJS.Platform = 'linux'): EndpointInput {
  return {
    env,
    homedir: home,
    platform,
    readFile: (file) => {
      try {
        return readFileSync(file);
      } catch {
        return undefined;
      }
    },
    exists: existsSync,
  };
}

function writeContext(configDir: string, name: string, host: string): string {
  const hash = createHash('sha256').update(name).digest('hex');
  const dir = path.join(configDir, 'contexts', 'meta', hash);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'meta.json'),
    JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }),
  );
  return hash;
}

function setCurrentContext(configDir: string, name: string): void {
  mkdirSync(configDir, { recursive: true });
  writeFileSync(path.join(configDir, 'config.json'), JSON.stringify({ auths: {}, currentContext: name }));
}

describe('resolveDockerEndpoint: defaults per platform', () => {
  test('Linux uses /var/run/docker.sock', () => {
    const endpoint = resolveDockerEndpoint(input(tempHome()));
    expect(endpoint).toMatchObject({
      options: { socketPath: '/var/run/docker.sock' },
      address: 'unix:///var/run/docker.sock',
      socketPath: '/var/run/docker.sock',
      source: 'default',
      warning: null,
    });
  });

  test("macOS uses the user's Docker Desktop socket when it exists", () => {
    const home = tempHome();
    mkdirSync(path.join(home, '.docker', 'run'), { recursive: true });
    const socket = path.join(home, '.docker', 'run', 'docker.sock');
    writeFileSync(socket, '');
    expect(resolveDockerEndpoint(input(home, {}, 'darwin')).options).toEqual({ socketPath: socket });
  });

  test('macOS falls back to /var/run/docker.sock without a user socket', () => {
    expect(resolveDockerEndpoint(input(tempHome(), {}, 'darwin')).socketPath).toBe('/var/run/docker.sock');
  });

  test('Windows uses the docker_engine named pipe', () => {
    const endpoint = resolveDockerEndpoint(input(tempHome(), {}, 'win32'));
    expect(endpoint.options).toEqual({ socketPath: '//./pipe/docker_engine' });
    expect(endpoint.address).toBe('npipe:////./pipe/docker_engine');
    expect(endpoint.description).toContain('pipe');
  });
});

describe('resolveDockerEndpoint: DOCKER_HOST', () => {
  test('unix:// gives that socket', () => {
    const endpoint = resolveDockerEndpoint(input(tempHome(), { DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }));
    expect(endpoint).toMatchObject({
      options: { socketPath: '/run/user/1000/docker.sock' },
      source: 'DOCKER_HOST',
      description: 'DOCKER_HOST=unix:///run/user/1000/docker.sock',
    });
  });

  test('tcp:// gives plain HTTP on 2375 by default', () => {
    const endpoint = resolveDockerEndpoint(input(tempHome(), { DOCKER_HOST: 'tcp://10.0.0.5' }));
    expect(endpoint.options).toEqual({ protocol: 'http', host: '10.0.0.5', port: 2375 });
    expect(endpoint.address).toBe('tcp://10.0.0.5:2375');
    expect(endpoint.socketPath).toBeNull();
  });

  test('tcp:// with DOCKER_TLS_VERIFY reads the certificates from DOCKER_CERT_PATH and uses HTTPS on 2376', () => {
    const home = tempHome();
    const certs = path.join(home, 'certs');
    mkdirSync(certs);
    for (const file of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(certs, file), `${file} bytes`);
    const endpoint = resolveDockerEndpoint(
      input(home, { DOCKER_HOST: 'tcp://docker.lan', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs }),
    );
    expect(endpoint.options).toMatchObject({ protocol: 'https', host: 'docker.lan', port: 2376 });
    expect(String(endpoint.options.ca)).toBe('ca.pem bytes');
    expect(String(endpoint.options.cert)).toBe('cert.pem bytes');
    expect(String(endpoint.options.key)).toBe('key.pem bytes');
  });

  test('npipe:// on Windows gives the pipe path', () => {
    const endpoint = resolveDockerEndpoint(
      input(tempHome(), { DOCKER_HOST: 'npipe:////./pipe/dockerDesktopLinuxEngine' }, 'win32'),
    );
    expect(endpoint.options).toEqual({ socketPath: '//./pipe/dockerDesktopLinuxEngine' });
  });

  test('ssh:// gives dockerode SSH options', () => {
    const endpoint = resolveDockerEndpoint(input(tempHome(), { DOCKER_HOST: 'ssh://alice@build.lan:2222' }));
    expect(endpoint.options).toEqual({ protocol: 'ssh', host: 'build.lan', port: 2222, username: 'alice' });
  });

  test('DOCKER_HOST wins over DOCKER_CONTEXT and the config file, as in the CLI', () => {
    const home = tempHome();
    const configDir = path.join(home, '.docker');
    writeContext(configDir, 'colima', 'unix:///colima.sock');
    setCurrentContext(configDir, 'colima');
    const endpoint = resolveDockerEndpoint(
      input(home, { DOCKER_HOST: 'unix:///from-env.sock', DOCKER_CONTEXT: 'colima' }),
    );
    expect(endpoint.socketPath).toBe('/from-env.sock');
  });

  test.each([
    ['fd://', 'not supported'],
    ['unix://', 'names no socket path'],
    ['npipe:////./pipe/docker_engine', 'Windows named pipe'],
  ])('an unusable DOCKER_HOST %s is a clear error', (host, words) => {
    expect(() => resolveDockerEndpoint(input(tempHome(), { DOCKER_HOST: host }))).toThrow(DockerEndpointError);
    expect(() => resolveDockerEndpoint(input(tempHome(), { DOCKER_HOST: host }))).toThrow(words);
  });
});

describe('resolveDockerEndpoint: docker contexts', () => {
  test('currentContext in ~/.docker/config.json selects the context meta by sha256 of its name', () => {
    const home = tempHome();
    const configDir = path.join(home, '.docker');
    writeContext(configDir, 'colima', `unix://${home}/.colima/default/docker.sock`);
    setCurrentContext(configDir, 'colima');
    const endpoint = resolveDockerEndpoint(input(home));
    expect(endpoint).toMatchObject({
      options: { socketPath: `${home}/.colima/default/docker.sock` },
      source: 'context',
      description: `docker context "colima" (unix://${home}/.colima/default/docker.sock)`,
    });
  });

  test('DOCKER_CONTEXT beats currentContext', () => {
    const home = tempHome();
    const configDir = path.join(home, '.docker');
    writeContext(configDir, 'colima', 'unix:///colima.sock');
    writeContext(configDir, 'remote', 'tcp://192.0.2.10:2375');
    setCurrentContext(configDir, 'colima');
    const endpoint = resolveDockerEndpoint(input(home, { DOCKER_CONTEXT: 'remote' }));
    expect(endpoint.options).toEqual({ protocol: 'http', host: '192.0.2.10', port: 2375 });
  });

  test('a tcp context with TLS files under contexts/tls/<hash>/docker uses them', () => {
    const home = tempHome();
    const configDir = path.join(home, '.docker');
    const hash = writeContext(configDir, 'secure', 'tcp://docker.lan:2376');
    const tlsDir = path.join(configDir, 'contexts', 'tls', hash, 'docker');
    mkdirSync(tlsDir, { recursive: true });
    writeFileSync(path.join(tlsDir, 'ca.pem'), 'the ca');
    const endpoint = resolveDockerEndpoint(input(home, { DOCKER_CONTEXT: 'secure' }));
    expect(endpoint.options).toMatchObject({ protocol: 'https', host: 'docker.lan', port: 2376 });
    expect(String(endpoint.options.ca)).toBe('the ca');
  });

  test('DOCKER_CONFIG moves the config directory', () => {
    const home = tempHome();
    const configDir = path.join(home, 'elsewhere');
    writeContext(configDir, 'rd', 'unix:///rd.sock');
    setCurrentContext(configDir, 'rd');
    expect(resolveDockerEndpoint(input(home, { DOCKER_CONFIG: configDir })).socketPath).toBe('/rd.sock');
  });

  test('the context named "default" is the platform default', () => {
    const home = tempHome();
    setCurrentContext(path.join(home, '.docker'), 'default');
    expect(resolveDockerEndpoint(input(home)).source).toBe('default');
  });

  test('a context that does not exist is a clear error with a fix', () => {
    const home = tempHome();
    setCurrentContext(path.join(home, '.docker'), 'gone');
    let error: unknown;
    try {
      resolveDockerEndpoint(input(home));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DockerEndpointError);
    expect((error as DockerEndpointError).message).toContain('docker context "gone"');
    expect((error as DockerEndpointError).fix).toContain('docker context use');
  });

  test('an unreadable config.json falls back to the default with a warning, as the CLI does', () => {
    const home = tempHome();
    mkdirSync(path.join(home, '.docker'));
    writeFileSync(path.join(home, '.docker', 'config.json'), '{ not json');
    const endpoint = resolveDockerEndpoint(input(home));
    expect(endpoint.source).toBe('default');
    expect(endpoint.warning).toContain('not valid JSON');
  });
});
