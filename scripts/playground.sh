#!/usr/bin/env bash
# The main job: a whole Ray Agent system on this machine through the `ray-agent` CLI: a Ray head (no CPUs of its
# own), the reference manager over TLS, and the agent contributing this machine's CPUs; then a sample Ray job whose
# tasks the agent counts. Prepares the machine first (Docker Engine, images), so it works on a fresh one.
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
