#!/bin/sh
# The image's entry point: PID 1, or PID 2 under `docker run --init`. Ray tasks run as the agent's uid and can read
# /proc/<pid>/environ of every process of that uid, so AGENT_TOKEN must not stay in the environment of anything
# long-lived. When it is set it is handed to the agent on an inherited pipe instead (a dash here-document is a pipe),
# named by AGENT_TOKEN_FD; the agent reads it to the end and closes it. `exec` replaces this process's environment,
# so /proc/1/environ no longer holds the token once tini runs. tini stays the process that reaps orphaned Ray
# workers and forwards SIGTERM/SIGINT to the agent (TINI_SUBREAPER covers the --init case).
set -eu
# V8 sized for a small long-lived daemon (see bench/analysis/agent.md): young generation of 1 MiB semi-spaces instead
# of 16, so short-lived garbage is collected before it spreads over pages; a bounded old space; one GC thread.
AGENT_NODE_FLAGS="--max-semi-space-size=1 --max-old-space-size=64 --single-threaded-gc"
# `tunnel`: this container is the provider's tunnel container (the WireGuard interface in its network namespace,
# which the agent container joins). It needs root, NET_ADMIN (capability bit 12) and the TUN device; say which flags
# give them instead of failing later inside wireguard-go.
if [ "${1:-}" = tunnel ]; then
  shift
  cap_eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
  if [ "$(id -u)" != 0 ] || [ $(((0x${cap_eff:-0} >> 12) & 1)) != 1 ] || [ ! -c /dev/net/tun ]; then
    echo "ray-agent tunnel: needs root, NET_ADMIN and /dev/net/tun: run it with --user 0 --cap-add NET_ADMIN --device /dev/net/tun" >&2
    exit 2
  fi
  exec /usr/bin/tini -- node /opt/ray-agent/tunnel.mjs "$@"
fi
if [ -n "${AGENT_TOKEN+set}" ]; then
  exec env -u AGENT_TOKEN AGENT_TOKEN_FD=3 /usr/bin/tini -- node $AGENT_NODE_FLAGS /opt/ray-agent/agent.mjs "$@" 3<<TOKEN
${AGENT_TOKEN}
TOKEN
fi
exec /usr/bin/tini -- node $AGENT_NODE_FLAGS /opt/ray-agent/agent.mjs "$@"
