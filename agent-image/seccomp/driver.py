# On the head: a sandbox on the gVisor-capable worker, from a local rootfs tar that is on the worker's disk.
import sys, time, ray
from ray.experimental import sandbox
from ray.util.state import list_actors

ray.init(address="auto", logging_level="ERROR")
head_ip = sys.argv[1]
t = time.time()
sb = sandbox.create(image="/sandbox/busybox-rootfs.tar", env={"PATH": "/bin"}, resources={"gvisor": 1}, cpu=1)
print("instance", ray.get(sb.get_instance_id.remote()), "after", round(time.time() - t, 1), "s")
def run(cmd):
    r = ray.get(sb.exec.remote(cmd, shell="/bin/sh"))
    print(f"$ {cmd if isinstance(cmd, str) else ' '.join(cmd)}  -> exit {r.exit_code}\n{(r.stdout + r.stderr).rstrip()}")
run(["uname", "-a"])
run(["ps"])
run("ip addr 2>&1 || ifconfig -a")
run(f"nc -w 3 {head_ip} 6379 </dev/null; echo nc-exit=$?")
run("ls -la /var/lib/ray-agent /tmp 2>&1; cat /var/lib/ray-agent/token 2>&1; ls /")
run("cat /proc/self/mountinfo 2>&1 | head -20")
nodes = {n["NodeID"]: n for n in ray.nodes()}
for a in list_actors(filters=[("class_name", "=", "Sandbox")]):
    n = nodes.get(a.node_id, {})
    print("Sandbox actor", a.state, "on node", a.node_id[:12], n.get("NodeManagerAddress"), n.get("Resources", {}).get("gvisor"))
ray.get(sb.delete.remote())
