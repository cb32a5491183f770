#!/usr/bin/env bash
# Proves the first run on a fresh machine: scripts/prepare-machine.sh (base images from debootstrap, the Node.js
# image, better-sqlite3 for the manager, the agent and manager images) against an EMPTY Docker Engine and an
# empty cache, so images and build outputs already on this machine cannot hide a broken first run. Then the images
# must run: Ray and Node.js in the agent image, the agent refusing an empty configuration, the manager's CLI.
#
# The empty engine is a second dockerd of its own: its own socket, data root, exec root, pid file, config file,
# containerd and bridge, with no iptables rules. The machine's engine, its images, containers and networks are
# left alone. Everything made here is removed at the end, also on failure; the step logs are kept in
# .cache/fresh-setup/ for reading afterwards. It builds from a copy of the checkout's sources (node_modules linked,
# not copied), so its bundles never rewrite a file of the checkout: CI runs it beside the tests.
#
#   scripts/fresh-setup-check.sh     # as root; needs dockerd and ip (iproute2); a few minutes
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
AGENT_IMAGE="${AGENT_IMAGE:-ray-agent:dev}"
MANAGER_IMAGE="${MANAGER_IMAGE:-ray-agent-manager:dev}"
KEPT_LOGS="$ROOT/.cache/fresh-setup"

