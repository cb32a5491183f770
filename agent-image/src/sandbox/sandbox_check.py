"""Starts one gVisor sandbox the way Ray's sandbox API does, and prints what it saw as one JSON line.

Usage: sandbox_check.py IMAGE_TAR TIMEOUT_SECONDS

The agent advertises the `gvisor` resource only when this passes: a sandbox starts from the image's busybox rootfs
under the container's hardening, and `uname -r` inside answers with gVisor's kernel, not the host's.
"""
import json
import os
import sys
import time


def main() -> None:
    image, timeout = sys.argv[1], float(sys.argv[2])
    started = time.monotonic()
    try:
        from ray.experimental.sandbox import SandboxRuntime

        runtime = SandboxRuntime()
        instance = runtime.create(
            image=image,
            env={"PATH": "/bin"},
            timeout_seconds=timeout,
            network="none",
            _ignore_cgroups=os.environ.get("RAY_SANDBOX_IGNORE_CGROUPS") == "1",
        )
    except Exception as error:  # noqa: BLE001 - every failure is a reason to report
        emit(ok=False, error=f"{type(error).__name__}: {error}")
        return
    start_seconds = time.monotonic() - started
    try:
        result = runtime.exec(instance, ["uname", "-r"], timeout=timeout)
        kernel = decode(result.stdout).strip()
        if result.exit_code != 0:
            emit(ok=False, error=f"uname in the sandbox exited {result.exit_code}: {decode(result.stderr).strip()}")
        else:
            emit(ok=True, kernel=kernel, hostKernel=os.uname().release, startSeconds=round(start_seconds, 3))
    except Exception as error:  # noqa: BLE001
        emit(ok=False, error=f"{type(error).__name__}: {error}")
    finally:
        try:
            runtime.delete(instance)
        except Exception:  # noqa: BLE001 - the agent removes /tmp/runsc leftovers anyway
            pass


def decode(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


if __name__ == "__main__":
    main()
