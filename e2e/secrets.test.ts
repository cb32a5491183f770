import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AGENT_IMAGE, Agent0, publishedPort, TestCluster } from './support/cluster.js';
import { docker, lastJson, mustRun, run } from './support/run.js';

/**
 * Issue 8, item 2: Ray tasks run as the agent's uid, so whatever the agent leaves readable a task can read. Real
 * Docker, Ray, manager and TLS: after registration no enrollment token is left in any /proc/<pid>/environ or
 * cmdline, nor under /var/lib/ray-agent or /tmp, when a real Ray task on the agent's node looks, nor when a process
 * of the agent's uid does; the token file the controller writes on the state volume is gone and a restart carries on
 * without it; a token file the agent cannot remove is reported in the status.
 */
const cluster = new TestCluster();
const STATE_TOKEN_FILE = '/var/lib/ray-agent/secrets/enrollment-token';
const volumes: string[] = [];

beforeAll(async () => {
  await cluster.start();
});

afterAll(async () => {
  await cluster.stop();
  if (volumes.length) await run('docker', ['volume', 'rm', '-f', ...volumes]);
});

/**
 * An agent given the token in AGENT_TOKEN, run without `--init` so the image's own entrypoint is PID 1 (under
 * `--init` docker-init is PID 1 and keeps the environment Docker gave it, token and all: why the controller never
 * uses the variable). TestCluster.startAgent always adds --init, so this one is started by hand, flags otherwise
 * the same.
 */
async function startEnvTokenAgent(): Promise<Agent0> {
  const name = `agent-${cluster.id}-env-${randomBytes(2).toString('hex')}`;
  const volume = `${name}-state`;
  volumes.push(volume);
  await cluster.track(name);
  await docker(
    'run',
    '-d',
    '--name',
    name,
    '--network',
    cluster.network,
    '-p',
    '127.0.0.1::8765',
    '--shm-size=1g',
    '--stop-timeout=60',
    '--cap-drop=ALL',
    '--security-opt=no-new-privileges',
    '--read-only',
    '--tmpfs=/tmp:rw,exec,size=2g',
    '--cpus=2',
    '--memory=4g',
    '-v',
    `${cluster.pki.dir}:/certs:ro`,
    '-v',
    `${volume}:/var/lib/ray-agent`,
    '-e',
    `RAY_HEAD=ray://${cluster.head}:10001`,
    '-e',
    `MANAGER_URL=https://${cluster.manager}:8443/api/register`,
    '-e',
    'MANAGER_CA_FILE=/certs/ca.pem',
    '-e',
    `AGENT_TOKEN=${cluster.enrollmentToken}`,
    '-e',
    'HEARTBEAT_INTERVAL=2',
    AGENT_IMAGE,
  );
  return new Agent0(name, volume, await publishedPort(name, 8765));
}

/** A state volume holding the token where the controller puts it (secrets/ 0700, the file 0600, the agent's uid). */
async function volumeWithToken(volume: string): Promise<void> {
  volumes.push(volume);
  await mustRun(
    'docker',
    [
      'run',
      '--rm',
      '-i',
      '--network',
      'none',
      '-v',
      `${volume}:/var/lib/ray-agent`,
      '--entrypoint',
      'sh',
      AGENT_IMAGE,
      '-c',
      'umask 077 && mkdir -p /var/lib/ray-agent/secrets && cat > /var/lib/ray-agent/secrets/enrollment-token',
    ],
    { input: cluster.enrollmentToken },
  );
}

interface Scan {
  uid: number;
  /** Paths whose bytes hold the token. */
  hits: string[];
  environsRead: number;
  filesRead: number;
  /** Whether the agent's own environ (the node process running agent.mjs) was among those read. */
  agentEnvironRead: boolean;
  pid1EnvironRead: boolean;
}

/**
 * A real Ray task, aimed at the agent's node by its provider resource, reads every /proc/<pid>/environ and cmdline it
 * can and every file under /var/lib/ray-agent and /tmp, and sends the bytes back; the driver, on the head, looks
 * for the token. The task's function does not reference the token, so the token never travels to the node.
 */
async function rayTaskScan(providerId: string): Promise<Scan> {
  const script = `
import glob, json, os, ray
TOKEN = ${JSON.stringify(cluster.enrollmentToken)}
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=0.1, resources={${JSON.stringify(`provider:${providerId}`)}: 0.01})
def scan():
    texts = {}
    for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                texts[path] = f.read()
        except OSError:
            pass
    for root in ("/var/lib/ray-agent", "/tmp"):
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    if os.path.isfile(path) and os.path.getsize(path) < 8 * 1024 * 1024:
                        with open(path, "rb") as f:
                            texts[path] = f.read()
                except OSError:
                    pass
    return os.getuid(), texts
uid, texts = ray.get(scan.remote())
token = TOKEN.encode()
environs = [p for p in texts if p.endswith("/environ")]
agent_pids = [p.split("/")[2] for p, b in texts.items() if p.endswith("/cmdline") and b"/opt/ray-agent/agent.mjs" in b]
print(json.dumps({
    "uid": uid,
    "hits": sorted(p for p, b in texts.items() if token in b),
    "environsRead": len(environs),
    "filesRead": len(texts) - len(environs),
    "agentEnvironRead": any(f"/proc/{pid}/environ" in texts for pid in agent_pids),
    "pid1EnvironRead": "/proc/1/environ" in texts,
}))
`;
  const result = await cluster.driver(script);
  expect(result.code, result.stderr).toBe(0);
  return lastJson<Scan>(result.stdout);
}

