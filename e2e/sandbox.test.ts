import {
  GVISOR_KERNEL_RELEASE,
  SANDBOX_NETWORK_VARIABLE,
  SANDBOX_RESOURCE,
  SANDBOX_TEST_IMAGE,
} from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Agent0, SANDBOX_HARDENED, TestCluster } from './support/cluster.js';
import { docker, lastJson, run } from './support/run.js';

/**
 * Ray's gVisor sandboxes on a volunteer: a real head, the real manager over TLS, one agent run as the README's
 * `docker run` line with the sandbox flags, and one with the plain hardening (its self-test must fail and say why).
 */
const cluster = new TestCluster();
let sandboxed: Agent0;
let plain: Agent0;
let noSeccomp: Agent0;
let sandboxedProvider: string;
let plainProvider: string;

beforeAll(async () => {
  await cluster.start();
  [sandboxed, plain, noSeccomp] = await Promise.all([
    // One CPU on a machine with more: a sandbox's busy loops can be seen to stay inside the limit.
    cluster.startAgent({ hardening: SANDBOX_HARDENED, flags: ['--cpus=1', '--memory=2g'] }),
    cluster.startAgent({ flags: ['--cpus=1', '--memory=2g'] }),
    // Everything but the seccomp profile: runsc itself must fail, and its refusal be explained.
    cluster.startAgent({
      hardening: SANDBOX_HARDENED.filter((flag) => !flag.startsWith('--security-opt=seccomp=')),
      flags: ['--cpus=1', '--memory=2g'],
    }),
  ]);
  const joined = (agent: Agent0) =>
    agent.waitForStatus('contributing', (s) => s.state === 'contributing' && s.sandbox?.state !== 'checking', 240_000);
  const [a, b] = await Promise.all([joined(sandboxed), joined(plain), joined(noSeccomp)]);
  sandboxedProvider = a.registration.providerId ?? '';
  plainProvider = b.registration.providerId ?? '';
}, 300_000);

afterAll(async () => {
  await cluster.stop();
});

describe('the self-test', () => {
  test('passes under the sandbox flags: the node advertises gvisor, one slot per CPU, and says so', async () => {
    const status = await sandboxed.status();
    expect(status.sandbox).toMatchObject({ state: 'ready', reason: null, kernel: GVISOR_KERNEL_RELEASE, slots: 1 });
    expect(status.sandbox?.startSeconds).toBeGreaterThan(0);
    const metrics = await run('curl', ['-sf', `http://127.0.0.1:${sandboxed.statusPort}/metrics`]);
    expect(metrics.stdout).toMatch(/^ray_agent_sandbox_ready 1$/m);
    expect(metrics.stdout).toMatch(/^ray_agent_sandbox_slots 1$/m);
  });

  test("fails without the seccomp profile: runsc's own refusal, explained", async () => {
    const status = await noSeccomp.status();
    expect(status.sandbox?.state).toBe('unavailable');
    expect(status.sandbox?.reason).toMatch(/seccomp profile does not let gVisor create its user namespaces/);
    expect(status.sandbox?.reason).toMatch(/operation not permitted/);
    expect(status.state).toBe('contributing');
  });

  test('fails under the plain hardening, says why, and the node still takes ordinary work', async () => {
    const status = await plain.status();
    expect(status.sandbox?.state).toBe('unavailable');
    expect(status.sandbox?.reason).toMatch(/\/proc masks are in place.*systempaths=unconfined/);
    expect(status.sandbox?.slots).toBe(0);
    const result = await cluster.driver(`
import json, ray
ray.init(address="auto", logging_level="ERROR")
nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
@ray.remote(num_cpus=1, resources={"provider:${plainProvider}": 1})
def where():
    return ray.get_runtime_context().get_node_id()
node = ray.get(where.remote(), timeout=120)
print(json.dumps({"gvisor": nodes[node].get("${SANDBOX_RESOURCE}", 0), "provider": "provider:${plainProvider}" in nodes[node]}))
`);
    expect(result.code, result.stderr).toBe(0);
    expect(lastJson(result.stdout)).toEqual({ gvisor: 0, provider: true });
  });
});

