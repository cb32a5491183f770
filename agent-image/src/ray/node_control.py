"""Acts on this agent's own Ray node through the head's GCS, and prints the outcome as one JSON line.

Usage:
  node_control.py HOST:PORT TIMEOUT_SECONDS PROVIDER_ID NODE_MANAGER_PORT NODE_IP resize CPUS MEMORY_BYTES
  node_control.py HOST:PORT TIMEOUT_SECONDS PROVIDER_ID NODE_MANAGER_PORT NODE_IP drain DEADLINE_MS MESSAGE

The node is the alive one labelled with this provider's ID (every agent pins the same node-manager port, so the
port alone is not enough) on the pinned node-manager port; NODE_IP ("-" when unknown) breaks a tie. Only the GCS
port is needed, which a worker node needs anyway; Ray's token authentication comes from the environment.
"""
import json
import sys

PROVIDER_LABEL = "ray-agent/provider-id"
ALIVE = 0


def main() -> None:
    address, timeout, provider_id, port, node_ip, command = sys.argv[1:7]
    rest = sys.argv[7:]
    from ray._raylet import GcsClient

    try:
        client = GcsClient(address=address)
        node_id = find_node(client, float(timeout), provider_id, int(port), node_ip)
    except Exception as error:  # noqa: BLE001 - any GCS failure is reported, never raised
        emit(ok=False, detail=f"{type(error).__name__}: {error}")
        return
    if node_id is None:
        emit(ok=False, detail=f"no alive Ray node of provider {provider_id} on node-manager port {port}")
        return
    try:
        if command == "resize":
            # Only CPU and memory change; the provider resource and the object store stay as started.
            total = client.resize_raylet_resource_instances(
                node_id, {"CPU": float(rest[0]), "memory": float(rest[1])}, timeout_s=float(timeout)
            )
            emit(ok=True, nodeId=node_id, total={key: float(value) for key, value in total.items()})
        elif command == "drain":
            from ray.core.generated import autoscaler_pb2

            # PREEMPTION is always accepted (IDLE_TERMINATION is refused for a busy node): no new work is leased
            # here, running work may finish, and the raylet exits by itself once idle.
            accepted, why = client.drain_node(
                node_id,
                autoscaler_pb2.DrainNodeReason.Value("DRAIN_NODE_REASON_PREEMPTION"),
                rest[1],
                int(rest[0]),
            )
            emit(ok=bool(accepted), nodeId=node_id, detail=why or None)
        else:
            emit(ok=False, detail=f"unknown command {command}")
    except Exception as error:  # noqa: BLE001
        emit(ok=False, nodeId=node_id, detail=f"{type(error).__name__}: {error}")


def find_node(client, timeout: float, provider_id: str, port: int, node_ip: str):
    candidates = []
    for node_id, info in client.get_all_node_info(timeout=timeout).items():
        if info.state != ALIVE or info.node_manager_port != port:
            continue
        if dict(info.labels).get(PROVIDER_LABEL) != provider_id:
            continue
        candidates.append((info.node_manager_address == node_ip, node_id.hex()))
    candidates.sort(reverse=True)
    return candidates[0][1] if candidates else None


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


if __name__ == "__main__":
    main()
