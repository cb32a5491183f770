# The benchmarks' Ray driver: one long-lived process on the head (docker exec -i), driven by JSON lines on stdin.
# Long-lived so that worker nodes come and go under one connected driver: no per-measurement driver start-up, and
# ray.nodes() can be polled in-process when timing a join. Answers go to stdout as one JSON line each, prefixed so
# that anything Ray prints there cannot be mistaken for an answer.
import json
import os
import sys
import time
import traceback

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray  # noqa: E402
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: E402

PREFIX = "@@bench "


def answer(doc):
    sys.stdout.write(PREFIX + json.dumps(doc) + "\n")
    sys.stdout.flush()


@ray.remote(num_cpus=1)
def cpu_task(loops):
    # A fixed pure-Python loop: the interpreter's speed on this node, nothing else (no I/O, no numpy).
    start_wall, start_cpu = time.time(), time.process_time()
    x = 0
    for i in range(loops):
        x = (x + i * i) % 1000003
    return {"wall": time.time() - start_wall, "cpu": time.process_time() - start_cpu, "x": x}


@ray.remote(num_cpus=1)
def tiny_task(i):
    return i


@ray.remote(num_cpus=1)
def busy_task(seconds):
    # Keeps a CPU busy for a fixed wall time, so a drain has real work to wait for.
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        n += 1
    return {"finishedAt": time.time(), "node": ray.get_runtime_context().get_node_id()}


def worker_nodes():
    return [
        n
        for n in ray.nodes()
        if n["Alive"] and "node:__internal_head__" not in n["Resources"] and n["Resources"].get("CPU", 0) > 0
    ]


def pinned(fn, node_id):
    # Hard affinity: a task must run on the node under test, never anywhere else.
    return fn.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False))


def wait_node(cmd):
    exclude = set(cmd.get("exclude", []))
    deadline = time.time() + cmd.get("timeout", 120)
    poll = cmd.get("poll", 0.02)
    while time.time() < deadline:
        for n in worker_nodes():
            if n["NodeID"] not in exclude:
                return {"nodeId": n["NodeID"], "seenAt": time.time(), "resources": n["Resources"]}
        time.sleep(poll)
    raise TimeoutError("no new worker node joined in time")


def wait_gone(cmd):
    deadline = time.time() + cmd.get("timeout", 60)
    while time.time() < deadline:
        if all(n["NodeID"] != cmd["nodeId"] for n in worker_nodes()):
            return {"goneAt": time.time()}
        time.sleep(0.1)
    raise TimeoutError("the worker node is still alive")


def run_cpu(cmd):
    node, tasks, loops = cmd["nodeId"], cmd["tasks"], cmd["loops"]
    start = time.perf_counter()
    results = ray.get([pinned(cpu_task, node).remote(loops) for _ in range(tasks)])
    elapsed = time.perf_counter() - start
    return {
        "tasks": tasks,
        "elapsed": elapsed,
        "perSecond": tasks / elapsed,
        "taskWall": [r["wall"] for r in results],
        "taskCpu": [r["cpu"] for r in results],
    }


def run_tiny(cmd):
    node, tasks = cmd["nodeId"], cmd["tasks"]
    fn = pinned(tiny_task, node)
    start = time.perf_counter()
    out = ray.get([fn.remote(i) for i in range(tasks)])
    elapsed = time.perf_counter() - start
    if out != list(range(tasks)):
        raise RuntimeError("tiny tasks returned wrong results")
    return {"tasks": tasks, "elapsed": elapsed, "perSecond": tasks / elapsed}


PENDING = {}


def submit_busy(cmd):
    # Returns at once; the orchestrator sees the tasks start from their process titles (ray::busy_task).
    refs = [pinned(busy_task, cmd["nodeId"]).remote(cmd["seconds"]) for _ in range(cmd["tasks"])]
    PENDING["busy"] = refs
    return {"submittedAt": time.time()}


def collect_busy(cmd):
    refs = PENDING.pop("busy")
    done, errors = [], []
    for ref in refs:
        try:
            done.append(ray.get(ref, timeout=cmd.get("timeout", 120)))
        except Exception as error:  # noqa: BLE001 - a task lost to the stop is a result, not a crash
            errors.append(type(error).__name__ + ": " + str(error).splitlines()[0][:200])
    return {"completed": len(done), "failed": len(errors), "errors": errors, "finishedAt": [d["finishedAt"] for d in done]}


BUSYBOX_TAR = "/opt/ray-agent/sandbox/busybox-rootfs.tar"
SANDBOX = {}