describe("a sandbox made by Ray's sandbox API from the head", () => {
  test('runs on the agent under gVisor, with no network, none of the agent files and only its own processes', async () => {
    // The driver keeps the sandbox up until the test has seen it in the agent's status.
    const driver = cluster.driver(
      `
import json, os, socket, time, ray
from ray.experimental import sandbox
ray.init(address="auto", logging_level="ERROR")
target = [n["NodeID"] for n in ray.nodes() if n["Alive"] and "provider:${sandboxedProvider}" in n["Resources"]]
sb = sandbox.create("${SANDBOX_TEST_IMAGE}", env={"PATH": "/bin"}, cpu=0, resources={"${SANDBOX_RESOURCE}": 1})
def run(command):
    result = ray.get(sb.exec.remote(command, shell="/bin/sh"), timeout=120)
    return {"code": result.exit_code, "out": (result.stdout or "").strip(), "err": (result.stderr or "").strip()}
head_ip = socket.gethostbyname(socket.gethostname())
out = {
    "target": target,
    "node": ray.get(sb.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()), timeout=120),
    "hostKernel": os.uname().release,
    "uname": run("uname -r"),
    "echo": run("echo hello from the sandbox"),
    "nc": run(f"nc -w 3 {head_ip} 6379 </dev/null >/dev/null; echo exit=$?"),
    "links": run("ip -o link 2>/dev/null || ls /sys/class/net"),
    "state": run("ls /var/lib/ray-agent /var/lib/ray-agent/secrets /certs /opt/ray-agent 2>&1; echo exit=$?"),
    "root": run("ls /"),
    "ps": ray.get(sb.exec.remote(["ps", "-o", "pid,comm"]), timeout=120).stdout,
}
print(json.dumps(out), flush=True)
for _ in range(240):
    if os.path.exists("/tmp/sandbox-release"):
        break
    time.sleep(0.5)
ray.get(sb.delete.remote(), timeout=120)
`,
      240_000,
    );
    const up = await sandboxed.waitForStatus('a sandbox running', (s) => (s.sandbox?.running ?? 0) >= 1, 180_000);
    expect(up.sandbox?.running).toBe(1);
    const processes = await docker('exec', sandboxed.name, 'sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "');
    expect(processes).toContain('runsc-sandbox');
    await docker('exec', cluster.head, 'touch', '/tmp/sandbox-release');
    const result = await driver;
    expect(result.code, result.stderr).toBe(0);
    type Ran = { code: number; out: string; err: string };
    const out = lastJson<Record<string, Ran> & { target: string[]; node: string; hostKernel: string; ps: string }>(
      result.stdout,
    );
    // On the agent's node (its provider resource tells it), under gVisor's kernel, not the host's.
    expect(out.target).toHaveLength(1);
    expect(out.node).toBe(out.target[0]);
    expect(out.uname).toMatchObject({ code: 0, out: GVISOR_KERNEL_RELEASE });
    expect(out.hostKernel).not.toBe(GVISOR_KERNEL_RELEASE);
    expect(out.echo).toMatchObject({ code: 0, out: 'hello from the sandbox' });
    // No network: the head's GCS port, which the agent's own node reaches, is not reachable; only loopback exists.
    expect(out.nc?.out).toMatch(/exit=1$/);
    expect(out.links?.out).not.toMatch(/eth0/);
    expect(out.links?.out).toMatch(/lo/);
    // Nothing of the agent: not its state volume (credentials, token), its mounted secrets or its code.
    expect(out.state?.out).toMatch(/\/var\/lib\/ray-agent.*No such file or directory/);
    expect(out.state?.out).toMatch(/\/certs.*No such file or directory/);
    expect(out.state?.out).toMatch(/\/opt\/ray-agent.*No such file or directory/);
    expect(out.state?.out).toMatch(/exit=1$/);
    expect(out.root?.out.split(/\s+/).sort()).toEqual(['bin', 'dev', 'etc', 'proc', 'sys', 'tmp']);
    // Only the sandbox's own processes: its first process and the ps itself.
    const commands = out.ps
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/)[1]);
    expect(commands.sort()).toEqual(['ps', 'sleep']);
    // Gone with its delete: nothing left running on the agent.
    const after = await sandboxed.waitForStatus('the sandbox gone', (s) => s.sandbox?.running === 0, 60_000);
    expect(after.sandbox?.running).toBe(0);
  });

  test('a sandbox that asks for a network is refused: the person has not allowed it', async () => {
    const result = await cluster.driver(`
import json, ray
from ray.experimental import sandbox
ray.init(address="auto", logging_level="ERROR")
sb = sandbox.create("${SANDBOX_TEST_IMAGE}", env={"PATH": "/bin"}, cpu=0, network="public", resources={"${SANDBOX_RESOURCE}": 1})
try:
    ray.get(sb.exec.remote(["echo", "networked"]), timeout=120)
    print(json.dumps({"refused": False}))
except Exception as error:
    print(json.dumps({"refused": True, "error": str(error)[-2000:]}))
`);
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson<{ refused: boolean; error?: string }>(result.stdout);
    expect(out.refused).toBe(true);
    expect(out.error).toContain(`${SANDBOX_NETWORK_VARIABLE}=on`);
  });
});