log() { printf '[fresh] %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "needs root (it starts a second dockerd and makes a bridge)"
for tool in dockerd docker ip; do
  command -v "$tool" >/dev/null || fail "needs \`$tool\` (.ci/run installs it: docker.io, iproute2)"
done

work="$(mktemp -d /tmp/rap-fresh-XXXXXX)"
id="${work##*-}"
socket="$work/docker.sock"
bridge="rapfr${id,,}"
DOCKERD_PID=""
ENGINE_UP=0
PREPARE_PID=""
BRIDGE_MADE=0
started=$SECONDS

alive() { kill -0 "$1" 2>/dev/null; }

stop_pid() { # PID SECONDS: TERM, then KILL after SECONDS; only for processes this script started.
  local pid=$1 start=$SECONDS
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid" && [ $((SECONDS - start)) -lt "$2" ]; do sleep 1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? start=$SECONDS
  trap - EXIT INT TERM
  if [ -n "$PREPARE_PID" ]; then # cut short by a signal: it stops its own step and index server
    kill -TERM "$PREPARE_PID" 2>/dev/null || true
    wait "$PREPARE_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -n "$DOCKERD_PID" ] && { [ "$ENGINE_UP" -eq 0 ] || ! alive "$DOCKERD_PID"; }; then
    log "the end of the second engine's log:"
    tail -n 15 "$work/dockerd.log" | sed 's/^/    /' >&2
  fi
  if [ -n "$DOCKERD_PID" ]; then
    stop_pid "$DOCKERD_PID" 60
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  # The containerd that dockerd ran: it stops with a dockerd that stops cleanly, not with one that was killed.
  local containerd_pid
  containerd_pid="$(cat "$work/exec/containerd/containerd.pid" 2>/dev/null || true)"
  if [ -n "$containerd_pid" ] && grep -qs "$work" "/proc/$containerd_pid/cmdline"; then stop_pid "$containerd_pid" 10; fi
  # A killed daemon leaves its mounts (overlay, netns) under the data root: unmount them, deepest first.
  local mount
  awk -v prefix="$work/" 'index($2, prefix) == 1 {print $2}' /proc/mounts | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null || true
  done
  [ "$BRIDGE_MADE" -eq 0 ] || ip link del "$bridge" 2>/dev/null || true
  rm -rf "$KEPT_LOGS"
  mkdir -p "$KEPT_LOGS"
  cp "$work"/*.log "$work"/cache/*.log "$KEPT_LOGS/" 2>/dev/null || true
  rm -rf --one-file-system "$work"
  log "teardown: engine stopped, bridge and data root removed in $((SECONDS - start)) s (logs: $KEPT_LOGS)"
  if [ "$status" -eq 0 ]; then
    log "PASSED: a first run from an empty engine and an empty cache in $((SECONDS - started)) s"
  else
    log "FAILED (exit $status) after $((SECONDS - started)) s"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A bridge of our own: `--bridge=none` makes dockerd delete the host's docker0, which the machine's engine needs.
# Its subnet must be one no other interface routes (controller/test/support/second-dockerd.ts uses 10.213.77.0/24).
subnet=""
for candidate in 10.213.79 10.213.80 10.213.81 10.213.82; do
  if ! ip -4 route show | grep -q "^$candidate\."; then subnet=$candidate; break; fi
done
[ -n "$subnet" ] || fail "no free /24 for the bridge among 10.213.79-82.0/24"
ip link add "$bridge" type bridge
BRIDGE_MADE=1
ip addr add "$subnet.1/24" dev "$bridge"

phase=$SECONDS
log "starting an empty Docker Engine on unix://$socket (data root $work/data, bridge $bridge $subnet.1/24)"
echo '{}' >"$work/daemon.json" # not the machine's /etc/docker/daemon.json
dockerd --config-file "$work/daemon.json" --host "unix://$socket" \
  --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/docker.pid" \
  --containerd-namespace "rapfresh$id" --containerd-plugins-namespace "rapfresh$id-plugins" \
  --bridge "$bridge" --iptables=false --ip-masq=false >"$work/dockerd.log" 2>&1 &
DOCKERD_PID=$!
export DOCKER_HOST="unix://$socket"
until docker info >/dev/null 2>&1; do
  alive "$DOCKERD_PID" || fail "the second dockerd exited"
  [ $((SECONDS - phase)) -lt 120 ] || fail "the second dockerd did not answer in 120 s"
  sleep 1
done
ENGINE_UP=1
images="$(docker image ls -q | wc -l)"
[ "$images" -eq 0 ] || fail "the new engine is not empty ($images images)"
log "engine up in $((SECONDS - phase)) s, with no images"

phase=$SECONDS
# The sources as git sees them (tracked and new files, not ignored ones: no dist, no cache), as a fresh clone has.
src="$work/src"
mkdir -p "$src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$src" -xf -
[ -d "$ROOT/node_modules" ] || fail "no node_modules in $ROOT: run npm ci first"
ln -s "$ROOT/node_modules" "$src/node_modules"
log "scripts/prepare-machine.sh with DOCKER_HOST=$DOCKER_HOST, an empty cache and a copy of the sources"
# In the background and waited for, so that a signal to this script reaches it at once (see cleanup).
RAY_AGENT_CACHE="$work/cache" MANAGER_IMAGE_DEPS="$work/cache/manager-image-deps" \
  AGENT_IMAGE="$AGENT_IMAGE" MANAGER_IMAGE="$MANAGER_IMAGE" "$src/scripts/prepare-machine.sh" &
PREPARE_PID=$!
code=0
wait "$PREPARE_PID" || code=$?
PREPARE_PID=""
[ "$code" -eq 0 ] || fail "scripts/prepare-machine.sh failed on an empty engine (exit $code; its failing step's log is above)"
log "set-up done in $((SECONDS - phase)) s"

phase=$SECONDS
log "checking the images run"
ray_version="$(sed -n 's/^ray[^=]*==//p' "$ROOT/agent-image/requirements.txt")"
ray_says="$(docker run --rm --network none --entrypoint ray "$AGENT_IMAGE" --version)"
[[ "$ray_says" == *"$ray_version"* ]] || fail "$AGENT_IMAGE: \`ray --version\` says \"$ray_says\", expected $ray_version"
node_says="$(docker run --rm --network none --entrypoint node "$AGENT_IMAGE" --version)"
[[ "$node_says" == v${NODE_VERSION:-22}.* ]] || fail "$AGENT_IMAGE: \`node --version\` says \"$node_says\", expected v${NODE_VERSION:-22}.x"
# The agent itself: with no configuration it must stop before any network call, naming the missing variable,
# with the exit code the contract gives (read from protocol/, where the agent and the controller take it).
bad_config="$(cd "$ROOT" && node_modules/.bin/tsx -e \
  "import { ExitCode } from './protocol/src/agent-contract.ts'; console.log(ExitCode.badConfig)")"
code=0
agent_says="$(docker run --rm --network none "$AGENT_IMAGE" 2>&1)" || code=$?
if [ "$code" -ne "$bad_config" ] || [[ "$agent_says" != *RAY_HEAD* ]]; then
  fail "$AGENT_IMAGE with no configuration exited $code (expected $bad_config, naming RAY_HEAD): $agent_says"
fi
docker run --rm --network none "$MANAGER_IMAGE" --help >/dev/null \
  || fail "$MANAGER_IMAGE: \`manager.mjs --help\` failed"
# The overlay's two ends are in the images: the tunnel entry names the flags it lacks, and the gateway's tools run.
code=0
tunnel_says="$(docker run --rm --network none --cap-drop ALL "$AGENT_IMAGE" tunnel 2>&1)" || code=$?
[ "$code" -eq "$bad_config" ] && [[ "$tunnel_says" == *NET_ADMIN* ]] \
  || fail "$AGENT_IMAGE tunnel without NET_ADMIN exited $code (expected $bad_config, naming NET_ADMIN): $tunnel_says"
docker run --rm --network none --entrypoint wg "$MANAGER_IMAGE" --version >/dev/null \
  || fail "$MANAGER_IMAGE: the gateway's \`wg\` does not run"
docker run --rm --network none "$MANAGER_IMAGE" gateway --help >/dev/null \
  || fail "$MANAGER_IMAGE: \`manager.mjs gateway --help\` failed"
log "images run ($ray_says; node $node_says; the agent refuses no configuration with exit $code) in $((SECONDS - phase)) s"
