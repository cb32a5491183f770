# The limits suite's Ray driver: one command per run, `docker exec -i HEAD python3 - CMD JSON < probe.py`.
# Prints one JSON line prefixed with @@limits (anything Ray prints cannot be mistaken for it).
import json
import sys
import time

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

MiB = 1024 * 1024


def pinned(fn, node_id):
    # Hard affinity: the work must run on the node under test.
    return fn.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False))


def alive(node_id):
    return any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes())


def worker_node(exclude):
    for n in ray.nodes():
        if n["Alive"] and n["Resources"].get("CPU", 0) > 0 and n["NodeID"] not in exclude:
            return n["NodeID"]
    return None


@ray.remote(num_cpus=1, max_retries=0)
def hog(total_mib, step_mib):
    # Grows by touched chunks (bytes of a repeated byte are written, so every page is resident), as a real
    # over-allocating task does, so Ray's memory monitor has the chance to act before the kernel.
    chunks = []
    for _ in range(total_mib // step_mib):
        chunks.append(b"x" * (step_mib * MiB))
        time.sleep(0.02)
    return len(chunks) * step_mib


@ray.remote(num_cpus=1)
def tiny(i):
    return i


@ray.remote(num_cpus=0.25)
def spin(seconds):
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        n += 1
    return n


@ray.remote(num_cpus=1)
def make_object(size):
    return bytes(size)


@ray.remote(num_cpus=0)
class Keeper:
    # Owns objects on the node under test, so they stay in its object store (or its spill directory).
    def put(self, count, size):
        self.objects = [ray.put(bytes([i % 251]) * size) for i in range(count)]
        return len(self.objects)

    def refs(self):
        # Inside a list, so the driver gets the references themselves (borrowed), not the values.
        return [self.objects]


def check_spilled(keeper):
    # Read from the driver on the head: the node under test restores each spilled object from its spill volume and
    # sends it over, and the copy on the heap lands on the head, not inside the limit being measured.
    ok = 0
    [refs] = ray.get(keeper.refs.remote(), timeout=60)
    for i, ref in enumerate(refs):
        value = ray.get(ref, timeout=300)
        ok += int(len(value) > 0 and value[0] == i % 251 and value[-1] == i % 251)
        del value
    return ok


@ray.remote(num_cpus=0.25)
class Short:
    def ping(self):
        return 1


@ray.remote(num_cpus=0.25, max_calls=1)
def once(i):
    return i


def cmd_wait_node(c):
    deadline = time.time() + c.get("timeout", 180)
    while time.time() < deadline:
        node = worker_node(set(c.get("exclude", [])))
        if node:
            return {"nodeId": node}
        time.sleep(0.2)
    raise TimeoutError("no worker node joined")


def cmd_memory(c):
    node = c["nodeId"]
    started = time.time()
    outcome, error = "completed", ""
    try:
        ray.get(pinned(hog, node).remote(c["totalMiB"], c["stepMiB"]), timeout=c.get("timeout", 180))
    except Exception as e:  # noqa: BLE001 - how the task failed is the measurement
        name = type(e).__name__
        text = str(e)
        if "OutOfMemoryError" in name or "memory monitor" in text or "OutOfMemory" in text:
            outcome = "killed-by-ray"
        elif "NodeDied" in name or "node" in text.lower() and "died" in text.lower():
            outcome = "node-died"
        else:
            outcome = "worker-crashed" if "WorkerCrashed" in name or "worker died" in text.lower() else "error"
        error = f"{name}: {text.splitlines()[0][:300] if text else ''}"
    return {"outcome": outcome, "error": error, "seconds": time.time() - started, "nodeAlive": alive(node)}


def cmd_follow_up(c):
    # A node that stays contributing runs a task at once; one that was replaced (restart) joins again as new.
    deadline = time.time() + c.get("timeout", 120)
    node = c["nodeId"]
    while time.time() < deadline:
        target = node if alive(node) else worker_node(set())
        if target:
            try:
                ray.get(pinned(tiny, target).remote(1), timeout=30)
                return {"ran": True, "sameNode": target == node, "seconds": time.time() - (deadline - c.get("timeout", 120))}
            except Exception:  # noqa: BLE001 - try again until the deadline
                pass
        time.sleep(0.5)
    return {"ran": False, "sameNode": False, "seconds": c.get("timeout", 120)}


def cmd_spin(c):
    refs = [pinned(spin, c["nodeId"]).remote(c["seconds"]) for _ in range(c["tasks"])]
    return {"submittedAt": time.time(), "done": len(ray.get(refs, timeout=c["seconds"] + 120))}


def cmd_tiny(c):
    fn = pinned(tiny, c["nodeId"])
    start = time.perf_counter()
    out = ray.get([fn.remote(i) for i in range(c["tasks"])], timeout=c.get("timeout", 1800))
    elapsed = time.perf_counter() - start
    return {"tasks": c["tasks"], "completed": sum(1 for i, v in enumerate(out) if v == i), "seconds": elapsed}


def cmd_large(c):
    # Made on the node, fetched by this driver on the head: one object through both object stores.
    start = time.perf_counter()
    value = ray.get(pinned(make_object, c["nodeId"]).remote(c["bytes"]), timeout=c.get("timeout", 600))
    elapsed = time.perf_counter() - start
    return {"bytes": len(value), "ok": len(value) == c["bytes"], "seconds": elapsed}


def cmd_churn(c):
    node = c["nodeId"]
    start = time.perf_counter()
    actors = 0
    for _ in range(c["actors"]):
        a = pinned(Short, node).remote()
        actors += ray.get(a.ping.remote(), timeout=120)
        ray.kill(a)
    actor_seconds = time.perf_counter() - start
    start = time.perf_counter()
    out = ray.get([pinned(once, node).remote(i) for i in range(c["tasks"])], timeout=1200)
    task_seconds = time.perf_counter() - start
    return {
        "actors": actors,
        "actorSeconds": actor_seconds,
        "tasks": sum(1 for i, v in enumerate(out) if v == i),
        "taskSeconds": task_seconds,
    }


KEEPERS = []


def cmd_spill(c):
    keeper = pinned(Keeper, c["nodeId"]).remote()
    start = time.perf_counter()
    ray.get(keeper.put.remote(c["count"], c["bytes"]), timeout=600)
    put_seconds = time.perf_counter() - start
    # The keeper stays alive (its objects with it) until `spill_check`, so the spill directory can be read meanwhile.
    KEEPERS.append(keeper)
    return {"putSeconds": put_seconds}


COMMANDS = {
    "wait_node": cmd_wait_node,
    "memory": cmd_memory,
    "follow_up": cmd_follow_up,
    "spin": cmd_spin,
    "tiny": cmd_tiny,
    "large": cmd_large,
    "churn": cmd_churn,
}


def main():
    ray.init(address="127.0.0.1:6379", logging_level="ERROR", log_to_driver=False)
    for line in sys.stdin if sys.argv[1] == "-" else [sys.argv[1]]:
        c = json.loads(line)
        try:
            if c["cmd"] == "spill":
                doc = cmd_spill(c)
            elif c["cmd"] == "spill_check":
                keeper = KEEPERS.pop()
                try:
                    doc = {"intact": check_spilled(keeper)}
                finally:
                    ray.kill(keeper)
            else:
                doc = COMMANDS[c["cmd"]](c)
            doc["ok"] = True
        except Exception as e:  # noqa: BLE001 - reported to the suite, which decides
            doc = {"ok": False, "error": f"{type(e).__name__}: {str(e)[:500]}"}
        sys.stdout.write("@@limits " + json.dumps(doc) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
