"""Reads what the agent must know before joining a Ray cluster, and prints it as one JSON line.

Usage: cluster_info.py HOST:PORT TIMEOUT_SECONDS

It asks the head's GCS for the cluster metadata the head wrote at start (Ray and Python versions), using Ray's
bundled GCS client: only the GCS port is needed, which a worker node needs anyway.
"""
import json
import platform
import socket
import sys


def main() -> None:
    address, timeout = sys.argv[1], float(sys.argv[2])
    host, _, port = address.rpartition(":")
    local = {"rayVersion": None, "pythonVersion": platform.python_version()}
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        emit(status="unreachable", detail=str(error), **local)
        return
    import ray
    from ray._raylet import GcsClient

    local["rayVersion"] = ray.__version__
    try:
        client = GcsClient(address=address)
        raw = client.internal_kv_get(b"CLUSTER_METADATA", namespace=b"cluster", timeout=timeout)
    except Exception as error:  # noqa: BLE001 - any GCS failure means "not ready yet"
        emit(status="unreachable", detail=f"{type(error).__name__}: {error}", **local)
        return
    if not raw:
        emit(status="unreachable", detail="the head has not published its cluster metadata yet", **local)
        return
    metadata = json.loads(raw)
    emit(
        status="ok",
        clusterRayVersion=metadata.get("ray_version"),
        clusterPythonVersion=metadata.get("python_version"),
        clusterId=client.cluster_id.hex(),
        **local,
    )


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


if __name__ == "__main__":
    main()
