#!/usr/bin/env bash
# A whole Ray Agent system on this machine: a Ray head (no CPUs of its own), the reference manager over TLS,
# and one agent container contributing this machine's CPUs; then a sample Ray job whose tasks the agent counts.
#
#   scripts/playground.sh up      # start everything (builds images first if needed) and run the sample job
#   scripts/playground.sh status  # the agent's status document
#   scripts/playground.sh down    # remove everything it made
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NET=ray-agent-playground
DIR="${RAY_AGENT_CACHE:-$ROOT/.cache}/playground"
AGENT_IMAGE="${AGENT_IMAGE:-ray-agent:dev}"
MANAGER_IMAGE="${MANAGER_IMAGE:-ray-agent-manager:dev}"
CPUS="${CPUS:-2}"
MEMORY="${MEMORY:-4g}"
STATUS_PORT="${STATUS_PORT:-8765}"

log() { printf '[playground] %s\n' "$*" >&2; }

status() { curl -fsS "http://127.0.0.1:$STATUS_PORT/status"; }

down() {
  docker rm -f -v rap-agent rap-manager rap-head >/dev/null 2>&1 || true
  docker volume rm -f rap-agent-state rap-manager-data >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$DIR"
  log "removed"
}

up() {
  docker image inspect "$AGENT_IMAGE" >/dev/null 2>&1 && docker image inspect "$MANAGER_IMAGE" >/dev/null 2>&1 \
    || "$ROOT/scripts/prepare-machine.sh"
  down >/dev/null 2>&1
  mkdir -p "$DIR"
  log "making a private CA and tokens in $DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/ca.key" -out "$DIR/ca.pem" -days 30 -subj '/CN=Ray Agent playground CA' 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$DIR/server.key" -out "$DIR/server.csr" -subj '/CN=rap-manager' 2>/dev/null
  printf 'subjectAltName=DNS:rap-manager,DNS:localhost,IP:127.0.0.1\n' >"$DIR/san.ext"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -out "$DIR/server.pem" -days 30 -extfile "$DIR/san.ext" 2>/dev/null
  head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$DIR/enrollment-token"
  head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$DIR/admin-token"
  chmod 644 "$DIR"/*; chmod 755 "$DIR"
  docker network create "$NET" >/dev/null
  log "starting the Ray head"
  docker run -d --name rap-head --network "$NET" --shm-size=512m --entrypoint ray "$AGENT_IMAGE" \
    start --head --num-cpus=0 --port=6379 --include-dashboard=false --disable-usage-stats --block >/dev/null
  log "starting the manager"
  docker run -d --name rap-manager --network "$NET" -p 127.0.0.1:8443:8443 -v "$DIR:/certs:ro" -v rap-manager-data:/data \
    "$MANAGER_IMAGE" serve --db /data/manager.db --cert /certs/server.pem --key /certs/server.key --port 8443 \
    --enrollment-token-file /certs/enrollment-token --admin-token-file /certs/admin-token >/dev/null
  log "starting the agent ($CPUS CPUs, $MEMORY)"
  docker run -d --name rap-agent --network "$NET" --cpus="$CPUS" --memory="$MEMORY" --shm-size=1g \
    --cap-drop=ALL --security-opt=no-new-privileges --read-only --tmpfs /tmp:rw,exec,size=2g --init --stop-timeout=40 \
    -p "127.0.0.1:$STATUS_PORT:8765" -v "$DIR:/certs:ro" -v rap-agent-state:/var/lib/ray-agent \
    -e RAY_HEAD=ray://rap-head:10001 -e MANAGER_URL=https://rap-manager:8443/api/register \
    -e MANAGER_CA_FILE=/certs/ca.pem -e AGENT_TOKEN_FILE=/certs/enrollment-token "$AGENT_IMAGE" >/dev/null
  local state=""
  for _ in $(seq 1 120); do
    state=$(status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || true)
    [ "$state" = contributing ] && break
    sleep 1
  done
  [ "$state" = contributing ] || { log "the agent did not reach 'contributing' (state: ${state:-none}); docker logs rap-agent"; exit 1; }
  log "the agent is contributing; running a sample job of 8 tasks"
  docker exec -i rap-head python3 - <<'PY' &
import ray, time
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=0.5)
def square(x):
    time.sleep(5)
    return x * x
print("sample job results:", ray.get([square.remote(i) for i in range(8)]), flush=True)
PY
  local job=$!
  sleep 3
  log "while the job runs, the agent reports: $(status | python3 -c "import json,sys; d=json.load(sys.stdin); print('state=%s running tasks=%s provider=%s' % (d['state'], d['tasks']['running'], d['registration']['providerId']))")"
  wait "$job"
  log "manager's view:"
  curl -fsS --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$DIR/admin-token")" https://localhost:8443/api/providers \
    | python3 -c "import json,sys; [print('  %s %s health=%s heartbeats=%s' % (p['providerId'], p['hostname'], p['health'], p['heartbeats'])) for p in json.load(sys.stdin)['providers']]"
  log "status: curl http://127.0.0.1:$STATUS_PORT/status   stop: scripts/playground.sh down"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
