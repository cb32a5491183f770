"""Build time only: compiles to bytecode the Python a Ray worker node runs, and nothing else.

The image's root is read-only and owned by root, so a worker could never cache bytecode itself: without this every
`ray start`, worker process and agent helper would compile its imports again. Ray's libraries that a worker node does
not run by itself (rllib, data, serve, train, tune, ...) stay source only: compiling all of Ray would add as much
again as its 31 MB of source. Fails the build if a module below is gone (a Ray upgrade renamed it).
"""

import importlib
import pathlib
import py_compile
import sys
import sysconfig

# What the processes of a worker node import: the CLI the agent runs (`ray start --block`), the worker process,
# the node's helper processes, the agent's own helpers (cluster_info.py, node_control.py) and a driver's `import ray`.
MODULES = [
    "ray",
    "ray.scripts.scripts",
    "ray._private.workers.default_worker",
    "ray._private.workers.setup_worker",
    "ray._private.log_monitor",
    "ray.dashboard.agent",
    "ray._private.runtime_env.agent.main",
    "ray.core.generated.autoscaler_pb2",
    "ray.util.state",
]

site = pathlib.Path(sysconfig.get_paths()["purelib"])
for name in MODULES:
    importlib.import_module(name)
files = {
    pathlib.Path(module.__file__)
    for module in list(sys.modules.values())
    if getattr(module, "__file__", None) and module.__file__.endswith(".py") and module.__file__.startswith(str(site))
}
# Loaded by name at run time, so not in sys.modules above: the dashboard agent's modules, runtime env plugins.
for tree in ("ray/dashboard/modules", "ray/_private/runtime_env"):
    files |= set((site / tree).rglob("*.py"))
# Ray's dependencies are small and all of them are used.
for entry in site.iterdir():
    if entry.name != "ray" and entry.is_dir():
        files |= set(entry.rglob("*.py"))
    elif entry.suffix == ".py":
        files.add(entry)

skipped = 0
for path in sorted(files):
    try:
        # The sources never change inside the image: no need to compare them at each import.
        py_compile.compile(str(path), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        skipped += 1  # templates and Python 2 files shipped as data
print(f"bytecode: {len(files) - skipped} files compiled, {skipped} skipped")