@ray.remote(num_cpus=1)
def busybox_task(argv):
    # The sandbox image's own busybox, run as an ordinary task: the same program doing the same work, outside gVisor.
    import subprocess
    import tarfile

    path = "/tmp/bench-sandbox/busybox"
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tarfile.open(BUSYBOX_TAR) as tar:
            data = tar.extractfile("./bin/busybox").read()
        with open(path + ".part", "wb") as out:
            out.write(data)
        os.chmod(path + ".part", 0o755)
        os.replace(path + ".part", path)
    done = subprocess.run([path, *argv], capture_output=True, check=True)
    return done.stderr.decode(errors="replace")


@ray.remote(num_cpus=0)
class Plain:
    def ping(self):
        return True


def sandbox_start(cmd):
    from ray.experimental import sandbox

    start = time.perf_counter()
    box = sandbox.create(BUSYBOX_TAR, env={"PATH": "/bin"}, cpu=0, resources={cmd["resource"]: 1, cmd["provider"]: 0.01})
    result = ray.get(box.exec.remote(["true"]))
    seconds = time.perf_counter() - start
    if result.exit_code != 0:
        raise RuntimeError(f"the sandbox's first command failed: {result.stderr}")
    SANDBOX["box"] = box
    return {"seconds": seconds}


def actor_start(cmd):
    start = time.perf_counter()
    actor = pinned(Plain, cmd["nodeId"]).remote()
    ray.get(actor.ping.remote())
    seconds = time.perf_counter() - start
    ray.kill(actor)
    return {"seconds": seconds}


def sandbox_run(cmd):
    start = time.perf_counter()
    result = ray.get(SANDBOX["box"].exec.remote(cmd["argv"]))
    seconds = time.perf_counter() - start
    if result.exit_code != 0:
        raise RuntimeError(f"exit {result.exit_code}: {result.stderr}")
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    return {"seconds": seconds, "stderr": stderr}


def task_run(cmd):
    start = time.perf_counter()
    stderr = ray.get(pinned(busybox_task, cmd["nodeId"]).remote(cmd["argv"]))
    return {"seconds": time.perf_counter() - start, "stderr": stderr}


def sandbox_stop(cmd):
    box = SANDBOX.pop("box", None)
    if box is not None:
        ray.get(box.delete.remote())
        ray.kill(box)
    return {}


@ray.remote(num_cpus=0)
class Holder:
    # Lives on one node and owns the objects it puts there: they stay in that node's object store until freed.
    def put(self, size):
        # bytes, not a NumPy array: the image's Ray has no NumPy. Reading it back costs one copy on the consumer.
        return [ray.put(bytes(size))]


@ray.remote(num_cpus=0)
def consume(refs):
    # The ref comes nested, so Ray does not fetch it before the task starts: the get below is the whole transfer.
    start = time.perf_counter()
    value = ray.get(refs[0])
    return {"seconds": time.perf_counter() - start, "bytes": len(value)}


def run_transfer(cmd):
    # An object ray.put on one node, consumed by a task on the other: the object manager moves it between them.
    holder = pinned(Holder, cmd["fromNodeId"]).remote()
    results = []
    try:
        for _ in range(cmd["reps"]):
            [ref] = ray.get(holder.put.remote(cmd["bytes"]))
            result = ray.get(pinned(consume, cmd["toNodeId"]).remote([ref]))
            results.append({**result, "mbPerSecond": result["bytes"] / result["seconds"] / 1e6})
            del ref
    finally:
        ray.kill(holder)
    return {"transfers": results}


COMMANDS = {
    "wait_node": wait_node,
    "wait_gone": wait_gone,
    "cpu": run_cpu,
    "tiny": run_tiny,
    "submit_busy": submit_busy,
    "collect_busy": collect_busy,
    "transfer": run_transfer,
    "sandbox_start": sandbox_start,
    "actor_start": actor_start,
    "sandbox_run": sandbox_run,
    "task_run": task_run,
    "sandbox_stop": sandbox_stop,
    "ping": lambda cmd: {"pong": time.time()},
}


def main():
    ray.init(address=sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:6379", logging_level="ERROR", log_to_driver=False)
    answer({"ok": True, "ready": True, "python": sys.version.split()[0], "ray": ray.__version__})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        try:
            answer({"ok": True, "id": cmd.get("id"), **COMMANDS[cmd["cmd"]](cmd)})
        except Exception as error:  # noqa: BLE001 - reported to the orchestrator, which decides
            answer({"ok": False, "id": cmd.get("id"), "error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()[-2000:]})


if __name__ == "__main__":
    main()
