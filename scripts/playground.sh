#!/usr/bin/env bash
# The main job: a whole Ray Agent system on this machine through the `ray-agent` CLI, in the real shape of a
# provider behind a home router. A "cluster" Docker network holds the reference manager (TLS), the WireGuard gateway
# and a Ray head (no CPUs of its own, Ray token authentication on) in the gateway's network namespace; a "home"
# network holds the agent and its tunnel container behind a router container that masquerades home -> cluster and
# drops every new connection cluster -> home. The tunnel dials out to the gateway, the agent joins over the overlay,
# and a sample Ray job runs tasks the agent counts. Prepares the machine first (Docker Engine, images).
#
#   scripts/playground.sh up      # prepare, start everything and run the sample job
#   scripts/playground.sh status  # the agent's state
#   scripts/playground.sh down    # stop the agent and remove the playground
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CLI="$ROOT/controller/dist/ray-agent.cjs"

case "${1:-up}" in
  up)
    "$ROOT/scripts/prepare-machine.sh"
    exec node "$CLI" up --local ;;
  status) exec node "$CLI" status ;;
  down) exec node "$CLI" down --local ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