/** The container's CPU time so far, seconds, from its own cgroup (v1 cpuacct or v2 cpu.stat). */
async function containerCpuSeconds(name: string): Promise<number> {
  const text = await docker(
    'exec',
    name,
    'sh',
    '-c',
    'cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || grep usage_usec /sys/fs/cgroup/cpu.stat',
  );
  const [value] = text.trim().split(/\s+/).slice(-1);
  return text.includes('usage_usec') ? Number(value) / 1e6 : Number(value) / 1e9;
}

describe("the person's limits hold inside sandboxes", () => {
  test("four busy loops in a sandbox get no more than the container's one CPU, and a sandbox that outgrows its memory dies alone", async () => {
    const driver = cluster.driver(
      `
import json, ray
from ray.experimental import sandbox
ray.init(address="auto", logging_level="ERROR")
sb = sandbox.create("${SANDBOX_TEST_IMAGE}", env={"PATH": "/bin"}, cpu=0, resources={"${SANDBOX_RESOURCE}": 1})
busy = ray.get(sb.exec.remote("for i in 1 2 3 4; do timeout 20 sh -c 'while :; do :; done' & done; wait; echo busy", shell="/bin/sh"), timeout=180)
# gVisor's /tmp lives in the sandbox's memory: 3 GB of it cannot fit in the container's 2 GB.
try:
    fill = ray.get(sb.exec.remote("dd if=/dev/zero of=/tmp/fill bs=1M count=3000 2>&1; echo filled", shell="/bin/sh"), timeout=180)
    filled = {"code": fill.exit_code, "out": (fill.stdout or "")[-300:]}
except Exception as error:
    filled = {"error": str(error)[-300:]}
print(json.dumps({"busy": busy.stdout.strip(), "fill": filled}), flush=True)
`,
      400_000,
    );
    await sandboxed.waitForStatus('a sandbox running', (s) => (s.sandbox?.running ?? 0) >= 1, 180_000);
    // Measured while the loops run (they run 20 s): CPU time over wall time, which the quota caps at 1.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const [cpu0, t0] = [await containerCpuSeconds(sandboxed.name), Date.now()];
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const [cpu1, t1] = [await containerCpuSeconds(sandboxed.name), Date.now()];
    const cpus = (cpu1 - cpu0) / ((t1 - t0) / 1000);
    console.warn(`sandbox busy loops: ${cpus.toFixed(2)} CPUs used under a 1-CPU limit`);
    expect(cpus).toBeGreaterThan(0.5); // the loops did run
    expect(cpus).toBeLessThan(1.15); // the kernel's quota, with room for sampling
    const result = await driver;
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson<{ busy: string; fill: { code?: number; out?: string; error?: string } }>(result.stdout);
    expect(out.busy).toBe('busy');
    // The sandbox was killed before it could write it all; the node and its agent were not.
    expect(out.fill.out ?? '').not.toMatch(/3000\+0 records out/);
    const status = await sandboxed.status();
    expect(status.state).toBe('contributing');
    expect(status.ray.state).toBe('joined');
    expect(status.ray.restarts).toBe(0);
    const state = await docker('inspect', '-f', '{{.State.Running}} {{.RestartCount}}', sandboxed.name);
    expect(state.trim()).toBe('true 0');
  });
});