/** As a process of the agent's uid would, inside the container (outside the agent's process tree). */
async function uidScan(container: string): Promise<{ code: number; stdout: string; environCount: string }> {
  // docker exec gives its process the container's Config.Env (AGENT_TOKEN included when the person passed -e):
  // `env -u` drops it, so the scan sees what the agent's tree holds, not what docker exec brought in.
  const grep = await run(
    'docker',
    [
      'exec',
      '-i',
      '-u',
      '1000:1000',
      container,
      'env',
      '-u',
      'AGENT_TOKEN',
      'sh',
      '-c',
      'grep -rlsF -D skip -f /dev/stdin /proc/[0-9]*/environ /proc/[0-9]*/cmdline /var/lib/ray-agent /tmp',
    ],
    { input: `${cluster.enrollmentToken}\n` },
  );
  const count = await run('docker', [
    'exec',
    '-u',
    '1000:1000',
    container,
    'env',
    '-u',
    'AGENT_TOKEN',
    'sh',
    '-c',
    'cat /proc/*/environ | tr "\\0" "\\n" | grep -c AGENT_TOKEN=',
  ]);
  return { code: grep.code, stdout: grep.stdout, environCount: count.stdout.trim() };
}

describe('AGENT_TOKEN given in the environment', () => {
  test('is in no /proc/*/environ once the agent runs, and no Ray task finds it anywhere', async () => {
    const agent = await startEnvTokenAgent();
    const status = await agent.waitForStatus('contributing', (s) => s.state === 'contributing', 240_000);
    expect(status.registration.state).toBe('registered');
    const providerId = status.registration.providerId ?? '';
    // Registered with that token: the manager knows the provider.
    expect((await cluster.providers()).map((p) => p.providerId)).toContain(providerId);

    const local = await uidScan(agent.name);
    expect(local.environCount).toBe('0');
    expect(local.stdout).toBe(''); // no file names: grep found the token nowhere
    expect(local.code).toBe(1); // 1 is grep's "no match" (2 would be an error)

    const scan = await rayTaskScan(providerId);
    expect(scan.uid).toBe(1000);
    expect(scan.agentEnvironRead).toBe(true); // the task could read the agent's environ: its silence means something
    expect(scan.pid1EnvironRead).toBe(true);
    expect(scan.environsRead).toBeGreaterThan(3);
    expect(scan.hits).toEqual([]);
    console.warn(
      `[figure] env token: ${scan.environsRead} environs and ${scan.filesRead} files read by a Ray task, 0 hold the token`,
    );
    await docker('rm', '-f', agent.name);
  });
});

describe('the token file the controller writes on the state volume', () => {
  test('is removed after the first registration; nothing a task can read holds it; a restart carries on', async () => {
    const volume = `secrets-${cluster.id}-state`;
    await volumeWithToken(volume);
    const agent = await cluster.startAgent({ volume, env: { AGENT_TOKEN_FILE: STATE_TOKEN_FILE } });
    const status = await agent.waitForStatus('contributing', (s) => s.state === 'contributing', 240_000);
    const providerId = status.registration.providerId ?? '';
    expect(status.warnings.filter((w) => w.includes('enrollment token'))).toEqual([]);
    expect(await mustRun('docker', ['exec', agent.name, 'ls', '-A', '/var/lib/ray-agent/secrets'])).toBe('');
    expect(await agent.logs()).toMatch(/removed the enrollment token file/);

    const local = await uidScan(agent.name);
    expect(local.stdout).toBe('');
    expect(local.code).toBe(1);
    const scan = await rayTaskScan(providerId);
    expect(scan.agentEnvironRead).toBe(true);
    expect(scan.hits).toEqual([]);

    // The restart finds no token file there: not a bad configuration (exit 2), the saved credentials carry on.
    await docker('restart', '-t', '60', agent.name);
    await agent.restarted();
    const back = await agent.waitForStatus('contributing after restart', (s) => s.state === 'contributing', 240_000);
    expect(back.registration.providerId).toBe(providerId);
    const state = JSON.parse(await docker('inspect', agent.name))[0] as { State: { Running: boolean } };
    expect(state.State.Running).toBe(true);
    await docker('rm', '-f', agent.name);
  });

  test('mounted read-only where the agent cannot remove it: kept, and the status says Ray tasks can read it', async () => {
    const agent = await cluster.startAgent({
      env: { AGENT_TOKEN_FILE: STATE_TOKEN_FILE },
      flags: ['--cpus=1', '--memory=2g', '-v', `${cluster.pki.dir}/enrollment-token:${STATE_TOKEN_FILE}:ro`],
    });
    const status = await agent.waitForStatus(
      'registered, with a warning about the token file',
      (s) => s.registration.state === 'registered' && s.warnings.some((w) => w.includes(STATE_TOKEN_FILE)),
      180_000,
    );
    const warning = status.warnings.find((w) => w.includes(STATE_TOKEN_FILE)) ?? '';
    // EACCES: Docker made the mount point's directory (root's); EROFS or EBUSY where the agent owns it.
    expect(warning).toMatch(/could not be removed \((EACCES|EROFS|EBUSY)\)/);
    expect(warning).toMatch(/still readable by Ray tasks on this node/);
    expect(warning).not.toContain(cluster.enrollmentToken);
    await docker('rm', '-f', agent.name);
  });
});