describe('"only sandboxed work", with the network allowed', () => {
  test('an ordinary task aimed at the node does not run there, while a sandbox does, and may have a network', async () => {
    const strict = await cluster.startAgent({
      hardening: SANDBOX_HARDENED,
      flags: ['--cpus=1', '--memory=2g'],
      env: { ACCEPT_WORK: 'sandboxed', [SANDBOX_NETWORK_VARIABLE]: 'on' },
    });
    const status = await strict.waitForStatus(
      'contributing with sandboxes',
      (s) => s.state === 'contributing' && s.sandbox?.state === 'ready',
      240_000,
    );
    expect(status.sandbox).toMatchObject({ mode: 'sandboxed', slots: 1, networkAllowed: true });
    const provider = `provider:${status.registration.providerId}`;
    const result = await cluster.driver(
      `
import json, ray
from ray.experimental import sandbox
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="auto", logging_level="ERROR")
node = [n for n in ray.nodes() if n["Alive"] and "${provider}" in n["Resources"]][0]
@ray.remote
def ordinary():
    return ray.get_runtime_context().get_node_id()
by_resource = ordinary.options(resources={"${provider}": 1}).remote()
by_node = ordinary.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote()
ready, _ = ray.wait([by_resource, by_node], num_returns=2, timeout=30)
outcomes = []
for ref in (by_resource, by_node):
    if ref not in ready:
        outcomes.append("waiting")
        ray.cancel(ref, force=True)
        continue
    try:
        outcomes.append("ran here" if ray.get(ref) == node["NodeID"] else "ran elsewhere")
    except Exception as error:
        outcomes.append(type(error).__name__)
sb = sandbox.create("${SANDBOX_TEST_IMAGE}", env={"PATH": "/bin"}, cpu=0, resources={"${SANDBOX_RESOURCE}": 1, "${provider}": 0.01})
where = ray.get(sb.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()), timeout=120)
kernel = ray.get(sb.exec.remote(["uname", "-r"]), timeout=120).stdout.strip()
# delete() stops the sandbox; its actor keeps the node's one gvisor slot until it is killed.
ray.get(sb.delete.remote(), timeout=120)
ray.kill(sb)
# Allowed here: a sandbox that asks for the network gets the agent's, and reaches the head.
import socket
head_ip = socket.gethostbyname(socket.gethostname())
net = sandbox.create("${SANDBOX_TEST_IMAGE}", env={"PATH": "/bin"}, cpu=0, network="host", resources={"${SANDBOX_RESOURCE}": 1, "${provider}": 0.01})
reached = ray.get(net.exec.remote(f"nc -w 5 {head_ip} 6379 </dev/null >/dev/null; echo exit=$?", shell="/bin/sh"), timeout=120).stdout.strip()
ray.get(net.delete.remote(), timeout=120)
ray.kill(net)
print(json.dumps({"reached": reached,"cpu": node["Resources"].get("CPU", 0), "gvisor": node["Resources"].get("${SANDBOX_RESOURCE}", 0),
                  "ordinary": outcomes, "sandboxNode": where == node["NodeID"], "kernel": kernel}))
`,
      300_000,
    );
    expect(result.code, result.stderr).toBe(0);
    // Ray is offered no CPUs of this computer: a task aimed by its provider resource waits for a CPU that never
    // comes; one pinned to the node is refused by Ray as unschedulable.
    expect(lastJson(result.stdout)).toEqual({
      cpu: 0,
      gvisor: 1,
      reached: 'exit=0',
      ordinary: ['waiting', 'TaskUnschedulableError'],
      sandboxNode: true,
      kernel: GVISOR_KERNEL_RELEASE,
    });
  });
});
